"""From a loaded spec to the automaton of a :class:`~safeguards.automata.safeguard.Safeguard`.

Each rule becomes a minimal *component* (LTL by progression, regular expressions by derivatives,
machines directly, or an automaton from a backend).  The spec's automaton is the reachable product
of the components, with every state in which the conjunction can no longer be satisfied merged
into one violation sink.  A product state keeps the tuple of component states, so the safeguard
can tell which rule(s) a step violates and which obligations are pending.

Verdicts of the conjunction are exact: a state is ``violated`` when no continuation satisfies all
rules at once (even if no single rule is violated yet), ``satisfied`` when every rule is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Hashable, Sequence

from safeguards.automata.analysis import (
    Verdict, backward_reach, cyclic_states, finite_verdicts, safety_verdicts,
)
from safeguards.automata.ltl import fragment, negate, progression_automaton
from safeguards.automata.machine import machine_automaton
from safeguards.automata.mtbdd import MTBDD
from safeguards.automata.raw import RawAutomaton, explore, minimise
from safeguards.automata.regex import regex_automaton
from safeguards.errors import BackendUnavailable, SpecError
from safeguards.spec import ast

__all__ = ["RuleInfo", "Component", "compile_rule", "compile_rules", "component_from_raw",
           "product", "Product"]


@dataclass(frozen=True)
class RuleInfo:
    """What a safeguard remembers of a rule: its name, kind, semantics, penalty and source text.

    ``fragment`` is ``finite`` for finite semantics, else ``safety``, ``guarantee`` or ``general``.
    """

    name: str
    kind: str
    semantics: str
    penalty: float
    source: str
    fragment: str = "finite"


@dataclass
class Component:
    """The minimal automaton of one rule, over the spec's shared decision-diagram store."""

    info: RuleInfo
    aut: RawAutomaton
    verdicts: list[Verdict]
    names: list[str]   # machine state names, else the state numbers

    def successors(self, m: MTBDD) -> list[list[int]]:
        return [m.terminals(t) for t in self.aut.trans]


def _rule_source(rule: ast.Rule) -> str:
    """The rule's body as written in the spec file, else printed from its tree."""
    if rule.text:
        return rule.text
    if rule.kind == "ltl":
        return str(rule.body)
    if rule.kind in ("never", "match"):
        from safeguards.spec.printer import regex_to_text

        return f"{rule.kind} {regex_to_text(rule.body)}"  # type: ignore[arg-type]
    return "machine"


def component_from_raw(m: MTBDD, info: RuleInfo, raw: RawAutomaton,
                       names: Sequence[str] | None = None) -> Component:
    """Compute verdicts of a raw automaton, then minimise it with the verdicts as outputs.

    Finite semantics: ``raw.accepting`` is the acceptance of finished traces.  Infinite semantics:
    ``raw.verdicts`` if a backend computed them, else ``raw.dead`` marks the bad traps of a safety
    automaton; for ``info.fragment == "guarantee"`` that automaton is the negated formula's and
    the verdicts are swapped.
    """
    succ = [m.terminals(t) for t in raw.trans]
    if info.semantics == "finite":
        verdicts = finite_verdicts(succ, raw.accepting)
    elif raw.verdicts is not None:
        verdicts = list(raw.verdicts)
        raw = RawAutomaton(raw.trans, [v != Verdict.VIOLATED for v in verdicts], raw.dead)
    else:
        verdicts = safety_verdicts(succ, raw.dead)
        if info.fragment == "guarantee":
            swap = {Verdict.VIOLATED: Verdict.SATISFIED, Verdict.SATISFIED: Verdict.VIOLATED}
            verdicts = [swap.get(v, v) for v in verdicts]
        raw = RawAutomaton(raw.trans, [v != Verdict.VIOLATED for v in verdicts], raw.dead)
    # Explicit machines keep their named states (only violated ones merge); the rest is minimal.
    outputs: list[Hashable] = [
        (raw.accepting[q], verdicts[q],
         names[q] if names is not None and verdicts[q] != Verdict.VIOLATED else None)
        for q in range(len(verdicts))]
    minimal, old_to_new = minimise(m, raw, outputs)
    new_verdicts = [Verdict.VIOLATED] * len(minimal.trans)
    new_names = [""] * len(minimal.trans)
    for old, new in enumerate(old_to_new):
        if new >= 0:
            new_verdicts[new] = verdicts[old]
            new_names[new] = names[old] if names is not None else str(new)
    return Component(info, minimal, new_verdicts, new_names)


