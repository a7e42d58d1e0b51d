"""The Ray executor on a local two-CPU Ray instance: the local executor's metrics byte for byte,
a worker killed mid-run retried and resumed to the same metrics, clear errors."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("minigrid")
ray = pytest.importorskip("ray")

from safeguards import ray_executor  # noqa: E402
from safeguards.cli import main  # noqa: E402
from safeguards.executor import RunSpec, run_local  # noqa: E402
from safeguards.learn.config import CurriculumConfig, Stage  # noqa: E402
from safeguards.ray_executor import RayUnavailable, run_ray  # noqa: E402

ENV = "safeguards/Minecraft-L1-v0"


def config(episodes: int = 3, every: int = 2) -> CurriculumConfig:
    stages = [Stage(ENV, {}, "minecraft/safeguard0", episodes),
              Stage(ENV, {}, "minecraft/safeguard3", episodes)]
    return CurriculumConfig(stages=stages, max_steps=20, test_episodes=2, checkpoint_every=every)


def runs(folder: Path, episodes: int = 3, every: int = 2) -> list[RunSpec]:
    return [RunSpec("paper", seed, config(episodes, every), folder / "paper" / f"seed{seed}")
            for seed in (0, 1)]


def same_run(a: Path, b: Path) -> None:
    """Byte-identical metrics, equal checkpoint arrays (and metadata but for the clock)."""
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()
    with np.load(a / "checkpoint.npz") as left, np.load(b / "checkpoint.npz") as right:
        assert sorted(left.files) == sorted(right.files)
        for name in set(left.files) - {"meta_json"}:
            assert np.array_equal(left[name], right[name]), name
        metas = [json.loads(str(side["meta_json"])) for side in (left, right)]
    for meta in metas:
        del meta["wall_seconds"], meta["saved_at"]
    assert metas[0] == metas[1]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_gives_the_metrics_of_the_local_executor(cluster, tmp_path) -> None:
    local = {o.run.seed: o for o in run_local(runs(tmp_path / "local"), progress=False)}
    remote = {o.run.seed: o for o in run_ray(runs(tmp_path / "ray"))}
    assert set(local) == set(remote) == {0, 1}
    for seed in (0, 1):
        assert remote[seed].ok, remote[seed].error
        assert remote[seed].result["episodes"] == local[seed].result["episodes"] == 6
        same_run(tmp_path / "local" / "paper" / f"seed{seed}",
                 tmp_path / "ray" / "paper" / f"seed{seed}")


def _run_task_pids() -> list[int]:
    """Ray workers running a run (their process title is ``ray::_run_task``)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::_run_task"):
                pids.append(int(entry))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_worker_is_retried_and_resumes_to_the_same_metrics(cluster, tmp_path) -> None:
    run = runs(tmp_path / "ray", episodes=600, every=25)[0]
    outcomes = []
    thread = threading.Thread(target=lambda: outcomes.extend(run_ray([run])))
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        checkpoint = run.run_dir / "checkpoint.json"
        pids = _run_task_pids()
        if checkpoint.exists() and pids:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    thread.join(timeout=300)
    assert killed is not None, "the run ended before a checkpoint could be interrupted"
    assert outcomes and outcomes[0].ok, outcomes
    assert outcomes[0].result["episodes"] == 1200
    reference = runs(tmp_path / "local", episodes=600, every=25)[0]
    list(run_local([reference], progress=False))
    same_run(reference.run_dir, run.run_dir)


def test_workers_that_do_not_see_the_run_folder_are_an_error(cluster, tmp_path,
                                                            monkeypatch) -> None:
    monkeypatch.setattr(ray_executor, "_sees", lambda path, token: False)
    with pytest.raises(RayUnavailable, match="do not see the run directory"):
        list(run_ray(runs(tmp_path)))


def test_a_run_folder_holding_a_run_needs_resume(cluster, tmp_path) -> None:
    list(run_ray(runs(tmp_path)[:1]))
    with pytest.raises(FileExistsError, match="already holds a run"):
        list(run_ray(runs(tmp_path)[:1]))
    assert all(o.ok for o in run_ray(runs(tmp_path)[:1], resume=True))


def test_without_ray_the_error_names_the_extra(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayUnavailable, match=r"pip install 'safeguards\[ray\]'"):
        list(run_ray(runs(tmp_path)))
    config_file = tmp_path / "exp.toml"
    config_file.write_text('[[stages]]\nenv = "safeguards/Minecraft-L1-v0"\n'
                           'spec = "minecraft/safeguard0"\nepisodes = 2\n')
    code = main(["curriculum", str(config_file), "--executor", "ray", "--run-dir",
                 str(tmp_path / "r"), "--no-progress"])
    assert code == 2 and "pip install 'safeguards[ray]'" in capsys.readouterr().err


def test_an_unreachable_address_is_named(tmp_path) -> None:
    with pytest.raises(RayUnavailable, match="cannot reach the Ray cluster at 127.0.0.1:9"):
        ray_executor._check_reachable("127.0.0.1:9")


def test_ray_options_need_the_ray_executor(capsys) -> None:
    assert main(["curriculum", "minecraft_quick", "--address", "auto"]) == 2
    assert "--address needs --executor ray" in capsys.readouterr().err
