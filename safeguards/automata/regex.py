"""Regular expressions over events to deterministic automata by Brzozowski derivatives.

Letters are Boolean guards, so one derivative is computed for all valuations at once as a decision
diagram.  Expressions are kept in a canonical form (union and intersection as sorted sets,
concatenation right-nested), which makes the set of derivatives finite.

* ``match R``: the trace read so far is accepted iff it is in L(R).
* ``never R``: violated at the first step at which some non-empty segment of the trace that ends
  at that step is in L(R); the automaton reads ``true[*] ; (R && true[+])``.

>>> from safeguards.spec.parser import parse_regex
>>> aut = regex_automaton(MTBDD(1), parse_regex("a ; a"), {"a": 0}, never=True)
>>> len(aut.trans), aut.accepting
(3, [True, True, False])
"""

from __future__ import annotations

from typing import Mapping

from safeguards.automata.budget import check_time
from safeguards.automata.guards import guard_to_bdd
from safeguards.automata.mtbdd import MTBDD
from safeguards.automata.raw import RawAutomaton, explore
from safeguards.errors import SpecError
from safeguards.spec import ast

__all__ = ["regex_automaton", "MAX_REPEAT"]

MAX_REPEAT = 1000
_EPS, _EMPTY, _LETTER, _CAT, _ALT, _AND, _STAR = range(7)
_VIOLATED = -1


class _Regexes:
    def __init__(self, m: MTBDD) -> None:
        self.m = m
        self.nodes: list[tuple[int, tuple[int, ...]]] = []
        self.ids: dict[tuple[int, tuple[int, ...]], int] = {}
        self.deriv_cache: dict[int, int] = {}
        self.nullable_cache: dict[int, bool] = {}
        self.eps = self._mk(_EPS, ())
        self.empty = self._mk(_EMPTY, ())
        self.any = self.letter(m.true)

    def _mk(self, kind: int, args: tuple[int, ...]) -> int:
        key = (kind, args)
        found = self.ids.get(key)
        if found is None:
            found = len(self.nodes)
            self.nodes.append(key)
            self.ids[key] = found
        return found

    def letter(self, guard: int) -> int:
        return self.empty if guard == self.m.false else self._mk(_LETTER, (guard,))

    def cat(self, a: int, b: int) -> int:
        if a == self.empty or b == self.empty:
            return self.empty
        if a == self.eps:
            return b
        if b == self.eps:
            return a
        kind, args = self.nodes[a]
        if kind == _CAT:
            return self.cat(args[0], self.cat(args[1], b))
        return self._mk(_CAT, (a, b))

    def _flat(self, kind: int, parts: tuple[int, ...]) -> set[int]:
        flat: set[int] = set()
        for part in parts:
            node_kind, args = self.nodes[part]
            flat.update(args if node_kind == kind else (part,))
        return flat

    def alt(self, *parts: int) -> int:
        flat = self._flat(_ALT, parts) - {self.empty}
        if not flat:
            return self.empty
        return flat.pop() if len(flat) == 1 else self._mk(_ALT, tuple(sorted(flat)))

    def inter(self, *parts: int) -> int:
        flat = self._flat(_AND, parts)
        if self.empty in flat:
            return self.empty
        return flat.pop() if len(flat) == 1 else self._mk(_AND, tuple(sorted(flat)))

    def star(self, a: int) -> int:
        if a in (self.eps, self.empty):
            return self.eps
        return a if self.nodes[a][0] == _STAR else self._mk(_STAR, (a,))

    def nullable(self, r: int) -> bool:
        hit = self.nullable_cache.get(r)
        if hit is None:
            kind, args = self.nodes[r]
            if kind in (_EPS, _STAR):
                hit = True
            elif kind in (_EMPTY, _LETTER):
                hit = False
            elif kind == _CAT or kind == _AND:
                hit = all(self.nullable(a) for a in args)
            else:
                hit = any(self.nullable(a) for a in args)
            self.nullable_cache[r] = hit
        return hit

    def _letter_derivative(self, matched: bool) -> int:
        return self.eps if matched else self.empty

    def _followed_by(self, diagram: int, tail: int) -> int:
        """Diagram of ``d ; tail`` for each derivative ``d`` in ``diagram``."""
        return self.m.map(lambda d: self.cat(d, tail), diagram, name=(self.cat, tail))

    def derivative(self, r: int) -> int:
        """Diagram: valuation of the next step -> derivative of ``r``."""
        hit = self.deriv_cache.get(r)
        if hit is not None:
            return hit
        m = self.m
        kind, args = self.nodes[r]
        if kind in (_EPS, _EMPTY):
            result = m.terminal(self.empty)
        elif kind == _LETTER:
            result = m.map(self._letter_derivative, args[0])
        elif kind == _CAT:
            head, tail = args
            result = self._followed_by(self.derivative(head), tail)
            if self.nullable(head):
                result = m.apply(self.alt, result, self.derivative(tail))
        elif kind == _STAR:
            result = self._followed_by(self.derivative(args[0]), r)
        else:
            op = self.alt if kind == _ALT else self.inter
            result = self.derivative(args[0])
            for arg in args[1:]:
                result = m.apply(op, result, self.derivative(arg))
        self.deriv_cache[r] = result
        return result

    def build(self, regex: ast.Regex, index: Mapping[str, int]) -> int:
        if isinstance(regex, ast.Letter):
            return self.letter(guard_to_bdd(self.m, regex.guard, index))
        if isinstance(regex, ast.Concat):
            return self.cat(self.build(regex.left, index), self.build(regex.right, index))
        if isinstance(regex, ast.Union):
            return self.alt(self.build(regex.left, index), self.build(regex.right, index))
        if isinstance(regex, ast.Intersection):
            return self.inter(self.build(regex.left, index), self.build(regex.right, index))
        assert isinstance(regex, ast.Repeat)
        bound = regex.high if regex.high is not None else regex.low
        if bound > MAX_REPEAT:
            pos = regex.pos
            raise SpecError(f"repetition bound {bound} is larger than {MAX_REPEAT}",
                            line=pos.line if pos else None, column=pos.column if pos else None,
                            file=pos.file if pos else None,
                            hint="count with a machine rule or an LTL rule instead")
        body = self.build(regex.body, index)
        if regex.high is None:
            result = self.star(body)
        else:   # built from the right: each step prepends one factor, without recursion
            optional = self.alt(self.eps, body)
            result = self.eps
            for _ in range(regex.high - regex.low):
                check_time()
                result = self.cat(optional, result)
        for _ in range(regex.low):
            check_time()
            result = self.cat(body, result)
        return result


def regex_automaton(m: MTBDD, regex: ast.Regex, index: Mapping[str, int], *,
                    never: bool) -> RawAutomaton:
    """The (reachable, unminimised) automaton of a ``match`` or ``never`` rule; state 0 is initial."""
    rx = _Regexes(m)
    body = rx.build(regex, index)
    if not never:
        return explore(m, body, rx.derivative, rx.nullable)

    non_empty = rx.cat(rx.any, rx.star(rx.any))
    start = rx.cat(rx.star(rx.any), rx.inter(body, non_empty))

    def violated_if_matched(r: int) -> int:
        return _VIOLATED if rx.nullable(r) else r

    def successors(state: int) -> int:
        if state == _VIOLATED:
            return m.terminal(_VIOLATED)
        return m.map(violated_if_matched, rx.derivative(state))

    return explore(m, start, successors, lambda state: state != _VIOLATED,
                   dead=lambda state: state == _VIOLATED)
