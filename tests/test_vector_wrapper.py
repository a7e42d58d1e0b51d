"""SafeguardVectorWrapper equals N single SafeguardWrappers, step by step.

The reference is ``SyncVectorEnv([SafeguardWrapper(make_env(), ...)] * N)`` and the wrapper under
test ``SafeguardVectorWrapper(SyncVectorEnv([make_env] * N), ...)`` (or ``AsyncVectorEnv``), both
reset with the same seeds and fed the same random actions; observations, rewards, terminations,
truncations and the whole info dicts (every key, mask and dtype) must be identical after every
reset and step, in every autoreset mode.

Environments: a 1-D corridor written here (stochastic start, a lava cell that does not end the
episode, a goal that does, truncation after ``horizon`` steps, info values of several types and
a key that only some steps carry) and MiniGrid ``LavaGapS5`` with a labeler that reads the grid
cell under the agent.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

import numpy as np
import pytest

pytest.importorskip("gymnasium")

import gymnasium as gym
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import FlattenObservation

import safeguards
from safeguards.automata import Safeguard
from safeguards.gym import Penalty, SafeguardStep, SafeguardWrapper
from safeguards.gym.vector import SafeguardVectorWrapper, env_info
from safeguards.labels import InfoLabeler, LabelError, labeler

MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]
MODE_IDS = ["next", "same", "disabled"]


# -- the corridor ------------------------------------------------------------------------------
class Corridor(gym.Env):
    """Cells ``0 .. length-1``: 0 is lava (the episode goes on), ``length-1`` the goal (reward 1,
    terminates).  Actions 0 left, 1 stay, 2 right.  The start cell is random (``np_random``);
    the episode is truncated after ``horizon`` steps."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = 5, horizon: int = 7) -> None:
        self.length, self.horizon = length, horizon
        self.action_space = spaces.Discrete(3)
        self.observation_space = spaces.Box(0.0, float(max(length, horizon)), (2,), np.float32)
        self.pos, self.t = 1, 0

    def _obs(self) -> np.ndarray:
        return np.array([self.pos, self.t], dtype=np.float32)

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"lava": self.pos == 0, "goal": self.pos == self.length - 1,
                                "pos": self.pos, "progress": self.pos / (self.length - 1),
                                "trail": np.array([self.pos, self.t])}
        if self.pos % 2 == 0:                       # a key only some steps carry
            info["even"] = "yes"
        return info

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.pos, self.t = int(self.np_random.integers(0, self.length - 1)), 0
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.pos = max(0, min(self.length - 1, self.pos + int(action) - 1))
        self.t += 1
        goal = self.pos == self.length - 1
        reward = 1.0 if goal else -0.1 * (self.length - 1 - self.pos)
        return self._obs(), reward, goal, self.t >= self.horizon and not goal, self._info()


class Constant(gym.Env):
    """Step returns constants; never ends."""

    metadata = {"render_modes": []}
    observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(4)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action: Any):
        return np.zeros(2, np.float32), 0.0, False, False, {}


@labeler("left")
def moved_left(obs: Any, info: Any, action: Any) -> set[str]:
    return {"left"} if action is not None and int(action) == 0 else set()


CORRIDOR_LABELER = InfoLabeler(["lava", "goal"]) | moved_left

TWO_RULES = """spec corridor2 "stay off lava, reach the goal"
props: lava goal left
rule no_lava (penalty = 2.0): ltl G !lava
rule reach (penalty = 0.5): ltl F goal
"""
THREE_RULES = """spec corridor3 "three rules, one a regex"
props: lava goal left
rule no_lava (penalty = 2.0): ltl G !lava
rule reach (penalty = 0.5): ltl F goal
rule no_double_left (penalty = 0.25): never left ; left
"""
GRID_TWO_RULES = """spec lava_gap "no lava, reach the goal"
props: lava goal
rule no_lava (penalty = 2.0): ltl G !lava
rule reach (penalty = 0.5): ltl F goal
"""
SPECS = {"never_lava": "G !lava", "eventually_goal": "F goal", "two_rules": TWO_RULES,
         "three_rules": THREE_RULES}


