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

Training needs the ``gridworld`` extra (Gymnasium; MiniGrid for the Minecraft gridworld);
the configurations (:mod:`safeguards.learn.config`) and the dispatcher need only the core.
"""

import importlib
from typing import Any

#: Public name -> the module that defines it (imported on first use, so that configurations
#: and experiment files validate without Gymnasium).
_EXPORTS = {
    **dict.fromkeys(("Stage", "CurriculumConfig", "DeepStage", "DeepConfig", "BASELINES",
                     "TRANSFERS"), "safeguards.learn.config"),
    **dict.fromkeys(("LEARNERS", "run_curriculum"), "safeguards.learn.curriculum"),
    **dict.fromkeys(("CurriculumResult", "TestResult", "evaluate"), "safeguards.learn.tabular"),
    **dict.fromkeys(("EpisodeStats", "FearModel", "MonitorTable", "QLearningConfig", "QTable",
                     "greedy_episode", "run_episode"), "safeguards.learn.qlearning"),
    **dict.fromkeys(("behaviour_distance", "semantic_sources", "slot_map"),
                    "safeguards.learn.transfer"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
