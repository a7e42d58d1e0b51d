"""Saving, loading, exchanging and drawing safeguards (``safeguards.automata.io``).

* JSON round trips keep every array and the behaviour on random traces; bad documents raise
  :class:`SpecError` with a message naming the bad value.
* HOA export -> :func:`from_hoa` accepts the same language (checked on the product of both
  automata over all valuations); Spot parses our HOA and its automaton accepts the same finite
  words; Spot's monitors and LTLf DFAs import with the expected language.
* Malformed / non-deterministic HOA is located (line, column, caret) and only SpecError escapes.
* DOT text has the documented shapes and colours; ``render`` writes files atomically.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest

import safeguards
from safeguards import BackendUnavailable, SpecError, Verdict
from safeguards.automata.io import (
    from_dict, from_hoa, from_json, render, to_dict, to_dot, to_hoa, to_json,
)
from safeguards.automata.explicit import from_edges
from safeguards.spec.parser import parse_boolean

SPECS = Path(__file__).resolve().parents[1] / "specs"
MINECRAFT = sorted((SPECS / "minecraft").glob("*.sg"))

MULTI = """
spec two "Two rules with different semantics."
props:
    a "a"
    b "b"
    c "c"
rule r1: ltl G(a -> X b)
rule r2 (semantics = infinite): ltl G !c
rule r3 (semantics = infinite, penalty = 2.5): ltl F a
"""

FORMULAS = ["G !lava", "G(a -> X b)", "a U b", "F(a & X[!] b)", "G(request -> F grant)",
            "(a W b) & G(c -> X !c)"]


def _safeguards():
    out = [safeguards.compile_ltl(f) for f in FORMULAS]
    out += [safeguards.compile_ltl("G(a -> X b)", semantics="infinite"),
            safeguards.compile_ltl("F a", semantics="infinite")]
    out += [safeguards.compile(p) for p in MINECRAFT]
    out.append(safeguards.compile(MULTI))
    return out


ALL = _safeguards()
IDS = [f"{sg.name}:{i}" for i, sg in enumerate(ALL)]


def _valuations(props):
    return [frozenset(c) for r in range(len(props) + 1) for c in itertools.combinations(props, r)]


def _random_trace(rng, props, max_len=12):
    return [frozenset(p for p in props if rng.random() < 0.4)
            for _ in range(rng.randint(0, max_len))]


def assert_same_language(x, y, *, skip_empty=False, verdicts=True):
    """Step both automata over every valuation from every reachable state pair."""
    assert set(x.props) == set(y.props)
    valuations = _valuations(sorted(x.props))
    start = (x.initial, y.initial)
    if skip_empty:   # the empty trace is not compared (Spot's finite automata reject it)
        frontier = {(x.step(start[0], v), y.step(start[1], v)) for v in valuations}
    else:
        frontier = {start}
    seen = set(frontier)
    queue = deque(frontier)
    while queue:
        p, q = queue.popleft()
        assert x.is_accepting(p) == y.is_accepting(q), (p, q)
        if verdicts:
            assert x.verdict(p) == y.verdict(q), (p, q)
        for v in valuations:
            pair = (x.step(p, v), y.step(q, v))
            if pair not in seen:
                seen.add(pair)
                queue.append(pair)
    return len(seen)


# -------------------------------------------------------------------------------------------------
# JSON


@pytest.mark.parametrize("sg", ALL, ids=IDS)
def test_json_round_trip_keeps_everything(sg):
    text = to_json(sg)
    back = from_json(text)
    assert back.props == sg.props and back.prop_docs == sg.prop_docs
    assert (back.name, back.description, back.semantics) == (sg.name, sg.description,
                                                               sg.semantics)
    assert back.rules == sg.rules
    assert back.classifier == sg.classifier
    assert back.table.dtype == np.int32 and np.array_equal(back.table, sg.table)
    assert np.array_equal(back.accepting, sg.accepting)
    assert back.verdicts == sg.verdicts
    assert back.components == sg.components
    assert back.state_names == sg.state_names
    assert len(back.parts) == len(sg.parts)
    for mine, theirs in zip(back.parts, sg.parts):
        assert np.array_equal(mine.table, theirs.table) and mine.verdicts == theirs.verdicts
    assert to_json(back) == text   # stable
    json.loads(text)               # plain JSON

    rng = random.Random(1)
    for _ in range(100):
        trace = _random_trace(rng, sg.props)
        assert back.run(trace) == sg.run(trace)
        assert back.accepts(trace) == sg.accepts(trace)
        state = sg.initial
        for props in trace:
            assert back.step_violations(state, props) == sg.step_violations(state, props)
            state = sg.step(state, props)


def test_json_multi_rule_keeps_parts_and_components():
    sg = ALL[-1]
    assert len(sg.parts) == 3
    doc = to_dict(sg)
    assert doc["format"] == "safeguards-automaton" and doc["version"] == 1
    assert len(doc["parts"]) == 3 and "format" not in doc["parts"][0]
    assert doc["rules"][2]["penalty"] == 2.5
    back = from_dict(doc)
    assert back.pending_rules(0) == sg.pending_rules(0)


def _doc():
    return to_dict(safeguards.compile(MULTI))


def _bad(mutate):
    doc = _doc()
    mutate(doc)
    with pytest.raises(SpecError) as info:
        from_json(json.dumps(doc))
    return str(info.value)


def test_json_state_names_optional_and_checked():
    doc = _doc()
    names = doc.pop("state_names")
    assert names[-1] == "violated"
    assert from_dict(doc).state_names == tuple(str(q) for q in range(len(names)))
    assert "$.state_names: expected 4 entries (one per state), got 1" in _bad(
        lambda d: d.update(state_names=["x"]))


def test_json_wrong_version():
    message = _bad(lambda d: d.update(version=2))
    assert "unsupported safeguards-automaton version 2" in message
    assert "reads version 1" in message


def test_json_wrong_format_and_not_an_object():
    assert "not a safeguards automaton" in _bad(lambda d: d.update(format="other"))
    assert "not a safeguards automaton" in _bad(lambda d: d.pop("format"))
    with pytest.raises(SpecError, match="expected a JSON object"):
        from_json("[1, 2]")
    with pytest.raises(SpecError, match="expected an integer"):
        from_json('{"format": "safeguards-automaton", "version": "1"}')


def test_json_missing_key():
    assert "missing key `table`" in _bad(lambda d: d.pop("table"))
    assert "$.rules[0]: missing key `penalty`" in _bad(lambda d: d["rules"][0].pop("penalty"))
    assert "$.parts[1]: missing key `verdicts`" in _bad(lambda d: d["parts"][1].pop("verdicts"))


def test_json_table_out_of_range():
    def mutate(d):
        d["table"][1][0] = 99
    message = _bad(mutate)
    assert "$.table[1][0]: successor state 99 out of range (0..3)" in message


def test_json_other_shape_errors():
    def ragged(d):
        d["table"][0].append(0)
    assert "$.table[1]: expected 6 entries (one per letter), got 5" in _bad(ragged)
    assert "unknown verdict `maybe`" in _bad(lambda d: d["verdicts"].__setitem__(0, "maybe"))
    assert "$.accepting: expected 4 entries (one per state), got 3" in _bad(
        lambda d: d.update(accepting=[True] * 3))
    assert "expected true or false" in _bad(lambda d: d["accepting"].__setitem__(0, 1))
    assert "letter 17 (encoded -18) out of range" in _bad(
        lambda d: d["classifier"].__setitem__("root", -18))
    assert "unknown key `colour`" in _bad(lambda d: d.update(colour="red"))
    assert "unknown semantics `eventual`" in _bad(lambda d: d.update(semantics="eventual"))
    assert "duplicate proposition `a`" in _bad(lambda d: d["props"].__setitem__(1, "a"))
    assert "part state 9 out of range" in _bad(lambda d: d["components"].__setitem__(0, [9, 0, 0]))

    def cyclic(d):
        d["classifier"]["low"][0] = 0
    assert "strictly increase" in str(pytest.raises(SpecError, from_dict,
                                                    _mutated(cyclic)).value)


def _mutated(mutate):
    doc = _doc()
    mutate(doc)
    return doc


def test_json_syntax_error_is_located():
    text = to_json(ALL[0])
    broken = text.replace('"props": ', '"props" ', 1)
    with pytest.raises(SpecError) as info:
        from_json(broken)
    error = info.value
    assert error.message.startswith("invalid JSON")
    assert error.line == broken[:broken.index('"props" ')].count("\n") + 1
    assert "^" in str(error)


def test_json_random_corruption_only_raises_spec_error():
    rng = random.Random(7)
    base = _doc()
    junk = [None, True, -1, 0, 10**6, 1.5, "x", [], {}, [[0]], {"var": []}]

    def paths(node, prefix=()):
        yield prefix
        if isinstance(node, dict):
            for key, value in node.items():
                yield from paths(value, prefix + (key,))
        elif isinstance(node, list):
            for i, value in enumerate(node[:4]):
                yield from paths(value, prefix + (i,))

    all_paths = [p for p in paths(base) if p]
    loaded = 0
    for _ in range(400):
        doc = json.loads(json.dumps(base))
        path = rng.choice(all_paths)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = rng.choice(junk)
        try:
            from_dict(doc)
            loaded += 1
        except SpecError as error:
            assert error.message
    assert loaded < 400


# -------------------------------------------------------------------------------------------------
# HOA


@pytest.mark.parametrize("sg", ALL, ids=IDS)
def test_hoa_round_trip_same_language(sg):
    text = to_hoa(sg)
    back = from_hoa(text)
    assert back.props == sg.props and back.name == sg.name and back.semantics == sg.semantics
    assert back.description == sg.description
    assert_same_language(sg, back)
    if back.n_states == sg.n_states:   # nothing merged: the states keep their names
        assert back.state_names == sg.state_names


def test_hoa_state_names_survive_the_round_trip():
    sg = safeguards.compile(MINECRAFT[3])
    assert 'State: 0 "q0" {0}' in to_hoa(sg)
    assert from_hoa(to_hoa(sg)).state_names == ("q0", "q1", "q2", "q3", "q4", "violated")


def test_hoa_header_lines():
    sg = safeguards.compile(MINECRAFT[0])
    text = to_hoa(sg)
    head = text.split("--BODY--")[0].splitlines()
    assert head[0] == "HOA: v1"
    assert 'name: "minecraft_safeguard0"' in head
    assert "Start: 0" in head and f"States: {sg.n_states}" in head
    assert 'AP: 7 "wood" "iron" "work_bench" "smith_table" "creeper" "basalt_lava" "diamond"' \
        in head
    assert "acc-name: Buchi" in head and "Acceptance: 1 Inf(0)" in head
    assert "properties: trans-labels explicit-labels state-acc deterministic complete" in head
    assert 'safeguards-verdicts: "presumably_satisfied" "violated"' in head


def test_hoa_keeps_infinite_and_mixed_verdicts():
    sg = safeguards.compile_ltl("G(a -> X b)", semantics="infinite")
    assert Verdict.INCONCLUSIVE in sg.verdicts
    back = from_hoa(to_hoa(sg))
    assert back.semantics == "infinite" and back.verdicts == sg.verdicts
    mixed = ALL[-1]
    back = from_hoa(to_hoa(mixed))
    assert back.semantics == "mixed"
    assert_same_language(mixed, back)
    # Explicit semantics wins over the header; finite verdicts follow from the automaton.
    finite = from_hoa(to_hoa(sg), semantics="finite")
    assert finite.semantics == "finite" and Verdict.INCONCLUSIVE not in finite.verdicts


def test_hoa_keeps_ltl3_verdicts_of_the_spot_backend():
    pytest.importorskip("spot")
    sg = safeguards.compile_ltl("G(a -> F b) & G !c", semantics="infinite", backend="spot")
    assert Verdict.INCONCLUSIVE in sg.verdicts
    back = from_hoa(to_hoa(sg))
    assert back.verdicts == sg.verdicts and np.array_equal(back.table, sg.table)
    assert from_json(to_json(sg)).verdicts == sg.verdicts


def test_hoa_inconsistent_verdicts_are_not_kept():
    sg = safeguards.compile_ltl("G(a -> X b)", semantics="infinite")
    text = to_hoa(sg).replace('"violated"', '"satisfied"')   # a rejecting sink called satisfied
    back = from_hoa(text)
    assert Verdict.SATISFIED not in back.verdicts
    assert back.verdict(back.run([{"a"}, set()])[-1]) == Verdict.VIOLATED


def _formula_eval(spot, f, true):
    kind = f.kind()
    if kind == spot.op_tt:
        return True
    if kind == spot.op_ff:
        return False
    if kind == spot.op_ap:
        return f.ap_name() in true
    if kind == spot.op_Not:
        return not _formula_eval(spot, f[0], true)
    if kind == spot.op_And:
        return all(_formula_eval(spot, g, true) for g in f)
    if kind == spot.op_Or:
        return any(_formula_eval(spot, g, true) for g in f)
    raise AssertionError(f"unexpected operator in a label: {f}")


class _SpotRunner:
    """Runs a Spot automaton over finite words, edge by edge (state-based acceptance)."""

    def __init__(self, spot, aut):
        self.spot, self.aut = spot, aut
        d = aut.get_dict()
        self.out = {s: [(spot.bdd_to_formula(e.cond, d), e.dst) for e in aut.out(s)]
                    for s in range(aut.num_states())}

    def accepts(self, word):
        state = self.aut.get_init_state_number()
        for true in word:
            for label, dst in self.out[state]:
                if _formula_eval(self.spot, label, true):
                    state = dst
                    break
            else:
                return False
        return bool(self.aut.state_is_accepting(state))


@pytest.mark.parametrize("sg", ALL, ids=IDS)
def test_spot_reads_our_hoa_and_accepts_the_same_words(sg):
    spot = pytest.importorskip("spot")
    aut = spot.automaton(to_hoa(sg))
    assert aut.num_states() == sg.n_states
    assert [str(ap) for ap in aut.ap()] == list(sg.props)
    assert aut.is_deterministic() and spot.is_complete(aut)
    assert aut.get_name() == sg.name
    runner = _SpotRunner(spot, aut)
    rng = random.Random(3)
    words = [_random_trace(rng, sg.props, 10) for _ in range(150)] + [[]]
    for word in words:
        assert runner.accepts(word) == sg.accepts(word), word


def test_import_spot_monitor():
    spot = pytest.importorskip("spot")
    text = spot.translate("G(a -> X !b)", "monitor", "det").to_str("hoa")
    assert "Acceptance: 0 t" in text
    sg = from_hoa(text)
    assert sg.props == ("a", "b")
    ours = safeguards.compile_ltl("G(a -> X !b)")
    assert_same_language(sg, ours)
    assert sg.verdict(sg.run([{"a"}, {"b"}])[-1]) == Verdict.VIOLATED


def test_import_spot_monitor_under_infinite_semantics():
    spot = pytest.importorskip("spot")
    text = spot.translate("G(a -> X !b)", "monitor", "det").to_str("hoa")
    sg = from_hoa(text, semantics="infinite")
    assert sg.semantics == "infinite"
    assert sg.verdict(sg.initial) == Verdict.INCONCLUSIVE
    assert sg.verdict(sg.run([{"a"}, {"b"}])[-1]) == Verdict.VIOLATED
    with pytest.raises(SpecError, match="needs consistent `safeguards-verdicts:`"):
        from_hoa(text, semantics="mixed")
    with pytest.raises(SpecError, match="unknown semantics"):
        from_hoa(text, semantics="eventually")


@pytest.mark.parametrize("formula", ["a U b", "G(a -> X b)", "F(a & X[!] !b)", "G(a -> F b)",
                                     "(a W b) & F c"])
def test_import_spot_ltlf_dfa(formula):
    spot = pytest.importorskip("spot")
    aut = spot.to_finite(spot.translate(spot.from_ltlf(formula), "det", "sbacc"))
    imported = from_hoa(aut.to_str("hoa"))
    ours = safeguards.compile_ltl(formula)
    # Spot's LTLf automata reject the empty word; compare all non-empty traces.
    assert_same_language(imported, ours, skip_empty=True, verdicts=False)
    runner = _SpotRunner(spot, aut)
    rng = random.Random(5)
    for _ in range(100):
        word = _random_trace(rng, ours.props, 8) or [frozenset()]
        assert runner.accepts(word) == ours.accepts(word) == imported.accepts(word)


def test_import_transition_based_acceptance():
    # Accept iff the last letter has `a`, with the mark on the transitions.
    text = """HOA: v1
