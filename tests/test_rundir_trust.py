"""Run directories are verified before they are trusted (issue 16, item 3): a damaged metrics
file, edited or unreadable checkpoints and PPO checkpoints that point outside the run directory
are errors naming the file, never a silently shorter run; a run directory is locked while a
process works on it; ``wall_seconds`` sums every process that worked on the run."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

pytest.importorskip("safeguards.envs.gridworld.minecraft")

from safeguards.cli import main  # noqa: E402
from safeguards.learn import run_curriculum  # noqa: E402
from safeguards.learn.config import CurriculumConfig  # noqa: E402
from safeguards.runs import RunDir, RunDirError, RunDirInUse, read_metrics  # noqa: E402

CONFIG = CurriculumConfig.paper(episodes=40, switch_every=10, max_steps=60, test_episodes=3,
                                checkpoint_every=7, seed=1)


class Kill(KeyboardInterrupt):
    pass


def killed_run(folder: Path, at: int = 24, pause: float = 0.0) -> Path:
    """A run stopped after episode ``at`` (its last checkpoint: episode 21)."""
    def kill(record: dict[str, Any]) -> None:
        time.sleep(pause)
        if record["episode"] == at:
            raise Kill

    with pytest.raises(Kill):
        run_curriculum(CONFIG, folder, progress=False, on_episode=kill)
    return folder


def edit_meta(folder: Path, change: Callable[[dict[str, Any]], None],
              arrays: Callable[[dict[str, np.ndarray]], None] = lambda a: None) -> None:
    """Rewrite ``checkpoint.npz`` with its metadata (and arrays) changed."""
    with np.load(folder / "checkpoint.npz") as data:
        content = {k: data[k] for k in data.files}
    meta = json.loads(str(content.pop("meta_json")))
    change(meta)
    arrays(content)
    buffer = io.BytesIO()
    np.savez(buffer, meta_json=np.array(json.dumps(meta)), **content)
    (folder / "checkpoint.npz").write_bytes(buffer.getvalue())


def rewrite_lines(folder: Path, change: Callable[[list[str]], list[str]]) -> None:
    path = folder / "metrics.jsonl"
    path.write_text("".join(change(path.read_text().splitlines(keepends=True))))


def set_line(number: int, text: str) -> Callable[[list[str]], list[str]]:
    return lambda lines: [*lines[:number - 1], text, *lines[number:]]


DAMAGE = {
    "garbage line": (lambda d: rewrite_lines(d, set_line(5, "garbage\n")),
                     r"metrics.jsonl:5: error: not a JSON line"),
    "not an object": (lambda d: rewrite_lines(d, set_line(3, "[1, 2]\n")),
                      r"metrics.jsonl:3: error: a JSON list"),
    "cut short": (lambda d: rewrite_lines(d, lambda lines: lines[:10]),
                  r"metrics.jsonl: error: holds 10 episodes; the checkpoint checkpoint.npz "
                  r"covers 21"),
    "deleted": (lambda d: (d / "metrics.jsonl").unlink(),
                r"metrics.jsonl: error: missing; the checkpoint checkpoint.npz covers 21"),
    "a row edited": (lambda d: rewrite_lines(d, lambda lines: [
        lines[0].replace('"length": ', '"length": 1'), *lines[1:]]),
        r"metrics.jsonl: error: its first 21 episodes are not those the checkpoint"),
    "rows swapped": (lambda d: rewrite_lines(d, lambda lines: [lines[1], lines[0], *lines[2:]]),
                     r"metrics.jsonl:1: error: episode 1 where episode 0 belongs"),
    "episode +500": (lambda d: edit_meta(d, lambda m: m.update(episode=m["episode"] + 500)),
                     r"checkpoint.npz: error: episode 521 but its record of metrics.jsonl"),
    "episode -5": (lambda d: edit_meta(d, lambda m: m.update(episode=-5)),
                   r"checkpoint.npz: error: episode -5 is not a count"),
    "episode and record +7": (lambda d: edit_meta(d, lambda m: (
        m.update(episode=28), m["metrics"].update(rows=28))),
        r"checkpoint.npz: error: episode 28 .* is not a point of this run's schedule"),
    "stage 99": (lambda d: edit_meta(d, lambda m: m.update(stage=99)),
                 r"checkpoint.npz: error: stage 99 is not one of 0 .. 4"),
    "other method": (lambda d: edit_meta(d, lambda m: m.update(method="scratch")),
                     r"checkpoint.npz: error: a checkpoint of method 'scratch'"),
    "other seed": (lambda d: edit_meta(d, lambda m: m.update(seed=7)),
                   r"checkpoint.npz: error: a checkpoint of method 'paper' seed 7"),
    "other version": (lambda d: edit_meta(d, lambda m: m.update(version=9)),
                      r"checkpoint.npz: error: unsupported checkpoint version 9"),
    "random state": (lambda d: edit_meta(d, lambda m: m.update(rng={"state": 3})),
                     r"checkpoint.npz: error: malformed random state"),
    "NaN in Q": (lambda d: edit_meta(d, lambda m: None,
                                     lambda a: a["Q"].__setitem__((0, 0, 0), np.nan)),
                 r"checkpoint.npz: error: array Q holds NaN or infinite values"),
    "Inf in a snapshot": (lambda d: edit_meta(d, lambda m: None, lambda a: a[
        "snapshot_Q_0"].__setitem__((1, 0, 0), np.inf)),
        r"checkpoint.npz: error: array snapshot_Q_0 holds NaN or infinite values"),
    "Q of another shape": (lambda d: edit_meta(d, lambda m: None,
                                               lambda a: a.update(Q=a["Q"][:3])),
                           r"checkpoint.npz: error: array Q is missing or not of kind"),
    "npz truncated": (lambda d: (d / "checkpoint.npz").write_bytes(
        (d / "checkpoint.npz").read_bytes()[:1000]),
        r"checkpoint.npz: error: cannot be read"),
    "npz garbage": (lambda d: (d / "checkpoint.npz").write_bytes(b"PK\x03\x04" + b"x" * 500),
                    r"checkpoint.npz: error: cannot be read"),
    "npz without metadata": (lambda d: np.savez(d / "checkpoint.npz", Q=np.zeros(3)),
                             r"checkpoint.npz: error: not a checkpoint \(no meta_json\)"),
}


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return killed_run(tmp_path_factory.mktemp("trust") / "killed")


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_run_dir_is_an_error_naming_the_file(case: str, interrupted: Path,
                                                       tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(interrupted, folder)
    damage, message = DAMAGE[case]
    damage(folder)
    with pytest.raises(RunDirError, match=message) as info:
        run_curriculum(CONFIG, folder, resume=True, progress=False)
    assert str(folder) in str(info.value) and "hint:" in str(info.value)
    assert not (folder / "result.json").exists()


def test_an_intact_run_dir_resumes_and_sums_the_wall_time(tmp_path: Path) -> None:
    folder = killed_run(tmp_path / "killed", pause=0.05)    # >= 1 s before the checkpoint
    earlier = json.loads((folder / "checkpoint.json").read_text())
    assert earlier["metrics"]["rows"] == earlier["episode"] == 21
    assert earlier["wall_seconds"] >= 20 * 0.05           # 20 pauses before the checkpoint
    resumed = run_curriculum(CONFIG, folder, resume=True, progress=False)
    assert resumed.episodes == 40
    assert resumed.wall_seconds >= earlier["wall_seconds"]
    saved = json.loads((folder / "result.json").read_text())
    assert saved["wall_seconds"] >= round(earlier["wall_seconds"], 3)


def test_read_metrics_stops_only_at_a_line_cut_by_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"episode": 0}\n{"episode": 1}\n{"epis')
    assert read_metrics(path) == [{"episode": 0}, {"episode": 1}]
    path.write_text('{"episode": 0}\n{"epis\n{"episode": 2}\n')
    with pytest.raises(RunDirError, match=r"metrics.jsonl:2: error: not a JSON line"):
        read_metrics(path)
    path.write_bytes(b'{"episode": 0}\n\xff\xfe\n')
    with pytest.raises(RunDirError, match=r"metrics.jsonl:2: error: not a JSON line"):
        read_metrics(path)


def test_a_run_dir_in_use_is_locked_out(tmp_path: Path) -> None:
    folder = killed_run(tmp_path / "killed")
    with RunDir(folder).lock():
        with pytest.raises(RunDirInUse, match=rf"run directory {folder} is in use by pid "
                                              rf"{os.getpid()}"):
            run_curriculum(CONFIG, folder, resume=True, progress=False)
    script = ("import sys, time\nfrom safeguards.runs import RunDir\n"
              "with RunDir(sys.argv[1]).lock():\n    print('locked', flush=True)\n"
              "    time.sleep(60)\n")
    with subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE,
                          text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            with pytest.raises(RunDirInUse, match=rf"in use by pid {holder.pid}"):
                run_curriculum(CONFIG, folder, resume=True, progress=False)
        finally:
            holder.kill()                   # SIGKILL: the lock goes with the process
    assert run_curriculum(CONFIG, folder, resume=True, progress=False).episodes == 40


def test_the_cli_reports_a_damaged_checkpoint_without_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    argv = ["train", "--env", "safeguards/Minecraft-L1-v0", "--spec", "minecraft/safeguard0",
            "--episodes", "10", "--checkpoint-every", "5", "--max-steps", "30",
            "--test-episodes", "1", "--run-dir", str(run_dir), "--no-progress"]
    assert main(argv) == 0
    npz = run_dir / "checkpoint.npz"
    intact = npz.read_bytes()
    npz.write_bytes(intact[:200])
    capsys.readouterr()
    code = main([*argv, "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count(f"{npz}: error: cannot be read") == 1
    npz.write_bytes(intact)
    metrics = run_dir / "metrics.jsonl"
    metrics.write_text("garbage\n" + metrics.read_text())
    code = main([*argv, "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count(f"{metrics}:1: error:") == 1, err


# -- PPO checkpoints ----------------------------------------------------------------------------

sb3 = pytest.importorskip("stable_baselines3")


def _noise_env() -> Any:
    import gymnasium as gym
    from gymnasium import spaces

    class Noise(gym.Env):
        """36 x 36 random images from the environment's own random stream, two actions."""

        observation_space = spaces.Box(0, 255, (36, 36, 3), np.uint8)
        action_space = spaces.Discrete(2)

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
            super().reset(seed=seed)
            return self._image(), {}

        def _image(self) -> np.ndarray:
            return self.np_random.integers(0, 256, (36, 36, 3), dtype=np.uint8)

        def step(self, action: Any):
            return self._image(), float(action), False, False, {}

    from stable_baselines3.common.vec_env import DummyVecEnv

    env = DummyVecEnv([Noise])
    env.seed(5)
    return env


