"""Stable-Baselines3 callbacks of the deep learner: one metrics row per finished episode
(:mod:`safeguards.learn.episodes`), and checkpoints every N agent steps.

:class:`EpisodeMetrics` follows every environment of the vector environment through its
episode (return, length, first violation of the stage's spec and of the final spec) and logs
its row when it ends.
"""

from __future__ import annotations

from typing import Any, Callable

from stable_baselines3.common.callbacks import BaseCallback

from safeguards.learn.episodes import Counters, EpisodeLog, EpisodeTally
from safeguards.runs import Progress, RunDir

__all__ = ["EpisodeMetrics", "PeriodicCheckpoint"]


class EpisodeMetrics(BaseCallback):
    """Log a metrics row per finished episode (:class:`~safeguards.learn.episodes.EpisodeLog`);
    ``value_s0`` is the critic's value of the episode's first observation, taken from an
    on-policy rollout (no extra forward pass; empty for off-policy learners such as SAC)."""

    def __init__(self, run: RunDir, counters: Counters, *, method: str, seed: int,
                 progress: Progress | None = None,
                 on_episode: Callable[[dict[str, Any]], None] | None = None) -> None:
        super().__init__()
        self.episodes = EpisodeLog(run, counters, method=method, seed=seed, progress=progress,
                                   on_episode=on_episode)
        self.tallies: list[EpisodeTally] = []

    def _on_training_start(self) -> None:
        # every learn() call starts from freshly reset environments (set_env / load)
        self.tallies = [EpisodeTally() for _ in range(self.training_env.num_envs)]

    def _on_step(self) -> bool:
        values = self.locals.get("values")
        if values is not None:
            values = values.detach().cpu().numpy().reshape(-1)
        rewards, dones, infos = self.locals["rewards"], self.locals["dones"], self.locals["infos"]
        for i, tally in enumerate(self.tallies):
            if tally.length == 0 and values is not None:
                tally.value_s0 = float(values[i])
            tally.add(rewards[i], infos[i])
            if dones[i]:
                self.episodes.log(tally, self.num_timesteps)
                self.tallies[i] = EpisodeTally()
        self.episodes.advance(len(self.tallies))
        return True


class PeriodicCheckpoint(BaseCallback):
    """Call ``save()`` once ``every`` agent steps have passed since the last save, between two
    rollouts (after the policy update of the previous one, before the next collects)."""

    def __init__(self, every: int, save: Callable[[], None]) -> None:
        super().__init__()
        self.every, self.save = every, save
        self.last = 0

    def _on_training_start(self) -> None:
        self.last = int(self.num_timesteps)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.every and self.num_timesteps - self.last >= self.every:
            self.last = int(self.num_timesteps)
            self.save()

