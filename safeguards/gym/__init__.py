"""Gymnasium integration: the product MDP of an environment and a safeguard.

Importing this module registers ``safeguards/Safeguarded-v0``:

>>> import gymnasium as gym
>>> import safeguards.gym
>>> from safeguards.labels import InfoLabeler
>>> env = gym.make("safeguards/Safeguarded-v0", env="CartPole-v1", spec="G !tipped",
...                labeler=InfoLabeler(["tipped"]))
>>> env.observation_space["safeguard"]
Discrete(2)

(``gym.make("safeguards.gym:safeguards/Safeguarded-v0", ...)`` imports the module itself.)
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym

from safeguards.automata import Safeguard
from safeguards.compiler import load_safeguard
from safeguards.gym.rewards import (
    PaperShaping, Penalty, PotentialShaping, RewardMode, SafeguardStep, potential, reward_mode,
)
from safeguards.gym.shield import ShieldFallbackWarning, ShieldWrapper
from safeguards.gym.vector import SafeguardVectorWrapper
from safeguards.gym.wrapper import Observe, SafeguardWrapper, product_observation_space
from safeguards.labels import Labeler

__all__ = [
    "SafeguardWrapper", "SafeguardVectorWrapper", "ShieldWrapper", "ShieldFallbackWarning", "make_safeguarded", "product_observation_space", "Observe",
    "SafeguardStep", "RewardMode", "Penalty", "PaperShaping", "PotentialShaping", "potential",
    "reward_mode",
]


def make_safeguarded(env: str | gym.Env, spec: str | os.PathLike[str] | Safeguard,
                     labeler: Labeler, env_kwargs: dict[str, Any] | None = None,
                     env_max_episode_steps: int | None = None,
                     **wrapper_kwargs: Any) -> SafeguardWrapper:
    """Build a safeguarded environment from an env id (or instance) and a spec.

    ``spec`` is a compiled safeguard, a spec file path, a shipped spec name, spec-file text, or
    an LTL formula (:func:`safeguards.compiler.load_safeguard`).
    ``env_max_episode_steps`` puts the time limit *inside* the safeguard wrapper, so that
    obligations still pending at truncation are reported (``gym.make(...,
    max_episode_steps=N)`` would put it outside, where the wrapper cannot see it).
    """
    extra = {} if env_max_episode_steps is None else {"max_episode_steps": env_max_episode_steps}
    base = gym.make(env, **extra, **(env_kwargs or {})) if isinstance(env, str) else env
    if env_max_episode_steps is not None and not isinstance(env, str):
        base = gym.wrappers.TimeLimit(base, env_max_episode_steps)
    return SafeguardWrapper(base, load_safeguard(spec), labeler, **wrapper_kwargs)


if "safeguards/Safeguarded-v0" not in gym.registry:
    gym.register("safeguards/Safeguarded-v0", entry_point="safeguards.gym:make_safeguarded",
                 disable_env_checker=True)
