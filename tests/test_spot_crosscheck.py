"""Cross-checks of the Spot backend against the native compiler and the reference semantics.

* finite semantics: on random future-only formulas both backends give the same language and the
  same verdicts (a product walk of the two safeguards over every valuation);
* infinite semantics: on the syntactic safety and guarantee fragments, where the native backend is
  exact, both give the same verdict at every reachable pair of states; on general formulas the
  Spot backend's LTL3 verdicts agree with brute force over lasso words (small formulas only).
"""

from __future__ import annotations

import itertools
import random
import sys
from collections import deque

import pytest

spot = pytest.importorskip("spot")

import safeguards  # noqa: E402
from reference import (  # noqa: E402
    GUARANTEE_OPS, SAFETY_OPS, holds_infinite_lasso, random_formula,
)
from safeguards import BackendUnavailable, SpecError, Verdict  # noqa: E402
from safeguards.automata.build import RuleInfo  # noqa: E402
from safeguards.automata.ltl import fragment  # noqa: E402
from safeguards.automata.mtbdd import MTBDD  # noqa: E402
from safeguards.automata.spot_backend import spot_rule  # noqa: E402
from safeguards.spec.printer import to_spot  # noqa: E402
from safeguards.spec import ast  # noqa: E402
from safeguards.spec.parser import parse_ltl  # noqa: E402

PROPS = ("a", "b", "c")
BATCHES = 10
PER_BATCH = 50          # 10 x 50 = 500 formulas per check
SETTLED = (Verdict.VIOLATED, Verdict.SATISFIED)


# --------------------------------------------------------------------------------------------
# Helpers


def valuations(props) -> list[frozenset[str]]:
    """Every valuation of ``props`` (at most 4 of them)."""
    assert len(props) <= 4
    return [frozenset(p for p, bit in zip(props, bits) if bit)
            for bits in itertools.product((False, True), repeat=len(props))]


def language_difference(sg1, sg2, *, acceptance: bool = True):
    """A trace on which two safeguards over the same propositions disagree, or None.

    Walks the reachable pairs ``(q1, q2)`` over every valuation and compares the verdicts (and,
    if ``acceptance``, ``is_accepting``).  At the initial pair -- the empty trace, before any
    step -- only the settled verdicts (violated / satisfied) are compared.
    Returns ``(trace, description)``.
    """
    assert sg1.props == sg2.props
    vals = valuations(sg1.props)
    letters = [(sg1.letter(v), sg2.letter(v)) for v in vals]
    start = (sg1.initial, sg2.initial)
    parent: dict[tuple[int, int], tuple[tuple[int, int], frozenset[str]] | None] = {start: None}

    def trace_to(pair):
        out = []
        while parent[pair] is not None:
            pair, v = parent[pair]
            out.append(v)
        return out[::-1]

    def compare(pair, initial: bool):
        q1, q2 = pair
        v1, v2 = sg1.verdict(q1), sg2.verdict(q2)
        if initial:
            if (v1 in SETTLED or v2 in SETTLED) and v1 != v2:
                return f"initial verdicts {v1} vs {v2}"
            return None
        if v1 != v2:
            return f"verdicts {v1} vs {v2}"
        if acceptance and sg1.is_accepting(q1) != sg2.is_accepting(q2):
            return f"acceptance {sg1.is_accepting(q1)} vs {sg2.is_accepting(q2)}"
        return None

    problem = compare(start, True)
    if problem:
        return [], problem
    queue = deque([start])
    start_checked = False
    while queue:
        pair = queue.popleft()
        for v, (l1, l2) in zip(vals, letters):
            nxt = (sg1.step_letter(pair[0], l1), sg2.step_letter(pair[1], l2))
            fresh = nxt not in parent
            if fresh:
                parent[nxt] = (pair, v)
                queue.append(nxt)
            if fresh or (nxt == start and not start_checked):
                if nxt == start:
                    start_checked = True
                problem = compare(nxt, False)
                if problem:
                    return trace_to(pair) + [v], problem
    return None


def same_language(sg1, sg2) -> bool:
    """Same accepted traces and same verdict after every trace (see :func:`language_difference`)."""
    return language_difference(sg1, sg2) is None


def show(trace) -> str:
    return "[" + ", ".join("{" + ",".join(sorted(v)) + "}" for v in trace) + "]"


def formulas(kind: str, batch: int, ops=None, props=PROPS, sizes=range(1, 13)):
    rng = random.Random(f"spot-crosscheck-{kind}-{batch}")
    sizes = list(sizes)
    return [random_formula(rng, props, sizes[(batch * PER_BATCH + i) % len(sizes)], ops=ops)
            for i in range(PER_BATCH)]


