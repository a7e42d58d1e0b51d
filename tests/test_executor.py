"""The local executor: runs one after another or on worker processes, failures as outcomes."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("minigrid")

from safeguards.executor import RunSpec, run_local  # noqa: E402
from safeguards.learn.config import CurriculumConfig, Stage  # noqa: E402

ENV = "safeguards/Minecraft-L1-v0"


def config(spec: str, transfer: str = "paper") -> CurriculumConfig:
    stages = [Stage(ENV, {}, "minecraft/safeguard0", 3), Stage(ENV, {}, spec, 3)]
    return CurriculumConfig(stages=stages, transfer=transfer, max_steps=20, test_episodes=2,
                            checkpoint_every=2)


def runs(folder) -> list[RunSpec]:
    return [RunSpec(transfer, seed, config("minecraft/safeguard3", transfer),
                    folder / transfer / f"seed{seed}")
            for transfer in ("paper", "semantic") for seed in (0, 1)]


def stable(result: dict) -> dict:
    return {k: v for k, v in result.items()
            if k not in ("wall_seconds", "run_dir", "train_seconds")}


def test_processes_give_the_results_of_one_process(tmp_path) -> None:
    started = []
    here = {(o.run.method, o.run.seed): o
            for o in run_local(runs(tmp_path / "a"), progress=False,
                               on_start=lambda k, run: started.append(k))}
    pool = {(o.run.method, o.run.seed): o for o in run_local(runs(tmp_path / "b"), jobs=2)}
    assert started == [1, 2, 3, 4]
    assert set(here) == set(pool) and all(o.ok for o in [*here.values(), *pool.values()])
    for key, outcome in here.items():
        assert stable(outcome.result) == stable(pool[key].result)
        a = (tmp_path / "a" / key[0] / f"seed{key[1]}" / "metrics.jsonl").read_text()
        b = (tmp_path / "b" / key[0] / f"seed{key[1]}" / "metrics.jsonl").read_text()
        assert a == b
    assert json.loads((tmp_path / "a/paper/seed0/result.json").read_text())["episodes"] == 6


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_run_is_an_outcome_and_the_others_finish(tmp_path, jobs: int) -> None:
    bad = RunSpec("bad", 0, config("G !lava"), tmp_path / "bad")  # no labeler emits `lava`
    good = RunSpec("good", 0, config("minecraft/safeguard1"), tmp_path / "good")
    outcomes = {o.run.method: o for o in run_local([bad, good], jobs=jobs, progress=False)}
    assert not outcomes["bad"].ok and "lava" in str(outcomes["bad"].error)
    assert outcomes["good"].ok and outcomes["good"].result["episodes"] == 6


def test_closing_the_iteration_starts_no_more_runs(tmp_path) -> None:
    from contextlib import closing

    long = CurriculumConfig(stages=[Stage(ENV, {}, "minecraft/safeguard0", 1500)],
                            max_steps=100, test_episodes=0)
    runs = [RunSpec("paper", seed, long, tmp_path / f"seed{seed}") for seed in range(10)]
    with closing(run_local(runs, jobs=2)) as outcomes:
        first = next(outcomes)
    assert first.ok
    started = [run for run in runs if run.run_dir.exists()]
    assert len(started) <= 6  # two running and the pool's three queued calls, at most