def compile_rule(m: MTBDD, rule: ast.Rule, props: Sequence[str],
                 backend_rule: Callable[[MTBDD, ast.Rule, RuleInfo, Sequence[str]], RawAutomaton]
                 | None = None) -> Component:
    """Compile one rule with the native constructions (or ``backend_rule`` for LTL if given).

    Errors without a location get the rule's.
    """
    try:
        return _compile_rule(m, rule, props, backend_rule)
    except SpecError as error:
        if error.line is None:
            if rule.pos is not None:
                error.line, error.column = rule.pos.line, rule.pos.column
                error.file = rule.pos.file
            error.message = f"rule `{rule.name}`: {error.message}"
            error.args = (error.message,)
        raise


def compile_rules(m: MTBDD, rules: Sequence[ast.Rule], props: Sequence[str],
                  backend_rule: Callable[[MTBDD, ast.Rule, RuleInfo, Sequence[str]],
                                         RawAutomaton] | None = None) -> list[Component]:
    """:func:`compile_rule` for each rule (``backend_rule`` for LTL rules only); rules with the
    same kind, semantics and body are compiled once and share their automaton."""
    compiled: dict[tuple[str, str, object], Component] = {}
    components = []
    for rule in rules:
        key = (rule.kind, rule.semantics, rule.body)
        first = compiled.get(key)
        if first is None:
            first = compiled[key] = compile_rule(m, rule, props,
                                                 backend_rule if rule.kind == "ltl" else None)
            components.append(first)
        else:
            info = replace(first.info, name=rule.name, penalty=rule.penalty,
                           source=_rule_source(rule))
            components.append(Component(info, first.aut, first.verdicts, first.names))
    return components


def _compile_rule(m: MTBDD, rule: ast.Rule, props: Sequence[str],
                 backend_rule: Callable[[MTBDD, ast.Rule, RuleInfo, Sequence[str]], RawAutomaton]
                 | None = None,
                 ) -> Component:
    index = {p: i for i, p in enumerate(props)}
    info = RuleInfo(rule.name, rule.kind, rule.semantics, rule.penalty, _rule_source(rule))
    if rule.kind == "ltl":
        formula = rule.body
        assert isinstance(formula, ast.Formula)
        if rule.semantics == "finite" and backend_rule is None:
            return component_from_raw(m, info, progression_automaton(m, formula, index))
        frag = fragment(formula) if rule.semantics == "infinite" else "finite"
        if frag == "both":
            frag = "safety"
        info = RuleInfo(info.name, info.kind, info.semantics, info.penalty, info.source, frag)
        if backend_rule is not None:
            return component_from_raw(m, info, backend_rule(m, rule, info, props))
        if frag == "general":
            pos = rule.pos
            raise BackendUnavailable(
                f"{_where(pos)}rule `{rule.name}`: `{info.source}` is neither a safety nor a "
                "guarantee formula, so the native backend cannot monitor it exactly under "
                "infinite-trace semantics; install the Spot backend "
                "(pip install 'safeguards[spot]') and use --backend spot, or use finite semantics")
        target = formula if frag == "safety" else negate(formula)
        return component_from_raw(m, info, progression_automaton(m, target, index))
    if rule.kind in ("never", "match"):
        assert isinstance(rule.body, ast.Regex)
        return component_from_raw(m, info, regex_automaton(m, rule.body, index,
                                                           never=rule.kind == "never"))
    assert isinstance(rule.body, ast.Machine)
    raw, names = machine_automaton(m, rule.body, index, list(props))
    if rule.semantics == "infinite":
        if rule.body.accepting is not None:
            raise SpecError(f"rule `{rule.name}`: `accepting` states need finite semantics",
                            line=rule.pos.line if rule.pos else None,
                            column=rule.pos.column if rule.pos else None,
                            file=rule.pos.file if rule.pos else None,
                            hint="under infinite semantics a machine is a safety monitor: its "
                                 "violation states are the bad ones")
        info = RuleInfo(info.name, info.kind, info.semantics, info.penalty, info.source, "safety")
    return component_from_raw(m, info, raw, names)


