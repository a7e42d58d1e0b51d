"""``learner = "rllib_ppo"``: RLlib PPO through a curriculum on the Minecraft gridworld (a
cheap environment): metrics rows as the SB3 learner writes them, checkpoints of plain weights,
resume after a kill, RLlib's own stage checkpoints, the CLI and report path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("minigrid")
pytest.importorskip("ray.rllib")

from safeguards.cli import main  # noqa: E402
from safeguards.learn.config import DeepStage, RLlibConfig  # noqa: E402
from safeguards.learn.curriculum import learner_of, run_curriculum  # noqa: E402

ENV = "safeguards/Minecraft-L1-v0"


def config(**changes: object) -> RLlibConfig:
    settings = dict(stages=[DeepStage(ENV, {}, "minecraft/safeguard0", 256),
                            DeepStage(ENV, {}, "minecraft/safeguard3", 256)],
                    n_envs=2, n_steps=64, batch_size=64, n_epochs=2, max_steps=40,
                    test_episodes=2, checkpoint_every=128, seed=1)
    return RLlibConfig(**{**settings, **changes})


class Stop(Exception):
    """Raised from ``on_episode``: the run stops as a kill would."""


def test_a_run_writes_rows_weights_and_rllib_checkpoints(tmp_path: Path) -> None:
    assert learner_of(config()).name == "rllib_ppo"
    result = run_curriculum(config(), tmp_path / "run", progress=False).to_dict()
    run = tmp_path / "run"
    assert result["learner"] == json.loads((run / "result.json").read_text())["learner"] \
        == "rllib_ppo"
    assert result["stage_frames"][0] >= 256 and result["frames"] >= 512
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == result["episodes"] > 0
    assert [r["episode"] for r in rows] == list(range(len(rows)))
    assert {r["stage"] for r in rows} == {0, 1}
    assert all(r["violated"] == (r["violation_step"] is not None) for r in rows)
    assert all(r["length"] <= 40 and r["value_s0"] is None for r in rows)
    with np.load(run / "checkpoint.npz") as saved:
        assert any("encoder" in name for name in saved.files)
    assert (run / "rllib-stage1").is_dir() and (run / "rllib-stage2").is_dir()
    assert result["test"]["episodes"] == result["test_stochastic"]["episodes"] == 2


def test_a_killed_run_resumes_from_its_weights(tmp_path: Path) -> None:
    seen: list[dict] = []

    def stop_in_stage_two(row: dict) -> None:
        seen.append(row)
        if row["stage"] == 1:
            raise Stop

    with pytest.raises(Stop):
        run_curriculum(config(), tmp_path / "run", progress=False, on_episode=stop_in_stage_two)
    meta = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert meta["stage"] >= 1  # stage one ended with a checkpoint
    result = run_curriculum(config(), tmp_path / "run", resume=True, progress=False).to_dict()
    rows = [json.loads(line) for line in
            (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in rows] == list(range(len(rows))) and rows
    assert result["frames"] >= 512 and len(result["stage_frames"]) == 2


def test_settings_rllib_cannot_honour_are_errors() -> None:
    with pytest.raises(ValueError, match="load_optimizer is not available with rllib_ppo"):
        config(load_optimizer=True)
    with pytest.raises(ValueError, match="must split evenly over num_env_runners"):
        config(n_envs=3, n_steps=5, batch_size=5, num_env_runners=2)


def test_the_cli_runs_an_experiment_file_and_reports_it(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    experiment = tmp_path / "exp.toml"
    experiment.write_text(f"""\
seeds = [0]
methods = ["reuse", "scratch"]
env = "{ENV}"
[train]
learner = "rllib_ppo"
n_envs = 2
n_steps = 32
batch_size = 32
n_epochs = 1
max_steps = 30
[test]
episodes = 1
[[stages]]
spec = "minecraft/safeguard0"
frames = 64
[[stages]]
spec = "minecraft/safeguard3"
frames = 64
""")
    root = tmp_path / "runs"
    assert main(["curriculum", str(experiment), "--run-dir", str(root), "--no-progress"]) == 0
    assert main(["report", str(root), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "| reuse | 1 |" in out and "| scratch | 1 |" in out
