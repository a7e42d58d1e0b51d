"""ShieldWrapper: masks against stepping copies, enforcement on LavaGap, fallback, bad params."""

from __future__ import annotations

import copy
import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("gymnasium")

import gymnasium as gym
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import safeguards
from safeguards.gym import SafeguardWrapper
from safeguards.gym.shield import ShieldFallbackWarning, ShieldWrapper
from safeguards.labels import InfoLabeler, LabelError

pytest.importorskip("minigrid")

from safeguards.envs.gridworld import MiniGridLabeler, predict_labels  # noqa: E402

NO_LAVA = safeguards.compile_ltl("G !lava")
# Several rules over every MiniGrid proposition (for masks that depend on the automaton state).
GRID_SPEC = safeguards.compile("""
spec grid_rules
props: lava goal wall_ahead bump door_open carrying_key
rule no_lava: ltl G !lava
rule no_double_bump: never bump ; bump
rule key_before_door: ltl G (door_open -> carrying_key)
rule no_goal_with_key_facing_wall: never (carrying_key & wall_ahead) ; goal
""")


def lavagap(**shield_kwargs) -> ShieldWrapper:
    base = gym.make("MiniGrid-LavaGapS5-v0")
    inner = SafeguardWrapper(base, NO_LAVA, MiniGridLabeler(base))
    return ShieldWrapper(inner, **shield_kwargs)


class TableEnv(gym.Env):
    """Action ``i`` makes the propositions ``table[i]`` true (reported in ``info``)."""

    metadata: dict = {"render_modes": []}

    def __init__(self, table, start: int = 0) -> None:
        self.table = [frozenset(row) for row in table]
        self.action_space = spaces.Discrete(len(self.table), start=start)
        self.observation_space = spaces.Discrete(1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        labels = self.table[int(action) - self.action_space.start]
        return 0, 0.0, False, False, {prop: True for prop in labels}


def table_predict(env, action) -> set[str]:
    return set(env.table[int(action) - env.action_space.start])


def table_shield(table, spec, *, props=("a", "b"), start=0, hook=True, **kwargs) -> ShieldWrapper:
    inner = SafeguardWrapper(TableEnv(table, start), spec, InfoLabeler(props))
    return ShieldWrapper(inner, predict=table_predict if hook else None, **kwargs)


# -- enforcement on LavaGap --------------------------------------------------------------------

def _lava_entries(env: gym.Env, episodes: int, seed: int) -> tuple[int, int]:
    """(lava entries, steps) of a seeded random-action agent."""
    rng = np.random.default_rng(seed)
    entries = steps = 0
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        for _ in range(60):
            _, _, terminated, truncated, info = env.step(int(rng.integers(7)))
            steps += 1
            entries += "lava" in info["labels"]
            assert not info.get("shield_fallback", False)
            if terminated or truncated:
                break
    return entries, steps


def test_enforced_shield_never_enters_lava_while_the_unshielded_agent_does() -> None:
    base = gym.make("MiniGrid-LavaGapS5-v0")
    unshielded = SafeguardWrapper(base, NO_LAVA, MiniGridLabeler(base))
    entries, _ = _lava_entries(unshielded, episodes=25, seed=0)
    assert entries >= 10
    entries, steps = _lava_entries(lavagap(predict=predict_labels, enforce=True), 25, seed=0)
    assert entries == 0 and steps > 25 * 30


def test_enforced_shield_without_hook_never_enters_lava() -> None:
    entries, _ = _lava_entries(lavagap(enforce=True), episodes=2, seed=100)
    assert entries == 0


# -- masks vs stepping copies ------------------------------------------------------------------

def _stepped_violations(env: ShieldWrapper, margin: int) -> np.ndarray:
    """For each action, step a deep copy of the SafeguardWrapper (and env, and labeler): is the
    reached safeguard state within ``margin`` steps of violation?"""
    inner = env.safeguard_wrapper
    sg = inner.safeguard
    shared = [sg, inner.observation_space, inner.action_space, inner.unwrapped.observation_space,
              inner.unwrapped.action_space]                       # stepping does not change them
    unsafe = []
    for action in range(env.action_space.n):
        clone = copy.deepcopy(inner, {id(x): x for x in shared})
        before = clone.state
        _, _, _, _, info = clone.step(action)
        reached = sg.step(before, set(info["labels"]))
        assert (info["verdict"] == "violated") == (sg.distance_to_violation(reached) == 0)
        distance = sg.distance_to_violation(reached)
        unsafe.append(distance is not None and distance <= margin)
    return np.array(unsafe)


MASK_CASES = [
    # (env id, spec, margin, hook?, steps)
    ("MiniGrid-LavaGapS5-v0", NO_LAVA, 0, True, 50),
    ("MiniGrid-LavaGapS5-v0", NO_LAVA, 0, False, 15),
    ("MiniGrid-DoorKey-5x5-v0", GRID_SPEC, 0, True, 50),
    ("MiniGrid-DoorKey-5x5-v0", GRID_SPEC, 0, False, 15),
    ("MiniGrid-DoorKey-5x5-v0", GRID_SPEC, 1, True, 30),
    ("MiniGrid-LavaCrossingS9N1-v0", GRID_SPEC, 0, True, 50),
]


@pytest.mark.parametrize("env_id, spec, margin, hook, steps", MASK_CASES)
def test_action_mask_matches_stepping_copies(env_id, spec, margin, hook, steps) -> None:
    base = gym.make(env_id)
    env = ShieldWrapper(SafeguardWrapper(base, spec, MiniGridLabeler(base)),
                        predict=predict_labels if hook else None, enforce=False, margin=margin)
    rng = np.random.default_rng(3)
    unsafe_seen = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShieldFallbackWarning)  # margin 1 can block everything
        _, info = env.reset(seed=3)
        for _ in range(steps):
            mask = info["action_mask"]
            assert mask.dtype == bool and mask.shape == (env.action_space.n,)
            np.testing.assert_array_equal(mask, ~_stepped_violations(env, margin))
            np.testing.assert_array_equal(mask, env.action_masks())
            unsafe_seen += int((~mask).sum())
            _, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                _, info = env.reset(seed=int(rng.integers(1 << 30)))
    assert unsafe_seen > 0


