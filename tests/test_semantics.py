"""The compiled safeguards agree with the reference semantics of tests/reference.py.

Thousands of random formulas and traces: acceptance of every prefix (LTLf with past operators),
the earliest violation and satisfaction steps (exact bad and good prefixes), and the two regex
rule forms.  All seeded.
"""

from __future__ import annotations

import random

import pytest
from reference import (
    earliest_satisfaction, earliest_violation, holds, never_violation_step, random_formula,
    random_regex, random_trace, regex_matches,
)

import safeguards
from safeguards import Verdict
from safeguards.spec import ast

PROPS = ("a", "b", "c")


def _past_args_are_pure(formula: ast.Formula) -> bool:
    """The compiler requires Y Z O H S to apply to pure past formulas."""
    return all(ast.is_pure_past(node) for node in ast.walk(formula)
               if isinstance(node, (ast.Unary, ast.Binary)) and node.op in ast.PAST_OPS)


def _formulas(seed: int, count: int, max_size: int, past: bool) -> list[ast.Formula]:
    rng = random.Random(seed)
    found = []
    while len(found) < count:
        f = random_formula(rng, PROPS, rng.randint(1, max_size), past=past)
        if _past_args_are_pure(f):
            found.append(f)
    return found


def _first(states: list[int], sg: safeguards.Safeguard, verdict: Verdict) -> int | None:
    return next((t for t, q in enumerate(states) if sg.verdict(q) == verdict), None)


@pytest.mark.parametrize("batch", range(8))
@pytest.mark.parametrize("past", [False, True], ids=["future", "past"])
def test_acceptance_of_every_prefix(batch: int, past: bool) -> None:
    """2 x 8 x 150 = 2,400 formulas, 6 traces each, every prefix of every trace."""
    rng = random.Random(1000 + batch)
    for formula in _formulas(batch + 17 * past, 150, 10, past):
        sg = safeguards.compile_ltl(formula, props=list(PROPS))
        for _ in range(6):
            trace = random_trace(rng, PROPS, rng.randint(1, 8))
            states = sg.run(trace)
            for t, q in enumerate(states):
                expected = holds(formula, trace[:t + 1])
                assert sg.is_accepting(q) == expected, (str(formula), trace[:t + 1])


@pytest.mark.parametrize("batch", range(4))
def test_earliest_violation_and_satisfaction(batch: int) -> None:
    """400 formulas x 3 traces: the violated / satisfied verdict appears exactly at the first bad
    / good prefix, never later and never earlier."""
    rng = random.Random(2000 + batch)
    for formula in _formulas(3000 + batch, 100, 7, past=batch % 2 == 1):
        sg = safeguards.compile_ltl(formula, props=list(PROPS))
        for _ in range(3):
            trace = random_trace(rng, PROPS, rng.randint(1, 6))
            states = sg.run(trace)
            assert _first(states, sg, Verdict.VIOLATED) == earliest_violation(formula, trace), \
                (str(formula), trace)
            assert _first(states, sg, Verdict.SATISFIED) == earliest_satisfaction(formula, trace), \
                (str(formula), trace)


def _regex_spec(kind: str, regex: ast.Regex) -> ast.Spec:
    return ast.Spec("r", {p: "" for p in PROPS}, (ast.Rule("r", kind, regex),))


@pytest.mark.parametrize("batch", range(4))
def test_match_rules(batch: int) -> None:
    """800 regexes x 5 traces: `match R` accepts exactly the prefixes in L(R)."""
    rng = random.Random(4000 + batch)
    for _ in range(200):
        regex = random_regex(rng, PROPS, rng.randint(0, 6))
        sg = safeguards.compile(_regex_spec("match", regex))
        assert sg.accepts([]) == regex_matches(regex, [])
        for _ in range(5):
            trace = random_trace(rng, PROPS, rng.randint(1, 7))
            for t, q in enumerate(sg.run(trace)):
                assert sg.is_accepting(q) == regex_matches(regex, trace[:t + 1]), \
                    (regex, trace[:t + 1])


@pytest.mark.parametrize("batch", range(4))
def test_never_rules(batch: int) -> None:
    """800 regexes x 5 traces: `never R` is violated exactly at the first step ending a
    non-empty segment in L(R), and stays violated."""
    rng = random.Random(5000 + batch)
    for _ in range(200):
        regex = random_regex(rng, PROPS, rng.randint(0, 6))
        sg = safeguards.compile(_regex_spec("never", regex))
        for _ in range(5):
            trace = random_trace(rng, PROPS, rng.randint(1, 8))
            states = sg.run(trace)
            first = never_violation_step(regex, trace)
            assert _first(states, sg, Verdict.VIOLATED) == first, (regex, trace)
            if first is not None:
                assert all(sg.verdict(q) == Verdict.VIOLATED for q in states[first:])


def test_conjunction_is_violated_when_rules_conflict() -> None:
    """No single rule is violated, but together they cannot hold: the earliest bad prefix."""
    sg = safeguards.compile("""
    props: a
    rule always_a: ltl G a
    rule eventually_not_a: ltl F !a
    """)
    assert sg.verdict(sg.initial) == Verdict.VIOLATED


def test_conjunction_names_the_rule_a_step_violates() -> None:
    sg = safeguards.compile("""
    props: a b
    rule no_a: ltl G !a
    rule no_b: ltl G !b
    """)
    assert sg.step_violations(sg.initial, {"b"}) == {"no_b"}
    assert sg.step_violations(sg.initial, {"a", "b"}) == {"no_a", "no_b"}
    assert sg.step_violations(sg.initial, set()) == frozenset()


def test_thirty_two_propositions_do_not_make_2_to_the_32_letters() -> None:
    props = [f"p{i}" for i in range(32)]
    sg = safeguards.compile_ltl(f"G !({' | '.join(props[1:])}) & F p0")
    assert sg.n_letters <= 3
    assert sg.verdict(sg.step(sg.initial, {"p31"})) == Verdict.VIOLATED
    assert sg.verdict(sg.step(sg.initial, set())) == Verdict.PRESUMABLY_VIOLATED
