"""The spec files shipped in ``specs/``: they load, the Minecraft safeguards match the paper's
machines transition by transition, and the pattern library behaves as documented.

The paper's machines are those of the authors' code (grockious/safeguardedRL,
``src/automata/minecraft_{1,2,6,7}.py``): states 0..4, sink -1, one label per grid cell.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from pathlib import Path

import pytest

from safeguards.spec.loader import load_spec

SPECS = Path(__file__).resolve().parents[1] / "specs"
ALL_SPEC_FILES = sorted(SPECS.rglob("*.sg"))


def _compile(path_or_text):
    import safeguards

    return safeguards.compile(path_or_text)


# --------------------------------------------------------------------------------------------
# (a) every shipped spec file loads


def test_expected_spec_files_are_shipped():
    names = {str(p.relative_to(SPECS)) for p in ALL_SPEC_FILES}
    expected = {f"minecraft/safeguard{k}.sg" for k in range(4)} | {
        f"patterns/{name}.sg" for name in (
            "absence", "avoid_until", "response_bounded", "precedence", "no_repeat",
            "eventually_goal", "reach_avoid", "past_guard")}
    assert expected <= names


@pytest.mark.parametrize("path", ALL_SPEC_FILES, ids=lambda p: str(p.relative_to(SPECS)))
def test_spec_file_loads(path):
    spec = load_spec(path)
    assert spec.rules
    assert spec.description
    assert all(doc for doc in spec.props.values()), "every proposition has a doc string"


# --------------------------------------------------------------------------------------------
# (b) the four Minecraft safeguards against the paper's machines

PROPS = ("wood", "iron", "work_bench", "smith_table", "creeper", "basalt_lava", "diamond")
LABELS = ("safe",) + PROPS  # 'safe' = the empty valuation
SINK = -1

# The paper's machines for single-label valuations: state -> list of (label, next state).
# A label not listed keeps the machine in its state; the sink -1 is absorbing.
_HAZARDS = [("creeper", SINK), ("basalt_lava", SINK)]
PAPER_MACHINES = {
    # minecraft_1 "base FSMs": 0: hazard -> -1
    0: {0: _HAZARDS},
    # minecraft_2 "safeguard 1": 0: wood -> 1, hazard -> -1; 1: hazard -> -1
    1: {0: [("wood", 1)] + _HAZARDS,
        1: _HAZARDS},
    # minecraft_6 "safeguard 2": ... 1: work_bench -> 2; 2: only creeper -> -1
    2: {0: [("wood", 1)] + _HAZARDS,
        1: [("work_bench", 2)] + _HAZARDS,
        2: [("creeper", SINK)]},
    # minecraft_7 "safeguard 3": 1: work_bench -> 2, iron -> 3; 3: smith_table -> 4;
    # 2: only creeper -> -1; 4: only basalt_lava -> -1
    3: {0: [("wood", 1)] + _HAZARDS,
        1: [("work_bench", 2), ("iron", 3)] + _HAZARDS,
        2: [("creeper", SINK)],
        3: [("smith_table", 4)] + _HAZARDS,
        4: [("basalt_lava", SINK)]},
}


def paper_step(k: int, state: int, label: str) -> int:
    if state == SINK:
        return SINK
    for listed, target in PAPER_MACHINES[k][state]:
        if listed == label:
            return target
    return state


def paper_code_step(k: int, q: int, label: set[str]) -> int:
    """Literal transliteration of the authors' ``step`` methods; ``label`` may hold several
    propositions (``'x' in label`` then tests membership), which fixes the priorities."""
    hazard = "creeper" in label or "basalt_lava" in label
    if q == 0:
        if k == 0:
            return SINK if hazard else 0
        if "wood" in label and not hazard:
            return 1
        return SINK if hazard else 0
    if q == 1:
        if k >= 2 and "work_bench" in label and not hazard:
            return 2
        if k == 3 and "iron" in label and not hazard:
            return 3
        return SINK if hazard else 1
    if q == 2:
        return SINK if "creeper" in label else 2
    if q == 3:
        if "smith_table" in label and not hazard:
            return 4
        return SINK if hazard else 3
    if q == 4:
        return SINK if "basalt_lava" in label else 4
    return SINK


def valuation(label: str) -> frozenset[str]:
    return frozenset() if label == "safe" else frozenset({label})


ALL_VALUATIONS = [frozenset(c) for n in range(len(PROPS) + 1)
                  for c in itertools.combinations(PROPS, n)]


def test_paper_tables_agree_with_paper_code():
    # the dict tables above and the transliterated code describe the same machines
    for k, machine in PAPER_MACHINES.items():
        for q in list(machine) + [SINK]:
            for label in LABELS:
                assert paper_step(k, q, label) == paper_code_step(k, q, set(valuation(label)))


def correspondence(sg, k: int) -> dict[int, int]:
    """Walk the paper machine and the compiled safeguard in lockstep over single-label steps;
    return paper state -> our state, checking every step agrees with the correspondence."""
    mapping = {0: sg.initial}
    queue = deque([0])
    while queue:
        p = queue.popleft()
        s = mapping[p]
        for label in LABELS:
            p2, s2 = paper_step(k, p, label), sg.step(s, valuation(label))
            if p2 in mapping:
                assert mapping[p2] == s2, (
                    f"safeguard{k}: from paper state {p} (ours {s}) on {label!r}: paper goes to "
                    f"{p2} (ours {mapping[p2]}), we go to {s2}")
            else:
                mapping[p2] = s2
                queue.append(p2)
    return mapping


def reachable(sg, valuations) -> set[int]:
    seen = {sg.initial}
    queue = deque([sg.initial])
    while queue:
        s = queue.popleft()
        for v in valuations:
            t = sg.step(s, v)
            if t not in seen:
                seen.add(t)
                queue.append(t)
    return seen


MINECRAFT = [SPECS / "minecraft" / f"safeguard{k}.sg" for k in range(4)]


@pytest.mark.parametrize("k", range(4))
def test_minecraft_safeguard_matches_paper(k):
    sg = _compile(MINECRAFT[k])
    assert set(sg.props) == set(PROPS)
    assert [r.kind for r in sg.rules] == ["machine"]
    mapping = correspondence(sg, k)
    # every paper state (0..k's states and the sink) is reachable, and the map is a bijection
    # onto our states reachable by single-label steps
    assert set(mapping) == set(PAPER_MACHINES[k]) | {SINK}
    # the paper's states must stay distinct even where they are language-equivalent (q0 and q1
    # of safeguard 1): progressive transfer keys Q-values by (cell, automaton state)
    assert len(set(mapping.values())) == len(mapping), (
        f"safeguard{k}: paper states merged (paper -> ours: {mapping}); an explicit machine "
        "must keep its states")
    assert set(mapping.values()) == reachable(sg, [valuation(label) for label in LABELS])
    for p, s in mapping.items():
        assert (sg.verdict(s) == "violated") == (p == SINK), (p, s, sg.verdict(s))
        # paper: accepting set = every non-sink state
        assert sg.is_accepting(s) == (p != SINK), (p, s)


@pytest.mark.parametrize("k", range(4))
def test_minecraft_safeguard_multi_label_priorities(k):
    # valuations with several true props follow the code's if/elif order
    sg = _compile(MINECRAFT[k])
    mapping = correspondence(sg, k)
    assert reachable(sg, ALL_VALUATIONS) == set(mapping.values())
    for p, s in mapping.items():
        for v in ALL_VALUATIONS:
            expected = mapping[paper_code_step(k, p, set(v))]
            assert sg.step(s, v) == expected, (
                f"safeguard{k}: paper state {p} on {sorted(v)}")


def test_safeguard3_priority_examples():
    sg = _compile(MINECRAFT[3])
    mapping = correspondence(sg, 3)
    q1 = mapping[1]
    assert sg.step(q1, {"work_bench", "iron"}) == mapping[2]   # work_bench checked first
    assert sg.step(q1, {"iron", "creeper"}) == mapping[SINK]   # a hazard always wins
    assert sg.step(mapping[0], {"wood", "basalt_lava"}) == mapping[SINK]
    assert sg.step(mapping[2], {"basalt_lava"}) == mapping[2]  # lava allowed after work bench
    assert sg.step(mapping[4], {"creeper"}) == mapping[4]      # creepers allowed after smith table


def documented_ltl(path: Path) -> str:
    """The `rule safeguardN_ltl: ltl ...` given in the file's header comment, uncommented."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"#\s+rule \w+_ltl: ltl", line))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not re.match(r"#\s{5,}\S", line):
            break
        block.append(line)
    return "\n".join(line[1:] for line in block)