def test_deepcopy_mode_and_hook_mode_give_the_same_masks() -> None:
    bases = [gym.make("MiniGrid-DoorKey-5x5-v0") for _ in range(2)]
    hooked, copying = (ShieldWrapper(SafeguardWrapper(b, GRID_SPEC, MiniGridLabeler(b)),
                                     predict=p, enforce=False)
                       for b, p in zip(bases, [predict_labels, None]))
    rng = np.random.default_rng(11)
    differing_masks = set()
    for episode in range(2):
        (_, a), (_, b) = hooked.reset(seed=episode), copying.reset(seed=episode)
        for _ in range(30):
            np.testing.assert_array_equal(a["action_mask"], b["action_mask"])
            np.testing.assert_array_equal(hooked.predicted_states, copying.predicted_states)
            differing_masks.add(tuple(a["action_mask"]))
            action = int(rng.integers(7))
            *_, term_a, trunc_a, a = hooked.step(action)
            *_, term_b, trunc_b, b = copying.step(action)
            assert (term_a, trunc_a, a["labels"]) == (term_b, trunc_b, b["labels"])
            if term_a or trunc_a:
                break
    assert len(differing_masks) > 1


def test_predictions_do_not_touch_the_real_env_or_labeler() -> None:
    for predict in (predict_labels, None):
        env = lavagap(predict=predict, enforce=False)
        env.reset(seed=5)
        base = env.unwrapped
        state = (base.hash(), base.step_count, base.np_random.bit_generator.state["state"],
                 env.labeler._previous)
        env._update_mask()
        assert state == (base.hash(), base.step_count,
                         base.np_random.bit_generator.state["state"], env.labeler._previous)


# -- choosing and fallback ---------------------------------------------------------------------

NEVER_BBB = safeguards.compile("spec t\nprops: a b\nrule r: never b ; b ; b\n")
B_UNTIL_A = safeguards.compile_ltl("!b W a")
NEVER_B = safeguards.compile_ltl("G !b")