def compile_spec(spec: str) -> Safeguard:
    return safeguards.compile(spec) if "\n" in spec else safeguards.compile_ltl(spec)


def custom_reward(task: float, step: SafeguardStep) -> float:
    return task - 3.0 * len(step.violated_rules) + 0.5 * step.next_state \
        - 0.25 * len(step.pending_rules) + (0.125 if step.terminated else 0.0)


REWARDS: dict[str, Any] = {"task": "task", "penalty": "penalty", "paper": "paper",
                           "potential": "potential", "penalty_terminal": Penalty(2.0, 1.0),
                           "custom": custom_reward}


# -- comparison --------------------------------------------------------------------------------
def assert_same(expected: Any, actual: Any, where: str = "") -> None:
    """Recursive equality: same dict keys, same container types, same array dtypes and shapes,
    equal values."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {type(actual)} is not a dict"
        assert expected.keys() == actual.keys(), \
            f"{where}: keys {sorted(expected)} != {sorted(actual)}"
        for key in expected:
            assert_same(expected[key], actual[key], f"{where}[{key!r}]")
    elif isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{where}: {type(actual)} is not an array"
        assert expected.dtype == actual.dtype, f"{where}: dtype {expected.dtype} != {actual.dtype}"
        assert expected.shape == actual.shape, f"{where}: shape {expected.shape} != {actual.shape}"
        if expected.dtype == object:
            for i, (e, a) in enumerate(zip(expected, actual)):
                assert_same(e, a, f"{where}[{i}]")
        else:
            assert np.array_equal(expected, actual), f"{where}: {expected} != {actual}"
    elif isinstance(expected, (list, tuple)):
        assert type(expected) is type(actual), f"{where}: {type(expected)} != {type(actual)}"
        assert len(expected) == len(actual), f"{where}: {expected} != {actual}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, f"{where}[{i}]")
    else:
        assert expected == actual, f"{where}: {expected!r} != {actual!r}"
        assert isinstance(actual, bool) == isinstance(expected, bool), where


def _wrapped(make_env: Callable[[], gym.Env], sg: Safeguard,
             make_labeler: Callable[[gym.Env], Any], options: dict[str, Any]) -> gym.Env:
    env = make_env()
    return SafeguardWrapper(env, sg, make_labeler(env), **options)


def _same_labeler(lab: Any, env: gym.Env) -> Any:
    return lab


def compare(make_env: Callable[[], gym.Env], sg: Safeguard, make_labeler: Callable[[gym.Env], Any],
            mode: AutoresetMode, options: dict[str, Any], *, n: int = 3, steps: int = 120,
            seed: int = 0, vector: type = SyncVectorEnv, per_env_labelers: bool = False,
            flag_autoreset: bool | None = None) -> dict[str, int]:
    """Run the reference and the vector wrapper side by side; returns event counts."""
    reference = SyncVectorEnv([functools.partial(_wrapped, make_env, sg, make_labeler, options)
                               for _ in range(n)], autoreset_mode=mode)
    base = vector([make_env for _ in range(n)], autoreset_mode=mode)
    labelers: Any = ([make_labeler(e) for e in base.envs] if per_env_labelers
                     else make_labeler(None))
    wrapped = SafeguardVectorWrapper(base, sg, labelers, **options)
    if flag_autoreset is not None:
        wrapped._flag_autoreset = flag_autoreset
    counts = {"done": 0, "violations": 0, "pending": 0, "forced": 0}
    try:
        assert reference.single_observation_space == wrapped.single_observation_space
        assert reference.observation_space == wrapped.observation_space
        assert reference.single_action_space == wrapped.single_action_space
        rng = np.random.default_rng(seed)
        n_actions = int(reference.single_action_space.n)
        for phase, (phase_seed, phase_steps) in enumerate([(seed, steps), (seed + 1, 10)]):
            # A second full reset in the middle, then a few more steps.
            assert_same(reference.reset(seed=phase_seed), wrapped.reset(seed=phase_seed),
                        f"reset {phase}")
            for t in range(phase_steps):
                actions = rng.integers(0, n_actions, size=n)
                expected = reference.step(actions)
                assert_same(expected, wrapped.step(actions.copy()), f"phase {phase} step {t}")
                info = expected[4] if mode != AutoresetMode.SAME_STEP else \
                    {**expected[4], **expected[4].get("final_info", {})}
                done = expected[2] | expected[3]
                counts["done"] += int(done.sum())
                counts["violations"] += sum(bool(v) for v in info["violated_rules"])
                if "pending_rules" in info:
                    counts["pending"] += sum(bool(p) for p, m in
                                             zip(info["pending_rules"], info["_pending_rules"])
                                             if m)
                if mode == AutoresetMode.DISABLED and done.any():
                    assert_same(reference.reset(options={"reset_mask": done.copy()}),
                                wrapped.reset(options={"reset_mask": done.copy()}),
                                f"phase {phase} masked reset {t}")
    finally:
        reference.close()
        wrapped.close()
    return counts


def corridor_labeler(env: gym.Env | None) -> Any:
    return CORRIDOR_LABELER


# -- corridor: every spec x reward mode x autoreset mode ---------------------------------------
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("reward", list(REWARDS))
@pytest.mark.parametrize("options", [
    {},
    {"observe": "onehot", "terminate_on_violation": True, "after_violation": "stay",
     "label_reset": True},
], ids=["defaults", "onehot_terminate_stay_labelreset"])
def test_corridor_matches_single_wrappers(mode: AutoresetMode, spec: str, reward: str,
                                          options: dict[str, Any]) -> None:
    counts = compare(Corridor, compile_spec(SPECS[spec]), corridor_labeler, mode,
                     {"reward": REWARDS[reward], **options}, steps=60)
    assert counts["done"] > 0
    if spec != "eventually_goal":
        assert counts["violations"] > 0
    if spec != "never_lava":
        assert counts["pending"] > 0


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("observe", ["dict", "onehot", "none"])
@pytest.mark.parametrize("terminate", [False, True], ids=["go_on", "terminate"])
@pytest.mark.parametrize("after", ["reset", "stay"])
@pytest.mark.parametrize("label_reset", [False, True], ids=["no_label_reset", "label_reset"])
def test_corridor_every_option(mode: AutoresetMode, observe: str, terminate: bool, after: str,
                               label_reset: bool) -> None:
    compare(Corridor, compile_spec(THREE_RULES), corridor_labeler, mode,
            {"observe": observe, "terminate_on_violation": terminate, "after_violation": after,
             "label_reset": label_reset, "reward": "potential", "gamma": 0.9}, n=4, steps=50,
            seed=3)


def test_label_reset_violation_at_reset() -> None:
    """The reset label can violate (a corridor start on lava) — reported as in the single
    wrapper, in every mode."""
    for mode in MODES:
        counts = compare(Corridor, compile_spec("G !lava"), corridor_labeler, mode,
                         {"label_reset": True, "reward": "penalty"}, n=5, steps=60, seed=11)
        assert counts["done"] > 0


# -- forced terminations without SyncVectorEnv's autoreset flag --------------------------------
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_async_vector_env(mode: AutoresetMode) -> None:
    counts = compare(Corridor, compile_spec(TWO_RULES), corridor_labeler, mode,
                     {"terminate_on_violation": True, "reward": "penalty",
                      "observe": "onehot"}, n=3, steps=60, vector=AsyncVectorEnv)
    assert counts["violations"] > 0


def test_next_step_fallback_on_sync() -> None:
    """The generic NEXT_STEP path (step once more, then a reset_mask reset) gives the same
    results on an environment whose step draws no random numbers."""
    counts = compare(Corridor, compile_spec(TWO_RULES), corridor_labeler, AutoresetMode.NEXT_STEP,
                     {"terminate_on_violation": True, "reward": "paper"}, n=3, steps=100,
                     flag_autoreset=False)
    assert counts["violations"] > 0


def test_forced_termination_next_step_restarts() -> None:
    """Hand-checked: a violation with terminate_on_violation ends the episode; the next step
    returns the reset observation, reward 0, safeguard state 0 and the reset's labels."""
    sg = compile_spec("G !lava")
    envs = SafeguardVectorWrapper(SyncVectorEnv([Corridor, Corridor]), sg, CORRIDOR_LABELER,
                                  terminate_on_violation=True, reward="penalty")
    obs, info = envs.reset(seed=0)
    start = obs["obs"][:, 0].astype(int).tolist()
    assert info["_labels"].all() and info["cost"].tolist() == [0.0, 0.0]
    # Walk both agents left until each reaches the lava (cell 0).
    for _ in range(max(start)):
        obs, reward, terminated, truncated, info = envs.step(np.array([0, 0]))
        if terminated.any():
            break
    hit = int(np.flatnonzero(terminated)[0])
    assert info["violated_rules"][hit] == ["formula"] and reward[hit] == -0.4 - 1.0
    assert obs["safeguard"][hit] == 1 and info["verdict"][hit] == "violated"
    assert info["_pending_rules"][hit] and info["pending_rules"][hit] == []
    assert not info["end_violation"][hit]
    obs, reward, terminated, truncated, info = envs.step(np.array([2, 2]))
    assert obs["safeguard"][hit] == 0 and reward[hit] == 0.0 and not terminated[hit]
    assert info["violated_rules"][hit] == [] and info["verdict"][hit] == "presumably_satisfied"
    assert envs.states[hit] == 0
    assert "pending_rules" not in info or not info["_pending_rules"][hit]


