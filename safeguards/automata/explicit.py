"""Explicit automata: a one-rule :class:`~safeguards.automata.Safeguard` from its edges (the
HOA importer's and the tests' way in).
"""

from __future__ import annotations

from typing import Sequence

from safeguards.automata.analysis import Verdict
from safeguards.automata.build import RuleInfo, component_from_raw, product
from safeguards.automata.guards import guard_to_bdd
from safeguards.automata.mtbdd import MTBDD
from safeguards.automata.raw import RawAutomaton
from safeguards.automata.safeguard import Safeguard
from safeguards.spec import ast

__all__ = ["from_edges"]


def from_edges(props: Sequence[str], edges: Sequence[Sequence[tuple[ast.Formula, int]]],
               accepting: Sequence[bool], *, name: str = "automaton",
               semantics: ast.Semantics = "finite", verdicts: Sequence[Verdict] | None = None,
               description: str = "") -> Safeguard:
    """A one-rule safeguard from an explicit deterministic automaton (state 0 initial).

    ``edges[q]`` lists ``(guard, target)`` pairs; guards must be disjoint, and valuations no guard
    takes go to a rejecting sink.  Under infinite semantics give ``verdicts`` (LTL3) or the
    automaton is read as a safety monitor whose non-accepting states are bad traps.

    >>> from safeguards.spec.parser import parse_boolean
    >>> sg = from_edges(["a"], [[(parse_boolean("!a"), 0)]], [True])
    >>> sg.verdict(sg.step(0, {"a"}))
    <Verdict.VIOLATED: 'violated'>
    """
    m = MTBDD(len(props))
    index = {p: i for i, p in enumerate(props)}
    n = len(edges)
    trans = []
    for q, out in enumerate(edges):
        diagram = m.terminal(n)
        for guard, target in out:
            diagram = m.ite(guard_to_bdd(m, guard, index), m.terminal(target), diagram)
        trans.append(diagram)
    trans.append(m.terminal(n))
    raw = RawAutomaton(trans, list(accepting) + [False], [not a for a in accepting] + [True],
                       verdicts=(list(verdicts) + [Verdict.VIOLATED]) if verdicts is not None
                       else None)
    fragment = "finite" if semantics == "finite" else "safety" if verdicts is None else "general"
    info = RuleInfo(name, "automaton", semantics, 1.0, name, fragment)
    component = component_from_raw(m, info, raw)
    prod = product(m, [component])
    return Safeguard.from_diagrams(m, prod.aut.trans, accepting=prod.aut.accepting,
                                   verdicts=prod.verdicts, rules=[info], components=prod.components,
                                   props=props, name=name, description=description,
                                   semantics=semantics)
