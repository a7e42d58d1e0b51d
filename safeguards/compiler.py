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

import copy
import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Literal, Sequence

from safeguards.automata.budget import compile_budget
from safeguards.automata.build import Component, Product, compile_rules, product
from safeguards.automata.mtbdd import MTBDD
from safeguards.automata.safeguard import Safeguard
from safeguards.errors import SpecError
from safeguards.spec import ast
from safeguards.spec.loader import spec_from_formula
from safeguards.spec.parser import parse_ltl
from safeguards.spec.resolve import SpecSource, resolve_spec

__all__ = ["compile", "compile_ltl", "compile_spec", "load_safeguard", "Backend"]

Backend = Literal["native", "spot"]


def compile(source: str | os.PathLike[str] | ast.Spec, *,
            semantics: ast.Semantics | None = None, backend: Backend = "native",
            base: str | os.PathLike[str] | None = None, max_seconds: float | None = None,
            max_states: int | None = None,
            include_path: Sequence[str | os.PathLike[str]] = ()) -> Safeguard:
    """Compile a spec file path (relative to ``base``, default the current folder), a shipped
    spec's name (``"minecraft/safeguard3"``), spec-file text, an LTL formula
    (:func:`~safeguards.spec.resolve.resolve_spec` decides which), or a loaded
    :class:`~safeguards.spec.ast.Spec`.

    ``semantics``, if given, overrides the semantics of every LTL rule.  ``backend`` is
    ``"native"`` (pure Python) or ``"spot"`` (needs ``pip install 'safeguards[spot]'``).
    Loading and compiling stay within a budget (:mod:`safeguards.automata.budget`):
    ``max_seconds`` (default 10) and ``max_states`` per automaton (default 50,000); beyond it, a
    :class:`~safeguards.errors.SpecError` names the rule.  Includes stay inside the spec's folder
    tree unless ``include_path`` names more folders (which are also searched).

    >>> compile("G !lava").props, compile("minecraft/safeguard0").name
    (('lava',), 'minecraft_safeguard0')
    """
    with compile_budget(max_seconds, max_states):
        spec = source if isinstance(source, ast.Spec) else resolve_spec(source, base=base).load(
            include_path=include_path)
        return compile_spec(spec, semantics=semantics, backend=backend)


@lru_cache(maxsize=256)
def _load_cached(source: SpecSource, stamp: tuple[int, int] | None,
                 semantics: ast.Semantics | None, backend: Backend, max_seconds: float | None,
                 max_states: int | None) -> Safeguard:
    with compile_budget(max_seconds, max_states):
        return compile_spec(source.load(), semantics=semantics, backend=backend)


def load_safeguard(spec: Safeguard | str | os.PathLike[str], *,
                   base: str | os.PathLike[str] | None = None,
                   semantics: ast.Semantics | None = None,
                   backend: Backend = "native", max_seconds: float | None = None,
                   max_states: int | None = None) -> Safeguard:
    """:func:`compile`, cached: the same spec (a file: unchanged since) compiles once per
    process.  A :class:`~safeguards.automata.Safeguard` is returned as it is.  Learners,
    wrappers, reward functions and configs all resolve their ``spec`` through this.

    >>> load_safeguard("minecraft/safeguard3") is load_safeguard("minecraft/safeguard3")
    True
    """
    if isinstance(spec, Safeguard):
        return spec
    source = resolve_spec(spec, base=base)
    stamp = None
    if source.kind == "path":
        stat = os.stat(source.value)
        stamp = (stat.st_mtime_ns, stat.st_size)
    return _load_cached(source, stamp, semantics, backend, max_seconds, max_states)


def compile_ltl(formula: str | ast.Formula, *, semantics: ast.Semantics = "finite",
                backend: Backend = "native", props: list[str] | None = None,
                max_seconds: float | None = None, max_states: int | None = None) -> Safeguard:
    """Compile a bare LTL formula; its propositions are those it mentions, sorted, plus ``props``.

    >>> compile_ltl("a U b").props
    ('a', 'b')
    """
    with compile_budget(max_seconds, max_states):
        tree = parse_ltl(formula) if isinstance(formula, str) else formula
        return compile_spec(spec_from_formula(tree, semantics=semantics, props=props),
                            backend=backend)


def compile_spec(spec: ast.Spec, *, semantics: ast.Semantics | None = None,
                 backend: Backend = "native", max_seconds: float | None = None,
                 max_states: int | None = None) -> Safeguard:
    """Compile a loaded spec (within the budget of :func:`compile`)."""
    with compile_budget(max_seconds, max_states) as budget:
        return _compile_spec(spec, semantics, backend, budget.max_nodes)


def _compile_spec(spec: ast.Spec, semantics: ast.Semantics | None, backend: Backend,
                  max_nodes: int) -> Safeguard:
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
        m = MTBDD(len(props), max_nodes=max_nodes)
        components = compile_rules(m, rules, props, backend_rule)
        prod = _product(m, components, spec)
    except SpecError as error:
        raise _with_source(error, spec) from None
    meta = dict(props=props, prop_docs=spec.props, name=spec.name, description=spec.description)
    kinds = {r.semantics for r in rules}
    mode = kinds.pop() if len(kinds) == 1 else "mixed"
    parts = []
    if len(components) > 1:
        built: dict[int, Safeguard] = {}   # identical rules share one table
        for c in components:
            part = built.get(id(c.aut))
            if part is None:
                part = built[id(c.aut)] = Safeguard.from_diagrams(
                    m, c.aut.trans, accepting=c.aut.accepting, verdicts=c.verdicts,
                    rules=[c.info], semantics=c.info.semantics, **meta)  # type: ignore[arg-type]
            else:
                part = copy.copy(part)
                part.rules = (c.info,)
            parts.append(part)
    return Safeguard.from_diagrams(m, prod.aut.trans, accepting=prod.aut.accepting,
                                   verdicts=prod.verdicts, rules=[c.info for c in components],
                                   components=prod.components, parts=parts, semantics=mode,
                                   state_names=_state_names(components, prod.components),
                                   **meta)  # type: ignore[arg-type]


def _product(m: MTBDD, components: Sequence[Component], spec: ast.Spec) -> Product:
    """:func:`~safeguards.automata.build.product`; its errors name the rules and the spec."""
    try:
        return product(m, components)
    except SpecError as error:
        if error.line is None:
            what = f"the product of the {len(components)} rules" if len(components) > 1 \
                else f"rule `{components[0].info.name}`"
            error.message = f"{what}: {error.message}"
            error.args = (error.message,)
            error.file = error.file or spec.path
        raise


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
