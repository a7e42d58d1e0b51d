"""The Minecraft gridworld's fast path for the tabular learner
(:mod:`safeguards.learn.steppers`): :class:`~safeguards.envs.gridworld.minecraft.MinecraftEnv`
with ``obs_mode="cell"`` and the :class:`MinecraftLabeler` (whose labels depend on
``info["label"]`` only).  ``MinecraftEnv.step`` costs ~12 us (MiniGrid bookkeeping and one
``Generator.random()`` call per step), more than the rest of the learning step; the fast path
resets through the environment itself (so the layout and the label jitter come from its code and
its random generator) and then plays the documented dynamics on a precomputed move table:
with probability ``slip`` the chosen action is replaced by one drawn uniformly from all five,
moves off the grid are clamped, the episode is truncated after ``max_steps``.  The slip draws of
an episode come from the environment's own ``np_random``, in two arrays drawn after the reset.
The distribution of trajectories is the environment's; the stream of random numbers is not the
one ``env.step`` would consume (``tests/test_learn.py`` checks the moves against ``env.step``).
"""

from __future__ import annotations

from typing import Hashable

import gymnasium as gym

from safeguards.envs.gridworld.minecraft import (
    SIZE, MinecraftActions, MinecraftEnv, MinecraftLabeler,
)
from safeguards.labels import Labeler, checked_labels
from safeguards.learn.steppers import EnvStepper

__all__ = ["MinecraftStepper"]


class MinecraftStepper(EnvStepper):
    """The Minecraft fast path (see the module docstring)."""

    def __init__(self, env: gym.Env, labeler: Labeler, max_steps: int | None = None) -> None:
        super().__init__(env, labeler)
        self.slip = float(self.raw.slip)
        self.max_steps = int(self.raw.max_steps if max_steps is None
                             else min(max_steps, self.raw.max_steps))
        moves = {MinecraftActions.right: (0, 1), MinecraftActions.up: (-1, 0),
                 MinecraftActions.left: (0, -1), MinecraftActions.down: (1, 0),
                 MinecraftActions.stay: (0, 0)}
        #: ``next_cell[cell * 5 + action]``: the cell reached, clamped to the grid.
        self.next_cell: list[int] = []
        for cell in range(self.n_obs):
            row, col = divmod(cell, SIZE)
            for action in range(self.n_actions):
                d_row, d_col = moves[MinecraftActions(action)]
                r = min(max(row + d_row, 0), SIZE - 1)
                c = min(max(col + d_col, 0), SIZE - 1)
                self.next_cell.append(r * SIZE + c)
        self._labels: list[str] = []
        self._slip: list[bool] = []
        self._slip_action: list[int] = []
        self._cell = 0
        self._t = 0

    @staticmethod
    def applies(env: gym.Env, labeler: Labeler) -> bool:
        """Is the fast path exact for this environment and labeler?"""
        raw = env.unwrapped
        return (type(raw) is MinecraftEnv and raw.obs_mode == "cell"
                and type(labeler) is MinecraftLabeler)

    def reset(self) -> int:
        obs, _ = self.raw.reset()
        self._labels = self.raw.labels.ravel().tolist()
        generator = self.raw.np_random
        self._slip = (generator.random(self.max_steps) < self.slip).tolist()
        self._slip_action = generator.integers(self.n_actions, size=self.max_steps).tolist()
        self._cell = int(obs)
        self._t = 0
        return self._cell

    def step(self, action: int) -> tuple[int, Hashable, float, bool, bool]:
        t = self._t
        if self._slip[t]:
            action = self._slip_action[t]
        self._t = t = t + 1
        cell = self._cell = self.next_cell[self._cell * 5 + action]
        return cell, self._labels[cell], 0.0, False, t >= self.max_steps

    def valuation(self, key: Hashable) -> frozenset[str]:
        return frozenset(checked_labels(self.labeler, self.labeler(None, {"label": key}, None)))
