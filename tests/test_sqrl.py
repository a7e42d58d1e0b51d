"""SQRL on Stable-Baselines3's SAC: the cost replay buffer, the critic's cadence, the filter in
fine-tuning, the sign of the dual update, the learner through ``safeguards curriculum`` (every
method, resume after a kill, checkpoints read with ``weights_only``), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from safeguards.cli import main
from safeguards.learn.config import DeepStage, SQRLConfig
from safeguards.learn.curriculum import learner_of, run_curriculum
from safeguards.learn.safety_critic import SafetyCritic
from safeguards.learn.sqrl import SQRL, CostReplayBuffer

ENV = "safeguards/DrunkSpider-v0"


def config(**changes: object) -> SQRLConfig:
    settings = dict(stages=[DeepStage(ENV, {"random_goal": True}, "sqrl/no_fall", 160),
                            DeepStage(ENV, {}, "sqrl/no_fall", 80)],
                    batch_size=16, hidden=[16, 16], learning_starts=32, train_sc_interval=40,
                    train_sc_steps=2, checkpoint_every=60, test_episodes=2, seed=3)
    return SQRLConfig(**{**settings, **changes})


class Incident(gym.Wrapper):
    """Pendulum with a cost: ``info["cost"] = 1`` when the action pushes right."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["cost"] = float(np.asarray(action)[0] > 0)
        return obs, reward, terminated, truncated, info


def agent(**kwargs: object) -> SQRL:
    critic = SafetyCritic(3, 1, hidden=(16,), seed=0)
    return SQRL("MlpPolicy", Incident(gym.make("Pendulum-v1")), critic, learning_starts=16,
                batch_size=16, policy_kwargs={"net_arch": [16]}, seed=0, **kwargs)


def test_replay_buffer_keeps_costs_and_feeds_d_safe() -> None:
    model = agent(safe_buffer_size=50, train_sc_interval=20, train_sc_steps=3)
    model.learn(100)
    assert isinstance(model.replay_buffer, CostReplayBuffer)
    buffer = model.replay_buffer
    assert 0 < buffer.costs[:100].sum() < 100
    actions = buffer.actions[:100, 0, 0]
    assert np.array_equal(buffer.costs[:100] > 0, actions > 0)  # scale of Pendulum: [-2, 2]
    assert model.safe_buffer is not None and model.safe_buffer.full  # the last 50 of them
    assert np.array_equal(model.safe_buffer.costs, np.roll(buffer.costs[50:100], 0))


def test_filter_acts_from_mask_from_and_in_fine_tuning() -> None:
    model = agent(mask_from=60)
    model.learn(50)
    assert model.filter is not None and model.filter.stats.calls == 0
    model.learn(30, reset_num_timesteps=False)
    assert model.filter.stats.calls == 20                 # steps 60 .. 79
    model.phase = "finetune"
    model.learn(10, reset_num_timesteps=False)
    assert model.filter.stats.calls == 30


def test_sac_without_a_critic_never_filters() -> None:
    model = SQRL("MlpPolicy", gym.make("Pendulum-v1"), None, learning_starts=8, batch_size=8,
                 policy_kwargs={"net_arch": [8]}, seed=0)
    model.phase = "finetune"
    model.learn(20)
    assert model.filter is None and not model.filtering


@pytest.mark.parametrize("q_safe, rises", [(0.9, True), (0.0, False)])
def test_nu_ascends_when_the_critic_exceeds_eps(q_safe: float, rises: bool) -> None:
    model = agent(eps_safe=0.1, nu_init=1.0, nu_lr=0.5)
    model.safety_critic.raw = lambda obs, action, target=False: torch.full(  # type: ignore
        obs.shape[:-1], q_safe) + 0 * action.sum(-1)
    term = model._safety_term(torch.zeros(4, 3), torch.zeros(4, 1))
    assert (model.nu > 1.0) == rises
    assert model.nu == pytest.approx(1.0 + 0.5 * (q_safe - 0.1))
    assert float(term) == pytest.approx(model.nu * (q_safe - 0.1))
    for _ in range(10):
        model._safety_term(torch.zeros(4, 3), torch.zeros(4, 1))
    assert model.nu >= 0.0


def test_actor_safety_gradient_flag_stops_the_gradient() -> None:
    for flag in (True, False):
        model = agent(actor_safety_gradient=flag)
        actions = torch.zeros(4, 1, requires_grad=True)
        term = model._safety_term(torch.zeros(4, 3), actions)
        assert term.requires_grad == flag


@pytest.mark.parametrize("method", ["sqrl", "sac", "sac_lagrangian"])
def test_every_method_runs_through_the_curriculum(tmp_path: Path, method: str) -> None:
    cfg = config(transfer=method)
    assert learner_of(cfg).name == "sqrl"
    result = run_curriculum(cfg, tmp_path / method, progress=False).to_dict()
    run = tmp_path / method
    assert result["stage_frames"] == [160, 80] and result["learner"] == "sqrl"
    assert (result["stage_filtered"][1] == 80) == (method == "sqrl")
    assert result["test"]["episodes"] == 2 and result["test_stochastic"]["episodes"] == 2
    assert {p.name for p in run.glob("*.pt")} == {"stage1.pt", "stage2.pt", "checkpoint-240.pt"}
    state = torch.load(run / "stage2.pt", weights_only=True)
    assert ("safety_critic" in state) == (method != "sac")


