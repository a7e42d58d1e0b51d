"""The PPO learner (``[train] learner = "ppo"``): experiment-file parsing, a smoke run through
the command line on the Doom scenario, resuming, what ``reuse`` carries over, and the report.

Budgets are tiny (a few hundred agent steps); nothing here checks that the agent learns.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("vizdoom")

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402
from gymnasium import spaces  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

from safeguards.cli import main  # noqa: E402
from safeguards.experiment import ConfigError, parse_experiment  # noqa: E402
from safeguards.learn import run_curriculum  # noqa: E402
from safeguards.learn.deep import begin_stage, new_model  # noqa: E402
from safeguards.learn.config import DeepConfig, DeepStage  # noqa: E402
from safeguards.runs import read_metrics  # noqa: E402

pytestmark = pytest.mark.slow

LABELER = "safeguards.envs.doom.labels:DoomLabeler"

TINY = f"""\
name = "tiny"
env = "safeguards/DoomSafeRL-v0"
methods = ["reuse", "scratch"]

[train]
learner = "ppo"
labeler = "{LABELER}"
max_steps = 48
n_envs = 1
n_steps = 64
batch_size = 32
n_epochs = 1

[test]
episodes = 1

[[stages]]
spec = "doom/safeguard0"
frames = 64

[[stages]]
spec = "doom/safeguard1"
frames = 64

