"""The Safeguard API: stepping, letters, analysis, views, monitors."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import safeguards
from safeguards import TraceError, Verdict
from safeguards.spec.parser import parse_boolean

SPECS = Path(__file__).resolve().parents[1] / "specs"
RESPONSE = safeguards.compile_ltl("G(request -> X[!] grant)")


def test_step_accepts_sets_lists_and_maps() -> None:
    q = RESPONSE.step(RESPONSE.initial, {"request"})
    assert RESPONSE.step(RESPONSE.initial, ["request"]) == q
    assert RESPONSE.step(RESPONSE.initial, {"request": True, "grant": False}) == q
    assert RESPONSE.verdict(q) == Verdict.PRESUMABLY_VIOLATED
    assert RESPONSE.verdict(RESPONSE.step(q, set())) == Verdict.VIOLATED


def test_unknown_proposition_is_a_trace_error_with_a_hint() -> None:
    with pytest.raises(TraceError, match="unknown proposition `requets`") as info:
        RESPONSE.step(RESPONSE.initial, {"requets"})
    assert info.value.hint == "did you mean `request`?"
    with pytest.raises(TraceError):
        RESPONSE.step(RESPONSE.initial, {"grnt": False})


def test_letter_stepping_and_batches_agree_with_step() -> None:
    rng = np.random.default_rng(0)
    valuations = [frozenset(p for p in RESPONSE.props if rng.random() < 0.5) for _ in range(200)]
    letters = RESPONSE.letters(valuations)
    states = np.zeros(len(valuations), dtype=np.int32)
    for t, valuation in enumerate(valuations):
        assert RESPONSE.step_letter(int(states[t]), int(letters[t])) == \
            RESPONSE.step(int(states[t]), valuation)
    batch = RESPONSE.step_batch(np.arange(RESPONSE.n_states).repeat(RESPONSE.n_letters),
                                np.tile(np.arange(RESPONSE.n_letters), RESPONSE.n_states))
    assert batch.reshape(RESPONSE.n_states, RESPONSE.n_letters).tolist() == RESPONSE.table.tolist()


def test_every_letter_example_is_in_its_class() -> None:
    sg = safeguards.compile(SPECS / "minecraft" / "safeguard3.sg")
    for letter in range(sg.n_letters):
        assert sg.letter(sg.letter_example(letter)) == letter


def test_letter_guards_partition_the_valuations() -> None:
    sg = safeguards.compile(SPECS / "minecraft" / "safeguard2.sg")
    from reference import alphabet, holds

    everything = safeguards.spec.parser.parse_ltl(" | ".join(sg.props))
    for valuation in alphabet(everything):
        owners = [letter for letter in range(sg.n_letters)
                  if holds(sg.letter_guard(letter), [valuation])]
        assert owners == [sg.letter(valuation)]


def test_edge_guards_describe_the_table() -> None:
    sg = safeguards.compile_ltl("a U b")
    from reference import holds

    for q in range(sg.n_states):
        for target, guard in sg.edge_guards(q):
            for letter in range(sg.n_letters):
                example = sg.letter_example(letter)
                assert holds(guard, [example]) == (sg.step(q, example) == target)


def test_distances_and_witnesses() -> None:
    sg = safeguards.compile_ltl("X[!] X[!] goal & G !lava")
    assert sg.distance_to_violation(sg.initial) == 1
    assert sg.distance_to_acceptance(sg.initial) == 3
    violation = sg.shortest_violation()
    assert violation is not None and len(violation) == 1 and "lava" in violation[0]
    satisfaction = sg.shortest_satisfaction()
    assert satisfaction is not None and len(satisfaction) == 3 and sg.accepts(satisfaction)
    assert safeguards.compile_ltl("F a").shortest_violation() is None
    assert sg.distance_to_acceptance(sg.violation_state) is None


def test_networkx_view() -> None:
    sg = safeguards.compile(SPECS / "minecraft" / "safeguard1.sg")
    graph = sg.to_networkx()
    assert isinstance(graph, nx.MultiDiGraph)
    assert graph.number_of_nodes() == sg.n_states
    assert graph.nodes[sg.violation_state]["verdict"] == "violated"
    assert graph.nodes[0]["initial"]
    targets = {t for _, t in graph.out_edges(0)}
    assert targets == set(sg.successors(0))
    assert all("label" in data for _, _, data in graph.edges(data=True))


def test_monitor_reports_the_violating_step_once() -> None:
    monitor = safeguards.compile_ltl("G !lava").monitor()
    first = monitor.step(set())
    second = monitor.step({"lava"})
    third = monitor.step(set())
    assert first.verdict == Verdict.PRESUMABLY_SATISFIED and not first.violated_rules
    assert second.violated_rules == {"formula"} and second.verdict == Verdict.VIOLATED
    assert not third.violated_rules and third.verdict == Verdict.VIOLATED
    monitor.reset()
    assert monitor.verdict == Verdict.PRESUMABLY_SATISFIED


def test_pending_rules_name_unmet_obligations() -> None:
    sg = safeguards.compile("""
    props: goal lava
    rule reach: ltl F goal
    rule avoid: ltl G !lava
    """)
    q = sg.step(sg.initial, set())
    assert sg.pending_rules(q) == {"reach"}
    assert sg.pending_rules(sg.step(q, {"goal"})) == frozenset()


def test_from_edges_builds_a_safeguard_from_an_explicit_automaton() -> None:
    from safeguards.automata.explicit import from_edges

    sg = from_edges(["a", "b"], [[(parse_boolean("a & !b"), 1), (parse_boolean("!a"), 0)],
                                 [(parse_boolean("true"), 1)]], [True, True])
    assert sg.verdict(sg.step(0, {"a", "b"})) == Verdict.VIOLATED
    assert sg.verdict(sg.step(0, {"a"})) == Verdict.SATISFIED


def test_infinite_semantics_verdicts() -> None:
    safety = safeguards.compile_ltl("G(a -> X b)", semantics="infinite")
    q = safety.step(safety.initial, {"a"})
    assert safety.verdict(q) == Verdict.INCONCLUSIVE
    assert safety.verdict(safety.step(q, set())) == Verdict.VIOLATED
    guarantee = safeguards.compile_ltl("F a", semantics="infinite")
    assert guarantee.verdict(guarantee.initial) == Verdict.INCONCLUSIVE
    assert guarantee.verdict(guarantee.step(guarantee.initial, {"a"})) == Verdict.SATISFIED
    with pytest.raises(safeguards.BackendUnavailable, match=r"safeguards\[spot\]"):
        safeguards.compile_ltl("G F a", semantics="infinite")


def test_explicit_machine_state_names_survive() -> None:
    sg = safeguards.compile(SPECS / "minecraft" / "safeguard3.sg")
    assert sg.state_names == ("q0", "q1", "q2", "q3", "q4", "violated")