class Stop(Exception):
    """Raised from ``on_episode``: the run stops as a kill would."""


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    def stop_in_fine_tuning(row: dict) -> None:
        if row["stage"] == 1:
            raise Stop

    with pytest.raises(Stop):
        run_curriculum(config(), tmp_path / "run", progress=False, on_episode=stop_in_fine_tuning)
    assert {p.name for p in (tmp_path / "run").glob("*.pt")} == {"stage1.pt", "checkpoint-160.pt"}
    result = run_curriculum(config(), tmp_path / "run", resume=True, progress=False).to_dict()
    assert result["stage_frames"] == [160, 80] and result["stage_filtered"][1] == 80
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["episode"] for r in rows] == list(range(len(rows)))
    assert rows[-1]["frames"] <= 240


class Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_a_pickled_checkpoint_is_refused(tmp_path: Path, capsys) -> None:
    from safeguards.runs import RunDirError

    run = tmp_path / "run"

    def stop(row: dict) -> None:
        if row["stage"] == 1:
            raise Stop

    with pytest.raises(Stop):
        run_curriculum(config(), run, progress=False, on_episode=stop)
    torch.save({"policy": Evil()}, run / "checkpoint-160.pt")
    with pytest.raises(RunDirError, match="not a checkpoint of this run"):
        run_curriculum(config(), run, resume=True, progress=False)
    assert "unpickled!" not in capsys.readouterr().out


def write_experiment(folder: Path, **train: object) -> Path:
    settings = {"learner": '"sqrl"', "batch_size": 16, "hidden": "[16, 16]",
                "learning_starts": 32, "train_sc_interval": 40, "train_sc_steps": 2, **train}
    lines = [f"{k} = {v}" for k, v in settings.items()]
    text = "\n".join(['name = "tiny"', f'env = "{ENV}"', 'methods = ["sqrl"]', "[train]", *lines,
                      "[test]", "episodes = 1", "[[stages]]", 'spec = "sqrl/no_fall"',
                      "env_kwargs = { random_goal = true }", "frames = 64", "[[stages]]",
                      'spec = "sqrl/no_fall"', "frames = 32", ""])
    path = folder / "tiny.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("setting, value, name", [("eps_safe", 1.0, "eps_safe"),
                                                  ("eps_safe", 0, "eps_safe"),
                                                  ("gamma_safe", 1.0, "gamma_safe"),
                                                  ("safety_loss", '"hinge"', "safety_loss")])
def test_bad_settings_exit_2_naming_the_parameter(tmp_path: Path, capsys, setting: str,
                                                  value: object, name: str) -> None:
    path = write_experiment(tmp_path, **{setting: value})
    code = main(["curriculum", str(path), "--run-dir", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and name in err and "Traceback" not in err
    assert "tiny.toml:" in err


def test_a_spec_the_labeler_cannot_label_exits_2(tmp_path: Path, capsys) -> None:
    path = write_experiment(tmp_path)
    path.write_text(path.read_text().replace('spec = "sqrl/no_fall"\nframes = 32',
                                             'spec = "G !creeper"\nframes = 32'))
    code = main(["curriculum", str(path), "--run-dir", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "creeper" in err and "Traceback" not in err


def test_two_stages_are_required() -> None:
    with pytest.raises(ValueError, match="two stages"):
        SQRLConfig(stages=[DeepStage(ENV, {}, "sqrl/no_fall", 10)])


@pytest.mark.parametrize("env, labeler, message", [
    ("safeguards/Minecraft-L1-v0", None, "1-D Box observation space"),
    ("CartPole-v1", "safeguards.envs.spider:SpiderLabeler", "continuous filter needs a Box action "
                                                            "space, not Discrete(2)")])
def test_an_environment_sqrl_cannot_train_on_exits_2(tmp_path: Path, capsys, env: str,
                                                      labeler: str | None,
                                                      message: str) -> None:
    path = write_experiment(tmp_path, **({"labeler": f'"{labeler}"'} if labeler else {}))
    text = path.read_text().replace(f'env = "{ENV}"', f'env = "{env}"')
    path.write_text(text.replace("sqrl/no_fall", "G !lava").replace(
        "env_kwargs = { random_goal = true }\n", ""))
    code = main(["curriculum", str(path), "--run-dir", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "tiny.toml:2: error" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()


def test_the_masked_target_does_not_count_as_acting() -> None:
    model = agent(mask_from=10_000, critic_next_action="masked", safe_buffer_size=40,
                  train_sc_interval=20, train_sc_steps=2)
    model.learn(60)
    assert model.filter is not None and model.filter.stats.calls == 0
