"""What every progressive-safeguards learner shares: opening (and resuming) a run directory,
the environments' labelers, the final (test) target of a configuration, derived seeds, and
violation totals of a result.  The learners (:mod:`safeguards.learn.tabular`,
:mod:`safeguards.learn.deep`) build on these; :mod:`safeguards.learn.curriculum` dispatches a
configuration to its learner.
"""

from __future__ import annotations

import importlib
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping, Sequence, TypeGuard

import gymnasium as gym
import numpy as np

from safeguards.envs import make as make_env
from safeguards.labels import Labeler
from safeguards.learn.config import LearnerConfig
from safeguards.runs import METRIC_FIELDS, RunDir, RunDirError

__all__ = ["open_run", "Checkpoint", "check_checkpoint", "make_env", "resolve_labeler",
           "final_target", "derive_seed", "ViolationTotals", "Plan", "planned_stages",
           "resolved_record"]


Checkpoint = tuple[dict[str, Any], dict[str, np.ndarray]]
"""A checkpoint's metadata and arrays (:meth:`~safeguards.runs.RunDir.load_checkpoint`)."""


@contextmanager
def open_run(run_dir: str | os.PathLike[str], resolved: Mapping[str, Any], resume: bool, *,
             fields: Sequence[str] = METRIC_FIELDS
             ) -> Iterator[tuple[RunDir, Checkpoint | None]]:
    """The run directory and its last checkpoint (None: start afresh), the directory locked
    for this process until the block ends (:meth:`~safeguards.runs.RunDir.lock`; its files
    are closed then too).  ``resume`` requires the configuration the directory was started
    with; without it the directory must be empty."""
    run = RunDir(run_dir, fields)
    with run.lock():
        checkpoint = None
        if resume:
            saved = run.read_config()
            if saved is not None and saved != resolved:
                changed = sorted(k for k in set(saved) | set(resolved)
                                 if saved.get(k) != resolved.get(k))
                raise ValueError(f"{run.config_path} holds another configuration (differs in "
                                 f"{', '.join(changed)}); resume with the same configuration")
            checkpoint = run.load_checkpoint()
        elif run.has_run():
            raise FileExistsError(f"{run.path} already holds a run; resume it (resume=True) or "
                                  "choose another directory")
        run.write_config(resolved)
        try:
            yield run, checkpoint
        finally:
            run.close()


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_seconds(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def check_checkpoint(run: RunDir, meta: Mapping[str, Any], *, version: int, method: str,
                     seed: int, n_stages: int) -> None:
    """Raise :class:`~safeguards.runs.RunDirError` naming ``checkpoint.npz`` unless ``meta``
    is a checkpoint of this run: its ``version``, ``method`` and ``seed``, a ``stage`` in
    ``0 .. n_stages``, episode counters that are counts, the metrics it recorded covering
    exactly its episodes, and times (``wall_seconds``, ``train_seconds``) that are seconds.

    >>> import tempfile
    >>> meta = {"version": 1, "method": "paper", "seed": 0, "stage": 99, "episode": 0,
    ...         "stage_episode": 0}
    >>> try:
    ...     check_checkpoint(RunDir(tempfile.mkdtemp()), meta, version=1, method="paper",
    ...                      seed=0, n_stages=3)
    ... except RunDirError as error:
    ...     print(str(error).splitlines()[0].split("checkpoint.npz: ")[1])
    error: stage 99 is not one of 0 .. 3
    """
    def problem(text: str) -> RunDirError:
        return RunDirError(run.npz_path, text)

    if meta.get("version") != version:
        raise problem(f"unsupported checkpoint version {meta.get('version')!r}")
    if (meta.get("method"), meta.get("seed")) != (method, seed):
        raise problem(f"a checkpoint of method {meta.get('method')!r} seed "
                      f"{meta.get('seed')!r}, not of this run ({method!r} seed {seed})")
    stage = meta.get("stage")
    if not _is_count(stage) or stage > n_stages:
        raise problem(f"stage {stage!r} is not one of 0 .. {n_stages}")
    for key in ("episode", "stage_episode"):
        if not _is_count(meta.get(key)):
            raise problem(f"{key} {meta.get(key)!r} is not a count")
    if meta["stage_episode"] > meta["episode"]:
        raise problem(f"stage_episode {meta['stage_episode']} is past episode "
                      f"{meta['episode']}")
    recorded = meta.get("metrics")
    if recorded is not None and (not isinstance(recorded, Mapping)
                                 or recorded.get("rows") != meta["episode"]):
        raise problem(f"episode {meta['episode']} but its record of metrics.jsonl is "
                      f"{recorded!r}")
    for key in ("wall_seconds", "train_seconds"):
        if not _is_seconds(meta.get(key, 0.0)):
            raise problem(f"{key} {meta.get(key)!r} is not a duration")


def resolve_labeler(spec: Any, env: gym.Env) -> Labeler:
    """The labeler ``spec`` names (object, class, or ``"module:Name"``), or the environment's
    own default, ``env.unwrapped.labeler``."""
    if spec is None:
        raw = env.unwrapped
        own = getattr(raw, "labeler", None)
        if own is not None:
            return own() if isinstance(own, type) else own
        raise ValueError(f"no labeler for {type(raw).__name__}: set CurriculumConfig.labeler")
    if isinstance(spec, str):
        module, _, name = spec.partition(":")
        if not name:
            raise ValueError(f"labeler must be 'module:Name', not {spec!r}")
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        spec = obj
    return spec() if isinstance(spec, type) else spec


def derive_seed(seed: int, purpose: int, index: int = 0) -> int:
    """A seed for a purpose (1: stage environments, 2: test) derived from the run's seed.

    >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(0, 2)
    True
    """
    return int(np.random.SeedSequence([seed, purpose, index]).generate_state(1)[0])


def final_target(config: LearnerConfig) -> tuple[str, str, dict[str, Any]]:
    """The final (test) spec, the test environment and its keyword arguments of a run: the
    configured ones, by default the last stage's."""
    last = config.stages[-1]
    kwargs = config.test_env_kwargs if config.test_env_kwargs is not None else last.env_kwargs
    return config.test_spec or last.spec, config.test_env_id or last.env_id, dict(kwargs)


class ViolationTotals:
    """``train_violations`` and ``train_violations_final`` of a result that counts violating
    episodes per stage (``stage_violations``, ``stage_violations_final``)."""

    @property
    def train_violations(self) -> int:
        return sum(self.stage_violations)  # type: ignore[attr-defined]

    @property
    def train_violations_final(self) -> int:
        return sum(self.stage_violations_final)  # type: ignore[attr-defined]


@dataclass
class Plan:
    """What a run trains: its stages (a baseline collapses them, :func:`planned_stages`), its
    final (test) target and its transfer; learners add how they train."""

    stages: list[Any]
    final_spec: str
    test_env_id: str
    test_env_kwargs: dict[str, Any]
    transfer: str


def resolved_record(config: Any, plan: Plan, **extra: Any) -> dict[str, Any]:
    """What ``config.json`` records of a frames-budget learner: the configuration (its
    ``to_dict``), the method's name, and the plan resolved from it (plus ``extra``)."""
    from dataclasses import asdict

    from safeguards.runs import to_json

    data = config.to_dict()
    data["method"] = config.method_name
    data["resolved"] = {"stages": [asdict(s) for s in plan.stages], "final_spec": plan.final_spec,
                        "test_env_id": plan.test_env_id, "test_env_kwargs": plan.test_env_kwargs,
                        "transfer": plan.transfer, **extra}
    return to_json(data)


def planned_stages(config: LearnerConfig, budget: str) -> list[Any]:
    """The configured stages, or for a baseline one stage on the last stage's environment
    with the final spec and the whole ``budget`` (``"episodes"``, ``"frames"``)."""
    if config.baseline is None:
        return list(config.stages)
    total = sum(getattr(s, budget) for s in config.stages)
    last = config.stages[-1]
    return [replace(last, env_kwargs=dict(last.env_kwargs), spec=final_target(config)[0],
                    **{budget: total})]