def _deep_config() -> Any:
    from safeguards.learn.config import DeepConfig, DeepStage

    return DeepConfig(stages=[DeepStage("x", {}, "G !a", 64)], n_envs=1, n_steps=32,
                      batch_size=32, n_epochs=1)


@pytest.fixture(scope="module")
def saved_agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safeguards.learn.deep import new_model

    model = new_model(_deep_config(), _noise_env(), observe=False, seed=0)
    model.learn(32)
    model.ent_coef = 0.05                                  # as begin_stage may set it
    path = tmp_path_factory.mktemp("ppo") / "checkpoint-32.zip"
    model.save(path)
    return path


def test_load_model_gives_the_agent_ppo_load_gives(saved_agent: Path) -> None:
    import torch
    from stable_baselines3 import PPO

    from safeguards.learn.deep import load_model

    trusted = PPO.load(saved_agent, env=_noise_env(), device="cpu")   # our own file
    trusted.learn(64, reset_num_timesteps=False)
    rebuilt = load_model(saved_agent, _deep_config(), _noise_env(), observe=False)
    assert (rebuilt.num_timesteps, rebuilt.ent_coef) == (32, 0.05)
    rebuilt.learn(64, reset_num_timesteps=False)
    assert rebuilt.num_timesteps == trusted.num_timesteps == 96
    assert all(torch.equal(a, b) for a, b in zip(trusted.policy.parameters(),
                                                  rebuilt.policy.parameters()))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_load_model_unpickles_nothing_from_the_file(saved_agent: Path, tmp_path: Path) -> None:
    import base64
    import pickle
    import zipfile

    from safeguards.learn.deep import load_model

    marker = tmp_path / "pwned"

    class Planted:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    payload = {":serialized:": base64.b64encode(pickle.dumps(Planted())).decode()}
    planted = tmp_path / "checkpoint-32.zip"
    with zipfile.ZipFile(saved_agent) as source, zipfile.ZipFile(planted, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "data":
                data = json.loads(content)
                data.update(policy_class=payload, lr_schedule=payload, clip_range=payload)
                content = json.dumps(data).encode()
            target.writestr(name, content)
    load_model(planted, _deep_config(), _noise_env(), observe=False)
    assert not marker.exists()

    with zipfile.ZipFile(saved_agent) as source, zipfile.ZipFile(planted, "w") as target:
        for name in source.namelist():
            target.writestr(name, pickle.dumps(Planted()) if name == "policy.pth"
                            else source.read(name))
    with pytest.raises(RunDirError, match="not a readable PPO checkpoint"):
        load_model(planted, _deep_config(), _noise_env(), observe=False)
    assert not marker.exists()


@pytest.mark.parametrize("model, message", [
    ("../outside/checkpoint-32.zip", "is not checkpoint-32.zip"),
    ("/tmp/checkpoint-32.zip", "is not checkpoint-32.zip"),
    ("checkpoint-99.zip", "is not checkpoint-32.zip"),
    ("symlink", "missing, or not a regular file"),
    ("missing", "missing, or not a regular file"),
])
def test_a_ppo_checkpoint_names_a_model_file_of_its_run_dir(model: str, message: str,
                                                            saved_agent: Path,
                                                            tmp_path: Path) -> None:
    from safeguards.learn.deep import _check_deep_checkpoint, plan_of

    config = _deep_config()
    run = RunDir(tmp_path / "run")
    outside = tmp_path / "outside" / "checkpoint-32.zip"
    outside.parent.mkdir()
    outside.write_bytes(saved_agent.read_bytes())
    if model == "symlink":
        (run.path / "checkpoint-32.zip").symlink_to(outside)
    meta = {"version": 1, "method": config.method_name, "seed": config.seed, "stage": 0,
            "episode": 0, "stage_episode": 0, "stage_started": True, "stage_ends": [],
            "frames": 32, "model": model if model not in ("symlink", "missing")
            else "checkpoint-32.zip"}
    with pytest.raises(RunDirError, match=message):
        _check_deep_checkpoint(run, meta, config, plan_of(config))
