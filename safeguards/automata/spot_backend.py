"""The Spot backend: LTL rules translated by Spot, turned into our deterministic automata.

* Finite semantics (LTLf): ``spot.from_ltlf`` then ``spot.translate(…, "buchi", "sbacc")`` and
  ``spot.to_finite`` give a (possibly nondeterministic) automaton over finite words; we determinise
  it here by the subset construction, all valuations at once in our decision diagrams.  A subset
  accepts when it holds an accepting Spot state; the initial state (the empty trace) is judged as
  the native compiler does (weak operators hold on the empty trace, strong ones do not).
* Infinite semantics (LTL3): Spot's deterministic *monitors* of the formula and of its negation.
  A monitor keeps exactly the prefixes that some infinite word of the language extends, so a run
  that leaves the live (accepting) states of the formula's monitor is ``violated``, one that
  leaves those of the negation's monitor is ``satisfied``, anything else ``inconclusive``.  The
  product of the two monitors is explored here; this is exact for every LTL formula, including
  those that are neither safety nor guarantee formulas (``GF a`` is always inconclusive).

Spot does not support the past operators ``Y Z O H S``; rules using them need the native backend.

>>> from safeguards.spec.parser import parse_ltl
>>> from safeguards.automata.build import RuleInfo
>>> from safeguards.spec import ast
>>> rule = ast.Rule("r", "ltl", parse_ltl("F a"))
>>> aut = spot_rule(MTBDD(1), rule, RuleInfo("r", "ltl", "finite", 1.0, "F a"), ["a"])  # doctest: +SKIP
>>> aut.accepting                                                                 # doctest: +SKIP
[False, False, True]
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping, Sequence, cast

from safeguards.automata.analysis import Verdict
from safeguards.automata.ltl import _Progression
from safeguards.automata.budget import check_time
from safeguards.automata.mtbdd import MTBDD
from safeguards.automata.raw import RawAutomaton, explore
from safeguards.errors import BackendUnavailable, SpecError
from safeguards.spec import ast
from safeguards.spec.printer import to_spot

__all__ = ["spot_rule", "import_spot"]

INSTALL_HINT = "pip install 'safeguards[spot]'"
#: ``spot.translate`` options for the LTLf automaton (determinised here if Spot's is not).
FINITE_OPTIONS: tuple[str, ...] = ("buchi", "sbacc", "deterministic")
_EMPTY: frozenset[int] = frozenset()


def import_spot() -> Any:
    """The ``spot`` module, or :class:`~safeguards.errors.BackendUnavailable`."""
    try:
        import spot
    except ImportError as error:
        raise BackendUnavailable(
            f"the Spot backend needs Spot's Python bindings ({error}); install them with "
            f"{INSTALL_HINT} (the `spottl` wheel) or `conda install -c conda-forge spot`, "
            "or use the native backend") from None
    return spot


def _union(x: frozenset[int], y: frozenset[int]) -> frozenset[int]:
    return x | y if y else x


def _check_future(rule: ast.Rule, formula: ast.Formula) -> None:
    for node in ast.walk(formula):
        if isinstance(node, (ast.Unary, ast.Binary)) and node.op in ast.PAST_OPS:
            pos = node.pos or rule.pos
            raise SpecError(
                f"rule `{rule.name}`: the Spot backend does not support the past operator "
                f"`{node.op}`", line=pos.line if pos else None,
                column=pos.column if pos else None, file=pos.file if pos else None,
                hint="use the native backend (backend=\"native\", the default), which supports "
                     "past operators Y Z O H S")


def _fresh_name(base: str, taken: Mapping[str, int]) -> str:
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}{k}"
    return name


class _SpotAutomaton:
    """Per-state transition diagrams (valuation -> frozenset of live Spot successors)."""

    def __init__(self, spot: Any, m: MTBDD, aut: Any, index: Mapping[str, int],
                 live: Callable[[int], bool]) -> None:
        import buddy

        self.m = m
        self.aut = aut
        self.live = live
        self.init = aut.get_init_state_number()
        self._buddy = buddy
        self._var_index: dict[int, int] = {}
        for ap in aut.ap():
            name = ap.ap_name()
            if name not in index:
                raise SpecError(f"Spot's automaton mentions an unknown proposition `{name}`")
            self._var_index[aut.register_ap(ap)] = index[name]
        self._bdd_memo: dict[int, int] = {}
        self._state_memo: dict[int, int] = {}
        self._set_memo: dict[frozenset[int], int] = {}

    def guard(self, cond: Any) -> int:
        """Our Boolean diagram of a Spot (BuDDy) edge condition."""
        key = cond.id()
        hit = self._bdd_memo.get(key)
        if hit is not None:
            return hit
        m, buddy = self.m, self._buddy
        if cond == buddy.bddtrue:
            result = m.true
        elif cond == buddy.bddfalse:
            result = m.false
        else:
            var = m.var(self._var_index[buddy.bdd_var(cond)])
            result = m.ite(var, self.guard(buddy.bdd_high(cond)), self.guard(buddy.bdd_low(cond)))
        self._bdd_memo[key] = result
        return result

    def state_diagram(self, s: int) -> int:
        hit = self._state_memo.get(s)
        if hit is not None:
            return hit
        m = self.m
        result = m.terminal(_EMPTY)
        for edge in self.aut.out(s):
            if self.live(edge.dst):
                step = m.ite(self.guard(edge.cond), m.terminal(frozenset({edge.dst})),
                             m.terminal(_EMPTY))
                result = m.apply(_union, result, step)
        self._state_memo[s] = result
        return result

    def set_diagram(self, states: frozenset[int]) -> int:
        hit = self._set_memo.get(states)
        if hit is not None:
            return hit
        m = self.m
        result = m.terminal(_EMPTY)
        for s in sorted(states):
            result = m.apply(_union, result, self.state_diagram(s))
        self._set_memo[states] = result
        return result

    def start(self) -> frozenset[int]:
        return frozenset({self.init}) if self.live(self.init) else _EMPTY


def _spot_formula(spot: Any, formula: ast.Formula) -> Any:
    text = to_spot(formula)
    try:
        return spot.formula(text)
    except SyntaxError as error:  # pragma: no cover - to_spot writes Spot's syntax
        raise SpecError(f"Spot cannot parse `{text}`: {error}") from None


def spot_rule(m: MTBDD, rule: ast.Rule, info: Any, props: Sequence[str]) -> RawAutomaton:
    """The raw deterministic automaton of an LTL rule, built with Spot.

    ``m``'s variables are the spec's propositions ``props`` in declaration order.  Finite
    semantics gives ``accepting`` (the rule's acceptance of a finished trace); infinite semantics
    gives ``verdicts`` (LTL3).  State 0 is the initial state, before any step.
    """
    spot = import_spot()
    formula = rule.body
    assert isinstance(formula, ast.Formula)
    _check_future(rule, formula)
    index = _variable_index(m, formula, props)
    if info.semantics == "finite":
        return _finite(spot, m, formula, index)
    return _infinite(spot, m, formula, index)


def _variable_index(m: MTBDD, formula: ast.Formula, props: Sequence[str]) -> dict[str, int]:
    """Proposition name -> variable of ``m`` (the spec's propositions in declaration order)."""
    if len(props) != m.n_vars or not ast.props_of(formula) <= set(props):
        raise ValueError(f"props {list(props)} do not match the {m.n_vars} variables or the "
                         f"propositions of the formula")
    return {p: i for i, p in enumerate(props)}


def _finite(spot: Any, m: MTBDD, formula: ast.Formula, index: Mapping[str, int]) -> RawAutomaton:
    alive = _fresh_name("alive", index)
    f = spot.from_ltlf(_spot_formula(spot, formula), alive)
    aut = spot.to_finite(spot.translate(f, *FINITE_OPTIONS), alive)
    check_time()   # a Spot call itself cannot be interrupted: the budget is checked after it
    if not aut.prop_state_acc().is_true():   # state_is_accepting needs state-based acceptance
        aut = spot.sbacc(aut)
    sp = _SpotAutomaton(spot, m, aut, index, lambda s: True)
    accepting_states = {s for s in range(aut.num_states()) if aut.state_is_accepting(s)}
    prog = _Progression(m, index)
    empty_ok = prog.empty_accepts(prog.nnf(formula))
    start = ("initial", sp.start())

    def successors(state: Hashable) -> int:
        subset = state[1] if state == start else state  # type: ignore[index]
        return sp.set_diagram(subset)  # type: ignore[arg-type]

    def accepting(state: Hashable) -> bool:
        if state == start:
            return empty_ok
        return not accepting_states.isdisjoint(state)  # type: ignore[arg-type]

    def dead(state: Hashable) -> bool:
        return state == _EMPTY

    return explore(m, start, successors, accepting, dead)


def _infinite(spot: Any, m: MTBDD, formula: ast.Formula, index: Mapping[str, int]) -> RawAutomaton:
    f = _spot_formula(spot, formula)
    monitors = []
    for g in (f, spot.formula.Not(f)):
        aut = spot.translate(g, "monitor", "det", "complete")
        check_time()
        # In a monitor every state is accepting but the sink that 'complete' adds: a run in the
        # sink read a prefix that no word of the language extends.
        live = [aut.state_is_accepting(s) for s in range(aut.num_states())]
        monitors.append(_SpotAutomaton(spot, m, aut, index, live.__getitem__))
    pos, neg = monitors

    def successors(state: tuple[frozenset[int], frozenset[int]]) -> int:
        s1, s2 = state
        return m.pair(pos.set_diagram(s1), neg.set_diagram(s2))

    raw = explore(m, (pos.start(), neg.start()), successors, lambda state: True)
    verdicts = [Verdict.VIOLATED if not s1 else Verdict.SATISFIED if not s2
                else Verdict.INCONCLUSIVE
                for s1, s2 in cast(Sequence[tuple[frozenset[int], frozenset[int]]], raw.keys)]
    raw.verdicts = verdicts
    raw.accepting = [v != Verdict.VIOLATED for v in verdicts]
    raw.dead = [v == Verdict.VIOLATED for v in verdicts]
    return raw