def test_disabled_masked_reset_keeps_other_observations() -> None:
    sg = compile_spec("G !lava")
    envs = SafeguardVectorWrapper(SyncVectorEnv([Corridor] * 2, autoreset_mode="Disabled"), sg,
                                  CORRIDOR_LABELER, terminate_on_violation=True)
    obs, _ = envs.reset(seed=0)
    while True:
        obs, _, terminated, truncated, info = envs.step(np.array([0, 1]))
        if (terminated | truncated).any():
            break
    with pytest.raises(RuntimeError, match="reset_mask"):
        envs.step(np.array([1, 1]))
    mask = terminated | truncated
    shown = obs["safeguard"].copy()
    obs2, info2 = envs.reset(options={"reset_mask": mask})
    assert obs2["safeguard"][mask].tolist() == [0] * int(mask.sum())
    assert obs2["safeguard"][~mask].tolist() == shown[~mask].tolist()
    assert info2["_labels"].tolist() == mask.tolist()
    envs.step(np.array([1, 1]))


def test_env_info_rebuilds_one_sub_env() -> None:
    infos = {"a": np.array([1, 2]), "_a": np.array([True, False]),
             "flag": np.array([True, False]), "_flag": np.array([True, True]),
             "nested": {"x": np.array([0.5, 1.5]), "_x": np.array([False, True])},
             "_nested": np.array([True, True]), "nomask": np.array(["p", "q"], dtype=object),
             "_private": np.array([3, 4])}
    assert env_info(infos, 0) == {"a": 1, "flag": True, "nested": {}, "nomask": "p",
                                  "_private": 3}
    info1 = env_info(infos, 1)
    assert info1 == {"flag": False, "nested": {"x": 1.5}, "nomask": "q", "_private": 4}
    assert type(info1["flag"]) is bool


