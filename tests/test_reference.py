"""Sanity tests of the reference semantics in ``reference.py``, and cross-checks against Spot."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from reference import (
    FUTURE_ONLY_OPS, GUARANTEE_OPS, SAFETY_OPS, Trace, alphabet,
    earliest_satisfaction, earliest_violation, holds, holds_infinite_lasso, never_violation_step,
    random_formula, random_regex, random_trace, regex_matches,
)
from safeguards.spec.ast import (
    PAST_OPS, Binary, Concat, Const, Formula, Intersection, Letter, Prop, Regex, Repeat, Unary, Union,
    walk,
)
from safeguards.spec.parser import parse_ltl, parse_regex

PROPS = ("a", "b", "c")


def w(*steps: str) -> list[frozenset[str]]:
    """A trace written as one string of space-separated true propositions per step."""
    return [frozenset(step.split()) for step in steps]


# --------------------------------------------------------------------------------------------
# Hand-checked finite-trace semantics

FINITE_CASES = [
    # formula, trace, position, expected
    ("a", w("a"), 0, True),
    ("!a", w(""), 0, True),
    ("1", w(""), 0, True),
    ("0", w("a"), 0, False),
    ("a & b", w("a b"), 0, True),
    ("a | b", w(""), 0, False),
    ("a -> b", w(""), 0, True),
    ("a -> b", w("a"), 0, False),
    ("a <-> b", w(""), 0, True),
    ("a xor b", w("a b"), 0, False),
    ("a xor b", w("b"), 0, True),
    ("X a", w(""), 0, True),              # weak next at the last position
    ("X 0", w("a"), 0, True),
    ("X[!] a", w("a"), 0, False),         # strong next at the last position
    ("X[!] 1", w("a", ""), 1, False),
    ("X a", w("", ""), 0, False),
    ("X[!] a", w("", "a"), 0, True),
    ("F a", w("", "", "a"), 0, True),
    ("F a", w("a", ""), 1, False),
    ("G a", w("a", "a"), 0, True),
    ("G a", w("a", ""), 0, False),
    ("G X a", w("", "a"), 0, True),       # X a is true at the last position
    ("G X[!] 1", w("", ""), 0, False),    # X[!] 1 is false at the last position
    ("G F a", w("", "a"), 0, True),       # GF and FG both mean "a at the end"
    ("G F a", w("a", ""), 0, False),
    ("F G a", w("", "a"), 0, True),
    ("a U b", w("a", "a", "b"), 0, True),
    ("a U b", w("a", "a"), 0, False),     # strong until
    ("a U b", w("b"), 0, True),
    ("a U b", w("", "b"), 0, False),
    ("a W b", w("a", "a"), 0, True),      # weak until
    ("a W b", w("a", ""), 0, False),
    ("a R b", w("b", "b"), 0, True),
    ("a R b", w("b", "a b", ""), 0, True),
    ("a R b", w("b", "a", "b"), 0, False),
    ("a M b", w("b", "b"), 0, False),     # strong release
    ("a M b", w("b", "a b"), 0, True),
    ("Y a", w("a"), 0, False),            # strong yesterday at position 0
    ("Z a", w(""), 0, True),              # weak yesterday at position 0
    ("Y a", w("a", ""), 1, True),
    ("Z a", w("", "a"), 1, False),
    ("O a", w("a", "", ""), 2, True),
    ("O a", w("", "", "a"), 1, False),
    ("H a", w("a", ""), 1, False),
    ("H a", w("a", "a"), 1, True),
    ("a S b", w("b", "a", "a"), 2, True),
    ("a S b", w("b", "", "a"), 2, False),
    ("a S b", w("", "", "b"), 2, True),
    ("a S b", w("a", "a"), 1, False),
    ("G(a -> X[!] b)", w("a"), 0, False),
    ("G(a -> X[!] b)", w("a", "b"), 0, True),
    ("G(b -> O a)", w("", "b"), 0, False),
    ("G(b -> Y a)", w("a", "b", "b"), 0, False),
]


@pytest.mark.parametrize(("text", "trace", "i", "expected"), FINITE_CASES)
def test_finite_semantics(text: str, trace: Trace, i: int, expected: bool) -> None:
    assert holds(parse_ltl(text), trace, i) is expected


def test_empty_trace_is_rejected() -> None:
    with pytest.raises(ValueError):
        holds(parse_ltl("a"), [])


def test_dualities_on_random_traces() -> None:
    rng = random.Random(7)
    dual = [("a R b", "!(!a U !b)"), ("a W b", "(a U b) | G a"), ("a M b", "b U (a & b)"),
            ("X a", "!X[!]!a"), ("Z a", "!Y!a"), ("H a", "!O!a"), ("F a", "1 U a"),
            ("G a", "0 R a"), ("O a", "1 S a")]
    for _ in range(200):
        trace = random_trace(rng, PROPS, rng.randint(1, 6))
        i = rng.randrange(len(trace))
        for left, right in dual:
            assert holds(parse_ltl(left), trace, i) == holds(parse_ltl(right), trace, i)


def test_large_formulas_are_fast() -> None:
    rng = random.Random(3)
    for _ in range(20):
        formula = random_formula(rng, PROPS, 30, past=True)
        holds(formula, random_trace(rng, PROPS, 30))


# --------------------------------------------------------------------------------------------
# Lassos

LASSO_CASES = [
    # formula, prefix, loop, expected
    ("G F a", w(), w("a", ""), True),
    ("F G a", w(""), w("a"), True),
    ("F G a", w(), w("a", ""), False),
    ("a U b", w(), w("a"), False),
    ("a W b", w(), w("a"), True),
    ("a R b", w(), w("b"), True),
    ("a M b", w(), w("b"), False),
    ("X a", w(""), w("a"), True),
    ("X[!] a", w(), w("a"), True),          # no last position: X and X[!] coincide
    ("G(a -> X b)", w(), w("a", ""), False),
    ("G(a -> X b)", w(), w("a b"), True),
]


@pytest.mark.parametrize(("text", "prefix", "loop", "expected"), LASSO_CASES)
def test_lasso_semantics(text: str, prefix: Trace, loop: Trace, expected: bool) -> None:
    assert holds_infinite_lasso(parse_ltl(text), prefix, loop) is expected


def test_lasso_positions_wrap() -> None:
    formula = parse_ltl("a")
    assert holds_infinite_lasso(formula, w(""), w("a", ""), 3)
    assert not holds_infinite_lasso(formula, w(""), w("a", ""), 4)


# --------------------------------------------------------------------------------------------
# Regular expressions

REGEX_CASES = [
    ("a ; b", w("a", "b"), True),
    ("a ; b", w("a"), False),
    ("a ; b", w("a", "b", "b"), False),
    ("a | b", w("b"), True),
    ("a & !b", w("a b"), False),
    ("a[*2..3]", w("a", "a"), True),
    ("a[*2..3]", w("a", "a", "a"), True),
    ("a[*2..3]", w("a"), False),
    ("a[*2..3]", w("a", "a", "a", "a"), False),
    ("a[*2..]", w("a", "a", "a", "a"), True),
    ("a[*]", w(), True),
    ("a[+]", w(), False),
    ("a[*0]", w(), True),
    ("a[*0]", w("a"), False),
    ("{a ; b}[*2]", w("a", "b", "a", "b"), True),
    ("{a ; b}[*2]", w("a", "b"), False),
    ("{a[*0..1]}[*3..]", w(), True),
    ("{a[*0..1]}[*2]", w("a", "a", "a"), False),
    ("{a[*] ; b} && {1 ; 1}", w("a", "b"), True),
    ("{a[*] ; b} && {1 ; 1}", w("a", "a", "b"), False),
    ("{a | b}[*] && {1 ; b}[*]", w("a", "b", "b", "b"), True),
]


@pytest.mark.parametrize(("text", "trace", "expected"), REGEX_CASES)
def test_regex_matches(text: str, trace: Trace, expected: bool) -> None:
    assert regex_matches(parse_regex(text), trace) is expected


def test_never_violation_step() -> None:
    assert never_violation_step(parse_regex("a ; b"), w("", "a", "b", "")) == 2
    assert never_violation_step(parse_regex("a[*]"), w("", "a")) == 1   # empty segments don't count
    assert never_violation_step(parse_regex("a ; b"), w("b", "a", "a")) is None
    assert never_violation_step(parse_regex("{a ; 1[*] ; b} && 1[*3]"), w("a", "b", "a", "c", "b")) == 4


def _regex_nodes(regex: Regex) -> list[Regex]:
    children = {Concat: ("left", "right"), Union: ("left", "right"),
                Intersection: ("left", "right"), Repeat: ("body",)}.get(type(regex), ())
    return [regex] + [node for name in children for node in _regex_nodes(getattr(regex, name))]


def _to_python_re(regex: Regex, letters: list[frozenset[str]]) -> str:
    """The regex over one character per valuation (intersection is not supported)."""
    if isinstance(regex, Letter):
        chars = "".join(str(k) for k, letter in enumerate(letters) if holds(regex.guard, [letter]))
        return f"[{chars}]" if chars else "(?!)"
    if isinstance(regex, Concat):
        return _to_python_re(regex.left, letters) + _to_python_re(regex.right, letters)
    if isinstance(regex, Union):
        return f"(?:{_to_python_re(regex.left, letters)}|{_to_python_re(regex.right, letters)})"
    assert isinstance(regex, Repeat)
    high = "" if regex.high is None else regex.high
    return f"(?:{_to_python_re(regex.body, letters)}){{{regex.low},{high}}}"


def test_regex_against_python_re() -> None:
    rng = random.Random(11)
    props = ("a", "b")
    letters = [frozenset(p for p, bit in zip(props, bits) if bit)
               for bits in itertools.product((False, True), repeat=2)]
    checked = 0
    while checked < 300:
        regex = random_regex(rng, props, rng.randint(0, 6))
        if any(isinstance(node, Intersection) for node in _regex_nodes(regex)):
            continue
        pattern = re.compile(_to_python_re(regex, letters))
        for _ in range(5):
            trace = [rng.choice(letters) for _ in range(rng.randint(0, 6))]
            text = "".join(str(letters.index(step)) for step in trace)
            assert regex_matches(regex, trace) == bool(pattern.fullmatch(text)), (regex, trace)
        checked += 1


def test_never_violation_step_against_segments() -> None:
    rng = random.Random(5)
    for _ in range(200):
        regex = random_regex(rng, ("a", "b"), rng.randint(0, 5))
        trace = random_trace(rng, ("a", "b"), rng.randint(0, 6))
        expected = next((t for t in range(len(trace)) for s in range(t + 1)
                         if regex_matches(regex, trace[s:t + 1])), None)
        assert never_violation_step(regex, trace) == expected


# --------------------------------------------------------------------------------------------
# Bad and good prefixes

PREFIX_CASES = [
    # formula, trace, earliest violation, earliest satisfaction
    ("G !a", w("", "", "a", ""), 2, None),
    ("F a", w("", "", ""), None, None),
    ("F a", w("", "a", ""), None, 1),
    ("a U b", w("a", "", "b"), 1, None),
    ("a U b", w("a", "b"), None, 1),
    ("X[!] a", w("", ""), 1, None),
    ("X[!] a", w("", "a"), None, 1),
    ("X a", w(""), None, None),
    ("G X[!] 1", w(""), 0, None),           # unsatisfiable on finite traces
    ("F a & G !a", w("", ""), 0, None),
    ("G(b -> O a)", w("", "b"), 1, None),
    ("G(a -> Y b)", w("b", "a", "a"), 2, None),
    ("F(a & Y b)", w("b", "a"), None, 1),
    ("Y F a", w("a"), 0, None),             # past over future
    ("G(b -> O X[!] a)", w("b"), None, None),
    ("G(b -> O X[!] a)", w("b", "", ""), 1, None),
    ("H(X a) & F b", w("", "a"), None, None),
    ("H(X a) & F b", w("", "a b"), None, 1),
    ("X[!]X[!]X[!]X[!]X[!]X[!]X[!] a", w(""), None, None),
]


@pytest.mark.parametrize(("text", "trace", "violation", "satisfaction"), PREFIX_CASES)
def test_prefixes(text: str, trace: Trace, violation: int | None,
                  satisfaction: int | None) -> None:
    formula = parse_ltl(text)
    assert earliest_violation(formula, trace) == violation
    assert earliest_satisfaction(formula, trace) == satisfaction


def test_explicit_horizon_is_a_bound() -> None:
    formula = parse_ltl("X[!]X[!]X[!]X[!]X[!]X[!]X[!] a")
    assert earliest_violation(formula, w(""), horizon=5) == 0
    assert earliest_violation(formula, w(""), horizon=7) is None


def _brute_earliest_violation(formula: Formula, trace: Trace, horizon: int) -> int | None:
    letters = alphabet(formula)
    for t in range(len(trace)):
        prefix = list(trace[:t + 1])
        if not any(holds(formula, prefix + list(extension))
                   for length in range(horizon + 1)
                   for extension in itertools.product(letters, repeat=length)):
            return t
    return None


def test_prefix_search_equals_enumeration() -> None:
    """The tail/head search agrees with enumerating every extension up to the horizon."""
    rng = random.Random(13)
    for n in range(180):
        props = PROPS if n % 6 == 0 else ("a", "b")
        formula = random_formula(rng, props, rng.randint(1, 4), past=n % 2 == 1)
        trace = random_trace(rng, props, rng.randint(1, 4))
        for horizon in ((1, 2) if len(props) == 3 else (1, 3)):
            expected = _brute_earliest_violation(formula, trace, horizon)
            assert earliest_violation(formula, trace, horizon) == expected, (str(formula), trace)


def test_exact_search_agrees_with_long_horizon() -> None:
    rng = random.Random(17)
    for n in range(100):
        formula = random_formula(rng, ("a", "b"), rng.randint(1, 3), past=n % 2 == 1)
        trace = random_trace(rng, ("a", "b"), rng.randint(1, 5))
        exact = earliest_violation(formula, trace)
        assert exact == earliest_violation(formula, trace, horizon=6), str(formula)


# --------------------------------------------------------------------------------------------
# Generators


def test_random_formula_respects_size_and_ops() -> None:
    rng = random.Random(1)
    for ops in (FUTURE_ONLY_OPS, SAFETY_OPS, GUARANTEE_OPS):
        for size in range(8):
            formula = random_formula(rng, PROPS, size, ops=ops)
            operators = [node.op for node in walk(formula) if isinstance(node, (Unary, Binary))]
            drawn = [op for op in operators if op in ops]
            assert len(drawn) == size
            assert set(operators) <= set(ops) | {"!"}
            if "!" not in ops:
                assert all(isinstance(node.arg, Prop) for node in walk(formula)
                           if isinstance(node, Unary) and node.op == "!")
    assert any(isinstance(node, (Unary, Binary)) and node.op in PAST_OPS
               for _ in range(20) for node in walk(random_formula(rng, PROPS, 6, past=True)))


def test_generators_are_deterministic() -> None:
    def sample(seed: int) -> tuple[str, list[frozenset[str]], Regex]:
        rng = random.Random(seed)
        return (str(random_formula(rng, PROPS, 6, past=True)), random_trace(rng, PROPS, 5),
                random_regex(rng, PROPS, 4))

    assert sample(42) == sample(42)


# --------------------------------------------------------------------------------------------
# Cross-checks against Spot


class _SpotNFA:
    """Spot's finite automaton of an LTLf formula, simulated as an NFA over valuations."""

    def __init__(self, spot, formula: Formula) -> None:
        ltl = spot.from_ltlf(spot.formula(str(formula)))
        self.aut = spot.to_finite(spot.translate(ltl, "buchi", "sbacc"))
        self.edges = {state: [(edge.dst, parse_ltl(str(spot.bdd_to_formula(edge.cond,
                                                                            self.aut.get_dict()))))
                              for edge in self.aut.out(state)]
                      for state in range(self.aut.num_states())}

    def run(self, trace: Trace) -> set[int]:
        states = {self.aut.get_init_state_number()}
        for valuation in trace:
            states = {dst for state in states for dst, guard in self.edges[state]
                      if holds(guard, [valuation])}
        return states

    def accepts(self, trace: Trace) -> bool:
        return any(self.aut.state_is_accepting(state) for state in self.run(trace))

    def can_accept(self, trace: Trace) -> bool:
        """Can some extension of ``trace`` (itself included) be accepted?"""
        seen, todo = set(), list(self.run(trace))
        while todo:
            state = todo.pop()
            if state not in seen:
                seen.add(state)
                todo += [dst for dst, guard in self.edges[state] if guard != Const(False)]
        return any(self.aut.state_is_accepting(state) for state in seen)


