"""Environments as the tabular learner steps them.

:class:`EnvStepper` steps any Gymnasium environment with a ``Discrete`` observation space and
calls the labeler on every step, as :class:`~safeguards.gym.SafeguardWrapper` does (on the
unwrapped environment: the wrappers Gymnasium adds only check and time-limit, and the learner
applies its own ``max_steps``).

An environment may offer a faster exact path for the tabular learner through a
``fast_stepper(env, labeler, max_steps)`` method on its unwrapped class (the Minecraft
gridworld does: :mod:`safeguards.envs.gridworld.stepper`).
"""

from __future__ import annotations

from typing import Any, Hashable

import gymnasium as gym
from gymnasium import spaces

from safeguards.labels import Labeler, checked_labels

__all__ = ["EnvStepper", "make_stepper"]


class EnvStepper:
    """Step ``env.unwrapped`` and label every step with ``labeler(obs, info, action)``."""

    def __init__(self, env: gym.Env, labeler: Labeler) -> None:
        if not isinstance(env.observation_space, spaces.Discrete):
            raise TypeError(f"tabular Q-learning needs a Discrete observation space, not "
                            f"{env.observation_space}")
        if not isinstance(env.action_space, spaces.Discrete):
            raise TypeError(f"tabular Q-learning needs a Discrete action space, not "
                            f"{env.action_space}")
        self.env = env
        self.raw = env.unwrapped
        self.labeler = labeler
        self.n_obs = int(env.observation_space.n)
        self.n_actions = int(env.action_space.n)
        self._obs_start = int(env.observation_space.start)
        self._act_start = int(env.action_space.start)

    @property
    def np_random(self) -> Any:
        return self.raw.np_random

    def seed(self, seed: int) -> None:
        """Seed the environment's generator (one ``reset(seed=...)``, discarded)."""
        self.raw.reset(seed=seed)

    def reset(self) -> int:
        obs, _ = self.raw.reset()
        return int(obs) - self._obs_start

    def step(self, action: int) -> tuple[int, Hashable, float, bool, bool]:
        act = action + self._act_start
        obs, reward, terminated, truncated, info = self.raw.step(act)
        key = frozenset(self.labeler(obs, info, act))
        return int(obs) - self._obs_start, key, float(reward), bool(terminated), bool(truncated)

    def valuation(self, key: Hashable) -> frozenset[str]:
        return frozenset(checked_labels(self.labeler, set(key)))  # type: ignore[arg-type]


def make_stepper(env: gym.Env, labeler: Labeler, *, max_steps: int | None = None,
                 fast: bool = True) -> EnvStepper:
    """The environment's own fast path when it offers one for this labeler (and ``fast``):
    ``env.unwrapped.fast_stepper(env, labeler, max_steps)`` returning a stepper or None;
    else :class:`EnvStepper`."""
    fast_stepper = getattr(env.unwrapped, "fast_stepper", None) if fast else None
    stepper = fast_stepper(env, labeler, max_steps) if fast_stepper is not None else None
    return stepper if stepper is not None else EnvStepper(env, labeler)
