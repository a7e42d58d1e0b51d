"""SafeguardWrapper, the product MDP, on a tiny deterministic corridor written here.

The corridor has cells ``0 .. 4``; the agent starts in cell ``start`` (``reset(options=...)``
can move it), action 0 goes left and 1 right (clamped at the ends).  Cell 0 is lava (stepping
on it does not end the episode), cell 4 the goal (reward 1, terminates by default).  ``info``
carries the flags ``lava`` and ``goal``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("gymnasium")

import gymnasium as gym
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium.utils.passive_env_checker import (
    check_action_space, check_observation_space, env_reset_passive_checker,
    env_step_passive_checker,
)
from gymnasium.wrappers import TimeLimit

import safeguards
import safeguards.gym  # noqa: F401  (registers safeguards/Safeguarded-v0)
from safeguards.automata import Safeguard, Verdict
from safeguards.gym import (
    PaperShaping, Penalty, PotentialShaping, SafeguardStep, SafeguardWrapper, potential,
    product_observation_space,
)
from safeguards.labels import InfoLabeler, LabelError, PropositionLabeler, labeler, proposition

N = 5


class Corridor(gym.Env):
    """Cells 0..n-1; 0 is lava, n-1 the goal.  ``obs_type``: discrete | box | intbox."""

    metadata = {"render_modes": []}

    def __init__(self, n: int = N, start: int = 2, obs_type: str = "discrete",
                 goal_terminates: bool = True) -> None:
        self.n, self.start, self.obs_type = n, start, obs_type
        self.goal_terminates = goal_terminates
        self.action_space = spaces.Discrete(2)
        if obs_type == "discrete":
            self.observation_space = spaces.Discrete(n)
        elif obs_type == "box":
            self.observation_space = spaces.Box(np.array([0, 0], np.float32),
                                                np.array([n - 1, 1], np.float32), dtype=np.float32)
        else:
            self.observation_space = spaces.Box(0, n - 1, (1,), dtype=np.int64)
        self.pos = start

    def _obs(self) -> Any:
        if self.obs_type == "discrete":
            return int(self.pos)
        if self.obs_type == "box":
            return np.array([self.pos, self.pos / (self.n - 1)], np.float32)
        return np.array([self.pos], np.int64)

    def _info(self) -> dict[str, Any]:
        return {"lava": self.pos == 0, "goal": self.pos == self.n - 1}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.pos = (options or {}).get("start", self.start)
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.pos = max(0, min(self.n - 1, self.pos + (1 if int(action) == 1 else -1)))
        goal = self.pos == self.n - 1
        return self._obs(), float(goal), goal and self.goal_terminates, False, self._info()


# Module-level labelers: picklable for AsyncVectorEnv.
LABELER = InfoLabeler(["lava", "goal"])


class CellLabeler(PropositionLabeler):
    @proposition
    def lava(self, obs: Any, info: Any, action: Any) -> bool:
        return bool(info["lava"])

    @proposition
    def goal(self, obs: Any, info: Any, action: Any) -> bool:
        return bool(info["goal"])


@labeler("lava", "goal")
def function_labeler(obs: Any, info: Any, action: Any) -> set[str]:
    return {p for p in ("lava", "goal") if info[p]}


if "safeguards_test/Corridor-v0" not in gym.registry:
    gym.register("safeguards_test/Corridor-v0", entry_point=Corridor)
if "safeguards_test/Corridor3-v0" not in gym.registry:
    gym.register("safeguards_test/Corridor3-v0", entry_point=Corridor, max_episode_steps=3,
                 kwargs={"start": 1})

# Three rules; the two lava rules carry per-rule penalties.
SPEC3 = """spec corridor "no lava, reach the goal"
props: lava goal
rule no_lava (penalty = 2.5): ltl G !lava
rule also_no_lava (penalty = 0.25): ltl G !lava
rule reach (penalty = 4): ltl F goal
"""
# Several live states that treat lava differently (for counterfactuals).
SPEC_CF = """spec cf
props: lava goal
rule first (penalty = 2): ltl !lava U goal
rule no_twice (penalty = 3): ltl G(lava -> X !lava)
"""


def compile_spec(spec: str) -> Safeguard:
    return safeguards.compile(spec) if "\n" in spec else safeguards.compile_ltl(spec)


def make(spec: str | Safeguard = "G !lava", *, obs_type: str = "discrete",
         max_steps: int | None = None, goal_terminates: bool = True, lab: Any = LABELER,
         **kwargs: Any) -> SafeguardWrapper:
    env: gym.Env = Corridor(obs_type=obs_type, goal_terminates=goal_terminates)
    if max_steps is not None:
        env = TimeLimit(env, max_steps)                       # inside the wrapper
    sg = spec if isinstance(spec, Safeguard) else compile_spec(spec)
    return SafeguardWrapper(env, sg, lab, **kwargs)


def rollout(env: gym.Env, start: int, actions: list[int]
            ) -> tuple[Any, dict[str, Any], list[tuple[Any, float, bool, bool, dict[str, Any]]]]:
    obs, info = env.reset(seed=0, options={"start": start})
    steps = []
    for action in actions:
        steps.append(env.step(action))
    return obs, info, steps


def sg_state(obs: Any, env: SafeguardWrapper) -> int:
    """The safeguard state shown in a product observation."""
    if env.observe == "dict":
        return int(obs["safeguard"])
    tail = np.asarray(obs)[-env.safeguard.n_states:]
    assert tail.sum() == 1 and set(np.unique(tail)) <= {0, 1}
    return int(np.argmax(tail))


def wrapper_warnings_only(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record
            if "is different from the unwrapped version" not in str(w.message)]


# -- observation modes -------------------------------------------------------------------------
BOX = spaces.Box(np.array([0, 0], np.float32), np.array([4, 1], np.float32), dtype=np.float32)


@pytest.mark.parametrize(("obs_type", "observe", "expected"), [
    ("discrete", "dict", spaces.Dict({"obs": spaces.Discrete(N), "safeguard": spaces.Discrete(3)})),
    ("discrete", "none", spaces.Discrete(N)),
    ("box", "dict", spaces.Dict({"obs": BOX, "safeguard": spaces.Discrete(3)})),
    ("box", "none", BOX),
    ("box", "onehot", spaces.Box(np.array([0, 0, 0, 0, 0], np.float32),
                                 np.array([4, 1, 1, 1, 1], np.float32), dtype=np.float32)),
    ("intbox", "onehot", spaces.Box(np.zeros(4, np.float32), np.array([4, 1, 1, 1], np.float32),
                                    dtype=np.float32)),
])
def test_observation_spaces(obs_type: str, observe: str, expected: spaces.Space) -> None:
    env = make(SPEC3, obs_type=obs_type, observe=observe)
    assert env.safeguard.n_states == 3
    assert env.observation_space == expected
    assert product_observation_space(Corridor(obs_type=obs_type).observation_space, 3,
                                     observe) == expected  # type: ignore[arg-type]
    assert env.action_space == spaces.Discrete(2)


@pytest.mark.parametrize(("obs_type", "observe"), [
    ("discrete", "dict"), ("discrete", "none"), ("box", "dict"), ("box", "none"),
    ("box", "onehot"), ("intbox", "onehot"), ("intbox", "dict"),
])
@pytest.mark.parametrize("after_violation", ["reset", "stay"])
def test_observations_are_in_the_space_and_show_the_safeguard_state(
        obs_type: str, observe: str, after_violation: str) -> None:
    env = make("G !lava & F goal", obs_type=obs_type, observe=observe,
               after_violation=after_violation)
    obs, info, steps = rollout(env, 1, [0, 1, 1, 0, 1, 1, 1])
    seen = [(obs, info)] + [(o, i) for o, *_, i in steps]
    for o, i in seen:
        assert env.observation_space.contains(o), o
        if observe != "none":
            assert sg_state(o, env) == i["safeguard_state"]
    if observe == "none":
        assert all(Corridor(obs_type=obs_type).observation_space.contains(o) for o, _ in seen)
    if observe == "dict" and obs_type != "discrete":
        assert isinstance(obs["obs"], np.ndarray)
    if observe == "onehot":
        assert obs.dtype == np.float32 and obs.shape == (env.observation_space.shape[0],)
        np.testing.assert_array_equal(obs[:-3], np.asarray(Corridor(obs_type=obs_type).reset(
            options={"start": 1})[0], np.float32))


@pytest.mark.parametrize(("obs_type", "observe"), [
    ("discrete", "dict"), ("discrete", "none"), ("box", "dict"), ("box", "onehot"),
    ("intbox", "onehot"),
])
def test_product_env_passes_the_gymnasium_checker(obs_type: str, observe: str) -> None:
    env = make(SPEC3, obs_type=obs_type, observe=observe, reward="potential")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
        check_observation_space(env.observation_space)
        check_action_space(env.action_space)
        env_reset_passive_checker(env, seed=1)
        env_step_passive_checker(env, 0)
    assert wrapper_warnings_only(record) == []




def test_registered_env_can_be_made_again_from_its_spec() -> None:
    env = gym.make("safeguards/Safeguarded-v0", env="safeguards_test/Corridor-v0", spec="G !lava",
                   labeler=LABELER)
    again = gym.make(env.spec)
    assert again.reset(seed=0)[0] == env.reset(seed=0)[0]



def test_registered_env_passes_the_gymnasium_checker() -> None:
    env = gym.make("safeguards/Safeguarded-v0", env="safeguards_test/Corridor-v0", spec=SPEC3,
                   labeler=LABELER, reward="paper")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    assert wrapper_warnings_only(record) == []


# -- bad parameters ----------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "kwargs", "error", "match"), [
    ("G !lava", {"observe": "pixels"}, ValueError,
     "observe must be 'dict', 'onehot' or 'none', not 'pixels'"),
    ("G !lava", {"observe": "onehot"}, ValueError,
     r"observe='onehot' needs a 1-D Box observation space, not Discrete\(5\)"),
    ("G !lava", {"after_violation": "restart"}, ValueError,
     "after_violation must be 'reset' or 'stay', not 'restart'"),
    ("G !lava", {"reward": "bogus"}, ValueError, "unknown reward mode 'bogus'"),
    ("G !lava", {"reward": 3}, ValueError, "unknown reward mode 3"),
    ("G !lvaa", {}, LabelError, "the spec uses proposition `lvaa` that labeler InfoLabeler never "
                                "emits .*did you mean `lava`\\?"),
    ("G !lvaa", {"missing_props": "ignore"}, ValueError, "missing must be 'error' or 'warn'"),
])
def test_bad_parameters(spec: str, kwargs: dict[str, Any], error: type[Exception],
                        match: str) -> None:
    with pytest.raises(error, match=match):
        make(spec, **kwargs)


def test_missing_props_warn_points_at_the_caller_and_treats_the_prop_as_false() -> None:
    with pytest.warns(UserWarning, match="proposition `wall` .* treating them as always false") \
            as record:
        env = make("G !lava & G !wall", missing_props="warn")
    assert record[0].filename == __file__
    _, _, steps = rollout(env, 1, [0, 1])
    assert [s[4]["violated_rules"] for s in steps] == [["formula"], []]


def test_a_labeler_error_in_the_wrapper_names_the_step() -> None:
    @labeler("lava", "goal")
    def late_typo(obs: Any, info: Any, action: Any) -> set[str]:
        return {"lvaa"} if obs == 0 else set()

    env = make(lab=late_typo)
    env.reset(options={"start": 2})
    env.step(0)
    with pytest.raises(LabelError, match="labeler late_typo emitted undeclared proposition `lvaa` "
                                         "at step 2; did you mean `lava`"):
        env.step(0)


def test_a_labeler_error_in_a_combined_labeler_names_the_step() -> None:
    @labeler("lava")
    def late_typo(obs: Any, info: Any, action: Any) -> set[str]:
        return {"lvaa"} if obs == 0 else set()

    env = make(lab=late_typo | InfoLabeler(["goal"]))
    env.reset(options={"start": 2})
    env.step(0)
    with pytest.raises(LabelError, match="at step 2"):
        env.step(0)


# -- info --------------------------------------------------------------------------------------
STEP_KEYS = {"labels", "safeguard_state", "verdict", "violated_rules", "cost"}
END_KEYS = {"pending_rules", "end_violation"}


@pytest.mark.parametrize(("max_steps", "start", "actions", "ends_on"), [
    (None, 2, [0, 1, 1, 1], 4),           # terminated at the goal
    (2, 2, [0, 0], 2),                    # truncated by the TimeLimit inside
    (None, 1, [0, 0, 1], None),           # not finished
])
def test_info_keys(max_steps: int | None, start: int, actions: list[int],
                   ends_on: int | None) -> None:
    env = make(SPEC3, max_steps=max_steps)
    _, info, steps = rollout(env, start, actions)
    assert STEP_KEYS <= info.keys() and not END_KEYS & info.keys()
    assert {"lava", "goal"} <= info.keys()                   # the env's own keys stay
    for t, (_, _, terminated, truncated, step_info) in enumerate(steps, start=1):
        assert STEP_KEYS <= step_info.keys() and {"lava", "goal"} <= step_info.keys()
        assert isinstance(step_info["labels"], list)
        assert step_info["labels"] == sorted(step_info["labels"])
        assert isinstance(step_info["safeguard_state"], int)
        assert step_info["verdict"] in {v.value for v in Verdict}
        assert isinstance(step_info["violated_rules"], list)
        assert isinstance(step_info["cost"], float)
        done = terminated or truncated
        assert done == (t == ends_on)
        assert (END_KEYS <= step_info.keys()) == done
        if done:
            assert isinstance(step_info["pending_rules"], list)
            assert isinstance(step_info["end_violation"], bool)


# -- trajectories: verdicts, violated rules, cost, termination, pending obligations -------------
V, PS, PV = "violated", "presumably_satisfied", "presumably_violated"
F = ["formula"]
LAVA2 = ["also_no_lava", "no_lava"]

# (spec, kwargs, max_steps, start, actions,
#  per step: (verdict, violated_rules, cost, terminated, truncated), (pending, end_violation))
TRAJECTORIES = [
    pytest.param("G !lava", {}, None, 1, [0, 0, 1, 0],
                 [(V, F, 1.0, False, False), (V, F, 1.0, False, False), (PS, [], 0.0, False, False),
                  (V, F, 1.0, False, False)], None, id="reset-each-violation-counts"),
    pytest.param("G !lava", {"after_violation": "stay"}, None, 1, [0, 0, 1, 0],
                 [(V, F, 1.0, False, False), (V, [], 0.0, False, False), (V, [], 0.0, False, False),
                  (V, [], 0.0, False, False)], None, id="stay-counts-once"),
    pytest.param("G !lava", {"terminate_on_violation": True}, None, 1, [0],
                 [(V, F, 1.0, True, False)], ([], False), id="terminate"),
    pytest.param("G !lava", {"terminate_on_violation": True, "after_violation": "stay"}, None, 2,
                 [1, 0, 0, 0], [(PS, [], 0.0, False, False), (PS, [], 0.0, False, False),
                                (PS, [], 0.0, False, False), (V, F, 1.0, True, False)],
                 ([], False), id="terminate-late"),
    pytest.param("F goal", {}, 3, 1, [1, 0, 1],
                 [(PV, [], 0.0, False, False), (PV, [], 0.0, False, False),
                  (PV, [], 1.0, False, True)], (F, True), id="truncated-with-pending"),
    pytest.param("F goal", {}, None, 2, [1, 1],
                 [(PV, [], 0.0, False, False), ("satisfied", [], 0.0, True, False)], ([], False),
                 id="terminated-satisfied"),
    pytest.param("F lava", {}, None, 2, [1, 1],
                 [(PV, [], 0.0, False, False), (PV, [], 1.0, True, False)], (F, True),
                 id="terminated-with-pending"),
    pytest.param("G(goal -> X lava)", {}, None, 3, [1],
                 [(PS, [], 0.0, True, False)], ([], False), id="weak-next-at-the-end"),
    pytest.param("G(goal -> X[!] lava)", {}, None, 3, [1],
                 [(PV, [], 1.0, True, False)], (F, True), id="strong-next-at-the-end"),
    pytest.param(SPEC3, {"terminate_on_violation": True}, None, 1, [0],
                 [(V, LAVA2, 2.0, True, False)], ([], False), id="two-rules-at-once"),
    pytest.param(SPEC3, {}, 2, 1, [1, 0],
                 [(PV, [], 0.0, False, False), (PV, [], 1.0, False, True)], (["reach"], True),
                 id="multi-rule-truncated-pending"),
    pytest.param(SPEC3, {}, None, 2, [1, 1],
                 [(PV, [], 0.0, False, False), (PS, [], 0.0, True, False)], ([], False),
                 id="multi-rule-reached"),
    pytest.param(SPEC3, {}, 1, 1, [0],
                 [(V, LAVA2, 2.0, False, True)], ([], False), id="violation-on-the-last-step"),
    pytest.param("G !lava & F goal", {"after_violation": "stay"}, 2, 1, [0, 1],
                 [(V, F, 1.0, False, False), (V, [], 0.0, False, True)], ([], False),
                 id="ends-in-the-sink-no-pending"),
    pytest.param("G !lava & F goal", {}, 2, 1, [0, 1],
                 [(V, F, 1.0, False, False), (PV, [], 1.0, False, True)], (F, True),
                 id="reset-then-pending"),
]


@pytest.mark.parametrize(("spec", "kwargs", "max_steps", "start", "actions", "expected", "end"),
                         TRAJECTORIES)
@pytest.mark.parametrize("observe", ["dict", "none"])
def test_trajectories(spec: str, kwargs: dict[str, Any], max_steps: int | None, start: int,
                      actions: list[int], expected: list[tuple[Any, ...]],
                      end: tuple[list[str], bool] | None, observe: str) -> None:
    env = make(spec, max_steps=max_steps, observe=observe, **kwargs)
    _, info, steps = rollout(env, start, actions)
    assert info["safeguard_state"] == env.safeguard.initial and info["cost"] == 0.0
    got = [(i["verdict"], i["violated_rules"], i["cost"], te, tr) for _, _, te, tr, i in steps]
    assert got == expected
    last = steps[-1][4]
    if end is None:
        assert not END_KEYS & last.keys()
    else:
        assert (last["pending_rules"], last["end_violation"]) == end
        assert last["cost"] == len(last["violated_rules"]) + len(last["pending_rules"])
    if observe == "dict":
        assert [o["safeguard"] for o, *_ in steps] == [i["safeguard_state"] for *_, i in steps]


def test_reset_restarts_the_safeguard_after_a_violation() -> None:
    env = make("G !lava")
    obs, _, steps = rollout(env, 1, [0])
    assert steps[0][-1]["verdict"] == "violated"              # the step reached the sink ...
    assert steps[0][0]["safeguard"] == env.safeguard.initial  # ... and the next starts afresh
    assert env.state == env.safeguard.initial
    env2 = make("G !lava", after_violation="stay")
    rollout(env2, 1, [0])
    assert env2.state == env2.safeguard.violation_state


def test_reset_after_an_episode_starts_from_the_initial_state() -> None:
    env = make("G !lava", after_violation="stay", max_steps=1)
    rollout(env, 1, [0])
    obs, info = env.reset(options={"start": 2})
    assert obs["safeguard"] == info["safeguard_state"] == env.safeguard.initial
    assert info["verdict"] == PS


# -- label_reset -------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "start", "label_reset", "expected"), [
    ("G !lava", 0, False, (["lava"], PS, [], 0.0)),
    ("G !lava", 0, True, (["lava"], V, F, 1.0)),
    ("G !lava", 2, True, ([], PS, [], 0.0)),
    ("F lava", 0, False, (["lava"], PV, [], 0.0)),
    ("F lava", 0, True, (["lava"], "satisfied", [], 0.0)),
    (SPEC3, 0, True, (["lava"], V, LAVA2, 2.0)),
])
def test_label_reset(spec: str, start: int, label_reset: bool,
                     expected: tuple[list[str], str, list[str], float]) -> None:
    env = make(spec, label_reset=label_reset)
    obs, info = env.reset(options={"start": start})
    assert (info["labels"], info["verdict"], info["violated_rules"], info["cost"]) == expected
    assert obs["safeguard"] == info["safeguard_state"]


@pytest.mark.parametrize(("label_reset", "pending"), [(False, F), (True, [])])
def test_label_reset_makes_the_initial_label_part_of_the_trace(label_reset: bool,
                                                               pending: list[str]) -> None:
    env = make("F lava", label_reset=label_reset, max_steps=1)
    _, _, steps = rollout(env, 0, [1])
    assert steps[-1][4]["pending_rules"] == pending


def test_label_reset_violation_then_reset_mode_counts_later_violations() -> None:
    env = make("G !lava", label_reset=True)
    _, info, steps = rollout(env, 0, [1, 0])
    assert info["cost"] == 1.0
    assert [s[4]["cost"] for s in steps] == [0.0, 1.0]
    assert [s[4]["violated_rules"] for s in steps] == [[], F]


# -- reward modes ------------------------------------------------------------------------------
# (spec, kwargs, max_steps, start, actions, expected rewards)
REWARDS = [
    pytest.param("G !lava", {"reward": "task"}, None, 2, [1, 1], [0.0, 1.0], id="task"),
    pytest.param("G !lava", {"reward": None}, None, 1, [0, 1], [0.0, 0.0], id="task-none"),
    pytest.param("G !lava", {"reward": "penalty"}, None, 1, [0, 0, 1], [-1.0, -1.0, 0.0],
                 id="penalty-default-weight"),
    pytest.param(SPEC3, {"reward": "penalty"}, None, 1, [0, 0, 1], [-2.75, -2.75, 0.0],
                 id="penalty-rule-weights"),
    pytest.param(SPEC3, {"reward": "penalty", "after_violation": "stay"}, None, 1, [0, 0],
                 [-2.75, 0.0], id="penalty-stay"),
    pytest.param(SPEC3, {"reward": "penalty"}, None, 3, [1], [1.0], id="penalty-plus-task"),
    pytest.param(SPEC3, {"reward": "penalty"}, 1, 1, [1], [0.0], id="penalty-pending-free"),
    pytest.param(SPEC3, {"reward": Penalty(scale=2.0, terminal_scale=1.0)}, 2, 1, [0, 1],
                 [-5.5, -4.0], id="penalty-scaled-terminal"),
    pytest.param("G !lava", {"reward": "paper"}, None, 2, [1, 1], [0.1, 1.1], id="paper-safe"),
    pytest.param("G !lava", {"reward": "paper"}, None, 1, [0, 1, 0], [-0.1, 0.1, -0.1],
                 id="paper-reset"),
    pytest.param("F goal", {"reward": "paper"}, None, 1, [1, 0, 1, 1, 1],
                 [0.0, 0.0, 0.0, 0.0, 1.1], id="paper-not-accepting-is-zero"),
    pytest.param(SPEC3, {"reward": "paper", "terminate_on_violation": True}, None, 1, [0],
                 [-0.1], id="paper-terminate"),
    pytest.param("G !lava", {"reward": PaperShaping(bonus=0.5)}, None, 1, [0, 1], [-0.5, 0.5],
                 id="paper-bonus"),
    pytest.param("G !lava", {"reward": "paper", "after_violation": "stay"}, None, 1, [0, 1, 1],
                 [-0.1, -0.1, -0.1], id="paper-stay-in-sink"),
    pytest.param("G !lava & F goal", {"reward": "potential", "gamma": 0.9}, None, 2, [1, 1],
                 [0.9 * 1.0 - 1.0, 1.0 - 1.0], id="potential"),
    pytest.param("G !lava & F goal", {"reward": "potential", "gamma": 0.5,
                                      "terminate_on_violation": True}, None, 1, [0],
                 [-1.0], id="potential-terminated"),
    pytest.param("G !lava & F goal", {"reward": "potential", "gamma": 0.5}, 1, 2, [1],
                 [0.5 * 1.0 - 1.0], id="potential-truncated-bootstraps"),
    pytest.param("G !lava", {"reward": lambda r, step: 10 * r - 3 * len(step.violated_rules)},
                 None, 3, [0, 0, 0, 1, 1, 1, 1], [0.0, 0.0, -3.0, 0.0, 0.0, 0.0, 10.0],
                 id="callable"),
]


@pytest.mark.parametrize(("spec", "kwargs", "max_steps", "start", "actions", "expected"), REWARDS)
def test_reward_modes(spec: str, kwargs: dict[str, Any], max_steps: int | None, start: int,
                      actions: list[int], expected: list[float]) -> None:
    env = make(spec, max_steps=max_steps, **kwargs)
    _, _, steps = rollout(env, start, actions)
    rewards = [s[1] for s in steps]
    assert all(isinstance(r, float) for r in rewards)
    assert rewards == pytest.approx(expected, abs=1e-12)
    if "paper" in str(kwargs.get("reward")) or isinstance(kwargs.get("reward"), PaperShaping):
        assert rewards == expected                    # exactly +-bonus, 0, plus the task reward


def test_potential_values_used_above() -> None:
    # The expected potential rewards in REWARDS assume phi = [1.0, 1.5, 0.0] for G !lava & F goal
    # with state 0 the initial state, 1 "goal seen", 2 the violation.
    sg = compile_spec("G !lava & F goal")
    assert potential(sg).tolist() == [1.0, 1.5, 0.0]
    assert sg.step(0, {"goal"}) == 1 and sg.violation_state == 2


def test_a_callable_reward_sees_every_safeguard_step() -> None:
    seen: list[tuple[float, SafeguardStep]] = []

    def record(task_reward: float, step: SafeguardStep) -> float:
        seen.append((task_reward, step))
        return -7.0

    env = make(SPEC3, reward=record, max_steps=3)
    sg = env.safeguard
    _, _, steps = rollout(env, 1, [0, 1, 1])
    assert [s[1] for s in steps] == [-7.0, -7.0, -7.0]
    got = [(r, s.state, s.next_state, s.violated_rules, s.terminated, s.pending_rules)
           for r, s in seen]
    assert got == [
        (0.0, 0, sg.initial, frozenset(LAVA2), False, frozenset()),  # violated, restarted
        (0.0, 0, 0, frozenset(), False, frozenset()),
        (0.0, 0, 0, frozenset(), False, frozenset({"reach"})),  # truncated with F goal open
    ]
    assert all(s.safeguard is sg for _, s in seen)


def _discounted_shaping(env: SafeguardWrapper, start: int, actions: list[int],
                        gamma: float) -> tuple[float, float]:
    """(sum_t gamma^t (shaped_t - task_t), gamma^T phi(x_T) - phi(x_0)) with the x_t the
    safeguard states the agent *observes* (0 after termination)."""
    phi = potential(env.safeguard)
    obs, info, steps = rollout(env, start, actions)
    total = 0.0
    for t, (_, reward, _, _, i) in enumerate(steps):
        total += gamma ** t * (reward - float(i["goal"]))
    _, _, terminated, _, _ = steps[-1]
    end = 0.0 if terminated else gamma ** len(steps) * phi[steps[-1][0]["safeguard"]]
    return total, end - phi[obs["safeguard"]]


@pytest.mark.parametrize(("spec", "kwargs", "start", "actions"), [
    ("G !lava & F goal", {}, 2, [1, 0, 0, 1, 1, 1]),
    ("G !lava & F goal", {"terminate_on_violation": True}, 2, [0, 0, 1, 0]),
    ("G !lava & F goal", {"after_violation": "stay"}, 1, [0, 1, 0, 1, 1, 1, 1]),
    (SPEC_CF, {"after_violation": "stay"}, 1, [0, 0, 1, 1, 1]),
    pytest.param("G !lava & F goal", {}, 1, [0, 1, 1, 1], id="reset-after-violation"),
])
def test_potential_shaping_telescopes(spec: str, kwargs: dict[str, Any], start: int,
                                      actions: list[int]) -> None:
    gamma = 0.9
    env = make(spec, reward="potential", gamma=gamma, **kwargs)
    total, expected = _discounted_shaping(env, start, actions, gamma)
    assert total == pytest.approx(expected, abs=1e-12)


def test_potential_shaping_reward_mode_is_the_class() -> None:
    env = make("G !lava", reward="potential", gamma=0.7)
    assert isinstance(env.reward_fn, PotentialShaping) and env.reward_fn.gamma == 0.7


# -- counterfactual experience -----------------------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


# (wrapper kwargs, obs_type, max_steps, start, action)
COUNTERFACTUALS = [
    ({}, "discrete", None, 1, 0),
    ({"reward": "penalty", "terminate_on_violation": True}, "discrete", None, 1, 0),
    ({"reward": "paper"}, "discrete", None, 3, 1),
    ({"reward": "paper", "after_violation": "stay"}, "discrete", None, 1, 0),
    ({"reward": Penalty(terminal_scale=1.0)}, "discrete", 1, 2, 1),
    ({"reward": "potential", "observe": "onehot"}, "box", None, 1, 0),
    ({"reward": "potential", "terminate_on_violation": True, "observe": "onehot"}, "box", 1, 1, 0),
    ({"reward": "penalty", "observe": "none"}, "discrete", None, 2, 1),
    ({"reward": "paper", "label_reset": True}, "intbox", 1, 3, 0),
]


@pytest.mark.parametrize(("kwargs", "obs_type", "max_steps", "start", "action"), COUNTERFACTUALS)
def test_counterfactuals_match_the_wrapper_from_every_live_state(
        kwargs: dict[str, Any], obs_type: str, max_steps: int | None, start: int,
        action: int) -> None:
    sg = compile_spec(SPEC_CF)
    live = [q for q in range(sg.n_states) if sg.verdict(q) != Verdict.VIOLATED]
    assert len(live) == 3

    # The real environment transition (the env's own reward and flags).
    raw: gym.Env = Corridor(obs_type=obs_type)
    if max_steps is not None:
        raw = TimeLimit(raw, max_steps)
    obs, _ = raw.reset(options={"start": start})
    next_obs, task_reward, terminated, truncated, raw_info = raw.step(action)
    labels = [p for p in ("lava", "goal") if raw_info[p]]

    env = make(sg, obs_type=obs_type, max_steps=max_steps, **kwargs)
    env.reset(options={"start": start})
    counterfactuals = env.counterfactuals(obs, action, task_reward, next_obs, labels, terminated,
                                          truncated)
    assert len(counterfactuals) == len(live)
    for q, got in zip(live, counterfactuals):
        twin = make(sg, obs_type=obs_type, max_steps=max_steps, **kwargs)
        twin.reset(options={"start": start})
        twin.state = q                                           # put the safeguard in q
        product_obs = twin.observation(obs)
        n_obs, reward, n_terminated, n_truncated, info = twin.step(action)
        assert info["labels"] == labels
        expected = (product_obs, action, reward, n_obs, n_terminated, n_truncated)
        assert _same(got[0], expected[0]), (q, got[0], expected[0])
        assert got[1] == action
        assert got[2] == pytest.approx(reward, abs=1e-12), q
        assert _same(got[3], expected[3]), (q, got[3], expected[3])
        assert (got[4], got[5]) == (n_terminated, n_truncated), q
        if env.observe != "none":
            assert sg_state(got[0], env) == q


def test_counterfactuals_cover_states_that_disagree() -> None:
    # From the three live states of SPEC_CF a step onto lava violates `first`, nothing, and
    # `no_twice`: the penalties differ.
    env = make(SPEC_CF, reward="penalty", terminate_on_violation=True)
    counterfactuals = env.counterfactuals(1, 0, 0.0, 0, ["lava"], False, False)
    assert [c[2] for c in counterfactuals] == [-2.0, 0.0, -3.0]
    assert [c[4] for c in counterfactuals] == [True, False, True]
    assert [c[0]["safeguard"] for c in counterfactuals] == [0, 1, 2]


# -- registration and vector envs --------------------------------------------------------------
def test_registered() -> None:
    assert "safeguards/Safeguarded-v0" in gym.registry


@pytest.mark.parametrize("spec_kind", ["formula", "text", "safeguard", "path", "pathlike"])
def test_make_with_every_kind_of_spec(spec_kind: str, tmp_path: Any) -> None:
    file = tmp_path / "corridor.sg"
    file.write_text(SPEC3)
    spec: Any = {"formula": "G !lava & F goal", "text": SPEC3,
                 "safeguard": safeguards.compile(SPEC3), "path": str(file),
                 "pathlike": file}[spec_kind]
    env = gym.make("safeguards/Safeguarded-v0", env="safeguards_test/Corridor-v0", spec=spec,
                   labeler=LABELER, reward="penalty", terminate_on_violation=True,
                   env_kwargs={"start": 1})
    assert isinstance(env.unwrapped, Corridor)
    wrapper = env
    while not isinstance(wrapper, SafeguardWrapper):
        wrapper = wrapper.env                                   # type: ignore[attr-defined]
    assert set(wrapper.safeguard.props) == {"goal", "lava"}
    obs, info = env.reset(seed=0)
    assert obs == {"obs": 1, "safeguard": 0}
    _, reward, terminated, _, info = env.step(0)
    assert terminated and info["cost"] == (1.0 if spec_kind == "formula" else 2.0)
    assert reward == (-1.0 if spec_kind == "formula" else -2.75)


def test_make_keeps_the_env_time_limit_inside_the_wrapper() -> None:
    env = gym.make("safeguards/Safeguarded-v0", env="safeguards_test/Corridor3-v0",
                   spec="F goal", labeler=CellLabeler(), observe="none")
    env.reset(seed=0)
    steps = [env.step(a) for a in (1, 0, 1)]
    assert [s[3] for s in steps] == [False, False, True]
    assert steps[-1][4]["pending_rules"] == F and steps[-1][4]["end_violation"]
    assert steps[-1][4]["cost"] == 1.0


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("lab", [LABELER, CellLabeler(), function_labeler], ids=["info", "prop",
                                                                                 "function"])
def test_make_vec(mode: str, lab: Any) -> None:
    envs = gym.make_vec("safeguards/Safeguarded-v0", num_envs=2, vectorization_mode=mode,
                        env="safeguards_test/Corridor3-v0", spec=SPEC3, labeler=lab,
                        reward="penalty")
    try:
        assert envs.single_observation_space == spaces.Dict(
            {"obs": spaces.Discrete(N), "safeguard": spaces.Discrete(3)})
        obs, infos = envs.reset(seed=0)
        np.testing.assert_array_equal(obs["obs"], [1, 1])
        np.testing.assert_array_equal(obs["safeguard"], [0, 0])
        obs, rewards, terminated, truncated, infos = envs.step(np.array([0, 1]))
        np.testing.assert_array_equal(obs["safeguard"], [0, 0])   # restarted after violating
        assert list(infos["verdict"]) == ["violated", "presumably_violated"]
        np.testing.assert_allclose(rewards, [-2.75, 0.0])
        np.testing.assert_allclose(infos["cost"], [2.0, 0.0])
        assert list(infos["violated_rules"][0]) == LAVA2 and list(infos["violated_rules"][1]) == []
        for _ in range(2):
            obs, rewards, terminated, truncated, infos = envs.step(np.array([1, 1]))
        np.testing.assert_array_equal(truncated, [True, True])    # the third step of both
        np.testing.assert_array_equal(terminated, [False, True])  # env 1 reached the goal
        np.testing.assert_allclose(infos["cost"], [1.0, 0.0])      # env 0: `reach` pending
        assert list(infos["pending_rules"][0]) == ["reach"]
    finally:
        envs.close()
