"""Stable-Baselines3 callbacks of the deep learner: one metrics row per finished episode, and
checkpoints every N agent steps.

:class:`EpisodeMetrics` follows every environment of the vector environment through its
episode (return, length, first violation of the stage's spec and of the final spec) and, when
the episode ends, appends a row with the :data:`~safeguards.runs.METRIC_FIELDS` to the run
directory, plus ``task_return`` (the environment's reward without the penalty),
``violations_final`` (steps that violated the final spec) and ``frames`` (agent steps of the
whole run when the episode ended).  ``value_s0`` is the critic's value of the episode's first
observation, taken from the rollout (no extra forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from stable_baselines3.common.callbacks import BaseCallback

from safeguards.runs import Progress, RunDir

__all__ = ["EpisodeMetrics", "EpisodeTally", "Counters", "PeriodicCheckpoint"]


@dataclass
class EpisodeTally:
    """What one environment's current episode has done so far."""

    ret: float = 0.0
    task_return: float = 0.0
    length: int = 0
    value_s0: float | None = None
    violation_step: int | None = None
    violated_rules: list[str] = field(default_factory=list)
    violation_step_final: int | None = None
    violated_rules_final: list[str] = field(default_factory=list)
    violations_final: int = 0

    def add(self, reward: float, info: Mapping[str, Any]) -> None:
        """Count one step (``info`` as the product MDP reports it)."""
        self.ret += float(reward)
        self.task_return += float(info.get("task_reward", reward))
        self.length += 1
        if info.get("violated_rules") and self.violation_step is None:
            self.violation_step = self.length
            self.violated_rules = list(info["violated_rules"])
        final = info.get("final", {}).get("violated_rules")
        if final:
            self.violations_final += 1
            if self.violation_step_final is None:
                self.violation_step_final = self.length
                self.violated_rules_final = list(final)


@dataclass
class Counters:
    """Where the run is: the stage, and episodes so far (in the run and in the stage)."""

    stage: int = 0
    episode: int = 0
    stage_episode: int = 0


class EpisodeMetrics(BaseCallback):
    """Log a metrics row per finished episode into ``run`` (see the module docstring)."""

    def __init__(self, run: RunDir, counters: Counters, *, method: str, seed: int,
                 progress: Progress | None = None,
                 on_episode: Callable[[dict[str, Any]], None] | None = None) -> None:
        super().__init__()
        self.run, self.counters = run, counters
        self.method, self.seed = method, seed
        self.progress = progress
        self.on_episode = on_episode
        self.tallies: list[EpisodeTally] = []
        self.recent: list[bool] = []

    def _on_training_start(self) -> None:
        # every learn() call starts from freshly reset environments (set_env / load)
        self.tallies = [EpisodeTally() for _ in range(self.training_env.num_envs)]

    def _on_step(self) -> bool:
        values = self.locals["values"].detach().cpu().numpy().reshape(-1)
        rewards, dones, infos = self.locals["rewards"], self.locals["dones"], self.locals["infos"]
        for i, tally in enumerate(self.tallies):
            if tally.length == 0:
                tally.value_s0 = float(values[i])
            tally.add(rewards[i], infos[i])
            if dones[i]:
                self._log(tally)
                self.tallies[i] = EpisodeTally()
        if self.progress is not None:
            self.progress.update(len(self.tallies),
                                 f"stage {self.counters.stage + 1} final-spec violations "
                                 f"(last 100 episodes) {sum(self.recent)}")
        return True

    def _log(self, tally: EpisodeTally) -> None:
        c = self.counters
        row = {"method": self.method, "seed": self.seed, "stage": c.stage,
               "stage_episode": c.stage_episode, "episode": c.episode, "return": tally.ret,
               "length": tally.length, "violated": tally.violation_step is not None,
               "violation_step": tally.violation_step, "violated_rules": tally.violated_rules,
               "violated_final": tally.violation_step_final is not None,
               "violation_step_final": tally.violation_step_final,
               "value_s0": tally.value_s0, "pessimistic_s0": None,
               "task_return": tally.task_return, "violations_final": tally.violations_final,
               "violated_rules_final": tally.violated_rules_final,
               "frames": int(self.num_timesteps)}
        self.run.log(row)
        c.episode += 1
        c.stage_episode += 1
        self.recent = [*self.recent[-99:], row["violated_final"]]
        if self.on_episode is not None:
            self.on_episode(row)


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