# -- MiniGrid ----------------------------------------------------------------------------------
try:
    from minigrid.core.world_object import Goal, Lava
    from minigrid.wrappers import ImgObsWrapper
except ImportError:  # pragma: no cover - minigrid is in the dev extra
    Goal = Lava = ImgObsWrapper = None
needs_minigrid = pytest.mark.skipif(Lava is None, reason="minigrid is not installed")


def grid_labeler(env: gym.Env) -> Any:
    """``lava`` / ``goal`` when the grid cell under the agent is Lava / Goal (reads the
    simulator, so it closes over its sub-environment)."""
    @labeler("lava", "goal")
    def under_agent(obs: Any, info: Any, action: Any) -> set[str]:
        cell = env.unwrapped.grid.get(*env.unwrapped.agent_pos)
        return {"lava"} if isinstance(cell, Lava) else {"goal"} if isinstance(cell, Goal) else set()
    return under_agent


class CellInInfo(gym.Wrapper):
    """Puts the grid labeler's facts into ``info`` (for SAME_STEP, where the vector env has
    reset the sub-env before the wrapper can label the final step)."""

    def _with_cell(self, info: dict[str, Any]) -> dict[str, Any]:
        cell = self.env.unwrapped.grid.get(*self.env.unwrapped.agent_pos)
        return {**info, "lava": isinstance(cell, Lava), "goal": isinstance(cell, Goal)}

    def reset(self, **kwargs: Any) -> Any:
        obs, info = self.env.reset(**kwargs)
        return obs, self._with_cell(info)

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._with_cell(info)


