"""Explicit state machines (the hand-made safeguards of the Progressive Safeguards paper).

Edges are guarded by Boolean formulas.  Guards leaving one state must be disjoint and cover every
valuation, unless the state has an ``else`` edge, which takes the valuations no other edge takes.
Violation states are absorbing.  A machine keeps the states it is written with (they are the
engineer's memory: learners key their tables by them), except that violation states merge.  Errors name the state and a valuation that shows the problem.

>>> from safeguards.spec.loader import load_spec_text
>>> spec = load_spec_text('''props: lava
... rule r: machine { initial ok  violation bad  ok -> bad : lava  ok -> ok : else }''')
>>> aut, names = machine_automaton(MTBDD(1), spec.rules[0].body, {"lava": 0}, ["lava"])
>>> names, aut.accepting
(['ok', 'bad'], [True, False])
"""

from __future__ import annotations

from typing import Mapping, Sequence

from safeguards.automata.guards import guard_to_bdd
from safeguards.automata.mtbdd import MTBDD
from safeguards.automata.raw import RawAutomaton
from safeguards.errors import SpecError
from safeguards.spec import ast

__all__ = ["machine_automaton"]


def _located(message: str, pos: ast.Pos | None, hint: str | None = None) -> SpecError:
    return SpecError(message, line=pos.line if pos else None, column=pos.column if pos else None,
                     file=pos.file if pos else None, hint=hint)


def _show(m: MTBDD, cube: dict[int, bool] | None, names: Sequence[str]) -> str:
    true = [names[v] for v, value in sorted((cube or {}).items()) if value]
    return "{" + ", ".join(true) + "}" + (" (all other propositions false)" if names else "")


def machine_automaton(m: MTBDD, machine: ast.Machine, index: Mapping[str, int],
                      names: Sequence[str]) -> tuple[RawAutomaton, list[str]]:
    """The automaton of a machine (state 0 is the initial state) and its state names."""
    states = list(machine.states)
    ids = {name: i for i, name in enumerate(states)}
    violations = set(machine.violations)
    accepting = set(machine.accepting) if machine.accepting is not None else \
        set(states) - violations
    outgoing: dict[str, list[ast.Edge]] = {name: [] for name in states}
    for edge in machine.edges:
        outgoing[edge.source].append(edge)

    trans = []
    for name in states:
        edges = outgoing[name]
        if name in violations:
            leaving = [e for e in edges if e.target != name]
            if leaving:
                raise _located(f"violation state `{name}` has an edge to `{leaving[0].target}`",
                               leaving[0].pos, hint="violation states are absorbing: remove the edge")
            trans.append(m.terminal(ids[name]))
            continue
        else_edges = [e for e in edges if e.guard is None]
        if len(else_edges) > 1:
            raise _located(f"state `{name}` has two `else` edges", else_edges[1].pos)
        covered = m.false
        diagram = m.terminal(-1)
        for edge in edges:
            if edge.guard is None:
                continue
            guard = guard_to_bdd(m, edge.guard, index)
            overlap = m.bool_and(covered, guard)
            if overlap != m.false:
                other = next(e for e in edges if e.guard is not None and e is not edge and
                             m.bool_and(guard_to_bdd(m, e.guard, index), guard) != m.false)
                raise _located(
                    f"state `{name}` is non-deterministic: the guards of `{name} -> "
                    f"{other.target}` and `{name} -> {edge.target}` both hold for "
                    f"{_show(m, m.example(overlap, True), names)}", edge.pos,
                    hint="make the guards disjoint, e.g. add `& !(...)` to one of them")
            covered = m.bool_or(covered, guard)
            diagram = m.ite(guard, m.terminal(ids[edge.target]), diagram)
        if else_edges:
            diagram = m.map_with({**{i: i for i in range(len(states))},
                                  -1: ids[else_edges[0].target]}, diagram)
        elif covered != m.true:
            where = edges[0].pos if edges else machine.pos
            raise _located(
                f"state `{name}` has no edge for {_show(m, m.example(covered, False), names)}",
                where, hint=f"add `{name} -> {name} : else` (or another edge) to say what happens")
        trans.append(diagram)
    aut = RawAutomaton(trans, [name in accepting for name in states],
                       [name in violations for name in states])
    return aut, states