def test_finite_semantics_against_spot() -> None:
    spot = pytest.importorskip("spot")
    rng = random.Random(2024)
    for _ in range(100):
        formula = random_formula(rng, PROPS, rng.randint(1, 6))
        nfa = _SpotNFA(spot, formula)
        for _ in range(4):
            trace = random_trace(rng, PROPS, rng.randint(1, 6))
            assert holds(formula, trace) == nfa.accepts(trace), (str(formula), trace)


def test_prefixes_against_spot() -> None:
    spot = pytest.importorskip("spot")
    rng = random.Random(31)
    for _ in range(100):
        formula = random_formula(rng, PROPS, rng.randint(1, 5))
        good, bad = _SpotNFA(spot, Unary("!", formula)), _SpotNFA(spot, formula)
        trace = random_trace(rng, PROPS, 8)
        expected = [next((t for t in range(len(trace)) if not nfa.can_accept(trace[:t + 1])), None)
                    for nfa in (bad, good)]
        actual = [earliest_violation(formula, trace), earliest_satisfaction(formula, trace)]
        assert actual == expected, str(formula)


def _spot_word(trace: Trace) -> str:
    return "; ".join(" & ".join(p if p in step else f"!{p}" for p in PROPS) for step in trace)


def test_lasso_semantics_against_spot() -> None:
    spot = pytest.importorskip("spot")
    rng = random.Random(99)
    for _ in range(100):
        formula = random_formula(rng, PROPS, rng.randint(1, 6))
        aut = spot.translate(spot.formula(str(formula)))
        for _ in range(3):
            prefix = random_trace(rng, PROPS, rng.randint(0, 3))
            loop = random_trace(rng, PROPS, rng.randint(1, 3))
            text = (f"{_spot_word(prefix)}; " if prefix else "") + f"cycle{{{_spot_word(loop)}}}"
            accepted = aut.intersects(spot.parse_word(text).as_automaton())
            assert holds_infinite_lasso(formula, prefix, loop) == accepted, (str(formula), text)
