"""The Doom specs (``specs/doom/``) against the paper's machines, their LTL twins and the
temporal rules' documented behaviour; the Doom labelers on hand-made ``info`` dicts. No
ViZDoom needed.

The paper's machines are those of the authors' VizDoom wrapper (``safeguard_callbacks.py``):
q=0: ARMOR>0 -> 1, elif lava -> sink; q=1: (safeguard 2: WEAPON6>0 -> 2, elif) boss area ->
sink; q=2: nothing. Our props: has_suit (for ARMOR > 0), has_gun (WEAPON6 > 0), lava, boss_area.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from pathlib import Path

import pytest

import safeguards
from safeguards.automata import Verdict

SPECS = Path(__file__).resolve().parents[1] / "specs" / "doom"
PROPS = ("lava", "has_suit", "has_gun", "boss_area")
VALUATIONS = [frozenset(p for p, on in zip(PROPS, bits) if on)
              for bits in itertools.product((False, True), repeat=len(PROPS))]
SINK = -1


def paper_safeguard0(q: int, v: frozenset[str]) -> int:
    return SINK if q == SINK or "lava" in v else 0


def paper_safeguard1(q: int, v: frozenset[str]) -> int:
    if q == 0:
        return 1 if "has_suit" in v else SINK if "lava" in v else 0
    if q == 1:
        return SINK if "boss_area" in v else 1
    return SINK


def paper_safeguard2(q: int, v: frozenset[str]) -> int:
    if q == 0:
        return 1 if "has_suit" in v else SINK if "lava" in v else 0
    if q == 1:
        return 2 if "has_gun" in v else SINK if "boss_area" in v else 1
    return 2 if q == 2 else SINK


PAPER = {"safeguard0": (paper_safeguard0, {"q0": 0, "violated": SINK}),
         "safeguard1": (paper_safeguard1, {"q0": 0, "suited": 1, "violated": SINK}),
         "safeguard2": (paper_safeguard2, {"q0": 0, "suited": 1, "armed": 2, "violated": SINK})}


def _compile(name: str):
    return safeguards.compile(SPECS / f"{name}.sg")


@pytest.mark.parametrize("name", sorted(PAPER))
def test_safeguard_matches_the_papers_machine_transition_by_transition(name):
    paper, paper_state = PAPER[name]
    sg = _compile(name)
    assert set(sg.props) == set(PROPS)
    assert {sg.state_names[q] for q in range(sg.n_states)} == set(paper_state)
    for q in range(sg.n_states):
        here = paper_state[sg.state_names[q]]
        for v in VALUATIONS:
            assert paper_state[sg.state_names[sg.step(q, v)]] == paper(here, v), (q, sorted(v))
        violated = sg.verdict(q) == Verdict.VIOLATED
        assert violated == (here == SINK)
        assert sg.is_accepting(q) == (here != SINK)


def _equivalent(a, b) -> bool:
    """Same accepted traces and same violation steps: walk the reachable product."""
    letters = VALUATIONS
    seen = {(a.initial, b.initial)}
    todo = deque(seen)
    while todo:
        qa, qb = todo.popleft()
        if a.is_accepting(qa) != b.is_accepting(qb):
            return False
        if (a.verdict(qa) == Verdict.VIOLATED) != (b.verdict(qb) == Verdict.VIOLATED):
            return False
        for v in letters:
            pair = (a.step(qa, v), b.step(qb, v))
            if pair not in seen:
                seen.add(pair)
                todo.append(pair)
    return True


@pytest.mark.parametrize("name, formula", [
    ("safeguard0", "G !lava"),
    ("safeguard1", "(!lava & !has_suit) W (has_suit & X G !boss_area)"),
    ("safeguard2", "(!lava & !has_suit) W (has_suit & X((!boss_area & !has_gun) W has_gun))"),
])
def test_safeguard_equals_the_ltl_rule_in_its_comment(name, formula):
    text = (SPECS / f"{name}.sg").read_text()
    assert formula in text
    ltl = safeguards.compile_ltl(formula, props=list(PROPS))
    assert _equivalent(_compile(name), ltl)


def test_safeguards_are_progressively_stricter_about_the_boss():
    """0 forbids the lava; 1 allows it with the suit but never the boss area; 2 allows the boss
    area once armed (after the suit)."""
    suit, lava_suit, gun, boss = ({"has_suit"}, {"has_suit", "lava"},
                                  {"has_suit", "lava", "has_gun"}, {"has_suit", "has_gun", "boss_area"})
    trace = [set(), suit, lava_suit, gun, boss]
    assert not _compile("safeguard0").accepts(trace)
    assert not _compile("safeguard1").accepts(trace)
    assert _compile("safeguard2").accepts(trace)
    unarmed = [set(), suit, lava_suit, {"has_suit", "boss_area"}]
    assert not _compile("safeguard2").accepts(unarmed)


def test_damage_streak_is_violated_at_the_third_damaged_step_in_a_row():
    sg = _compile("damage_streak")
    d, n = {"damage"}, set()
    assert sg.accepts([d, d, n, d, d, n, d])
    q = sg.initial
    verdicts = []
    for labels in [d, d, d]:
        violated = sg.step_violations(q, labels)
        q = sg.step(q, labels)
        verdicts.append(sorted(violated))
    assert verdicts == [[], [], ["damage_streak"]]


def test_suit_timeout_rules():
    sg = _compile("suit_timeout")
    in_suit, low, burnt, out = {"lava", "has_suit"}, {"lava", "has_suit", "suit_low"}, {"lava"}, set()
    # the suit runs out in the lava: leave_in_time is violated at that step
    q = sg.initial
    for labels in [in_suit, in_suit]:
        q = sg.step(q, labels)
    assert sg.step_violations(q, burnt) == {"leave_in_time"}
    # leaving in time is fine, and the paper's safeguard 1 does not notice the difference
    assert sg.accepts([in_suit, low, out, set(), {"has_suit"}])
    assert _compile("safeguard1").accepts([{"has_suit"}, in_suit, burnt])
    # 20 steps in the lava on a low suit violate heed_warning (the 19th does not)
    q = sg.initial
    for step in range(20):
        violated = sg.step_violations(q, low)
        q = sg.step(q, low)
        assert bool(violated) == (step == 19), step
    assert violated == {"heed_warning"}


def test_random_traces_agree_with_the_paper_for_all_three_safeguards():
    rng = random.Random(0)
    for name, (paper, paper_state) in PAPER.items():
        sg = _compile(name)
        for _ in range(300):
            trace = [rng.choice(VALUATIONS) for _ in range(rng.randint(1, 8))]
            q, p = sg.initial, 0
            for v in trace:
                q, p = sg.step(q, v), paper(p, v)
                assert paper_state[sg.state_names[q]] == p


# --------------------------------------------------------------------------------------------
# the labelers on hand-made info (the state a step reached)

def _info(x=0.0, y=-576.0, **changes):
    variables = {"POSITION_X": x, "POSITION_Y": y, "HEALTH": 100.0, "DEAD": 0.0, "WEAPON6": 0.0,
                 "SELECTED_WEAPON": 2.0, "SELECTED_WEAPON_AMMO": 50.0, "KILLCOUNT": 0.0}
    info = {"game_variables": variables, "damage_taken": 0.0, "suit_tics_left": 0,
            "attack": False, "in_crosshair": (), "boss_distance": 1000.0}
    for key, value in changes.items():
        (variables if key.isupper() else info)[key] = value
    return info


def test_doom_labeler_regions_follow_the_map():
    pytest.importorskip("gymnasium")  # registers the Doom ids on import
    from safeguards.envs.doom.labels import DoomLabeler

    labeler = DoomLabeler()
    assert labeler(None, _info(), None) == set()
    assert labeler(None, _info(y=-224.5), None) == set()
    assert labeler(None, _info(y=-223.0), None) == {"lava"}
    assert labeler(None, _info(x=-250, y=95.0), None) == {"lava"}
    assert labeler(None, _info(y=96.5), None) == {"boss_area"}
    assert labeler(None, _info(x=300, y=500), None) == {"boss_area"}


def test_doom_labeler_boss_suit_gun_and_ammo_props():
    pytest.importorskip("gymnasium")  # registers the Doom ids on import
    from safeguards.envs.doom.labels import DoomLabeler

    labeler = DoomLabeler(near_boss_within=300)
    fighting = _info(y=200, attack=True, in_crosshair=("HellKnight",), boss_distance=250.0,
                     WEAPON6=1.0, SELECTED_WEAPON=6.0, SELECTED_WEAPON_AMMO=5.0)
    assert labeler(None, fighting, 8) == {"boss_area", "near_boss", "attacking_boss", "has_gun",
                                          "gun_selected", "low_ammo"}
    dead_boss = dict(fighting, game_variables=dict(fighting["game_variables"], KILLCOUNT=1.0))
    assert labeler(None, dead_boss, 8) == {"boss_area", "boss_dead", "has_gun", "gun_selected",
                                           "low_ammo"}
    assert labeler(None, _info(suit_tics_left=2000), None) == {"has_suit"}
    assert labeler(None, _info(suit_tics_left=100), None) == {"has_suit", "suit_low"}
    assert labeler(None, _info(HEALTH=-5.0, DEAD=1.0, damage_taken=40.0), None) == {"dead", "damage"}


def test_doom_labelers_cover_the_shipped_specs():
    pytest.importorskip("gymnasium")  # registers the Doom ids on import
    from safeguards.envs.doom.labels import DoomLabeler, DoomStateLabeler
    from safeguards.labels import check_coverage

    for path in SPECS.glob("*.sg"):
        check_coverage(safeguards.compile(path).props, DoomLabeler())
    check_coverage(_compile("damage_streak").props, DoomStateLabeler())
    check_coverage(("has_suit", "suit_low", "damage", "dead", "low_ammo"), DoomStateLabeler())
