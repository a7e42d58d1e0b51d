"""Episodes of the deep learners, whatever the RL library: what one episode did
(:class:`EpisodeTally`), where the run is (:class:`Counters`), the metrics row a finished episode
writes (:class:`EpisodeLog`) and the test under the final spec (:func:`evaluate_policy`).

A row holds the :data:`~safeguards.runs.METRIC_FIELDS` plus ``task_return`` (the environment's
reward without the penalty), ``violations_final`` (steps that violated the final spec) and
``frames`` (agent steps of the whole run when the episode ended).

>>> tally = EpisodeTally()
>>> tally.add(1.0, {"violated_rules": ["no_lava"], "final": {"violated_rules": ["no_lava"]}})
>>> tally.violation_step, tally.violations_final
(1, 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from safeguards.runs import Progress, RunDir

__all__ = ["EpisodeTally", "Counters", "EpisodeLog", "evaluate_policy"]


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


class EpisodeLog:
    """Write a metrics row per finished episode into ``run`` and move the counters on."""

    def __init__(self, run: RunDir, counters: Counters, *, method: str, seed: int,
                 progress: Progress | None = None,
                 on_episode: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.run, self.counters = run, counters
        self.method, self.seed = method, seed
        self.progress = progress
        self.on_episode = on_episode
        self.recent: list[bool] = []

    def log(self, tally: EpisodeTally, frames: int) -> dict[str, Any]:
        """The row of a finished episode (logged), ``frames`` agent steps into the run."""
        c = self.counters
        row = {"method": self.method, "seed": self.seed, "stage": c.stage,
               "stage_episode": c.stage_episode, "episode": c.episode, "return": tally.ret,
               "length": tally.length, "violated": tally.violation_step is not None,
               "violation_step": tally.violation_step, "violated_rules": tally.violated_rules,
               "violated_final": tally.violation_step_final is not None,
               "violation_step_final": tally.violation_step_final,
               "value_s0": tally.value_s0, "pessimistic_s0": None,
               "task_return": tally.task_return, "violations_final": tally.violations_final,
               "violated_rules_final": tally.violated_rules_final, "frames": int(frames)}
        self.run.log(row)
        c.episode += 1
        c.stage_episode += 1
        self.recent = [*self.recent[-99:], row["violated_final"]]
        if self.on_episode is not None:
            self.on_episode(row)
        return row

    def advance(self, steps: int) -> None:
        """Move the progress bar on by ``steps`` agent steps."""
        if self.progress is not None:
            self.progress.update(steps, f"stage {self.counters.stage + 1} final-spec violations "
                                        f"(last 100 episodes) {sum(self.recent)}")


def evaluate_policy(act: Callable[[Any, bool], Any], make: Callable[[], Any], *, episodes: int,
                    deterministic: bool, seed: int) -> dict[str, Any]:
    """Run ``episodes`` episodes choosing actions with ``act(obs, deterministic)`` on the
    environment ``make()`` builds (the final spec's product MDP, violations ending the episode)
    and summarise them: success = no violation of the final spec; ``mean_return`` is the task
    reward (without penalties)."""
    env = make()
    tallies = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        tally, done = EpisodeTally(), False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(obs, deterministic))
            tally.add(float(reward), info)
            done = terminated or truncated
        tallies.append(tally)
    env.close()
    violations = sum(t.violation_step_final is not None for t in tallies)
    n = max(1, episodes)
    return {"episodes": episodes, "deterministic": deterministic,
            "successes": episodes - violations, "violations": violations,
            "success_rate": (episodes - violations) / n, "violation_rate": violations / n,
            "mean_return": float(np.mean([t.task_return for t in tallies])) if tallies else None,
            "mean_length": float(np.mean([t.length for t in tallies])) if tallies else None}
