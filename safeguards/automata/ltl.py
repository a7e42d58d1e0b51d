"""LTL to deterministic automata by formula progression, exact for finite traces (LTLf).

A state is a Boolean combination (a canonical DNF) of *obligations* on the rest of the trace:
``W(f)`` — "the rest is empty or ``f`` holds at its first step" (from the weak next ``X``) — and
``S(f)`` — "the rest is non-empty and ``f`` holds at its first step" (strong next ``X[!]``, and the
pending eventualities of ``F U M``).  Reading one valuation progresses every obligation through
the expansion laws (``a U b = b | (a & X[!](a U b))`` …); the successor of every state is computed
for all valuations at once as a multi-terminal decision diagram, so the alphabet is split only
where the formula looks.  A state accepts the trace ending there iff some DNF clause has no strong
obligation.  Past operators (``Y Z O H S``) are evaluated from a memory of their values at the
previous step, carried in the state.

Infinite-trace semantics uses the same progression; :func:`fragment` tells whether the formula is
a syntactic safety or guarantee formula, for which the verdicts computed by
:mod:`safeguards.automata.build` are exact.

>>> from safeguards.spec.parser import parse_ltl
>>> aut = progression_automaton(MTBDD(1), parse_ltl("F a"), {"a": 0})
>>> len(aut.trans), aut.accepting
(3, [False, False, True])
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Hashable, Mapping

from safeguards.automata.budget import check_time, exceeded
from safeguards.automata.guards import guard_to_bdd
from safeguards.automata.mtbdd import MTBDD
from safeguards.automata.raw import RawAutomaton, explore
from safeguards.errors import SpecError
from safeguards.spec import ast

__all__ = ["progression_automaton", "fragment", "negate"]

MAX_CLAUSES = 2_000  # per DNF: beyond this a state is too large to monitor explicitly
DNF = frozenset  # frozenset[frozenset[int]]; an atom is 2 * formula_id + (1 if strong else 0)
TRUE_DNF: DNF = frozenset({frozenset()})
FALSE_DNF: DNF = frozenset()

# Kinds of the interned negation-normal-form nodes.
_TRUE, _FALSE, _LIT, _PAST, _AND, _OR, _X, _XS, _U, _R, _W, _M, _F, _G = range(14)


MAX_WORK = 100_000_000  # clause comparisons per compiled formula (about 15 s here)
_work: ContextVar[list[int]] = ContextVar("progression_work")


def _too_large(what: str) -> SpecError:
    return exceeded(f"the formula is too large for an explicit monitor ({what})")


def _charge(amount: int) -> None:
    """Count clause work against the budget of the formula being compiled (and its time)."""
    counter = _work.get(None)
    if counter is not None:
        counter[0] += amount
        check_time()
        if counter[0] > MAX_WORK:
            raise _too_large(f"more than {MAX_WORK:,} clause comparisons")


def _minimise_clauses(clauses: set[frozenset[int]]) -> DNF:
    """Drop clauses that contain another clause (absorption); canonical result."""
    if len(clauses) > MAX_CLAUSES:
        raise _too_large(f"a state with more than {MAX_CLAUSES:,} clauses")
    _charge(len(clauses) * len(clauses) // 2 + 1)
    ordered = sorted(clauses, key=len)
    kept: list[frozenset[int]] = []
    for clause in ordered:
        if not any(k <= clause for k in kept):
            kept.append(clause)
    return frozenset(kept)


def dnf_or(a: DNF, b: DNF) -> DNF:
    if not a or b == TRUE_DNF:
        return b
    if not b or a == TRUE_DNF:
        return a
    return _minimise_clauses(set(a) | set(b))


def _strengthen(clause: frozenset[int]) -> frozenset[int]:
    """``W(f) & S(f)`` is ``S(f)``."""
    weak = [atom for atom in clause if not atom & 1 and atom | 1 in clause]
    return clause.difference(weak) if weak else clause


def dnf_and(a: DNF, b: DNF) -> DNF:
    if not a or not b:
        return FALSE_DNF
    if a == TRUE_DNF:
        return b
    if b == TRUE_DNF:
        return a
    if len(a) * len(b) > MAX_CLAUSES:
        raise _too_large(f"a state with more than {MAX_CLAUSES:,} clauses")
    return _minimise_clauses({_strengthen(x | y) for x in a for y in b})


def _dnf_of_bool(value: bool) -> DNF:
    return TRUE_DNF if value else FALSE_DNF


def _append(t: tuple[bool, ...], value: bool) -> tuple[bool, ...]:
    return t + (value,)


@dataclass(frozen=True)
class _Node:
    kind: int
    args: tuple[int, ...]


class _Progression:
    """Interns NNF nodes and computes one-step expansions as decision diagrams."""

    def __init__(self, m: MTBDD, index: Mapping[str, int]) -> None:
        self.m = m
        self.index = index
        self.nodes: list[_Node] = []
        self.ids: dict[_Node, int] = {}
        self.past_nodes: list[ast.Formula] = []       # Y Z O H S nodes, children first
        self.past_ids: dict[ast.Formula, int] = {}
        self.past_atoms: list[ast.Formula] = []       # maximal pure-past subformulas
        self.past_atom_ids: dict[ast.Formula, int] = {}
        self.now_cache: dict[tuple[int, tuple[bool, ...] | None], int] = {}
        # By id of the (immutable, kept alive) formula: expansions of -> <-> xor share operands.
        self.nnf_cache: dict[tuple[int, bool], tuple[ast.Formula, int]] = {}
        self.classes: dict[int, tuple[ast.Formula, bool, bool]] = {}
        self.past_cache: dict[tuple[ast.Formula, tuple[bool, ...] | None], int] = {}

    # -- interning -----------------------------------------------------------------------------
    def mk(self, kind: int, *args: int) -> int:
        if kind in (_AND, _OR):
            absorbing, neutral = (_FALSE, _TRUE) if kind == _AND else (_TRUE, _FALSE)
            flat: set[int] = set()
            for arg in args:
                node = self.nodes[arg]
                if node.kind == absorbing:
                    return self.mk(absorbing)
                if node.kind == kind:
                    flat.update(node.args)
                elif node.kind != neutral:
                    flat.add(arg)
            if not flat:
                return self.mk(neutral)
            if len(flat) == 1:
                return flat.pop()
            args = tuple(sorted(flat))
        key = _Node(kind, args)
        found = self.ids.get(key)
        if found is None:
            found = len(self.nodes)
            self.nodes.append(key)
            self.ids[key] = found
        return found

    def _classify(self, f: ast.Formula) -> tuple[bool, bool]:
        """``(is_pure_past(f), is_boolean(f))``, memoised."""
        hit = self.classes.get(id(f))
        if hit is not None:
            return hit[1], hit[2]
        past, boolean = True, True
        if isinstance(f, (ast.Unary, ast.Binary)):
            past, boolean = f.op not in ast.FUTURE_OPS, f.op in ast.BOOLEAN_OPS
            for child in ([f.arg] if isinstance(f, ast.Unary) else [f.left, f.right]):
                child_past, child_boolean = self._classify(child)
                past, boolean = past and child_past, boolean and child_boolean
        self.classes[id(f)] = (f, past, boolean)
        return past, boolean

    def nnf(self, f: ast.Formula, negated: bool = False) -> int:
        """Negation normal form; maximal subformulas with a past operator become past atoms."""
        hit = self.nnf_cache.get((id(f), negated))
        if hit is None:
            hit = self.nnf_cache[id(f), negated] = (f, self._nnf(f, negated))
        return hit[1]

    def _nnf(self, f: ast.Formula, negated: bool) -> int:
        past, boolean = self._classify(f)
        if past and not boolean:
            self._register_past(f)
            atom = self.past_atom_ids.setdefault(f, len(self.past_atoms))
            if atom == len(self.past_atoms):
                self.past_atoms.append(f)
            return self.mk(_PAST, atom, 0 if negated else 1)
        if isinstance(f, ast.Const):
            return self.mk(_TRUE if f.value != negated else _FALSE)
        if isinstance(f, ast.Prop):
            return self.mk(_LIT, self.index[f.name], 0 if negated else 1)
        if isinstance(f, ast.Unary):
            op, a = f.op, f.arg
            if op == "!":
                return self.nnf(a, not negated)
            if op in ("X", "X[!]"):
                strong = (op == "X[!]") != negated
                return self.mk(_XS if strong else _X, self.nnf(a, negated))
            if op == "F":
                return self.mk(_G if negated else _F, self.nnf(a, negated))
            if op == "G":
                return self.mk(_F if negated else _G, self.nnf(a, negated))
            raise SpecError(f"past operator `{op}` is applied to a formula with future operators",
                            line=f.pos.line if f.pos else None,
                            column=f.pos.column if f.pos else None,
                            file=f.pos.file if f.pos else None,
                            hint="the arguments of Y Z O H S must be pure past formulas")
        assert isinstance(f, ast.Binary)
        op = f.op
        if op in ("&", "|"):
            kind = _AND if (op == "&") != negated else _OR
            return self.mk(kind, self.nnf(f.left, negated), self.nnf(f.right, negated))
        if op == "->":
            return self.nnf(ast.Binary("|", ast.Unary("!", f.left), f.right), negated)
        if op in ("<->", "xor"):
            same = (op == "<->") != negated
            left, right = f.left, f.right
            if same:
                both = ast.Binary("&", left, right)
                neither = ast.Binary("&", ast.Unary("!", left), ast.Unary("!", right))
            else:
                both = ast.Binary("&", left, ast.Unary("!", right))
                neither = ast.Binary("&", ast.Unary("!", left), right)
            return self.nnf(ast.Binary("|", both, neither))
        if op == "S":
            raise SpecError("`S` (since) is applied to a formula with future operators",
                            line=f.pos.line if f.pos else None,
                            column=f.pos.column if f.pos else None,
                            hint="the arguments of Y Z O H S must be pure past formulas")
        dual = {"U": "R", "R": "U", "W": "M", "M": "W"}
        kinds = {"U": _U, "R": _R, "W": _W, "M": _M}
        return self.mk(kinds[dual[op] if negated else op], self.nnf(f.left, negated),
                       self.nnf(f.right, negated))

    def _register_past(self, f: ast.Formula) -> None:
        for child in ([f.arg] if isinstance(f, ast.Unary) else
                      [f.left, f.right] if isinstance(f, ast.Binary) else []):
            self._register_past(child)
        if isinstance(f, (ast.Unary, ast.Binary)) and f.op in ast.PAST_OPS \
                and f not in self.past_ids:
            self.past_ids[f] = len(self.past_nodes)
            self.past_nodes.append(f)

    # -- past memory ---------------------------------------------------------------------------
    def past_value(self, f: ast.Formula, mem: tuple[bool, ...] | None) -> int:
        """Boolean diagram of a pure-past formula at the current step, given the memory."""
        key = (f, mem)
        hit = self.past_cache.get(key)
        if hit is not None:
            return hit
        m = self.m
        if isinstance(f, (ast.Const, ast.Prop)) or (isinstance(f, (ast.Unary, ast.Binary))
                                                   and f.op in ast.BOOLEAN_OPS):
            if isinstance(f, (ast.Const, ast.Prop)):
                result = guard_to_bdd(m, f, self.index)
            elif isinstance(f, ast.Unary):
                result = m.bool_not(self.past_value(f.arg, mem))
            else:
                result = self.m.boolean(f.op, self.past_value(f.left, mem),
                                       self.past_value(f.right, mem))
        else:
            previous = None if mem is None else mem[self.past_ids[f]]
            if isinstance(f, ast.Unary) and f.op == "Y":
                result = m.true if previous else m.false
            elif isinstance(f, ast.Unary) and f.op == "Z":
                result = m.true if previous is None or previous else m.false
            elif isinstance(f, ast.Unary) and f.op == "O":
                result = m.true if previous else self.past_value(f.arg, mem)
            elif isinstance(f, ast.Unary) and f.op == "H":
                result = m.false if previous is False else self.past_value(f.arg, mem)
            else:
                assert isinstance(f, ast.Binary) and f.op == "S"
                right = self.past_value(f.right, mem)
                left = self.past_value(f.left, mem)
                result = m.bool_or(right, m.bool_and(left, m.true if previous else m.false))
        self.past_cache[key] = result
        return result

    def next_memory(self, mem: tuple[bool, ...] | None) -> int:
        """Diagram of the memory after this step: for Y/Z the argument's value, else the node's."""
        m = self.m
        result = m.terminal(())
        for node in self.past_nodes:
            if isinstance(node, ast.Unary) and node.op in ("Y", "Z"):
                value = self.past_value(node.arg, mem)
            else:
                value = self.past_value(node, mem)
            result = m.apply(_append, result, value)
        return result

    # -- one-step expansion --------------------------------------------------------------------
    def now(self, f: int, mem: tuple[bool, ...] | None) -> int:
        """Diagram: valuation of this step -> DNF of obligations on the rest of the trace."""
        key = (f, mem)
        hit = self.now_cache.get(key)
        if hit is not None:
            return hit
        m = self.m
        node = self.nodes[f]
        kind, args = node.kind, node.args
        if kind == _TRUE:
            result = m.terminal(TRUE_DNF)
        elif kind == _FALSE:
            result = m.terminal(FALSE_DNF)
        elif kind == _LIT:
            result = m.node(args[0], m.terminal(_dnf_of_bool(not args[1])),
                            m.terminal(_dnf_of_bool(bool(args[1]))))
        elif kind == _PAST:
            value = self.past_value(self.past_atoms[args[0]], mem)
            result = m.map(_dnf_of_bool if args[1] else _dnf_of_not, value)
        elif kind in (_AND, _OR):
            op = dnf_and if kind == _AND else dnf_or
            result = self.now(args[0], mem)
            for arg in args[1:]:
                result = m.apply(op, result, self.now(arg, mem))
        elif kind in (_X, _XS):
            result = m.terminal(frozenset({frozenset({2 * args[0] + (kind == _XS)})}))
        else:
            again = m.terminal(frozenset({frozenset({2 * f + (kind in (_U, _M, _F))})}))
            if kind in (_F, _G):
                a = self.now(args[0], mem)
                result = m.apply(dnf_or if kind == _F else dnf_and, a, again)
            else:
                a, b = self.now(args[0], mem), self.now(args[1], mem)
                if kind in (_U, _W):      # b | (a & X(f))
                    result = m.apply(dnf_or, b, m.apply(dnf_and, a, again))
                else:                     # R, M: b & (a | X(f))
                    result = m.apply(dnf_and, b, m.apply(dnf_or, a, again))
        self.now_cache[key] = result
        return result

    def successors(self, state: tuple[DNF, tuple[bool, ...] | None]) -> int:
        dnf, mem = state
        m = self.m
        result = m.terminal(FALSE_DNF)
        for clause in dnf:
            part = m.terminal(TRUE_DNF)
            for atom in clause:
                part = m.apply(dnf_and, part, self.now(atom >> 1, mem))
            result = m.apply(dnf_or, result, part)
        if not self.past_nodes:
            return m.map(_with_no_memory, result)
        return m.pair(result, self.next_memory(mem))

    def empty_accepts(self, f: int) -> bool:
        """Does the empty trace satisfy ``f``?  Weak operators hold, strong ones and literals fail."""
        node = self.nodes[f]
        if node.kind in (_AND, _OR):
            values = [self.empty_accepts(a) for a in node.args]
            return all(values) if node.kind == _AND else any(values)
        return node.kind in (_TRUE, _X, _G, _R, _W)


def _dnf_of_not(value: bool) -> DNF:
    return FALSE_DNF if value else TRUE_DNF


def _with_no_memory(dnf: DNF) -> tuple[DNF, tuple[()]]:
    return (dnf, ())


def _accepting(state: Hashable) -> bool:
    dnf = state[0]  # type: ignore[index]
    return any(not any(atom & 1 for atom in clause) for clause in dnf)


_INITIAL = "initial"


def progression_automaton(m: MTBDD, formula: ast.Formula, index: Mapping[str, int]) -> RawAutomaton:
    """The (reachable, unminimised) progression automaton of ``formula``.

    State 0 is the initial state (before any step); ``accepting[q]`` tells whether the trace read
    so far satisfies the formula under finite-trace semantics.
    """
    prog = _Progression(m, index)
    root = prog.nnf(formula)
    start = (_INITIAL, None)
    token = _work.set([0])
    try:
        return _explore(m, prog, root, start)
    finally:
        _work.reset(token)


def _explore(m: MTBDD, prog: _Progression, root: int, start: Hashable) -> RawAutomaton:

    def successors(state: Hashable) -> int:
        if state == start:
            return prog.successors((frozenset({frozenset({2 * root + 1})}), None))
        return prog.successors(state)  # type: ignore[arg-type]

    def accepting(state: Hashable) -> bool:
        return prog.empty_accepts(root) if state == start else _accepting(state)

    def dead(state: Hashable) -> bool:
        return state != start and state[0] == FALSE_DNF  # type: ignore[index]

    return explore(m, start, successors, accepting, dead)


def negate(formula: ast.Formula) -> ast.Formula:
    """``!formula``."""
    return ast.Unary("!", formula)


def fragment(formula: ast.Formula) -> str:
    """``"safety"``, ``"guarantee"``, ``"both"`` (no future temporal operator) or ``"general"``.

    Syntactic classes over the negation normal form: safety uses only ``X X[!] G R W``,
    guarantee only ``X X[!] F U M``; past subformulas count as propositions.

    >>> from safeguards.spec.parser import parse_ltl
    >>> fragment(parse_ltl("G(a -> X !b)")), fragment(parse_ltl("!G !a")), fragment(parse_ltl("GFa"))
    ('safety', 'guarantee', 'general')
    """
    prog = _Progression(MTBDD(0), _AnyIndex())
    root = prog.nnf(formula)
    kinds = {prog.nodes[i].kind for i in _reachable(prog, root)}
    safe = not kinds & {_F, _U, _M}
    guarantee = not kinds & {_G, _R, _W}
    if safe and guarantee:
        return "both"
    return "safety" if safe else "guarantee" if guarantee else "general"


class _AnyIndex(dict):  # type: ignore[type-arg]
    """Maps every proposition to variable 0 (for syntactic analysis only)."""

    def __missing__(self, key: str) -> int:
        return 0


def _reachable(prog: _Progression, root: int) -> set[int]:
    seen: set[int] = set()
    stack = [root]
    while stack:
        f = stack.pop()
        if f in seen:
            continue
        seen.add(f)
        node = prog.nodes[f]
        if node.kind not in (_LIT, _PAST):
            stack.extend(node.args)
    return seen
