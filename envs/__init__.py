"""The environment suites shipped with safeguards, and how their Gymnasium ids get registered.

Each suite registers its ``safeguards/...`` ids when its module is imported; :func:`make`
imports the one suite an id belongs to (:data:`SUITES`), so a suite whose extra is not
installed costs nothing until one of its environments is asked for.  A new suite adds one line
to :data:`SUITES`.  Everything an environment wants a learner to know travels with the
environment itself: its default labeler is ``env.unwrapped.labeler``, and a fast tabular path,
if it has one, ``env.unwrapped.fast_stepper(env, labeler, max_steps)``
(:func:`safeguards.learn.steppers.make_stepper`).

>>> SUITES["safeguards/Minecraft"]
'safeguards.envs.gridworld.minecraft'
>>> env = make("safeguards/Minecraft-L1-v0")  # doctest: +SKIP
>>> type(env.unwrapped).__name__, type(env.unwrapped.labeler).__name__  # doctest: +SKIP
('MinecraftEnv', 'MinecraftLabeler')
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

__all__ = ["SUITES", "register", "register_all", "make"]

#: Gymnasium id prefix -> the module that registers the ids with that prefix.
SUITES = {
    "safeguards/Minecraft": "safeguards.envs.gridworld.minecraft",
    "safeguards/Doom": "safeguards.envs.doom",
    "safeguards/DrunkSpider": "safeguards.envs.spider",
}


def register(env_id: str) -> None:
    """Import the suite that registers ``env_id`` (ids of no suite are left alone); raises
    :class:`ModuleNotFoundError` naming the id when the suite's extra is not installed."""
    import gymnasium as gym

    if env_id in gym.registry:
        return
    for prefix, module in SUITES.items():
        if env_id.startswith(prefix):
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                raise ModuleNotFoundError(f"cannot register {env_id}: {module}: {exc}") from exc
            return


def register_all() -> list[str]:
    """Register every suite whose extra is installed; returns the modules that could not be
    imported."""
    missing = []
    for module in SUITES.values():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            missing.append(module)
    return missing


def make(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> Any:
    """``gymnasium.make`` that first registers the id's suite."""
    import gymnasium as gym

    register(env_id)
    return gym.make(env_id, **dict(env_kwargs or {}))
