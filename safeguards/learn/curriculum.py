"""Progressive safeguards: train through a sequence of (environment, safeguard) stages with
the learner a configuration names — the one place that maps learners to their code.

=========  ===============================================  =====================================
learner    configuration (:mod:`safeguards.learn.config`)   run by
=========  ===============================================  =====================================
tabular    :class:`CurriculumConfig`                         :mod:`safeguards.learn.tabular`
ppo        :class:`DeepConfig`                               :mod:`safeguards.learn.deep`
rllib_ppo  :class:`RLlibConfig`                              :mod:`safeguards.learn.rllib_ppo`
sqrl       :class:`SQRLConfig`                               :mod:`safeguards.learn.sqrl_run`
=========  ===============================================  =====================================

A new learner adds its configuration class and one :data:`LEARNERS` entry; experiment files
(:mod:`safeguards.experiment`), the CLI and the executors then run it unchanged.

>>> learner_of(CurriculumConfig.paper()).name, LEARNERS["ppo"].config.__name__
('tabular', 'DeepConfig')
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable

from safeguards.learn.config import (
    BASELINES, DEEP_BASELINES, DEEP_TRANSFERS, SQRL_BASELINES, SQRL_TRANSFERS, TRANSFERS,
    CurriculumConfig, DeepConfig, DeepStage, RLlibConfig, SQRLConfig, Stage,
)

__all__ = ["Learner", "LEARNERS", "learner_of", "run_curriculum"]


@dataclass(frozen=True)
class Learner:
    """A learner: its name (``[train] learner = NAME``), its configuration and stage classes,
    its budget unit (the stage field, also the key of experiment files), its transfers and
    baselines, and the ``"module:function"`` that runs a configuration (imported only when it
    runs)."""

    name: str
    config: type
    stage: type
    budget: str
    transfers: tuple[str, ...]
    baselines: tuple[str, ...]
    runner: str
    env_check: str | None = None
    """``"module:function"``: ``function(env)`` says why the learner cannot train on ``env``
    (None when it can); experiment files are checked with it before anything runs."""

    def run(self) -> Callable[..., Any]:
        module, _, function = self.runner.partition(":")
        return getattr(importlib.import_module(module), function)

    def env_problem(self, env: Any) -> str | None:
        """Why this learner cannot train on ``env`` (None: it can, or it checks nothing)."""
        if self.env_check is None:
            return None
        module, _, function = self.env_check.partition(":")
        problem: str | None = getattr(importlib.import_module(module), function)(env)
        return problem


def _learners() -> dict[str, Learner]:
    return {
        "tabular": Learner("tabular", CurriculumConfig, Stage, "episodes", TRANSFERS, BASELINES,
                           "safeguards.learn.tabular:run_tabular_curriculum"),
        "ppo": Learner("ppo", DeepConfig, DeepStage, "frames", DEEP_TRANSFERS, DEEP_BASELINES,
                       "safeguards.learn.deep:run_deep_curriculum"),
        "rllib_ppo": Learner("rllib_ppo", RLlibConfig, DeepStage, "frames", DEEP_TRANSFERS,
                             DEEP_BASELINES, "safeguards.learn.rllib_ppo:run_rllib_curriculum"),
        "sqrl": Learner("sqrl", SQRLConfig, DeepStage, "frames", SQRL_TRANSFERS, SQRL_BASELINES,
                        "safeguards.learn.sqrl_run:run_sqrl_curriculum",
                        "safeguards.learn.sqrl_run:env_problem"),
    }


#: Every learner, by name.
LEARNERS: dict[str, Learner] = _learners()


def learner_of(config: Any) -> Learner:
    """The learner of a configuration object (its class, not a base class of it)."""
    for learner in LEARNERS.values():
        if type(config) is learner.config:
            return learner
    raise TypeError(f"no learner takes a {type(config).__name__}; configurations: "
                    + ", ".join(learner.config.__name__ for learner in LEARNERS.values()))


def run_curriculum(config: Any, run_dir: str | os.PathLike[str], *, resume: bool = False,
                   progress: bool = True,
                   on_episode: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Train ``config`` with its learner in ``run_dir``, then test; returns the learner's
    result (``.to_dict()`` is what ``result.json`` holds).

    Args:
        config: the run (:class:`CurriculumConfig` or :class:`DeepConfig`).
        run_dir: its directory (:class:`~safeguards.runs.RunDir`); must not hold another run
            unless ``resume``.
        resume: continue from the directory's last checkpoint (from scratch if it has none);
            the configuration must be the one the directory was started with.
        progress: draw a progress bar on stderr.
        on_episode: called with every metrics row, after it is logged and after any checkpoint
            of that episode (raising from it stops the run, as a kill would).
    """
    return learner_of(config).run()(config, run_dir, resume=resume, progress=progress,
                                    on_episode=on_episode)