States: 1
Start: 0
AP: 1 "a"
Acceptance: 1 Inf(0)
--BODY--
State: 0
[0] 0 {0}
[!0] 0
--END--
"""
    sg = from_hoa(text)
    assert not sg.accepts([])
    assert sg.accepts([{"a"}]) and not sg.accepts([{"a"}, set()])
    assert sg.accepts([set(), {"a"}])


def test_import_state_marks_implicit_labels_aliases_comments():
    # Accept traces ending in a state reached by `a & !b` (implicit labels: 0, a, b, a&b).
    text = """HOA: v1 /* a /* nested */ comment */
States: 2 Start: 0 AP: 2 "a" "b"
Alias: @ab 0&1
Acceptance: 1 Inf(0)
--BODY--
State: 0 "init"
0 1 0 0
State: 1 {0}
0 1 0 0
--END--"""
    sg = from_hoa(text)
    assert sg.accepts([{"a"}]) and not sg.accepts([{"a", "b"}]) and not sg.accepts([])
    alias = text.replace("0 1 0 0\nState: 1", "[!@ab & 0] 1 [!(0&!1)] 0\nState: 1")
    alias = alias.replace("0 1 0 0\n--END--", "[t] 0\n--END--")
    sg2 = from_hoa(alias)
    assert sg2.accepts([{"a"}]) and not sg2.accepts([{"a"}, {"a"}])


def test_import_incomplete_goes_to_rejecting_sink():
    text = """HOA: v1
