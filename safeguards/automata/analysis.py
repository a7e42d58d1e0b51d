"""Graph analysis of automata: verdicts, distances, shortest witnesses.

Automata here are given by successor lists ``succ[q]`` (every state has at least one successor).

>>> finite_verdicts([[1], [1]], [False, True])
[<Verdict.PRESUMABLY_VIOLATED: 'presumably_violated'>, <Verdict.SATISFIED: 'satisfied'>]
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Iterable, Sequence

import networkx as nx

__all__ = ["Verdict", "finite_verdicts", "safety_verdicts", "backward_reach", "distances_to",
           "cyclic_states"]


class Verdict(str, Enum):
    """Runtime-verification verdict of a monitor state.

    ``violated``: no continuation can satisfy the spec.  ``satisfied``: every continuation does.
    ``presumably_satisfied`` / ``presumably_violated``: the trace so far is accepted / rejected if
    it ends here (finite-trace semantics).  ``inconclusive``: neither verdict is settled yet
    (infinite-trace semantics, LTL3's "?").
    """

    VIOLATED = "violated"
    SATISFIED = "satisfied"
    PRESUMABLY_SATISFIED = "presumably_satisfied"
    PRESUMABLY_VIOLATED = "presumably_violated"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


def predecessors(succ: Sequence[Iterable[int]]) -> list[list[int]]:
    pred: list[list[int]] = [[] for _ in succ]
    for q, targets in enumerate(succ):
        for t in set(targets):
            pred[t].append(q)
    return pred


def backward_reach(succ: Sequence[Iterable[int]], targets: Iterable[int],
                   within: set[int] | None = None) -> set[int]:
    """States that can reach ``targets`` (staying inside ``within`` if given)."""
    pred = predecessors(succ)
    seen = set(targets)
    queue = deque(seen)
    while queue:
        q = queue.popleft()
        for p in pred[q]:
            if p not in seen and (within is None or p in within):
                seen.add(p)
                queue.append(p)
    return seen


def distances_to(succ: Sequence[Iterable[int]], targets: Iterable[int]) -> list[int]:
    """Fewest steps from each state to a target (0 on a target, -1 if unreachable)."""
    pred = predecessors(succ)
    dist = [-1] * len(succ)
    queue: deque[int] = deque()
    for t in targets:
        dist[t] = 0
        queue.append(t)
    while queue:
        q = queue.popleft()
        for p in pred[q]:
            if dist[p] < 0:
                dist[p] = dist[q] + 1
                queue.append(p)
    return dist


def cyclic_states(succ: Sequence[Iterable[int]], within: set[int]) -> set[int]:
    """States of ``within`` that lie on a cycle inside ``within``."""
    graph = nx.DiGraph()
    graph.add_nodes_from(within)
    graph.add_edges_from((q, t) for q in within for t in succ[q] if t in within)
    cyclic: set[int] = set()
    for component in nx.strongly_connected_components(graph):
        q = next(iter(component))
        if len(component) > 1 or graph.has_edge(q, q):
            cyclic |= component
    return cyclic


def finite_verdicts(succ: Sequence[Iterable[int]], accepting: Sequence[bool]) -> list[Verdict]:
    """Verdicts under finite-trace semantics."""
    states = range(len(succ))
    can_accept = backward_reach(succ, [q for q in states if accepting[q]])
    can_reject = backward_reach(succ, [q for q in states if not accepting[q]])
    verdicts = []
    for q in states:
        if q not in can_accept:
            verdicts.append(Verdict.VIOLATED)
        elif q not in can_reject:
            verdicts.append(Verdict.SATISFIED)
        else:
            verdicts.append(Verdict.PRESUMABLY_SATISFIED if accepting[q]
                            else Verdict.PRESUMABLY_VIOLATED)
    return verdicts


def safety_verdicts(succ: Sequence[Iterable[int]], bad: Sequence[bool]) -> list[Verdict]:
    """Verdicts under infinite-trace semantics of a safety automaton whose ``bad`` states are traps:
    an infinite word satisfies it iff its run never meets a bad state.
    """
    states = range(len(succ))
    good = {q for q in states if not bad[q]}
    alive = backward_reach(succ, cyclic_states(succ, good), within=good)
    can_fail = backward_reach(succ, [q for q in states if bad[q]])
    return [Verdict.VIOLATED if q not in alive else
            Verdict.SATISFIED if q not in can_fail else Verdict.INCONCLUSIVE for q in states]