def check_batch(fs, semantics: str, *, acceptance: bool):
    failures = []
    for f in fs:
        text = str(f)
        props = sorted(ast.props_of(f))
        native = safeguards.compile_ltl(f, semantics=semantics)
        other = safeguards.compile_ltl(f, semantics=semantics, backend="spot")
        assert native.props == other.props == tuple(props)
        diff = language_difference(native, other, acceptance=acceptance)
        if diff is None and semantics == "finite" and \
                native.is_accepting(native.initial) != other.is_accepting(other.initial):
            diff = [], "acceptance of the empty trace"
        if diff is not None:
            trace, problem = diff
            failures.append((len(text), text, show(trace), f"native vs spot: {problem}"))
    assert not failures, f"{len(failures)} disagreements; smallest: {min(failures)}"


# --------------------------------------------------------------------------------------------
# Finite semantics: native vs Spot on random future-only formulas


@pytest.mark.parametrize("batch", range(BATCHES))
def test_finite_native_vs_spot(batch):
    check_batch(formulas("finite", batch), "finite", acceptance=True)


@pytest.mark.parametrize("batch", range(2))
def test_finite_subset_construction(batch, monkeypatch):
    # Spot's "small" automata are often nondeterministic (about 1 in 6 of these formulas):
    # this exercises the backend's own subset construction.
    import safeguards.automata.spot_backend as backend

    monkeypatch.setattr(backend, "FINITE_OPTIONS", ("buchi", "sbacc", "small"))
    check_batch(formulas("subset", batch), "finite", acceptance=True)


# --------------------------------------------------------------------------------------------
# Infinite semantics: native vs Spot on the safety and guarantee fragments


@pytest.mark.parametrize("batch", range(BATCHES))
def test_infinite_safety_guarantee_native_vs_spot(batch):
    ops = SAFETY_OPS if batch % 2 == 0 else GUARANTEE_OPS
    fs = formulas("infinite", batch, ops=ops)
    assert all(fragment(f) in ("safety", "guarantee", "both") for f in fs)
    check_batch(fs, "infinite", acceptance=True)


# --------------------------------------------------------------------------------------------
# Infinite semantics, general formulas: Spot's LTL3 verdicts vs brute force on lassos

LASSO_PROPS = ("a", "b")
GENERAL_FIXED = ["GFa", "FGa", "GFa -> GFb", "G(a -> F b)", "F(a & G b)", "a U G b",
                 "GFa & F!b", "FGa | X b", "G(a | F b) & X!a", "(a R b) | GF a"]


def general_formulas() -> list[ast.Formula]:
    rng = random.Random("spot-crosscheck-general")
    found = [parse_ltl(text) for text in GENERAL_FIXED]
    ops = ("!", "&", "|", "X", "F", "G", "U", "R")
    while len(found) < 30:
        f = random_formula(rng, LASSO_PROPS, rng.randint(2, 4), ops=ops, constants=0.0)
        if fragment(f) == "general":
            found.append(f)
    return found


def _component_walk(f: ast.Formula):
    """(shortest prefix, verdict) of each reachable state of the Spot backend's raw automaton."""
    props = list(LASSO_PROPS)
    m = MTBDD(len(props))
    rule = ast.Rule("r", "ltl", f, semantics="infinite")
    info = RuleInfo("r", "ltl", "infinite", 1.0, str(f), fragment(f))
    raw = spot_rule(m, rule, info, props)
    vals = valuations(props)
    bits = [[p in v for p in props] for v in vals]
    prefix = {0: ()}
    queue = deque([0])
    while queue:
        q = queue.popleft()
        for v, b in zip(vals, bits):
            t = m.evaluate(raw.trans[q], b)
            if t not in prefix:
                prefix[t] = prefix[q] + (v,)
                queue.append(t)
    return [(prefix[q], raw.verdicts[q]) for q in sorted(prefix)]


def _some_lasso_satisfies(f: ast.Formula, prefix) -> bool:
    """Does some ``prefix . v . w^omega`` with ``|v| <= 1``, ``1 <= |w| <= 2`` satisfy ``f``?"""
    vals = valuations(LASSO_PROPS)
    middles = [()] + [(v,) for v in vals]
    loops = [(v,) for v in vals] + list(itertools.product(vals, repeat=2))
    return any(holds_infinite_lasso(f, tuple(prefix) + middle, loop)
               for middle in middles for loop in loops)


def test_infinite_general_spot_vs_lassos():
    failures = []
    for f in general_formulas():
        neg = ast.Unary("!", f)
        for prefix, verdict in _component_walk(f):
            if len(prefix) > 3:
                continue
            can_hold = _some_lasso_satisfies(f, prefix)
            can_fail = _some_lasso_satisfies(neg, prefix)
            expected = (Verdict.VIOLATED if not can_hold else Verdict.SATISFIED if not can_fail
                        else Verdict.INCONCLUSIVE)
            if verdict != expected:
                failures.append((len(str(f)), str(f), show(prefix), f"spot {verdict}, "
                                 f"lassos say {expected}"))
    assert not failures, f"{len(failures)} disagreements; smallest: {min(failures)}"