def lava_gap() -> gym.Env:
    return gym.make("MiniGrid-LavaGapS5-v0")


def lava_gap_flat() -> gym.Env:
    return FlattenObservation(ImgObsWrapper(gym.make("MiniGrid-LavaGapS5-v0")))


def lava_gap_info() -> gym.Env:
    return CellInInfo(gym.make("MiniGrid-LavaGapS5-v0"))


def info_labeler(env: gym.Env | None) -> Any:
    return InfoLabeler(["lava", "goal"])


@needs_minigrid
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED],
                         ids=["next", "disabled"])
@pytest.mark.parametrize("spec", ["G !lava", GRID_TWO_RULES], ids=["never_lava", "two_rules"])
@pytest.mark.parametrize("reward", ["task", "penalty", "paper", "potential"])
def test_minigrid_grid_labeler(mode: AutoresetMode, spec: str, reward: str) -> None:
    counts = compare(lava_gap, compile_spec(spec), grid_labeler, mode,
                     {"reward": reward, "terminate_on_violation": reward == "penalty"},
                     n=2, steps=80, seed=5, per_env_labelers=True)
    assert counts["done"] > 0 and counts["violations"] > 0


@needs_minigrid
@pytest.mark.parametrize("spec", ["G !lava", GRID_TWO_RULES], ids=["never_lava", "two_rules"])
@pytest.mark.parametrize("reward", ["task", "penalty", "paper", "potential"])
def test_minigrid_same_step_info_labeler(spec: str, reward: str) -> None:
    counts = compare(lava_gap_info, compile_spec(spec), info_labeler, AutoresetMode.SAME_STEP,
                     {"reward": reward, "after_violation": "stay"}, n=2, steps=80, seed=5)
    assert counts["done"] > 0 and counts["violations"] > 0


@needs_minigrid
@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED],
                         ids=["next", "disabled"])
def test_minigrid_onehot(mode: AutoresetMode) -> None:
    compare(lava_gap_flat, compile_spec(GRID_TWO_RULES), grid_labeler, mode,
            {"observe": "onehot", "reward": "paper", "label_reset": True}, n=2, steps=60,
            seed=2, per_env_labelers=True)


# -- bad parameters ----------------------------------------------------------------------------
def _corridors(n: int = 2, **kwargs: Any) -> SyncVectorEnv:
    return SyncVectorEnv([Corridor] * n, **kwargs)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"after_violation": "restart"}, ValueError, "after_violation must be"),
    ({"observe": "pixels"}, ValueError, "observe must be"),
    ({"reward": "bonus"}, ValueError, "unknown reward mode"),
])
def test_bad_options(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SafeguardVectorWrapper(_corridors(), compile_spec("G !lava"), CORRIDOR_LABELER, **kwargs)


@needs_minigrid
def test_onehot_needs_a_flat_box() -> None:
    with pytest.raises(ValueError, match="1-D Box"):
        SafeguardVectorWrapper(SyncVectorEnv([lava_gap]), compile_spec("G !lava"),
                               info_labeler(None), observe="onehot")


def test_missing_props() -> None:
    sg = compile_spec("G !lava & G !fire")
    with pytest.raises(LabelError, match="`fire`"):
        SafeguardVectorWrapper(_corridors(), sg, CORRIDOR_LABELER)
    with pytest.warns(UserWarning, match="always false"):
        envs = SafeguardVectorWrapper(_corridors(), sg, CORRIDOR_LABELER, missing_props="warn")
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="missing must be"):
        SafeguardVectorWrapper(_corridors(), sg, CORRIDOR_LABELER, missing_props="ignore")


