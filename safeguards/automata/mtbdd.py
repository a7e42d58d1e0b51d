"""Multi-terminal binary decision diagrams over the propositions of a spec.

A diagram maps each valuation of the propositions (variables ``0..n-1`` in declaration order) to
a terminal value — a successor formula, a state id, a tuple of state ids.  Nodes are hash-consed,
so two diagrams denote the same function exactly when they are the same integer; this is what
makes the constructions canonical and lets the alphabet be split only where guards differ, never
into ``2^n`` letters.

Operations are memoised under a stable *name* of the operation plus the operand nodes, so a
repeated operation is answered from the memo.  An operation built afresh per call (a lambda, a
closure) must therefore be given a ``name`` that determines it:

>>> m = MTBDD(2)
>>> both = m.apply(lambda x, y: x and y, m.var(0), m.var(1), name="and")
>>> m.evaluate(both, [True, True]), m.evaluate(both, [True, False])
(True, False)
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterator, Mapping, Sequence

from safeguards.automata.budget import DEFAULT_NODES, check_time, exceeded

__all__ = ["MTBDD", "MAX_NODES"]

MAX_NODES = DEFAULT_NODES
_CHECK_EVERY = 0xFFF   # new nodes between two looks at the clock


class MTBDD:
    """A node store.  Node ``i`` is either a terminal (``var[i] == n_vars``) or ``(var, low, high)``."""

    def __init__(self, n_vars: int, max_nodes: int = MAX_NODES) -> None:
        self.n_vars = n_vars
        self.max_nodes = max_nodes
        self._var: list[int] = []
        self._low: list[int] = []
        self._high: list[int] = []
        self._value: list[Any] = []
        self._nodes: dict[tuple[int, int, int], int] = {}
        self._terminals: dict[Hashable, int] = {}
        self._apply_cache: dict[tuple[Hashable, int, int], int] = {}
        self._map_cache: dict[tuple[Hashable, int], int] = {}
        self.false = self.terminal(False)
        self.true = self.terminal(True)

    # -- construction --------------------------------------------------------------------------
    def terminal(self, value: Hashable) -> int:
        """The constant diagram with value ``value``."""
        # Python says 0 == False and (0,) == (False,); keep such values apart.
        key = (type(value), value, tuple(map(type, value)) if type(value) is tuple else None)
        node = self._terminals.get(key)
        if node is None:
            node = len(self._var)
            self._var.append(self.n_vars)
            self._low.append(-1)
            self._high.append(-1)
            self._value.append(value)
            self._terminals[key] = node
        return node

    def node(self, var: int, low: int, high: int) -> int:
        """``if var then high else low``, reduced and hash-consed."""
        if low == high:
            return low
        key = (var, low, high)
        node = self._nodes.get(key)
        if node is None:
            node = len(self._var)
            if not node & _CHECK_EVERY:
                check_time()
            if node >= self.max_nodes:
                raise exceeded(f"the automaton construction needs more than "
                               f"{self.max_nodes:,} decision diagram nodes")
            self._var.append(var)
            self._low.append(low)
            self._high.append(high)
            self._value.append(None)
            self._nodes[key] = node
        return node

    def var(self, index: int) -> int:
        """The Boolean diagram of variable ``index``."""
        return self.node(index, self.false, self.true)

    def ite(self, condition: int, high: int, low: int) -> int:
        """``if condition then high else low`` for a Boolean ``condition``."""
        return self.apply3(_choose, condition, high, low)

    # -- inspection ----------------------------------------------------------------------------
    def is_terminal(self, node: int) -> bool:
        return self._var[node] == self.n_vars

    def value(self, node: int) -> Any:
        """The value of a terminal node."""
        return self._value[node]

    def top(self, node: int) -> int:
        return self._var[node]

    def low(self, node: int) -> int:
        return self._low[node]

    def high(self, node: int) -> int:
        return self._high[node]

    def evaluate(self, node: int, valuation: Sequence[bool]) -> Any:
        """The terminal value reached under ``valuation`` (a sequence of ``n_vars`` Booleans)."""
        var = self._var
        while var[node] != self.n_vars:
            node = self._high[node] if valuation[var[node]] else self._low[node]
        return self._value[node]

    def terminals(self, node: int) -> list[Any]:
        """Distinct terminal values reachable from ``node``, in depth-first order."""
        seen: dict[int, None] = {}
        found: dict[int, None] = {}
        stack = [node]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen[current] = None
            if self.is_terminal(current):
                found[current] = None
            else:
                stack += [self._high[current], self._low[current]]
        return [self._value[t] for t in found]

    def paths(self, node: int) -> Iterator[tuple[dict[int, bool], Any]]:
        """Yield ``(cube, value)``: disjoint partial assignments covering every valuation."""
        for cube, terminal in self._descend(node, once=False):
            yield cube, self._value[terminal]

    def first_paths(self, node: int) -> list[tuple[dict[int, bool], Any]]:
        """``(cube, value)`` for each distinct terminal value, in the order :meth:`paths` meets
        them, with the first path that meets it; linear in the diagram's size (:meth:`paths`
        may be exponential).

        >>> m = MTBDD(2)
        >>> m.first_paths(m.bool_xor(m.var(0), m.var(1)))
        [({0: False, 1: False}, False), ({0: False, 1: True}, True)]
        """
        return [(cube, self._value[terminal])
                for cube, terminal in self._descend(node, once=True)]

    def _descend(self, node: int, once: bool) -> Iterator[tuple[dict[int, bool], int]]:
        """Depth-first, low before high, without recursion: ``(cube, terminal)`` per path, or
        (``once``) per node first reached, which yields each terminal with its first path."""
        seen: set[int] = set()
        stack: list[tuple[int, dict[int, bool]]] = [(node, {})]
        while stack:
            current, cube = stack.pop()
            if once:
                if current in seen:
                    continue
                seen.add(current)
            if self.is_terminal(current):
                yield cube, current
                continue
            var = self._var[current]
            stack.append((self._high[current], {**cube, var: True}))
            stack.append((self._low[current], {**cube, var: False}))

    def cofactor(self, node: int, var: int, value: bool) -> int:
        """The diagram with variable ``var`` fixed to ``value`` (``var`` at or above the top)."""
        if self._var[node] == var:
            return self._high[node] if value else self._low[node]
        return node

    def example(self, node: int, target: Any) -> dict[int, bool] | None:
        """A partial assignment leading to the terminal value ``target``, or None."""
        for cube, value in self.first_paths(node):
            if value == target:
                return cube
        return None

    # -- operations ----------------------------------------------------------------------------
    def apply(self, op: Callable[[Any, Any], Hashable], u: int, v: int, *,
              name: Hashable | None = None) -> int:
        """The diagram of ``op(u(x), v(x))``; ``op`` must be a pure function of terminal values.

        Results are memoised under ``(name, u, v)``.  ``name`` defaults to ``op`` itself, which
        is stable for a module-level function or a bound method; give an ``op`` built afresh per
        call a ``name`` that determines it, e.g. ``("cat", tail)`` for ``lambda d: cat(d, tail)``.
        """
        return self._apply(op, op if name is None else name, u, v)

    def _apply(self, op: Callable[[Any, Any], Hashable], name: Hashable, u: int, v: int) -> int:
        cache = self._apply_cache
        key = (name, u, v)
        hit = cache.get(key)
        if hit is not None:
            return hit
        n = self.n_vars
        var_u, var_v = self._var[u], self._var[v]
        if var_u == n and var_v == n:
            result = self.terminal(op(self._value[u], self._value[v]))
        else:
            top = min(var_u, var_v)
            u0, u1 = (self._low[u], self._high[u]) if var_u == top else (u, u)
            v0, v1 = (self._low[v], self._high[v]) if var_v == top else (v, v)
            result = self.node(top, self._apply(op, name, u0, v0), self._apply(op, name, u1, v1))
        cache[key] = result
        return result

    def apply3(self, op: Callable[[Any, Any, Any], Hashable], u: int, v: int, w: int, *,
               name: Hashable | None = None) -> int:
        """Three-argument :meth:`apply`, memoised under ``("apply3", name)``."""
        return self._apply(lambda pair, c: op(pair[0], pair[1], c),
                           ("apply3", op if name is None else name), self.pair(u, v), w)

    def pair(self, u: int, v: int) -> int:
        """The diagram of ``(u(x), v(x))``.

        >>> m = MTBDD(1)
        >>> m.terminals(m.pair(m.var(0), m.true))
        [(False, True), (True, True)]
        """
        return self._apply(_pair, _pair, u, v)

    def map(self, op: Callable[[Any], Hashable], u: int, *, name: Hashable | None = None) -> int:
        """The diagram of ``op(u(x))``; memoised under ``(name, u)`` as in :meth:`apply`."""
        return self._map(op, op if name is None else name, u)

    def _map(self, op: Callable[[Any], Hashable], name: Hashable, u: int) -> int:
        cache = self._map_cache
        key = (name, u)
        hit = cache.get(key)
        if hit is not None:
            return hit
        if self._var[u] == self.n_vars:
            result = self.terminal(op(self._value[u]))
        else:
            result = self.node(self._var[u], self._map(op, name, self._low[u]),
                               self._map(op, name, self._high[u]))
        cache[key] = result
        return result

    def map_with(self, mapping: Mapping[Any, Hashable], u: int) -> int:
        """Relabel terminals through a dict (not memoised across calls: the dict may change)."""
        memo: dict[int, int] = {}

        def go(node: int) -> int:
            hit = memo.get(node)
            if hit is None:
                if self._var[node] == self.n_vars:
                    hit = self.terminal(mapping[self._value[node]])
                else:
                    hit = self.node(self._var[node], go(self._low[node]), go(self._high[node]))
                memo[node] = hit
            return hit
        return go(u)

    def bool_not(self, u: int) -> int:
        return self.map(_not, u)

    def bool_and(self, u: int, v: int) -> int:
        return self.apply(_and, u, v)

    def bool_or(self, u: int, v: int) -> int:
        return self.apply(_or, u, v)

    def bool_xor(self, u: int, v: int) -> int:
        return self.apply(_xor, u, v)

    def boolean(self, op: str, u: int, v: int) -> int:
        """The Boolean connective ``op`` (``&``, ``|``, ``->``, ``<->``, ``xor``) of two
        Boolean diagrams.

        >>> m = MTBDD(2)
        >>> m.boolean("->", m.var(0), m.var(1)) == m.bool_or(m.bool_not(m.var(0)), m.var(1))
        True
        """
        if op == "&":
            return self.bool_and(u, v)
        if op == "|":
            return self.bool_or(u, v)
        if op == "->":
            return self.bool_or(self.bool_not(u), v)
        if op in ("<->", "xor"):
            differ = self.bool_xor(u, v)
            return self.bool_not(differ) if op == "<->" else differ
        raise ValueError(f"{op} is not a Boolean connective")

    def clear_caches(self) -> None:
        """Drop operation caches (nodes stay valid)."""
        self._apply_cache.clear()
        self._map_cache.clear()


def _pair(x: Any, y: Any) -> tuple[Any, Any]:
    return (x, y)


def _not(x: bool) -> bool:
    return not x


def _and(x: bool, y: bool) -> bool:
    return x and y


def _or(x: bool, y: bool) -> bool:
    return x or y


def _xor(x: bool, y: bool) -> bool:
    return x != y


def _choose(condition: bool, high: Any, low: Any) -> Any:
    return high if condition else low
