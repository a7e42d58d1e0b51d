"""Symbolic deterministic automata under construction: exploration and minimisation.

A :class:`RawAutomaton` has one transition diagram per state (valuation -> successor id, see
:mod:`safeguards.automata.mtbdd`) and a hashable output per state.  :func:`explore` builds the
reachable part from a successor function; :func:`minimise` merges states with equal outputs and
equal behaviour (Moore's partition refinement on canonical diagrams).

>>> m = MTBDD(1)
>>> aut = explore(m, "even", lambda s: m.node(0, m.terminal(s), m.terminal("odd" if s == "even" else "even")),
...               accepting=lambda s: s == "even")
>>> aut.accepting
[True, False]
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence, TypeVar

from safeguards.automata.budget import DEFAULT_STATES, check_time, current_budget, exceeded
from safeguards.automata.mtbdd import MTBDD

#: A state of an automaton under construction: any hashable value.
S = TypeVar("S", bound=Hashable)

__all__ = ["RawAutomaton", "explore", "minimise", "MAX_STATES"]

MAX_STATES = DEFAULT_STATES


@dataclass
class RawAutomaton:
    """States ``0..n-1`` (0 is initial); ``trans[q]`` is a diagram with successor-id terminals."""

    trans: list[int]
    accepting: list[bool]
    dead: list[bool] = field(default_factory=list)
    outputs: list[Hashable] = field(default_factory=list)
    keys: Sequence[Hashable] = field(default_factory=list)   # the explored state objects, by id
    verdicts: list[Any] | None = None   # verdicts computed by a backend (infinite semantics)

    def successors(self, m: MTBDD, q: int) -> list[int]:
        return m.terminals(self.trans[q])


def explore(m: MTBDD, start: S, successors: Callable[[S], int],
            accepting: Callable[[S], bool],
            dead: Callable[[S], bool] = lambda state: False,
            max_states: int | None = None) -> RawAutomaton:
    """Breadth-first construction of the states reachable from ``start``.

    ``successors(state)`` returns a diagram whose terminals are successor states (any hashable).
    ``max_states`` and the time allowed are the compile budget's
    (:mod:`safeguards.automata.budget`) unless given.
    """
    if max_states is None:
        max_states = current_budget().max_states
    ids: dict[S, int] = {start: 0}
    states: list[S] = [start]
    symbolic: list[int] = []
    queue = deque([start])
    while queue:
        check_time()
        state = queue.popleft()
        diagram = successors(state)
        symbolic.append(diagram)
        for target in m.terminals(diagram):
            if target not in ids:
                if len(states) >= max_states:
                    raise exceeded(f"the automaton would have more than {max_states:,} "
                                   "states (a monitor must remember every distinction the "
                                   "formula can still depend on)")
                ids[target] = len(states)
                states.append(target)
                queue.append(target)
    trans = [m.map_with(ids, diagram) for diagram in symbolic]
    return RawAutomaton(trans, [accepting(s) for s in states], [dead(s) for s in states],
                        keys=states)


def minimise(m: MTBDD, aut: RawAutomaton, outputs: list[Hashable]) -> tuple[RawAutomaton, list[int]]:
    """The minimal automaton with the same outputs per word, restricted to reachable states.

    Returns it and the map old state -> new state (-1 for unreachable states).  The new initial
    state is 0; the others are numbered in breadth-first order.
    """
    reach = _reachable(m, aut)
    labels = {out: i for i, out in enumerate(dict.fromkeys(outputs[q] for q in reach))}
    block = {q: labels[outputs[q]] for q in reach}
    n_blocks = len(labels)
    while True:
        signatures: dict[tuple[int, int], int] = {}
        check_time()
        new_block = {}
        for q in reach:
            sig = (block[q], m.map_with(block, aut.trans[q]))
            new_block[q] = signatures.setdefault(sig, len(signatures))
        block = new_block
        if len(signatures) == n_blocks:
            break
        n_blocks = len(signatures)
    order: dict[int, int] = {}
    representative: list[int] = []
    for q in reach:
        if block[q] not in order:
            order[block[q]] = len(order)
            representative.append(q)
    old_to_new = [-1] * len(aut.trans)
    for q in reach:
        old_to_new[q] = order[block[q]]
    mapping = dict(enumerate(old_to_new))
    result = RawAutomaton(
        trans=[m.map_with(mapping, aut.trans[q]) for q in representative],
        accepting=[aut.accepting[q] for q in representative],
        dead=[aut.dead[q] for q in representative] if aut.dead else [],
        outputs=[outputs[q] for q in representative],
    )
    return result, old_to_new


def _reachable(m: MTBDD, aut: RawAutomaton) -> list[int]:
    """States reachable from 0, in breadth-first order."""
    order = [0]
    seen = {0}
    for q in order:
        for target in m.terminals(aut.trans[q]):
            if target not in seen:
                seen.add(target)
                order.append(target)
    return order
