"""``compile``: spec file, spec text, or formula -> :class:`~safeguards.automata.Safeguard`.

>>> import safeguards
>>> sg = safeguards.compile('''
... spec lava "Never step on lava."
... props:
...     lava "the agent stands on lava"
... rule no_lava: ltl G !lava
... ''')
>>> sg.verdict(sg.step(sg.initial, {"lava"}))
<Verdict.VIOLATED: 'violated'>
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Literal, Sequence

from safeguards.automata.analysis import Verdict
from safeguards.automata.build import Component, RuleInfo, compile_rule, component_from_raw, product
from safeguards.automata.guards import guard_to_bdd
from safeguards.automata.mtbdd import MTBDD
from safeguards.automata.raw import RawAutomaton
from safeguards.automata.safeguard import Safeguard
from safeguards.errors import SpecError
from safeguards.spec import ast
from safeguards.spec.loader import load_spec, load_spec_text, spec_from_formula
from safeguards.spec.parser import parse_ltl
from safeguards.spec.shipped import load_shipped_spec

__all__ = ["compile", "compile_ltl", "compile_spec", "from_edges", "Backend"]

Backend = Literal["native", "spot"]


def _looks_like_path(source: str | os.PathLike[str]) -> bool:
    if isinstance(source, os.PathLike):
        return True
    return "\n" not in source and (source.endswith(".sg") or os.path.isfile(source))


def compile(source: str | os.PathLike[str] | ast.Spec, *,
            semantics: ast.Semantics | None = None, backend: Backend = "native") -> Safeguard:
    """Compile a spec file path, a shipped spec's name (``"minecraft/safeguard3"``), spec-file
    text, or a loaded :class:`~safeguards.spec.ast.Spec`.

    ``semantics``, if given, overrides the semantics of every LTL rule.  ``backend`` is
    ``"native"`` (pure Python) or ``"spot"`` (needs ``pip install 'safeguards[spot]'``).
    """
    if isinstance(source, ast.Spec):
        spec = source
    elif _looks_like_path(source):
        spec = load_spec(source)
    else:
        text = str(source)
        shipped = load_shipped_spec(text) if "\n" not in text else None
        spec = shipped if shipped is not None else load_spec_text(text)
    return compile_spec(spec, semantics=semantics, backend=backend)


def compile_ltl(formula: str | ast.Formula, *, semantics: ast.Semantics = "finite",
                backend: Backend = "native", props: list[str] | None = None) -> Safeguard:
    """Compile a bare LTL formula; its propositions are those it mentions, sorted, plus ``props``.

    >>> compile_ltl("a U b").props
    ('a', 'b')
    """
    tree = parse_ltl(formula) if isinstance(formula, str) else formula
    return compile_spec(spec_from_formula(tree, semantics=semantics, props=props),
                        backend=backend)


def compile_spec(spec: ast.Spec, *, semantics: ast.Semantics | None = None,
                 backend: Backend = "native") -> Safeguard:
    """Compile a loaded spec."""
    rules = spec.rules
    if semantics is not None:
        rules = tuple(replace(r, semantics=semantics) if r.kind == "ltl" else r for r in rules)
    props = list(spec.props)
    backend_rule = None
    if backend == "spot":
        from safeguards.automata.spot_backend import spot_rule

        backend_rule = spot_rule
    elif backend != "native":
        raise SpecError(f"unknown backend `{backend}`", hint="use native or spot")
    try:
        m = MTBDD(len(props))
        components = [compile_rule(m, rule, props, backend_rule if rule.kind == "ltl" else None)
                      for rule in rules]
        prod = product(m, components)
    except SpecError as error:
        raise _with_source(error, spec) from None
    meta = dict(props=props, prop_docs=spec.props, name=spec.name, description=spec.description)
    kinds = {r.semantics for r in rules}
    mode = kinds.pop() if len(kinds) == 1 else "mixed"
    parts = []
    if len(components) > 1:
        parts = [Safeguard.from_diagrams(m, c.aut.trans, accepting=c.aut.accepting,
                                         verdicts=c.verdicts, rules=[c.info],
                                         semantics=c.info.semantics, **meta)  # type: ignore[arg-type]
                 for c in components]
    return Safeguard.from_diagrams(m, prod.aut.trans, accepting=prod.aut.accepting,
                                   verdicts=prod.verdicts, rules=[c.info for c in components],
                                   components=prod.components, parts=parts, semantics=mode,
                                   state_names=_state_names(components, prod.components),
                                   **meta)  # type: ignore[arg-type]


def _state_names(components: Sequence[Component],
                 tuples: Sequence[tuple[int, ...] | None]) -> list[str]:
    """``q1`` for one rule, ``(q1, 0)`` for several; the sink is ``violated``."""
    names = []
    for states in tuples:
        if states is None:
            names.append("violated")
        else:
            parts = [c.names[q] for c, q in zip(components, states)]
            names.append(parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")")
    return names


def _with_source(error: SpecError, spec: ast.Spec) -> SpecError:
    """Attach the source text an error points into, for the caret display."""
    if error.source is None and error.line is not None and error.file == spec.path:
        error.source = spec.source or None
    elif error.source is None and error.file and error.line is not None:
        try:
            error.source = Path(error.file).read_text(encoding="utf-8")
        except OSError:
            pass
    return error


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
