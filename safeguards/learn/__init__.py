"""Tabular learning on the product MDP: Q-learning, progressive-safeguard curricula, transfers.

* :mod:`safeguards.learn.qlearning` — the tables and one episode of Q-learning / greedy test.
* :mod:`safeguards.learn.transfer` — table slots and the ``none`` / ``warm`` / ``paper`` /
  ``semantic`` transfers between safeguard stages.
* :mod:`safeguards.learn.curriculum` — :func:`run_curriculum`: stages, baselines, checkpoints,
  metrics, the greedy test.
* :mod:`safeguards.learn.steppers` — how environments are stepped (with a Minecraft fast path).

Needs the ``gridworld`` extra (Gymnasium; MiniGrid for the Minecraft gridworld).
"""

from safeguards.learn.curriculum import (
    BASELINES, CurriculumConfig, CurriculumResult, Stage, TestResult, evaluate, run_curriculum,
)
from safeguards.learn.qlearning import (
    EpisodeStats, FearModel, MonitorTable, QLearningConfig, QTable, greedy_episode, run_episode,
)
from safeguards.learn.transfer import TRANSFERS, behaviour_distance, semantic_sources, slot_map

__all__ = [
    "Stage", "CurriculumConfig", "CurriculumResult", "TestResult", "run_curriculum", "evaluate",
    "BASELINES", "TRANSFERS", "QLearningConfig", "QTable", "MonitorTable",
    "FearModel", "EpisodeStats", "run_episode", "greedy_episode", "semantic_sources",
    "behaviour_distance", "slot_map",
]