CHOICE_CASES = [
    # (name, table, spec, margin, start, requested, executed, shielded, fallback, mask)
    ("safe action passes", [{"b"}, set()], NEVER_B, 0, 0, 1, 1, False, False, [0, 1]),
    ("lowest safe replaces", [{"b"}, {"b"}, set(), set()], NEVER_B, 0, 0, 1, 2, True, False,
     [0, 0, 1, 1]),
    ("offset action space", [{"b"}, set(), set()], NEVER_B, 0, 5, 5, 6, True, False, [0, 1, 1]),
    ("unreachable violation is safe", [{"b"}, set(), {"a"}], B_UNTIL_A, 5, 0, 0, 2, True, False,
     [0, 0, 1]),
    ("margin: farther than 2", [{"b"}, set(), {"b"}], NEVER_BBB, 2, 0, 0, 1, True, False,
     [0, 1, 0]),
    ("fallback: farthest", [{"b"}, set(), {"b"}], NEVER_BBB, 3, 0, 0, 1, True, True, [0, 0, 0]),
    ("fallback: tie to lowest", [{"b"}, {"b"}], NEVER_BBB, 2, 0, 1, 0, True, True, [0, 0]),
    ("fallback: all violate at once", [{"b"}, {"b"}, {"b"}], NEVER_B, 0, 0, 1, 1, False, True,
     [0, 0, 0]),
]


@pytest.mark.parametrize("hook", [True, False], ids=["hook", "deepcopy"])
@pytest.mark.parametrize("name, table, spec, margin, start, requested, executed, shielded, "
                         "fallback, mask", CHOICE_CASES, ids=[c[0] for c in CHOICE_CASES])
def test_choice_table(hook, name, table, spec, margin, start, requested, executed, shielded,
                      fallback, mask) -> None:
    env = table_shield(table, spec, start=start, hook=hook, margin=margin)
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["action_mask"], np.array(mask, dtype=bool))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, _, _, info = env.step(requested)
    assert (info["original_action"], info["executed_action"]) == (requested, executed)
    assert (info["shielded"], info["shield_fallback"]) == (shielded, fallback)
    assert [w.category for w in caught] == ([ShieldFallbackWarning] if fallback else [])
    assert info["labels"] == sorted(table[executed - start])


def test_fallback_warns_once_per_episode() -> None:
    env = table_shield([{"b"}, {"b"}], NEVER_B, props=("b",))
    with pytest.warns(ShieldFallbackWarning, match="every action is predicted to violate"):
        env.reset(seed=0)
        for _ in range(3):
            _, _, _, _, info = env.step(1)
            assert info["shield_fallback"] and info["executed_action"] == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env.step(0)
        env.reset()
        env.step(0)
        env.step(0)
    assert [w.category for w in caught] == [ShieldFallbackWarning]     # again after the reset


def test_an_all_false_mask_without_enforce_is_warned_about() -> None:
    env = table_shield([{"b"}, {"b"}], NEVER_B, props=("b",), enforce=False)
    with pytest.warns(ShieldFallbackWarning, match="action_mask is all False"):
        _, info = env.reset(seed=0)
    assert not info["action_mask"].any()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, _, _, info = env.step(1)
    assert caught == [] and "shielded" not in info and info["violated_rules"] == ["formula"]


def test_choose_hook() -> None:
    calls = []

    def highest(mask, action):
        calls.append((mask.tolist(), action))
        return int(np.flatnonzero(mask)[-1])

    env = table_shield([{"b"}, set(), set(), {"b"}], NEVER_B, choose=highest)
    env.reset(seed=0)
    _, _, _, _, info = env.step(3)
    assert info["executed_action"] == 2 and calls == [([False, True, True, False], 3)]
    _, _, _, _, info = env.step(1)                                 # safe: choose not asked
    assert info["executed_action"] == 1 and len(calls) == 1


@pytest.mark.parametrize("returned", [0, 3, 7, "x", None])
def test_choose_must_return_a_safe_action(returned) -> None:
    env = table_shield([{"b"}, set(), set(), {"b"}], NEVER_B, choose=lambda mask, a: returned)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not a safe action"):
        env.step(0)