# --------------------------------------------------------------------------------------------
# Specific behaviour


def test_general_formula_needs_spot():
    with pytest.raises(BackendUnavailable, match=r"pip install 'safeguards\[spot\]'"):
        safeguards.compile_ltl("GFa", semantics="infinite")


def test_general_formula_spot_component_inconclusive():
    # The Spot backend's own automaton for GFa: one state, inconclusive forever.
    m = MTBDD(1)
    f = parse_ltl("GFa")
    raw = spot_rule(m, ast.Rule("r", "ltl", f, semantics="infinite"),
                    RuleInfo("r", "ltl", "infinite", 1.0, "GFa", "general"), ["a"])
    assert raw.verdicts == [Verdict.INCONCLUSIVE]


def test_general_formula_spot_verdicts_inconclusive():
    sg = safeguards.compile_ltl("GFa", semantics="infinite", backend="spot")
    assert set(sg.verdicts) == {Verdict.INCONCLUSIVE}
    for trace in ([], [{"a"}], [set(), set()]):
        assert sg.verdict(sg.run(trace)[-1] if trace else sg.initial) == Verdict.INCONCLUSIVE


def test_missing_spot_raises_backend_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "spot", None)   # `import spot` now raises ImportError
    with pytest.raises(BackendUnavailable, match=r"pip install 'safeguards\[spot\]'"):
        safeguards.compile_ltl("G a", backend="spot")


@pytest.mark.parametrize("text", ["G(a -> O b)", "Y a", "a S b", "H a | F b", "Z a"])
def test_past_operators_rejected(text):
    with pytest.raises(SpecError, match="past operator") as info:
        safeguards.compile_ltl(text, backend="spot")
    assert "native" in str(info.value)


def test_constants_under_temporal_operators():
    # Spot reads "G0" and "F1" as propositions; the backend must not send it such text.
    for text in ["G 0 | a", "F 1 & G b", "X 0 | a", "a U (G 1)", "X[!] 1"]:
        f = parse_ltl(text)
        for semantics in ("finite", "infinite"):
            if semantics == "infinite" and fragment(f) == "general":
                continue
            native = safeguards.compile_ltl(f, semantics=semantics)
            other = safeguards.compile_ltl(f, semantics=semantics, backend="spot")
            assert same_language(native, other), (text, semantics)


def test_printed_formula_has_no_stray_propositions():
    f = parse_ltl("(a | G 0) & F 1 & (b | X 1)")
    parsed = spot.formula(to_spot(f))
    assert {str(ap) for ap in spot.atomic_prop_collect(parsed)} == {"a"}
    assert parsed == spot.formula("a")


def test_printer_to_spot_round_trips_through_spot():
    for text in ["G 0", "F 1", "X 1"]:
        parsed = spot.formula(str(parse_ltl(text)))
        assert not [str(ap) for ap in spot.atomic_prop_collect(parsed)], text


def test_spec_props_out_of_order_and_quoted():
    # Variables follow the declaration order of the spec, not the sorted order.
    text = '''
spec order "declaration order"
props:
    wood "w"
    lava "l"
    "x y" "quoted"
rule r1 (semantics = finite): ltl G(lava -> X wood) & F "x y"
'''
    native = safeguards.compile(text)
    other = safeguards.compile(text, backend="spot")
    assert native.props == other.props == ("wood", "lava", "x y")
    assert same_language(native, other)
    text_inf = text.replace("semantics = finite", "semantics = infinite").replace(
        ' & F "x y"', "")
    assert same_language(safeguards.compile(text_inf), safeguards.compile(text_inf, backend="spot"))


def test_several_rules_with_spot():
    text = '''
spec two "two rules"
props:
    a "a"
    b "b"
rule r1 (semantics = finite): ltl G(a -> X b)
rule r2 (semantics = finite): ltl F a
rule r3: never a ; a
'''
    assert same_language(safeguards.compile(text), safeguards.compile(text, backend="spot"))


def test_language_difference_finds_a_difference():
    sg1 = safeguards.compile_ltl("G(a -> X b)")
    sg2 = safeguards.compile_ltl("G(a -> X[!] b)")
    trace, problem = language_difference(sg1, sg2)
    assert trace == [frozenset({"a"})] and ("acceptance" in problem or "verdict" in problem)
    assert same_language(sg1, safeguards.compile_ltl("G(a -> X b)", backend="spot"))


def test_proposition_named_alive():
    # spot.from_ltlf adds an `alive` proposition; the backend picks a fresh name instead.
    for text in ["G(alive -> X alive1)", "alive U b", "F alive & X[!] !alive"]:
        native = safeguards.compile_ltl(text)
        other = safeguards.compile_ltl(text, backend="spot")
        assert same_language(native, other), text
