"""Run many curriculum runs — every (method, seed) of an experiment — on this machine: one after
another in this process, or on a pool of worker processes.  The CLI (``safeguards curriculum
--jobs N``) prints what these yield; another executor (a cluster) yields the same outcomes.

>>> from safeguards.learn.config import CurriculumConfig, Stage
>>> config = CurriculumConfig(stages=[Stage("safeguards/Minecraft-L1-v0", {}, "G !creeper", 2)])
>>> runs = [RunSpec("paper", seed, config, Path("runs/demo/paper") / f"seed{seed}")
...         for seed in (0, 1)]
>>> outcomes = run_local(runs, jobs=2)  # doctest: +SKIP
>>> [(o.run.seed, o.ok, o.result["episodes"]) for o in outcomes]  # doctest: +SKIP
[(1, True, 2), (0, True, 2)]
"""

from __future__ import annotations

import importlib
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

__all__ = ["RunSpec", "RunOutcome", "run_one", "run_local"]


@dataclass(frozen=True)
class RunSpec:
    """One run: its method and seed, its learner configuration and its directory."""

    method: str
    seed: int
    config: Any
    run_dir: Path


@dataclass
class RunOutcome:
    """A finished run: the content of its ``result.json``, or the exception that ended it."""

    run: RunSpec
    result: dict[str, Any] | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_one(config: Any, run_dir: str, resume: bool = False, imports: Sequence[str] = (),
            progress: bool = False) -> dict[str, Any]:
    """One run, the unit of work of every executor (in this process or a worker): import
    ``imports``, train and test ``config`` in ``run_dir``; returns ``result.json``'s content.
    Picklable arguments only, so that another process (or machine) can run it."""
    for module in imports:
        importlib.import_module(module)
    from safeguards.learn import run_curriculum

    return run_curriculum(config, run_dir, resume=resume, progress=progress).to_dict()


def run_local(runs: Sequence[RunSpec], *, resume: bool = False, jobs: int = 1,
              imports: Sequence[str] = (), progress: bool = True,
              on_start: Callable[[int, RunSpec], None] | None = None) -> Iterator[RunOutcome]:
    """Run ``runs`` and yield their outcomes as they finish.  With ``jobs`` > 1 (and more than
    one run) they run on that many worker processes, which import ``imports`` first (modules
    that register environments); else one after another here, ``on_start(k, run)`` called
    before the ``k``-th (from 1).  A run that fails is an outcome with its ``error``; the
    others go on.  Closing the iteration early (``contextlib.closing``; a ``KeyboardInterrupt``
    in the loop) cancels the runs not yet started; runs under way finish (or stop with the
    interrupt that reached their process) and can be resumed."""
    if jobs > 1 and len(runs) > 1:
        yield from _on_pool(runs, resume=resume, jobs=jobs, imports=imports)
        return
    for k, run in enumerate(runs, 1):
        if on_start is not None:
            on_start(k, run)
        try:
            result = run_one(run.config, os.fspath(run.run_dir), resume, (), progress)
        except Exception as exc:  # noqa: BLE001 - reported as the run's outcome
            yield RunOutcome(run, error=exc)
            continue
        yield RunOutcome(run, result=result)


def _on_pool(runs: Sequence[RunSpec], *, resume: bool, jobs: int, imports: Sequence[str]
             ) -> Iterator[RunOutcome]:
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(runs)))
    futures = {pool.submit(run_one, run.config, os.fspath(run.run_dir), resume, list(imports),
                           False): run for run in runs}
    finished = False
    try:
        for future in as_completed(futures):
            try:
                yield RunOutcome(futures[future], result=future.result())
            except Exception as exc:  # noqa: BLE001 - reported as the run's outcome
                yield RunOutcome(futures[future], error=exc)
        finished = True
    finally:  # interrupted, or the caller closed the iteration: start nothing more
        if not finished:
            for future in futures:
                future.cancel()
        pool.shutdown(wait=finished, cancel_futures=not finished)