def test_labeler_per_env_count_and_coverage() -> None:
    sg = compile_spec("G !lava")
    with pytest.raises(ValueError, match="3 labelers for 2 sub-environments"):
        SafeguardVectorWrapper(_corridors(), sg, [CORRIDOR_LABELER] * 3)
    with pytest.raises(LabelError, match="`lava`"):
        SafeguardVectorWrapper(_corridors(), sg, [CORRIDOR_LABELER, moved_left])


def test_not_a_vector_env() -> None:
    with pytest.raises(TypeError, match="VectorEnv"):
        SafeguardVectorWrapper(Corridor(), compile_spec("G !lava"), CORRIDOR_LABELER)


def test_autoreset_metadata() -> None:
    envs = _corridors()
    envs.metadata = {k: v for k, v in envs.metadata.items() if k != "autoreset_mode"}
    with pytest.warns(UserWarning, match="assuming AutoresetMode.NEXT_STEP"):
        wrapped = SafeguardVectorWrapper(envs, compile_spec("G !lava"), CORRIDOR_LABELER)
    assert wrapped.autoreset_mode == AutoresetMode.NEXT_STEP
    envs = _corridors()
    envs.metadata = {**envs.metadata, "autoreset_mode": "NextStep"}
    with pytest.raises(TypeError, match="AutoresetMode"):
        SafeguardVectorWrapper(envs, compile_spec("G !lava"), CORRIDOR_LABELER)


@pytest.mark.parametrize("returned", ["lava", {"lava", 3}, {"lvaa"}, ["lava", "lvaa"], None])
@pytest.mark.parametrize("kind", ["raw", "function"])
def test_bad_labels_like_the_single_wrapper(returned: Any, kind: str) -> None:
    """The same LabelError (message included) as the single wrapper, whether the labeler's
    result is checked by the wrapper (a plain callable) or by the labeler itself
    (FunctionLabeler) — both name the step."""
    sg = compile_spec("G !lava")

    class Raw:
        props = frozenset({"lava"})

        def __call__(self, obs: Any, info: Any, action: Any) -> Any:
            return set() if action is None else returned

    def make() -> Any:
        if kind == "raw":
            return Raw()
        return labeler("lava")(lambda obs, info, action: set() if action is None else returned)

    single = SafeguardWrapper(Corridor(), sg, make())
    single.reset(seed=0)
    with pytest.raises(LabelError, match="step 1") as expected:
        single.step(1)
    envs = SafeguardVectorWrapper(_corridors(), sg, make())
    envs.reset(seed=0)
    with pytest.raises(LabelError, match="step 1") as actual:
        envs.step(np.array([1, 1]))
    assert str(actual.value) == str(expected.value)
    # An env without infos takes the wrapper's fast path: the same error.
    single = SafeguardWrapper(Constant(), sg, make())
    single.reset(seed=0)
    with pytest.raises(LabelError, match="step 1") as expected:
        single.step(1)
    envs = SafeguardVectorWrapper(SyncVectorEnv([Constant] * 2), sg, make())
    envs.reset(seed=0)
    with pytest.raises(LabelError) as fast:
        envs.step(np.array([1, 1]))
    assert str(fast.value) == str(expected.value)


def test_labels_returned_as_lists_are_accepted() -> None:
    class AsList:
        props = frozenset({"lava", "goal"})

        def __call__(self, obs: Any, info: Any, action: Any) -> list[str]:
            return [p for p in ("lava", "goal") if info[p]]

    compare(Corridor, compile_spec(GRID_TWO_RULES), lambda env: AsList(),
            AutoresetMode.NEXT_STEP, {"reward": "penalty"}, n=2, steps=40)


def test_constant_env_runs() -> None:
    envs = SafeguardVectorWrapper(SyncVectorEnv([Constant] * 4), compile_spec("G !left"),
                                  moved_left, reward="paper")
    envs.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(20):
            obs, reward, _, _, info = envs.step(np.array([0, 1, 2, 3]))
    # Env 0 violates on every step; the safeguard restarts (after_violation="reset"), so the
    # observation shows the initial state and the verdict the violation.
    assert obs["safeguard"].tolist() == [0, 0, 0, 0]
    assert info["verdict"].tolist() == ["violated"] + ["presumably_satisfied"] * 3
    assert reward.tolist() == [-0.1, 0.1, 0.1, 0.1]