[[stages]]
spec = "doom/safeguard2"
frames = 128
"""

TABULAR = """\
[[stages]]
env = "safeguards/Minecraft-L1-v0"
spec = "minecraft/safeguard0"
episodes = 5
"""


def parse(text: str, **kwargs: Any):
    return parse_experiment(textwrap.dedent(text), "exp.toml", check_envs=False, **kwargs)


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return str(info.value)


# -- experiment files ---------------------------------------------------------------------------

def test_ppo_experiment_parses_to_deep_configs() -> None:
    experiment = parse(TINY)
    assert experiment.learner == "ppo" and experiment.budget() == "256 frames"
    assert [type(s) for s in experiment.stages] == [DeepStage] * 3
    config = experiment.config("reuse", 3)
    assert isinstance(config, DeepConfig)
    assert (config.transfer, config.seed, config.n_envs, config.max_steps) == ("reuse", 3, 1, 48)
    assert [s.frames for s in config.stages] == [64, 64, 128]
    assert experiment.config("scratch", 0).baseline == "scratch"


def test_the_default_learner_is_still_tabular() -> None:
    experiment = parse(TABULAR)
    assert experiment.learner == "tabular" and experiment.budget() == "5 episodes"


@pytest.mark.parametrize("change, expected", [
    (('frames = 64\n\n[[stages]]\nspec = "doom/safeguard1"', 'episodes = 64\n\n[[stages]]\n'
      'spec = "doom/safeguard1"'),
     'exp.toml:19: error: stage 1: `episodes` is the budget of learner = "tabular"; with '
     'learner = "ppo" give `frames`\n    episodes = 64\nhint: write frames = N (agent steps), '
     'or set learner = "tabular" in [train]'),
    (("n_epochs = 1", "n_epochs = 1\nalpha = 0.5"),
     'exp.toml:13: error: `alpha` is a setting of learner = "tabular", not of learner = "ppo"'),
    (("n_envs = 1", "n_env = 1"),
     "exp.toml:9: error: unknown key `n_env` in [train]\n    n_env = 1\n"
     "hint: did you mean `n_envs`?"),
    (('learner = "ppo"', 'learner = "ppoo"'),
     'exp.toml:6: error: `learner` must be one of "tabular", "ppo", "rllib_ppo", "sqrl", not the '
     'string "ppoo"\n'
     '    learner = "ppoo"\nhint: did you mean `ppo`?'),
    (('methods = ["reuse", "scratch"]', 'methods = ["reuse", "paper"]'),
     "exp.toml:3: error: unknown method `paper`\n    methods = [\"reuse\", \"paper\"]\n"
     "hint: a listed method must be a transfer (reuse, reset) or a baseline (no_safeguard, "
     "scratch)"),
    (("batch_size = 32", "batch_size = 128"),
     "exp.toml:3: error: method `reuse`: batch_size (128) must not exceed n_envs * n_steps "
     "(64)"),
    (("episodes = 1", "episodes = 1\nfallback = \"paper\""),
     'exp.toml:16: error: `fallback` is a setting of the tabular learner\'s test'),
])
def test_ppo_experiment_errors_name_the_line(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in TINY
    assert error_of(TINY.replace(old, new, 1)).startswith(expected)


def test_frames_in_a_tabular_file_is_an_error() -> None:
    message = error_of(TABULAR.replace("episodes", "frames"))
    assert message == ('exp.toml:4: error: stage 1: `frames` is the budget of learner = "ppo"; '
                       'with learner = "tabular" give `episodes`\n    frames = 5\n'
                       'hint: write episodes = N (training episodes), or set learner = "ppo" in '
                       '[train]')


def test_the_cli_reports_a_bad_ppo_file_with_its_line(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace("n_epochs = 1", "n_epochs = 0"))
    assert main(["curriculum", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert err == f"{path}:12: error: `n_epochs` must be at least 1, not the number 0\n    n_epochs = 0\n"
    assert "Traceback" not in err


# -- what `reuse` carries over (a tiny image environment, no Doom) -------------------------------

class Noise(gym.Env):
    """36 x 36 random images (the smallest NatureCNN accepts), two actions."""

    observation_space = spaces.Box(0, 255, (36, 36, 3), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: Any):
        return self.observation_space.sample(), 0.0, False, False, {}


def _params(model: PPO) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def test_reuse_keeps_the_weights_and_starts_a_fresh_optimizer() -> None:
    config = DeepConfig(stages=[DeepStage("x", {}, "G !a", 64)], n_envs=1, n_steps=32,
                        batch_size=32, n_epochs=1, transfer_ent_coef=0.05)
    env = DummyVecEnv([Noise])
    model = new_model(config, env, observe=False, seed=0)
    model.learn(32)                                       # Adam now has state
    assert model.policy.optimizer.state
    before, steps = _params(model), model.num_timesteps

    reused = begin_stage(model, config, "reuse", env, observe=False, seed=1)
    assert reused is model and reused.num_timesteps == steps
    assert all(torch.equal(a, b) for a, b in zip(before, _params(reused)))
    assert not reused.policy.optimizer.state               # load_optimizer = False
    assert reused.ent_coef == 0.05

    noisy_config = DeepConfig(**{**config.__dict__, "noise_mult": 0.01})
    noisy = begin_stage(reused, noisy_config, "reuse", env, observe=False, seed=1)
    moved = [float((a - b).abs().max()) for a, b in zip(before, _params(noisy))]
    assert all(0 < m < 0.2 for m in moved)                 # noise scaled by each tensor's range

    fresh = begin_stage(noisy, config, "reset", env, observe=False, seed=2)
    assert fresh is not noisy and fresh.num_timesteps == steps
    assert not all(torch.equal(a, b) for a, b in zip(before, _params(fresh)))


# -- end to end on Doom -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("doom")
    (folder / "tiny.toml").write_text(TINY)
    status = main(["curriculum", str(folder / "tiny.toml"), "--run-dir", str(folder / "runs"),
                   "--no-progress"])
    assert status == 0
    return folder / "runs"


def test_the_cli_runs_the_stages_end_to_end(tiny_runs: Path) -> None:
    run = tiny_runs / "reuse" / "seed0"
    result = json.loads((run / "result.json").read_text())
    assert result["learner"] == "ppo" and result["frames"] == 256
    assert result["stage_frames"] == [64, 64, 128]
    assert result["test"]["deterministic"] and not result["test_stochastic"]["deterministic"]
    rows = read_metrics(run)
    assert rows and [r["episode"] for r in rows] == list(range(len(rows)))
    assert {r["stage"] for r in rows} <= {0, 1, 2} and rows[-1]["stage"] == 2
    assert all(r["length"] <= 48 and r["frames"] <= 256 for r in rows)
    assert all(isinstance(r["value_s0"], float) for r in rows)
    violated = [r for r in rows if r["violated"]]
    assert all(r["violation_step"] == r["length"] for r in violated)  # the episode ends there
    assert {f"stage{k}.zip" for k in (1, 2, 3)} <= {p.name for p in run.iterdir()}
    scratch = read_metrics(tiny_runs / "scratch" / "seed0")
    assert {r["stage"] for r in scratch} == {0}                         # one long stage
    assert (run / "metrics.csv").read_text().splitlines()[0].endswith(
        "task_return,violations_final,frames")


def test_reuse_carries_the_network_into_the_next_stage(tiny_runs: Path) -> None:
    run = tiny_runs / "reuse" / "seed0"
    first, second = (_params(PPO.load(run / f"stage{k}.zip", device="cpu")) for k in (1, 2))
    moved = sum(float((a - b).pow(2).sum()) for a, b in zip(first, second)) ** 0.5
    norm = sum(float(a.pow(2).sum()) for a in first) ** 0.5
    # a few updates away; a new initialisation would be about sqrt(2) * norm away
    assert 0 < moved < 0.05 * norm


def test_report_works_on_the_run_dir(tiny_runs: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tiny_runs), "-o", str(tmp_path)]) == 0
    table = (tmp_path / "summary.md").read_text()
    assert "| reuse | 1 |" in table and "| scratch | 1 |" in table and "test return" in table
    assert (tmp_path / "violations_per_stage.png").stat().st_size > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [len(m["stage_violations"]) for m in summary] == [3, 3]


def test_a_trained_policy_plays_the_recorded_episode(tiny_runs: Path, tmp_path: Path) -> None:
    from safeguards.envs.doom.render import main as render

    gif, strip = render(["--policy", str(tiny_runs / "reuse" / "seed0" / "stage3.zip"),
                         "--out", str(tmp_path), "--name", "trained", "--max-steps", "6"])
    assert gif.name == "trained_episode.gif" and gif.stat().st_size > 0
    assert strip.name == "trained_frames.png" and strip.stat().st_size > 0


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    experiment = parse(TINY.replace("max_steps = 48", "max_steps = 16\ncheckpoint_every = 64"))
    config = experiment.config("reuse", 0)

    class Killed(Exception):
        pass

    def kill(row: dict[str, Any]) -> None:
        if row["stage"] == 2 and row["stage_episode"] == 1:
            raise Killed

    with pytest.raises(Killed):
        run_curriculum(config, tmp_path, progress=False, on_episode=kill)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["stage"] == 2 and meta["stage_ends"] == [64, 128]
    assert (tmp_path / meta["model"]).is_file()
    assert not (tmp_path / "result.json").exists()
    with pytest.raises(FileExistsError):
        run_curriculum(config, tmp_path, progress=False)
    before = read_metrics(tmp_path)
    result = run_curriculum(config, tmp_path, progress=False, resume=True)
    rows = read_metrics(tmp_path)
    kept = meta["episode"]
    assert rows[:kept] == before[:kept] and len(before) > kept   # cut back to the checkpoint
    assert [r["episode"] for r in rows] == list(range(len(rows))) and rows[-1]["stage"] == 2
    assert result.stage_frames == [64, 64, 128] and result.frames == 256
    assert len(list(tmp_path.glob("checkpoint-*.zip"))) == 1


@pytest.mark.parametrize("options, message", [
    (["--frames", "64", "--episodes", "5"], "--episodes is an option of --learner tabular"),
    ([], "--learner ppo needs --frames N (agent steps)"),
    (["--frames", "64", "--baseline", "intrinsic_fear"], "--baseline intrinsic_fear is tabular"),
])
def test_train_with_ppo_checks_its_options(options: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "--learner", "ppo", "--env", "safeguards/DoomSafeRL-v0", "--spec",
            "doom/safeguard2", *options]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("name, budget", [("doom_quick", "768 frames"),
                                          ("doom", "131072 frames")])
def test_the_shipped_doom_curricula_parse(name: str, budget: str) -> None:
    from safeguards.experiment import find_experiment, load_experiment

    experiment = load_experiment(find_experiment(name), check_envs=False)
    assert experiment.learner == "ppo" and experiment.budget() == budget
    assert [s.spec for s in experiment.stages] == [f"doom/safeguard{k}" for k in range(3)]


def test_bench_doom_quick_measures_both_throughputs(tiny_runs: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_doom.py"
    subprocess.run([sys.executable, str(script), "--quick", "--reps", "1", "--steps", "50",
                    "--out-dir", str(tmp_path), "--runs", str(tiny_runs)], check=True,
                   timeout=120, capture_output=True, text=True)
    data = json.loads((tmp_path / "doom_quick.json").read_text())
    env = data["env"]
    assert env["same_trajectory"]
    for variant in ("raw", "safeguard", "training stack"):
        assert env["wall"][variant]["steps_per_second"] > 0
    assert 0 < env["wall"]["safeguard"]["throughput_ratio_vs_raw"] < 10
    assert {r["method"] for r in data["runs"]} == {"reuse", "scratch"}
    assert (tmp_path / "doom_quick.md").read_text().startswith("# Doom benchmark (quick)")
