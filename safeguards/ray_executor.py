"""Run curriculum runs on a Ray cluster: every (method, seed) run is a Ray task.

The unit of work is :func:`~safeguards.executor.run_one`, as on this machine, so a run's metrics
and ``result.json`` are byte for byte those of the local executor.  A worker that dies mid-run
(its process killed, its node lost) is retried up to ``max_retries`` times, and a retry resumes
the run from its last checkpoint: a lost node costs at most one checkpoint interval, and the
metrics equal an uninterrupted run's.  That is why every task resumes — the driver first makes
sure that a fresh run's directory holds no run, so what a task finds there can only be its own
earlier attempt.

Run directories must be on a path every node sees (a shared file system); the driver checks
that the workers see the folder it writes to before it submits anything.

>>> from safeguards.learn.config import CurriculumConfig, Stage
>>> config = CurriculumConfig(stages=[Stage("safeguards/Minecraft-L1-v0", {}, "G !creeper", 2)])
>>> runs = [RunSpec("paper", seed, config, Path("runs/demo/paper") / f"seed{seed}")
...         for seed in (0, 1)]
>>> outcomes = run_ray(runs, jobs=2)  # doctest: +SKIP
>>> sorted((o.run.seed, o.ok) for o in outcomes)  # doctest: +SKIP
[(0, True), (1, True)]
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from safeguards.errors import SafeguardsError
from safeguards.executor import RunOutcome, RunSpec, run_one
from safeguards.runs import RunDir

__all__ = ["run_ray", "RayUnavailable"]

_INSTALL = "pip install 'safeguards[ray]'"


class RayUnavailable(SafeguardsError, RuntimeError):
    """Ray is not installed, the cluster cannot be reached, or the workers do not see the run
    directories."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"the Ray executor needs Ray: {_INSTALL}") from None
    return ray


def _check_reachable(address: str) -> None:
    """A ``host:port`` address must accept a connection within a few seconds (Ray itself would
    retry for about 20 s and then say little)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or address.startswith(("ray://", "auto", "local")):
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc})"
                             "; start it with `ray start --head` there, or check the address"
                             ) from None


def _connect(ray: Any, address: str | None, jobs: int | None) -> None:
    """Join the cluster at ``address``, or start a local one with ``jobs`` CPUs."""
    if ray.is_initialized():
        return
    if address:
        _check_reachable(address)
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "logging_level": logging.WARNING, "configure_logging": True}
    if not address and jobs is not None:
        options["num_cpus"] = jobs
    try:
        ray.init(address=address or None, **options)
    except ConnectionError as exc:
        hint = ""
        if "InvalidAuthToken" in _causes(exc):
            hint = ("\nhint: the cluster uses token authentication: set RAY_AUTH_MODE=token "
                    "(the token is read from ~/.ray/auth_token or RAY_AUTH_TOKEN)")
        raise RayUnavailable(f"cannot join the Ray cluster at {address}: {exc}{hint}") from None


def _causes(exc: BaseException) -> str:
    """The messages of an exception and of the exceptions that caused it."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 10:
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def _sees(path: str, token: str) -> bool:
    """In a worker: does it see the file the driver wrote?"""
    try:
        return Path(path).read_text(encoding="utf-8") == token
    except OSError:
        return False


def _check_visible(ray: Any, folders: Sequence[Path]) -> None:
    """Every worker node must see the run folders: write a token in each, read it remotely."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as strategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_sees)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        path = folder / f".ray-probe-{token}"
        path.write_text(token, encoding="utf-8")
        try:
            refs = {probe.options(scheduling_strategy=strategy(n["NodeID"], soft=False)).remote(
                os.fspath(path), token): n for n in nodes}
            blind = [refs[ref].get("NodeManagerAddress", "?") for ref in refs
                     if not ray.get(ref)]
        finally:
            path.unlink(missing_ok=True)
        if blind:
            raise RayUnavailable(f"the Ray workers on {', '.join(blind)} do not see the run "
                                 f"directory {folder}; put run directories on a path every "
                                 "node sees (--run-dir on a shared file system)")


def _run_task(config: Any, run_dir: str, imports: Sequence[str]) -> dict[str, Any]:
    """One run in a Ray worker; always resumes (see the module docstring)."""
    return run_one(config, run_dir, True, imports, False)


def _cause(exc: BaseException) -> BaseException:
    """The run's own exception inside Ray's wrapper (a worker's death stays Ray's error)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def run_ray(runs: Sequence[RunSpec], *, resume: bool = False, address: str | None = None,
            jobs: int | None = None, imports: Sequence[str] = (), max_retries: int = 3,
            on_start: Callable[[int, RunSpec], None] | None = None) -> Iterator[RunOutcome]:
    """Run ``runs`` as Ray tasks and yield their outcomes as they finish (the contract of
    :func:`~safeguards.executor.run_local`).  ``address``: a running cluster (``host:port``,
    ``auto``); without it a local Ray instance with ``jobs`` CPUs (default: all).  Without
    ``resume`` every run directory must be free of runs.  Closing the iteration early cancels
    the runs not yet finished (they can be resumed)."""
    ray = _import_ray()
    if not resume:
        busy = [run.run_dir for run in runs if RunDir(run.run_dir).has_run()]
        if busy:
            raise FileExistsError(f"{busy[0]} already holds a run; resume it or choose "
                                  "another directory")
    _connect(ray, address, jobs)
    roots = sorted({Path(run.run_dir).resolve().parent for run in runs})
    _check_visible(ray, roots)
    task = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(_run_task)
    refs = {}
    for k, run in enumerate(runs, 1):
        if on_start is not None:
            on_start(k, run)
        ref = task.remote(run.config, os.fspath(Path(run.run_dir).resolve()), list(imports))
        refs[ref] = run
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            run = refs[done[0]]
            try:
                yield RunOutcome(run, result=ray.get(done[0]))
            except Exception as exc:  # noqa: BLE001 - reported as the run's outcome
                yield RunOutcome(run, error=_cause(exc))
    finally:  # interrupted, or the caller closed the iteration: stop what is left
        for ref in pending:
            ray.cancel(ref, force=True)