States: 1
Start: 0
AP: 1 "ok"
Acceptance: 0 t
--BODY--
State: 0
[0] 0
--END--
"""
    sg = from_hoa(text)
    assert sg.accepts([{"ok"}, {"ok"}]) and not sg.accepts([{"ok"}, set()])
    assert sg.verdict(sg.step(0, set())) == Verdict.VIOLATED


def _hoa_error(text):
    with pytest.raises(SpecError) as info:
        from_hoa(text)
    return info.value


GOOD = """HOA: v1
States: 2
Start: 0
AP: 2 "a" "b"
Acceptance: 1 Inf(0)
--BODY--
State: 0
[0&!1] 1
[!0] 0
State: 1 {0}
[t] 1
--END--
"""


def test_hoa_malformed_label_is_located():
    error = _hoa_error(GOOD.replace("[0&!1] 1", "[0&!&1] 1"))
    assert error.line == 8 and error.column == 5
    assert "expected a label expression" in error.message
    shown = str(error)
    assert "[0&!&1] 1" in shown and "\n        ^" in shown


def test_hoa_ap_out_of_range_and_other_errors():
    error = _hoa_error(GOOD.replace("[!0] 0", "[!2] 0"))
    assert "atomic proposition 2 out of range" in error.message and error.line == 9
    assert "missing `Acceptance:`" in _hoa_error(GOOD.replace("Acceptance: 1 Inf(0)\n",
                                                              "")).message
    assert "`State:` before `--BODY--`" in _hoa_error(GOOD.replace("--BODY--\n", "")).message
    assert "nested too deeply" in _hoa_error(GOOD.replace("[t] 1", "[" + "!" * 5000 + "t] 1")
                                             ).message
    assert "unsupported acceptance condition" in _hoa_error(
        GOOD.replace("Inf(0)", "Fin(0)")).message
    assert "undefined alias `@x`" in _hoa_error(GOOD.replace("[t] 1", "[@x] 1")).message
    assert "empty input" in _hoa_error("").message
    assert "state 0 is defined twice" in _hoa_error(GOOD.replace("State: 1", "State: 0")).message
    assert "universal branching" in _hoa_error(GOOD.replace("[t] 1", "[t] 1&0")).message
    assert "state 5 out of range" in _hoa_error(GOOD.replace("[t] 1", "[t] 5")).message
    assert "unsupported HOA version" in _hoa_error(GOOD.replace("v1", "v2")).message
    assert "unterminated comment" in _hoa_error(GOOD + "/* oops").message
    assert "only one automaton" in _hoa_error(GOOD + GOOD).message
    assert "aborted" in _hoa_error(GOOD.replace("--END--", "--ABORT--")).message
    assert "acceptance set 3 out of range" in _hoa_error(GOOD.replace("{0}", "{3}")).message
    assert "`AP:` announces 3" in _hoa_error(GOOD.replace("AP: 2", "AP: 3")).message


def test_hoa_non_deterministic_rejected():
    text = GOOD.replace("[!0] 0", "[!1] 0")   # a&!b -> 1 and !b -> 0 overlap on a, !b
    error = _hoa_error(text)
    assert "not deterministic" in error.message
    assert "state 0 has two edges" in error.message and "a true; b false" in error.message
    assert error.line == 9
    two_starts = GOOD.replace("Start: 0\n", "Start: 0\nStart: 1\n")
    assert "not deterministic" in _hoa_error(two_starts).message


def test_hoa_garbage_only_raises_spec_error():
    rng = random.Random(11)
    text = to_hoa(safeguards.compile(MINECRAFT[3]))
    for cut in range(0, len(text), 7):   # every truncation (step 7)
        try:
            from_hoa(text[:cut])
        except SpecError as error:
            assert error.line is not None
    alphabet = "[]{}()!&|@\"t f0123456789 \n:State--BODY--"
    for _ in range(300):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            if rng.random() < 0.5:
                del chars[i]
            else:
                chars[i] = rng.choice(alphabet)
        try:
            from_hoa("".join(chars))
        except SpecError:
            pass


# -------------------------------------------------------------------------------------------------
# DOT


def test_dot_shapes_colours_start_and_tooltips():
    sg = safeguards.compile_ltl("a U b")
    dot = to_dot(sg)
    assert dot.startswith('digraph "formula" {')
    assert 'label="formula"' in dot
    assert "__start [shape=point, style=invis" in dot and f"__start -> {sg.initial};" in dot
    for q in range(sg.n_states):
        line = next(row for row in dot.splitlines() if row.strip().startswith(f"{q} ["))
        assert ("doublecircle" in line) == sg.is_accepting(q)
        name = sg.state_names[q]
        about = f"state {q}" + (f" ({name})" if name != str(q) else "")
        assert f'tooltip="{about}: {sg.verdict(q).value}"' in line
        assert f'label="{q}"' in line or (f'label="{name}"' in line and not name.isdigit())
        if sg.verdict(q) == Verdict.VIOLATED:
            assert "#c62828" in line           # red
        if sg.verdict(q) == Verdict.SATISFIED:
            assert "#2e7d32" in line           # green
    assert dot.count(" -> ") == 1 + sum(len(sg.edge_guards(q)) for q in range(sg.n_states))


def test_dot_shows_state_names():
    dot = to_dot(safeguards.compile(MINECRAFT[3]))
    assert 'label="q2"' in dot and 'tooltip="state 2 (q2): presumably_satisfied"' in dot
    assert 'label="violated"' in dot


def test_dot_escapes_quotes():
    prop = 'say "hi"\\'
    sg = from_edges([prop], [[(parse_boolean('"say \\"hi\\"\\\\"'), 0)]], [True],
                    name='the "quoted" spec')
    dot = to_dot(sg)
    assert 'digraph "the \\"quoted\\" spec"' in dot
    assert '\\"say \\\\\\"hi\\\\\\"' in dot   # the guard text, escaped once more for DOT
    if shutil.which("dot"):
        import subprocess
        done = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True)
        assert done.returncode == 0, done.stderr


def test_render_dot_format_is_atomic(tmp_path):
    sg = safeguards.compile(MINECRAFT[1])
    out = render(sg, tmp_path / "sg.dot")
    assert out.read_text() == to_dot(sg)
    assert sorted(os.listdir(tmp_path)) == ["sg.dot"]
    with pytest.raises(ValueError, match="unknown format"):
        render(sg, tmp_path / "x.gif", format="gif")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
@pytest.mark.parametrize("use_package", [True, False])
def test_render_svg(tmp_path, monkeypatch, use_package):
    if not use_package:
        monkeypatch.setitem(sys.modules, "graphviz", None)
    sg = safeguards.compile_ltl("G(a -> X b)")
    path = render(sg, tmp_path / "sg.svg")
    assert path.read_text().lstrip().startswith(("<?xml", "<svg"))
    png = render(sg, tmp_path / "sg.out", format="png")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert sorted(os.listdir(tmp_path)) == ["sg.out", "sg.svg"]


def test_render_without_graphviz(tmp_path, monkeypatch):
    sg = safeguards.compile_ltl("G !lava")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(BackendUnavailable, match="install Graphviz"):
        render(sg, tmp_path / "a.png")
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(BackendUnavailable, match="install Graphviz"):
        render(sg, tmp_path / "a.png")
    assert os.listdir(tmp_path) == []