@pytest.mark.parametrize("k", range(4))
def test_minecraft_documented_ltl_is_equivalent(k):
    # the LTL rule given in each file's comment accepts exactly the machine's language
    path = MINECRAFT[k]
    text = path.read_text(encoding="utf-8")
    preamble = text[:text.index(f"rule safeguard{k} (")]
    ltl = _compile(preamble + documented_ltl(path) + "\n")
    machine = _compile(path)
    seen = {(machine.initial, ltl.initial)}
    queue = deque(seen)
    while queue:
        a, b = queue.popleft()
        for v in ALL_VALUATIONS:
            a2, b2 = machine.step(a, v), ltl.step(b, v)
            assert machine.is_accepting(a2) == ltl.is_accepting(b2), (k, a, b, sorted(v))
            assert (machine.verdict(a2) == "violated") == (ltl.verdict(b2) == "violated")
            if (a2, b2) not in seen:
                seen.add((a2, b2))
                queue.append((a2, b2))


# --------------------------------------------------------------------------------------------
# (c) the pattern library: satisfying and violating traces

# (trace, accepted, first step whose state is `violated` or None, verdict after the last step
# or None when not checked)
PATTERN_CASES = {
    "absence": [
        ([set(), set()], True, None, "presumably_satisfied"),
        ([set(), {"bad"}, set()], False, 1, "violated"),
    ],
    "avoid_until": [
        ([set(), {"suit"}, {"lava"}], True, None, "satisfied"),
        ([{"lava", "suit"}], True, None, "satisfied"),
        ([set(), {"lava"}, {"suit"}], False, 1, "violated"),
        ([set(), set()], True, None, "presumably_satisfied"),
    ],
    "response_bounded": [
        ([{"request"}, set(), set(), {"response"}], True, None, None),
        ([{"request"}, set(), set()], True, None, None),  # still pending at the end: fine
        ([{"request"}, set(), set(), set()], False, 3, "violated"),
        ([{"request", "response"}, set(), set(), set(), {"response"}], False, 3, "violated"),
    ],
    "precedence": [
        ([set(), {"q"}, {"p"}], True, None, "satisfied"),
        ([{"p", "q"}], True, None, "satisfied"),
        ([set(), {"p"}, {"q"}], False, 1, "violated"),
    ],
    "no_repeat": [
        ([{"bump"}, set(), {"bump"}], True, None, "presumably_satisfied"),
        ([set(), {"bump"}, {"bump"}, set()], False, 2, "violated"),
    ],
    "eventually_goal": [
        ([set(), {"goal"}, set()], True, None, "satisfied"),
        ([set(), set()], False, None, "presumably_violated"),
    ],
    "reach_avoid": [
        ([set(), {"goal"}, {"hazard"}], True, None, "satisfied"),
        ([{"hazard", "goal"}], True, None, "satisfied"),
        ([set(), {"hazard"}, {"goal"}], False, 1, "violated"),
        ([set(), set()], False, None, "presumably_violated"),
    ],
    "past_guard": [
        ([{"key"}, set(), {"open"}], True, None, "satisfied"),
        ([{"open", "key"}], True, None, "satisfied"),
        ([set(), {"open"}, {"key"}], False, 1, "violated"),
    ],
}


@pytest.mark.parametrize(
    "name,trace,accepted,violated_at,final",
    [(name, *case) for name, cases in PATTERN_CASES.items() for case in cases],
    ids=[f"{name}-{i}" for name, cases in PATTERN_CASES.items() for i in range(len(cases))])
def test_pattern_trace(name, trace, accepted, violated_at, final):
    sg = _compile(SPECS / "patterns" / f"{name}.sg")
    assert sg.accepts(trace) == accepted
    states = sg.run(trace)
    assert len(states) == len(trace)
    assert sg.is_accepting(states[-1]) == accepted
    verdicts = [sg.verdict(s) for s in states]
    first_violation = next((i for i, v in enumerate(verdicts) if v == "violated"), None)
    assert first_violation == violated_at, verdicts
    if final is not None:
        assert verdicts[-1] == final, verdicts
