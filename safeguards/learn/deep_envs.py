"""The environments the deep learner trains and tests on: the product MDP of an image
environment and a stage's safeguard, plus a monitor of the fixed final (evaluation) spec.

Wrapper order, innermost first::

    gymnasium.make(env_id)              image observations, Discrete actions
    TimeLimit(max_steps)                optional
    FinalSpecMonitor(final spec)        info["final"]: the evaluation spec's verdicts (never
                                        changes observation, reward or termination)
    SafeguardWrapper(stage spec)        the product MDP: reward - violation_penalty, termination
    PadSafeguardState(n)                the safeguard state as Discrete(n), n = the largest
                                        automaton of the curriculum, so one network fits all

The evaluation spec is monitored apart from the training safeguard, as the paper's VizDoom code
logs "type 1 / type 2" violations of the true spec whatever safeguard trains (papers.md §1.6.2).

>>> import gymnasium as gym
>>> import safeguards
>>> from safeguards.labels import labeler
>>> @labeler("left")
... def moved_left(obs, info, action):
...     return {"left"} if action == 0 else set()
>>> env = FinalSpecMonitor(gym.make("CartPole-v1"), safeguards.compile_ltl("G !left"), moved_left)
>>> _ = env.reset(seed=0)
>>> obs, reward, terminated, truncated, info = env.step(0)
>>> reward, terminated, info["final"]["violated_rules"]
(1.0, False, ['formula'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
from gymnasium import spaces

from safeguards.automata import Safeguard
from safeguards.gym import SafeguardWrapper
from safeguards.gym.rewards import SafeguardStep
from safeguards.labels import Labeler

__all__ = ["FinalSpecMonitor", "PadSafeguardState", "ViolationPenalty", "product_env",
           "FINAL_KEYS"]

#: The ``info`` keys of the monitored final spec, moved under ``info["final"]``.
FINAL_KEYS = ("labels", "safeguard_state", "verdict", "violated_rules", "cost", "task_reward",
              "env_terminated", "pending_rules", "end_violation")


class FinalSpecMonitor(SafeguardWrapper):
    """Monitor a fixed spec without acting on it: observation, reward and termination are the
    environment's; the monitor's ``info`` entries go under ``info["final"]`` (so an outer
    :class:`~safeguards.gym.SafeguardWrapper` does not overwrite them).  After a violation the
    monitor restarts, so later violations count again."""

    def __init__(self, env: gym.Env, safeguard: Safeguard, labeler: Labeler) -> None:
        super().__init__(env, safeguard, labeler, observe="none", reward="task",
                         terminate_on_violation=False, after_violation="reset")

    @staticmethod
    def _move(info: dict[str, Any]) -> dict[str, Any]:
        info["final"] = {key: info.pop(key) for key in FINAL_KEYS if key in info}
        return info

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = super().reset(**kwargs)
        return obs, self._move(info)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, self._move(info)


class PadSafeguardState(gym.ObservationWrapper):
    """Declare the ``safeguard`` entry of a dict observation as ``Discrete(n)`` for an ``n`` at
    least the automaton's size: every stage of a curriculum then has the same observation space
    (Stable-Baselines3 one-hot encodes it), and a network carries over unchanged."""

    def __init__(self, env: gym.Env, n: int) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict) or "safeguard" not in space.spaces:
            raise TypeError(f"PadSafeguardState needs a dict observation with a safeguard "
                            f"entry, not {space}")
        size = int(space["safeguard"].n)
        if n < size:
            raise ValueError(f"cannot pad a {size}-state safeguard to {n} states")
        self.observation_space = spaces.Dict({**space.spaces, "safeguard": spaces.Discrete(n)})

    def observation(self, observation: Any) -> Any:
        return observation


@dataclass(frozen=True)
class ViolationPenalty:
    """The paper's VizDoom reward: the task reward, minus ``penalty`` on a violating step.

    >>> import safeguards
    >>> step = SafeguardStep(safeguards.compile_ltl("G !lava"), 0, 1, frozenset({"formula"}))
    >>> ViolationPenalty(0.5)(2.0, step)
    1.5
    """

    penalty: float = 1.0

    def __call__(self, task_reward: float, step: SafeguardStep) -> float:
        return float(task_reward) - (self.penalty if step.violated else 0.0)


def product_env(make: Callable[[], gym.Env], *, spec: Safeguard, final_spec: Safeguard,
                labeler: Labeler, observe: bool, pad_to: int, violation_penalty: float,
                terminate_on_violation: bool, max_steps: int | None = None) -> gym.Env:
    """The stack of the module docstring.  ``observe=False``: the policy sees the image only
    (the safeguard still shapes the reward and ends episodes as configured)."""
    env = make()
    if max_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_steps)
    env = FinalSpecMonitor(env, final_spec, labeler)
    env = SafeguardWrapper(env, spec, labeler, observe="dict" if observe else "none",
                           reward=ViolationPenalty(violation_penalty),
                           terminate_on_violation=terminate_on_violation)
    return PadSafeguardState(env, pad_to) if observe else env