def _where(pos: ast.Pos | None) -> str:
    if pos is None:
        return ""
    return f"{pos.file or '<input>'}:{pos.line}:{pos.column}: "


@dataclass
class Product:
    """The spec's automaton: transitions, per-state verdicts, acceptance and component states."""

    aut: RawAutomaton
    verdicts: list[Verdict]
    components: list[tuple[int, ...] | None]   # None for the violation sink
    sink: int | None


def product(m: MTBDD, components: Sequence[Component]) -> Product:
    """Reachable product of the components; states violating the conjunction become one sink.

    Components that share their automaton (identical rules) are multiplied once."""
    if any(c.info.fragment == "general" for c in components) and len(components) > 1 \
            and not any(c.info.semantics == "finite" for c in components):
        raise SpecError("a conjunction of several infinite-semantics rules that are neither "
                        "safety nor guarantee formulas cannot be monitored exactly rule by "
                        "rule", hint="write them as one `ltl` rule joined with `&`")
    slots: dict[int, int] = {}
    distinct: list[Component] = []
    for c in components:
        if slots.setdefault(id(c.aut), len(distinct)) == len(distinct):
            distinct.append(c)
    result = _product(m, distinct)
    if len(distinct) < len(components):
        where = [slots[id(c.aut)] for c in components]
        result.components = [None if s is None else tuple(s[k] for k in where)
                             for s in result.components]
    return result


def _product(m: MTBDD, components: Sequence[Component]) -> Product:
    finite = [c.info.semantics == "finite" for c in components]

    def successors(state: tuple[int, ...]) -> int:
        result = m.terminal(())
        for i, q in enumerate(state):
            result = m.apply(_append, result, components[i].aut.trans[q])
        return result

    start = tuple(0 for _ in components)
    raw = explore(m, start, successors, lambda state: True)
    states: list[tuple[int, ...]] = raw.keys  # type: ignore[assignment]
    comp_verdicts = [[components[i].verdicts[q] for i, q in enumerate(s)] for s in states]
    succ = [m.terminals(t) for t in raw.trans]

    def end_ok(k: int) -> bool:
        return all((components[i].aut.accepting[q] if finite[i]
                    else comp_verdicts[k][i] != Verdict.VIOLATED)
                   for i, q in enumerate(states[k]))

    n = len(states)
    if any(finite):
        hopeful = backward_reach(succ, [k for k in range(n) if end_ok(k)])
    else:
        fine = {k for k in range(n) if Verdict.VIOLATED not in comp_verdicts[k]}
        settled = {k for k in fine if all(v == Verdict.SATISFIED
                                          for i, v in enumerate(comp_verdicts[k])
                                          if components[i].info.fragment == "guarantee")}
        hopeful = backward_reach(succ, cyclic_states(succ, settled), within=fine)
    accepting = [end_ok(k) for k in range(n)]
    verdicts = []
    for k in range(n):
        if k not in hopeful:
            verdicts.append(Verdict.VIOLATED)
        elif all(v == Verdict.SATISFIED for v in comp_verdicts[k]):
            verdicts.append(Verdict.SATISFIED)
        elif all(not f for f in finite):
            verdicts.append(Verdict.INCONCLUSIVE)
        else:
            verdicts.append(Verdict.PRESUMABLY_SATISFIED if accepting[k]
                            else Verdict.PRESUMABLY_VIOLATED)
    # Merge the violated states into one sink, numbered after the others.
    keep = [k for k in range(n) if verdicts[k] != Verdict.VIOLATED]
    new_id = {k: i for i, k in enumerate(keep)}
    sink = len(keep) if len(keep) < n else None
    mapping = {k: new_id.get(k, sink) for k in range(n)}
    trans = [m.map_with(mapping, raw.trans[k]) for k in keep]
    if sink is not None:
        trans.append(m.terminal(sink))
    result = RawAutomaton(trans, [accepting[k] for k in keep] + ([False] if sink is not None
                                                                  else []))
    return Product(result, [verdicts[k] for k in keep] + ([Verdict.VIOLATED] if sink is not None
                                                          else []),
                   [states[k] for k in keep] + ([None] if sink is not None else []), sink)


def _append(t: tuple[int, ...], q: int) -> tuple[int, ...]:
    return t + (q,)

