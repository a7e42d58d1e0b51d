"""Learning on the product MDP: progressive-safeguard curricula (tabular Q-learning, PPO),
transfers between safeguard stages.

* :mod:`safeguards.learn.config` — the learners' settings (one schema for files and the API).
* :mod:`safeguards.learn.curriculum` — :func:`run_curriculum`: a configuration to its learner.
* :mod:`safeguards.learn.common` — what the learners share: run directories, labelers, seeds.
* :mod:`safeguards.learn.tabular` — the tabular learner: stages, baselines, checkpoints,
  metrics, the greedy test.
* :mod:`safeguards.learn.deep` — the PPO learner (Stable-Baselines3; needs the ``doom`` extra).
* :mod:`safeguards.learn.qlearning` — the tables and one episode of Q-learning / greedy test.
* :mod:`safeguards.learn.transfer` — table slots and the ``none`` / ``warm`` / ``paper`` /
  ``semantic`` transfers between safeguard stages.
* :mod:`safeguards.learn.steppers` — how the tabular learner steps environments.

Needs the ``gridworld`` extra (Gymnasium; MiniGrid for the Minecraft gridworld).
"""

from safeguards.learn.config import (
    BASELINES, TRANSFERS, CurriculumConfig, DeepConfig, DeepStage, Stage,
)
from safeguards.learn.curriculum import LEARNERS, run_curriculum
from safeguards.learn.tabular import CurriculumResult, TestResult, evaluate
from safeguards.learn.qlearning import (
    EpisodeStats, FearModel, MonitorTable, QLearningConfig, QTable, greedy_episode, run_episode,
)
from safeguards.learn.transfer import behaviour_distance, semantic_sources, slot_map

__all__ = [
    "Stage", "CurriculumConfig", "DeepStage", "DeepConfig", "LEARNERS", "CurriculumResult",
    "TestResult", "run_curriculum", "evaluate", "BASELINES", "TRANSFERS", "QLearningConfig",
    "QTable", "MonitorTable",
    "FearModel", "EpisodeStats", "run_episode", "greedy_episode", "semantic_sources",
    "behaviour_distance", "slot_map",
]
