"""The compiled safeguard: a deterministic, complete monitor automaton with verdicts.

Letters are *classes of valuations*: two valuations of the propositions are in the same class when
every state moves the same way on both.  A small decision diagram (the classifier) maps a set of
true propositions to its class, so a spec over 32 propositions needs neither a ``2^32`` table nor
``2^32`` letters.  ``table[state, letter]`` is the dense transition table.

>>> import safeguards
>>> sg = safeguards.compile_ltl("G(request -> F grant)")
>>> q = sg.step(sg.initial, {"request"})
>>> sg.verdict(q), sg.verdict(sg.step(q, {"grant"}))
(<Verdict.PRESUMABLY_VIOLATED: 'presumably_violated'>, <Verdict.PRESUMABLY_SATISFIED: 'presumably_satisfied'>)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence, cast

import numpy as np

from safeguards.automata.analysis import Verdict, distances_to
from safeguards.automata.build import RuleInfo
from safeguards.automata.guards import bdd_to_formula
from safeguards.automata.mtbdd import MTBDD
from safeguards.errors import TraceError, did_you_mean
from safeguards.spec import ast
from safeguards.spec.depth import deep_recursion

__all__ = ["Safeguard", "Monitor", "StepResult", "Valuation"]

Valuation = Iterable[str] | Mapping[str, bool]
_CACHE_LIMIT = 1 << 16


@dataclass(frozen=True)
class StepResult:
    """What one monitored step produced."""

    step: int
    state: int
    verdict: Verdict
    violated_rules: frozenset[str]
    accepting: bool


class Safeguard:
    """A deterministic monitor over valuations of ``props``; see the module docstring.

    Build one with :func:`safeguards.compile`; the constructor takes the raw arrays.
    """

    def __init__(self, *, props: Sequence[str], classifier: tuple[Sequence[int], Sequence[int],
                 Sequence[int], int], table: np.ndarray, accepting: Sequence[bool],
                 verdicts: Sequence[Verdict], rules: Sequence[RuleInfo],
                 components: Sequence[tuple[int, ...] | None] | None = None,
                 parts: Sequence["Safeguard"] = (), name: str = "safeguard",
                 description: str = "", prop_docs: Mapping[str, str] | None = None,
                 semantics: str = "finite", state_names: Sequence[str] | None = None) -> None:
        self.props: tuple[str, ...] = tuple(props)
        self.prop_docs: dict[str, str] = dict(prop_docs or {p: "" for p in self.props})
        self.name = name
        self.description = description
        self.rules: tuple[RuleInfo, ...] = tuple(rules)
        self.semantics = semantics
        self.table = np.ascontiguousarray(table, dtype=np.int32)
        self.accepting = np.asarray(accepting, dtype=bool)
        self.verdicts: tuple[Verdict, ...] = tuple(Verdict(v) for v in verdicts)
        self.components = list(components) if components is not None else None
        self.parts: tuple[Safeguard, ...] = tuple(parts)
        self.state_names: tuple[str, ...] = (tuple(state_names) if state_names is not None
                                             else tuple(str(q) for q in range(len(self.verdicts))))
        node_var, node_low, node_high, root = classifier
        self.classifier = (list(node_var), list(node_low), list(node_high), int(root))
        self._names_of_nodes = [self.props[v] for v in node_var]
        self._rows: list[list[int]] = self.table.tolist()
        self._prop_set = frozenset(self.props)
        self._letter_cache: dict[frozenset[str], int] = {}
        self._dist_violation: list[int] | None = None
        self._dist_acceptance: list[int] | None = None
        self._classifier_diagram: tuple[MTBDD, int] | None = None
        self._examples: list[frozenset[str]] | None = None

    # -- basic facts ---------------------------------------------------------------------------
    @property
    def initial(self) -> int:
        """The state before any step (always 0)."""
        return 0

    @property
    def n_states(self) -> int:
        return self.table.shape[0]

    @property
    def n_letters(self) -> int:
        return self.table.shape[1]

    @property
    def violation_state(self) -> int | None:
        """The violation sink, if the spec can be violated."""
        for q, v in enumerate(self.verdicts):
            if v == Verdict.VIOLATED:
                return q
        return None

    def verdict(self, state: int) -> Verdict:
        """The verdict of ``state``."""
        return self.verdicts[state]

    def is_accepting(self, state: int) -> bool:
        """Would the trace be accepted if it ended in ``state``?"""
        return bool(self.accepting[state])

    def __eq__(self, other: object) -> bool:
        """Same propositions, rules, states, verdicts and transitions (so a copy equals its
        original, e.g. when Gymnasium re-makes an env from its spec)."""
        if not isinstance(other, Safeguard):
            return NotImplemented
        return (self.props == other.props and self.rules == other.rules
                and self.verdicts == other.verdicts and self.classifier == other.classifier
                and np.array_equal(self.table, other.table)
                and np.array_equal(self.accepting, other.accepting)
                and self.state_names == other.state_names)

    def __hash__(self) -> int:
        return hash((self.props, self.rules, self.n_states, self.n_letters))

    def __repr__(self) -> str:
        return (f"<Safeguard {self.name!r}: {len(self.props)} props, {len(self.rules)} rules, "
                f"{self.n_states} states, {self.n_letters} letters>")

    # -- letters -------------------------------------------------------------------------------
    def letter(self, props: Valuation) -> int:
        """The letter class of a valuation: an iterable of true propositions or a ``{prop: bool}``
        map.  Unknown propositions are an error."""
        kind = type(props)
        key: frozenset[str]
        if kind is frozenset:
            key = cast(frozenset[str], props)
        elif kind is set or kind is list or kind is tuple:
            key = frozenset(props)
        elif isinstance(props, Mapping):
            unknown = props.keys() - self._prop_set
            if unknown:
                self._unknown(unknown)
            key = frozenset(p for p, value in props.items() if value)
        else:
            key = frozenset(props)
        letter = self._letter_cache.get(key)
        if letter is None:
            letter = self._classify(key)
        return letter

    def _classify(self, key: frozenset[str]) -> int:
        unknown = key - self._prop_set
        if unknown:
            self._unknown(unknown)
        names, low, high = self._names_of_nodes, self.classifier[1], self.classifier[2]
        node = self.classifier[3]
        while node >= 0:
            node = high[node] if names[node] in key else low[node]
        letter = -1 - node
        if len(self._letter_cache) >= _CACHE_LIMIT:
            self._letter_cache.clear()
        self._letter_cache[key] = letter
        return letter

    def _unknown(self, unknown: Iterable[str]) -> None:
        name = sorted(unknown, key=str)[0]
        raise TraceError(f"unknown proposition `{name}` (this safeguard has "
                         f"{', '.join(self.props) or 'no propositions'})",
                         hint=did_you_mean(str(name), self.props))

    def letters(self, valuations: Iterable[Valuation]) -> np.ndarray:
        """Letter classes of many valuations, as an ``int32`` array."""
        return np.fromiter((self.letter(v) for v in valuations), dtype=np.int32)

    def letter_example(self, letter: int) -> frozenset[str]:
        """A valuation in the class ``letter`` (the one with fewest true propositions found)."""
        return self._letter_examples()[letter]

    def _letter_examples(self) -> list[frozenset[str]]:
        if self._examples is None:
            self._examples = self._find_letter_examples()
        return self._examples

    def _find_letter_examples(self) -> list[frozenset[str]]:
        examples: dict[int, frozenset[str]] = {}
        m, root = self._diagram()
        for cube, letter in m.paths(root):
            true = frozenset(self.props[v] for v, value in cube.items() if value)
            if letter not in examples or len(true) < len(examples[letter]):
                examples[letter] = true
        return [examples[i] for i in range(self.n_letters)]

    def _diagram(self) -> tuple[MTBDD, int]:
        """The classifier as a decision diagram with letter terminals (built once)."""
        if self._classifier_diagram is None:
            self._classifier_diagram = self._build_diagram()
        return self._classifier_diagram

    @deep_recursion()
    def _build_diagram(self) -> tuple[MTBDD, int]:
        m = MTBDD(len(self.props))
        node_var, low, high, root = self.classifier
        memo: dict[int, int] = {}

        def build(node: int) -> int:
            if node < 0:
                return m.terminal(-1 - node)
            if node not in memo:
                memo[node] = m.node(node_var[node], build(low[node]), build(high[node]))
            return memo[node]
        return m, build(root)

    def letter_guard(self, letter: int) -> ast.Formula:
        """A Boolean formula describing the valuations of a letter class."""
        return self.guard_of_letters([letter])

    def guard_of_letters(self, letters: Iterable[int]) -> ast.Formula:
        """A Boolean formula for the union of some letter classes."""
        wanted = set(letters)
        m, root = self._diagram()
        membership = {letter: letter in wanted for letter in range(self.n_letters)}
        return bdd_to_formula(m, m.map_with(membership, root), self.props)

    # -- stepping ------------------------------------------------------------------------------
    def step(self, state: int, props: Valuation) -> int:
        """The state after reading one valuation (the label of the state the environment reached).
        """
        return self._rows[state][self.letter(props)]

    def step_letter(self, state: int, letter: int) -> int:
        """The state after reading a letter class."""
        return self._rows[state][letter]

    def step_batch(self, states: np.ndarray, letters: np.ndarray) -> np.ndarray:
        """Step many monitors at once (vectorised table lookup)."""
        return self.table[states, letters]

    def run(self, trace: Iterable[Valuation], state: int | None = None) -> list[int]:
        """The states after each step of ``trace`` (starting from ``state``, default initial)."""
        current = self.initial if state is None else state
        states = []
        for props in trace:
            current = self._rows[current][self.letter(props)]
            states.append(current)
        return states

    def accepts(self, trace: Iterable[Valuation]) -> bool:
        """Does the whole finite trace satisfy the spec?  (The empty trace is judged by the
        initial state: weak operators hold on it, strong ones and propositions do not.)"""
        states = self.run(trace)
        return self.is_accepting(states[-1] if states else self.initial)

    def step_violations(self, state: int, props: Valuation) -> frozenset[str]:
        """Names of the rules that this step violates (empty unless it enters the violation
        state).  When rules are only jointly unsatisfiable, the rules not yet satisfied are named.
        """
        target = self.step(state, props)
        if self.verdicts[target] != Verdict.VIOLATED or self.verdicts[state] == Verdict.VIOLATED:
            return frozenset()
        if not self.parts:
            return frozenset(r.name for r in self.rules)
        assert self.components is not None
        source = self.components[state]
        assert source is not None
        after = [part.step(q, props) for part, q in zip(self.parts, source)]
        broken = [rule.name for rule, part, q in zip(self.rules, self.parts, after)
                  if part.verdicts[q] == Verdict.VIOLATED]
        if not broken:
            broken = [rule.name for rule, part, q in zip(self.rules, self.parts, after)
                      if part.verdicts[q] != Verdict.SATISFIED]
        return frozenset(broken)

    def pending_rules(self, state: int) -> frozenset[str]:
        """Rules whose obligations are unmet if the trace ended in ``state`` (finite semantics)."""
        states = None if self.components is None else self.components[state]
        if not self.parts or states is None:
            return frozenset() if self.is_accepting(state) else frozenset(r.name for r in self.rules)
        return frozenset(rule.name for rule, part, q in zip(self.rules, self.parts, states)
                         if not part.is_accepting(q))

    def monitor(self) -> "Monitor":
        """A stateful monitor that steps this safeguard one valuation at a time."""
        return Monitor(self)

    # -- analysis ------------------------------------------------------------------------------
    def successors(self, state: int) -> list[int]:
        """Distinct successor states of ``state``."""
        return list(dict.fromkeys(self._rows[state]))

    def _succ(self) -> list[list[int]]:
        return [self.successors(q) for q in range(self.n_states)]

    def distance_to_violation(self, state: int) -> int | None:
        """Fewest steps from ``state`` to the violation state (None if it cannot be reached)."""
        if self._dist_violation is None:
            bad = [q for q, v in enumerate(self.verdicts) if v == Verdict.VIOLATED]
            self._dist_violation = distances_to(self._succ(), bad)
        d = self._dist_violation[state]
        return None if d < 0 else d

    def distance_to_acceptance(self, state: int) -> int | None:
        """Fewest steps from ``state`` to an accepting state (0 if it accepts, None if never)."""
        if self._dist_acceptance is None:
            good = [q for q in range(self.n_states) if self.accepting[q]]
            self._dist_acceptance = distances_to(self._succ(), good)
        d = self._dist_acceptance[state]
        return None if d < 0 else d

    def shortest_path(self, targets: Iterable[int], start: int | None = None,
                      non_empty: bool = False) -> list[frozenset[str]] | None:
        """A shortest trace from ``start`` to a state in ``targets`` (valuations as sets)."""
        goal = set(targets)
        begin = self.initial if start is None else start
        if begin in goal and not non_empty:
            return []
        examples = self._letter_examples()
        parent: dict[int, tuple[int, int]] = {}
        queue = deque([begin])
        seen = set() if non_empty else {begin}
        while queue:
            q = queue.popleft()
            for letter, target in enumerate(self._rows[q]):
                if target in seen:
                    continue
                seen.add(target)
                parent[target] = (q, letter)
                if target in goal:
                    path = []
                    node = target
                    while True:
                        source, via = parent[node]
                        path.append(examples[via])
                        node = source
                        if node == begin and (not non_empty or len(path) > 0):
                            break
                    return path[::-1]
                queue.append(target)
        return None

    def shortest_violation(self, start: int | None = None) -> list[frozenset[str]] | None:
        """A shortest trace that violates the spec (None if none can)."""
        bad = [q for q, v in enumerate(self.verdicts) if v == Verdict.VIOLATED]
        return self.shortest_path(bad, start)

    def shortest_satisfaction(self, start: int | None = None) -> list[frozenset[str]] | None:
        """A shortest non-empty trace that the spec accepts (None if none)."""
        good = [q for q in range(self.n_states) if self.accepting[q]]
        return self.shortest_path(good, start, non_empty=True)

    # -- views ---------------------------------------------------------------------------------
    @deep_recursion()
    def edge_guards(self, state: int) -> list[tuple[int, ast.Formula]]:
        """Successors of ``state`` with the Boolean guard that leads to each."""
        row = self._rows[state]
        targets = list(dict.fromkeys(row))
        if len(targets) == 1:
            return [(targets[0], ast.Const(True))]
        m, root = self._diagram()
        successor = m.map_with(dict(enumerate(row)), root)
        return [(t, bdd_to_formula(m, m.map_with({x: x == t for x in targets}, successor),
                                   self.props)) for t in targets]

    def to_networkx(self) -> Any:
        """A ``networkx.MultiDiGraph``: node attributes ``verdict`` and ``accepting``, one edge per
        successor with attributes ``guard`` (a formula), ``label`` (its text) and ``letters``."""
        import networkx as nx

        graph = nx.MultiDiGraph(name=self.name, props=self.props)
        for q in range(self.n_states):
            graph.add_node(q, verdict=self.verdicts[q].value, accepting=self.is_accepting(q),
                           initial=q == self.initial)
        for q in range(self.n_states):
            letters: dict[int, list[int]] = {}
            for letter, target in enumerate(self._rows[q]):
                letters.setdefault(target, []).append(letter)
            for target, guard in self.edge_guards(q):
                graph.add_edge(q, target, guard=guard, label=str(guard),
                               letters=tuple(letters[target]))
        return graph

    # -- input / output ------------------------------------------------------------------------
    def to_json(self) -> str:
        """This safeguard as versioned JSON (see :mod:`safeguards.automata.io_json`)."""
        from safeguards.automata.io_json import to_json

        return to_json(self)

    @classmethod
    def from_json(cls, text: str) -> "Safeguard":
        """Load a safeguard written by :meth:`to_json`."""
        from safeguards.automata.io_json import from_json

        return from_json(text)

    def to_hoa(self) -> str:
        """HOA v1 text (readable by Spot) with the verdicts in a ``safeguards-verdicts`` header."""
        from safeguards.automata.io_hoa import to_hoa

        return to_hoa(self)

    @classmethod
    def from_hoa(cls, text: str, *, semantics: str | None = None) -> "Safeguard":
        """Import a deterministic automaton in HOA v1 (as Spot writes them)."""
        from safeguards.automata.io_hoa import from_hoa

        return from_hoa(text, semantics=semantics)

    def to_dot(self) -> str:
        """Graphviz DOT text of the automaton."""
        from safeguards.automata.io_dot import to_dot

        return to_dot(self)

    def render(self, path: Any, format: str | None = None) -> Any:
        """Draw the automaton to PNG/SVG (needs Graphviz); the format defaults to the suffix."""
        from safeguards.automata.io_dot import render

        return render(self, path, format)

    # -- construction --------------------------------------------------------------------------
    @classmethod
    @deep_recursion()
    def from_diagrams(cls, m: MTBDD, trans: Sequence[int], **kwargs: Any) -> "Safeguard":
        """Build from per-state transition diagrams (terminals = successor ids)."""
        pair_ids: dict[tuple[int, int], int] = {}

        def combine(cls_id: int, target: int) -> int:
            return pair_ids.setdefault((cls_id, target), len(pair_ids))

        joint = m.terminal(-1)
        for diagram in trans:
            joint = m.apply(combine, joint, diagram)
        # Renumber classes 0..k-1 in the order the diagram's paths meet them.
        order: dict[int, int] = {}
        cubes: list[dict[int, bool]] = []
        for cube, cls_id in m.first_paths(joint):
            order[cls_id] = len(order)
            cubes.append(cube)
        classifier = m.map_with(order, joint)
        n_vars = m.n_vars
        table = np.empty((len(trans), len(order)), dtype=np.int32)
        for letter, cube in enumerate(cubes):
            valuation = [cube.get(v, False) for v in range(n_vars)]
            for q, diagram in enumerate(trans):
                table[q, letter] = m.evaluate(diagram, valuation)
        return cls(classifier=_export_classifier(m, classifier), table=table, **kwargs)


def _export_classifier(m: MTBDD, root: int) -> tuple[list[int], list[int], list[int], int]:
    """Flatten a diagram with letter terminals into arrays; terminals are encoded as ``-1-letter``."""
    ids: dict[int, int] = {}
    node_var: list[int] = []
    low: list[int] = []
    high: list[int] = []

    def visit(node: int) -> int:
        if m.is_terminal(node):
            return -1 - m.value(node)
        if node not in ids:
            ids[node] = len(node_var)
            node_var.append(m.top(node))
            low.append(0)
            high.append(0)
            i = ids[node]
            low[i] = visit(m.low(node))
            high[i] = visit(m.high(node))
        return ids[node]

    root_id = visit(root)
    return node_var, low, high, root_id


class Monitor:
    """Steps a safeguard through a trace and reports verdicts and violated rules.

    >>> import safeguards
    >>> mon = safeguards.compile_ltl("G !lava").monitor()
    >>> mon.step({"lava"}).violated_rules
    frozenset({'formula'})
    """

    def __init__(self, safeguard: Safeguard) -> None:
        self.safeguard = safeguard
        self.state = safeguard.initial
        self.steps = 0

    def reset(self) -> None:
        self.state = self.safeguard.initial
        self.steps = 0

    def step(self, props: Valuation) -> StepResult:
        sg = self.safeguard
        violated = sg.step_violations(self.state, props)
        self.state = sg.step(self.state, props)
        result = StepResult(self.steps, self.state, sg.verdict(self.state), violated,
                            sg.is_accepting(self.state))
        self.steps += 1
        return result

    @property
    def verdict(self) -> Verdict:
        return self.safeguard.verdict(self.state)