def test_after_a_violation_the_mask_follows_the_restarted_safeguard() -> None:
    env = table_shield([{"b"}, {"a"}], NEVER_BBB, enforce=False)
    env.reset(seed=0)
    for expected in ([1, 1], [0, 1], [1, 1], [1, 1]):             # b, b, b (violates), b
        _, _, _, _, info = env.step(0)
        np.testing.assert_array_equal(info["action_mask"], np.array(expected, dtype=bool))


def test_a_wrapper_between_is_fine() -> None:
    base = gym.make("MiniGrid-LavaGapS5-v0")
    inner = gym.wrappers.RecordEpisodeStatistics(
        SafeguardWrapper(base, NO_LAVA, MiniGridLabeler(base)))
    env = ShieldWrapper(inner, predict=predict_labels)
    assert env.safeguard_wrapper is inner.env
    _, info = env.reset(seed=0)
    assert info["action_mask"].tolist() == [True, True, False] + [True] * 4


# -- the environment checker -------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: lavagap(predict=predict_labels, enforce=True),
    lambda: lavagap(predict=predict_labels, enforce=False),
    lambda: lavagap(enforce=True),
    lambda: table_shield([{"b"}, set(), {"a"}], B_UNTIL_A),
    lambda: table_shield([{"b"}, set(), {"a"}], B_UNTIL_A, hook=False, start=3),
], ids=["lavagap-hook", "lavagap-mask-only", "lavagap-deepcopy", "table-hook", "table-deepcopy"])
def test_check_env_passes(make) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # "the environment is wrapped" and the like
        check_env(make(), skip_render_check=True, skip_close_check=True)


# -- bad parameters ----------------------------------------------------------------------------

class Uncopyable(TableEnv):
    def __init__(self) -> None:
        super().__init__([set(), {"b"}])
        self.lock = threading.Lock()


def _sg(env: gym.Env, props=("a", "b")) -> SafeguardWrapper:
    return SafeguardWrapper(env, NEVER_B, InfoLabeler(props))


BAD_PARAMETERS = [
    ("no safeguard wrapper", lambda: TableEnv([set()]), {}, TypeError, "needs a SafeguardWrapper"),
    ("box actions", lambda: _sg(gym.make("Pendulum-v1")), {"predict": table_predict}, TypeError,
     "Discrete action space"),
    ("predict not callable", lambda: _sg(TableEnv([set()])), {"predict": {"b"}}, TypeError,
     "predict must be callable"),
    ("choose not callable", lambda: _sg(TableEnv([set()])), {"choose": 0}, TypeError,
     "choose must be callable"),
    ("margin not an int", lambda: _sg(TableEnv([set()])), {"margin": 1.5}, TypeError,
     "margin must be an int"),
    ("margin a bool", lambda: _sg(TableEnv([set()])), {"margin": True}, TypeError,
     "margin must be an int"),
    ("negative margin", lambda: _sg(TableEnv([set()])), {"margin": -1}, ValueError,
     "margin must be >= 0"),
    ("uncopyable env", lambda: _sg(Uncopyable()), {}, TypeError, "cannot be deep-copied"),
    ("actions changed by a wrapper", lambda: _sg(gym.wrappers.TransformAction(
        TableEnv([set(), set()]), lambda a: a, spaces.Discrete(3))), {}, ValueError,
     "base action space"),
]


@pytest.mark.parametrize("name, make, kwargs, error, match", BAD_PARAMETERS,
                         ids=[case[0] for case in BAD_PARAMETERS])
def test_bad_parameters(name, make, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        ShieldWrapper(make(), **kwargs)


@pytest.mark.parametrize("returned, match", [
    ("b", "returned str"),
    (None, "returned NoneType"),
    ({"lava"}, "neither a proposition"),
    ([1], "neither a proposition"),
])
def test_bad_hook_output_is_a_label_error(returned, match) -> None:
    env = ShieldWrapper(_sg(TableEnv([set()])), predict=lambda env, action: returned)
    with pytest.raises(LabelError, match=match):
        env.reset(seed=0)


@pytest.mark.parametrize("action", [2, -1, "x", None, 0.5])
def test_enforcing_an_action_outside_the_space_is_a_value_error(action) -> None:
    env = table_shield([set(), set()], NEVER_B)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not in the action space"):
        env.step(action)
