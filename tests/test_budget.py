"""The compile budget: every blow-up ends within the budget (plus slack) with a SpecError that
names the rule, or compiles; identical rules are multiplied once."""

import subprocess
import sys
import time

import pytest

import safeguards
from safeguards.automata.budget import Budget

SECONDS = 0.5
#: What a blow-up may take beyond the budget (parsing, the last step, a shared machine's noise):
#: a hang detector, not a speed target — an unbudgeted blow-up runs for minutes.  2 s was too
#: tight: `nested_repeat` took 2.69 s in a clean CI run on this 2-core machine.
SLACK = 10.0


def _props(n):
    return "props: " + " ".join(f"p{i}" for i in range(n)) + "\n"


BLOW_UPS = {
    "xor": "G(" + " xor ".join(f"p{i}" for i in range(30)) + ")",
    "nested_yesterday": "G(" + "Y " * 100 + "p0)",
    "many_eventually": " & ".join(f"F p{i}" for i in range(16)),
    "responses": _props(16) + "\n".join(f"rule r{i}: ltl G(p{i} -> F p{(i + 1) % 16})"
                                         for i in range(16)),
    "counted_regex": "props: a b c\nrule r: never {c ; b ; a[*6]}[*3..]",
    "nested_repeat": "props: a\nrule r: never {{a[*1..1000]}[*1..1000]}[*2..]",
}


@pytest.mark.parametrize("name", sorted(BLOW_UPS))
def test_blow_up_ends_within_the_budget(name):
    started = time.monotonic()
    try:
        safeguards.compile(BLOW_UPS[name], max_seconds=SECONDS)
    except safeguards.SpecError as error:
        assert "rule" in error.message and error.hint
    assert time.monotonic() - started < SECONDS + SLACK


def test_budget_error_names_the_rule_and_its_line():
    with pytest.raises(safeguards.SpecError, match="compile budget exceeded") as info:
        safeguards.compile(BLOW_UPS["counted_regex"], max_seconds=0.05)
    assert "rule `r`" in info.value.message and info.value.line == 2
    assert "split" in info.value.hint


def test_state_limit():
    with pytest.raises(safeguards.SpecError, match="more than 10 states"):
        safeguards.compile_ltl("X X X X X X X X X X X X a", max_states=10)


def test_identical_rules_are_fast():
    text = "props: a\n" + "\n".join(f"rule r{i}: ltl G !a" for i in range(10_000))
    started = time.monotonic()
    sg = safeguards.compile(text, max_seconds=30)
    assert time.monotonic() - started < 15
    assert len(sg.rules) == 10_000 and sg.n_states == 2
    state = sg.step(sg.initial, {"a"})
    assert sg.step_violations(sg.initial, {"a"}) == {f"r{i}" for i in range(10_000)}
    assert sg.verdict(state) == safeguards.Verdict.VIOLATED


def test_identical_rules_keep_their_names_and_penalties():
    sg = safeguards.compile("props: a b\nrule x (penalty = 2): ltl G !a\n"
                            "rule y: ltl G !b\nrule z (penalty = 3): ltl G !a\n")
    assert [(r.name, r.penalty) for r in sg.rules] == [("x", 2.0), ("y", 1.0), ("z", 3.0)]
    assert sg.step_violations(sg.initial, {"a"}) == {"x", "z"}
    assert [p.rules[0].name for p in sg.parts] == ["x", "y", "z"]


def test_budget_needs_positive_limits():
    with pytest.raises(ValueError):
        Budget(max_seconds=0)


def test_cli_budget_options():
    formula = " & ".join(f"F p{i}" for i in range(20))
    done = subprocess.run([sys.executable, "-m", "safeguards", "compile", "--ltl", formula,
                           "--max-seconds", "0.3"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "compile budget exceeded" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "safeguards", "compile", "--ltl", "a",
                           "--max-states", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--max-states" in done.stderr
