"""``safeguards train`` / ``safeguards curriculum``: runs, experiment-file errors, resuming.

Everything is small (tens of short episodes) and seeded.  The resume test kills a real
``safeguards curriculum`` subprocess with SIGKILL after its first checkpoints and checks that
``--resume`` ends with the metrics and results of an uninterrupted run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("minigrid")

import gymnasium as gym  # noqa: E402
from gymnasium import spaces  # noqa: E402

from safeguards.cli import main  # noqa: E402
from safeguards.labels import PropositionLabeler, proposition  # noqa: E402

pytestmark = pytest.mark.slow

MINECRAFT = "safeguards/Minecraft-L1-v0"
CORRIDOR = "sgtest/Corridor-v0"


# -- a tiny registered environment of our own -----------------------------------------------------

class CorridorLabeler(PropositionLabeler):
    @proposition
    def lava(self, obs, info, action) -> bool:
        "the agent is in cell 0"
        return int(obs) == 0

    @proposition
    def goal(self, obs, info, action) -> bool:
        "the agent is in the last cell"
        return int(obs) == 4


class CorridorEnv(gym.Env):
    """Five cells, start in the middle; 0 = left, 1 = right.  Cell 0 is lava."""

    labeler = CorridorLabeler
    observation_space = spaces.Discrete(5)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cell = 2
        return self.cell, {}

    def step(self, action):
        move = -1 if int(action) == 0 else 1
        if self.np_random.random() < 0.1:
            move = -move
        self.cell = min(4, max(0, self.cell + move))
        return self.cell, 0.0, False, False, {}


if CORRIDOR not in gym.registry:
    gym.register(CORRIDOR, entry_point=CorridorEnv)


# -- helpers ------------------------------------------------------------------------------------

def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def rows(run_dir):
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def result(run_dir):
    data = json.loads((Path(run_dir) / "result.json").read_text())
    data.pop("wall_seconds")
    return data


TINY = """\
name = "tiny"
seeds = [0, 1]
env = "safeguards/Minecraft-L1-v0"

[train]
max_steps = 40
checkpoint_every = 5

[test]
episodes = 5
spec = "minecraft/safeguard1"

[[stages]]
spec = "minecraft/safeguard0"
episodes = 8

[[stages]]
spec = "minecraft/safeguard1"
episodes = 6

[methods.paper]
transfer = "paper"

[methods.zero_shot]
baseline = "scratch"
"""


def write(tmp_path, text, name="cfg.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- train --------------------------------------------------------------------------------------

def test_train_one_stage(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", "--env", MINECRAFT, "--spec", "minecraft/safeguard1",
                         "--episodes", 30, "--max-steps", 60, "--test-episodes", 5,
                         "--seed", 3, "--run-dir", run_dir, "--no-progress")
    assert code == 0, err
    metrics = rows(run_dir)
    assert len(metrics) == 30
    assert {r["stage"] for r in metrics} == {0}
    assert [r["episode"] for r in metrics] == list(range(30))
    assert {r["method"] for r in metrics} == {"paper"} and {r["seed"] for r in metrics} == {3}
    for key in ("return", "length", "violated", "violation_step", "violated_rules", "value_s0"):
        assert key in metrics[0]
    assert all(r["length"] <= 60 for r in metrics)
    res = result(run_dir)
    assert res["episodes"] == 30 and res["test"]["episodes"] == 5
    assert (run_dir / "metrics.csv").read_text().startswith("method,seed,stage")
    assert "| paper | 1 |" in out  # the summary table
    assert "Traceback" not in err

    # the same seed gives the same run
    again = tmp_path / "again"
    code, _, err = run(capsys, "train", "--env", MINECRAFT, "--spec", "minecraft/safeguard1",
                       "--episodes", 30, "--max-steps", 60, "--test-episodes", 5,
                       "--seed", 3, "--run-dir", again, "--no-progress")
    assert code == 0, err
    assert rows(again) == metrics


def test_train_occupied_run_dir_needs_resume(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "--env", MINECRAFT, "--spec", "minecraft/safeguard0", "--episodes", 6,
            "--max-steps", 30, "--test-episodes", 2, "--run-dir", run_dir, "--no-progress"]
    assert run(capsys, *args)[0] == 0
    before = (run_dir / "metrics.jsonl").read_text()
    code, out, err = run(capsys, *args)
    assert code == 2
    assert "already holds a run" in err and "--resume" in err and "Traceback" not in err
    code, out, err = run(capsys, *args, "--resume")  # finished: only tested again
    assert code == 0, err
    assert (run_dir / "metrics.jsonl").read_text() == before


def test_train_baseline_and_own_env(tmp_path, capsys):
    run_dir = tmp_path / "corridor"
    code, out, err = run(capsys, "train", "--env", CORRIDOR, "--spec", "G !lava",
                         "--episodes", 20, "--max-steps", 15, "--test-episodes", 3,
                         "--baseline", "intrinsic_fear", "--run-dir", run_dir, "--no-progress")
    assert code == 0, err
    assert {r["method"] for r in rows(run_dir)} == {"intrinsic_fear"}
    assert "| intrinsic_fear | 1 |" in out


@pytest.mark.parametrize("argv, message, hint", [
    (["--env", "safeguards/Minecraft-L9-v0", "--spec", "minecraft/safeguard0"],
     "unknown environment id `safeguards/Minecraft-L9-v0`", "did you mean"),
    (["--env", MINECRAFT, "--spec", "minecraft/safegard0"],
     "spec file `minecraft/safegard0` does not exist", "did you mean `minecraft/safeguard0`?"),
    (["--env", MINECRAFT, "--spec", "G !(creeper"], "does not compile", "expected `)`"),
    (["--env", MINECRAFT, "--spec", "G !lava"], "never emits", "basalt_lava"),
    (["--env", MINECRAFT, "--spec", "G !creeper", "--env-kwargs", '{"layout": 9}'],
     "cannot make environment", "layout"),
    (["--env", MINECRAFT, "--spec", "G !creeper", "--env-kwargs", "[1]"],
     "--env-kwargs must be a JSON object", None),
    (["--env", MINECRAFT, "--spec", "G !creeper", "--episodes", "-3"],
     "expected a number >= 0", None),
])
def test_train_bad_input(tmp_path, capsys, argv, message, hint):
    if "--episodes" not in argv:
        argv = [*argv, "--episodes", "2"]
    code, out, err = run(capsys, "train", *argv, "--run-dir", tmp_path / "r", "--no-progress")
    assert code == 2
    assert message in err
    if hint:
        assert hint in err
    assert "Traceback" not in err
    assert not (tmp_path / "r" / "metrics.jsonl").exists()


# -- curriculum ---------------------------------------------------------------------------------

def test_curriculum_runs_every_method_and_seed(tmp_path, capsys):
    cfg = write(tmp_path, TINY)
    root = tmp_path / "runs"
    code, out, err = run(capsys, "curriculum", cfg, "--run-dir", root, "--no-progress")
    assert code == 0, err
    for method in ("paper", "zero_shot"):
        for seed in (0, 1):
            run_dir = root / method / f"seed{seed}"
            metrics = rows(run_dir)
            assert len(metrics) == 14
            assert {r["seed"] for r in metrics} == {seed}
            assert result(run_dir)["test"]["episodes"] == 5
    paper = rows(root / "paper" / "seed0")
    assert [r["stage"] for r in paper] == [0] * 8 + [1] * 6
    assert {r["stage"] for r in rows(root / "zero_shot" / "seed0")} == {0}  # one long stage
    assert json.loads((root / "experiment.json").read_text())["methods"] == ["paper",
                                                                            "zero_shot"]
    assert out.startswith("| method | seeds | violations S1 (safeguard0) | violations S2 "
                          "(safeguard1) |")
    assert "| paper | 2 |" in out and "| zero_shot | 2 |" in out
    assert (root / "summary.md").read_text() == out
    assert "[4/4] zero_shot seed 1" in err


def test_curriculum_subsets_check_and_shipped(tmp_path, capsys):
    cfg = write(tmp_path, TINY)
    root = tmp_path / "runs"
    code, out, err = run(capsys, "curriculum", cfg, "--run-dir", root, "--seeds", "4-5",
                         "--methods", "zero_shot", "--no-progress")
    assert code == 0, err
    assert sorted(p.name for p in (root / "zero_shot").iterdir()) == ["seed4", "seed5"]
    assert not (root / "paper").exists()
    code, out, err = run(capsys, "curriculum", cfg, "--methods", "zeroshot")
    assert code == 2 and "did you mean `zero_shot`?" in err
    code, out, err = run(capsys, "curriculum", cfg, "--seeds", "a,b")
    assert code == 2 and "--seeds" in err
    code, out, err = run(capsys, "curriculum", cfg, "--seeds", "0-1000000000")
    assert code == 2 and "--seeds: 1,000,000,001 seeds; at most 10,000 are run at once" in err
    for name in ("minecraft", "minecraft_quick"):  # the shipped experiments are valid
        code, out, err = run(capsys, "curriculum", name, "--check")
        assert code == 0, err
        assert "paper" in out and "zero_shot" in out and "intrinsic_fear" in out
    code, out, err = run(capsys, "curriculum", "minecraft", "--check")
    assert "4 stages, 5000 episodes per run" in out
    assert "no_safeguard     seed 2" in out


def test_paper_experiment_matches_the_paper():
    from safeguards.experiment import find_experiment, load_experiment

    experiment = load_experiment(find_experiment("minecraft"))
    assert [(s.env_id, s.spec, s.episodes) for s in experiment.stages] == [
        (MINECRAFT, f"minecraft/safeguard{k}", n) for k, n in enumerate((1666, 1666, 1666, 2))]
    config = experiment.config("paper", 0)
    assert (config.alpha, config.gamma, config.epsilon, config.max_steps) == (0.9, 0.9, 0.1, 1000)
    assert (config.test_spec, config.test_episodes, config.transfer) == \
        ("minecraft/safeguard3", 100, "paper")
    baselines = {m.name: m.options.get("baseline") for m in experiment.methods}
    assert baselines["zero_shot"] == "scratch"
    assert baselines["no_safeguard"] == "no_safeguard"
    assert baselines["intrinsic_fear"] == "intrinsic_fear"


def test_curriculum_parallel_jobs_match_sequential(tmp_path, capsys):
    cfg = write(tmp_path, TINY)
    seq, par = tmp_path / "seq", tmp_path / "par"
    assert run(capsys, "curriculum", cfg, "--run-dir", seq, "--no-progress")[0] == 0
    code, out, err = run(capsys, "curriculum", cfg, "--run-dir", par, "--jobs", 2)
    assert code == 0, err
    for method in ("paper", "zero_shot"):
        for seed in (0, 1):
            a, b = seq / method / f"seed{seed}", par / method / f"seed{seed}"
            assert rows(a) == rows(b)
            assert result(a) == result(b)


def test_relative_spec_paths_and_own_env(tmp_path, capsys, monkeypatch):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "no_lava.sg").write_text(
        'spec no_lava\nprops:\n    lava\n    goal\nrule safe: ltl G !lava\n', encoding="utf-8")
    cfg = write(tmp_path, f"""\
        seeds = 1
        env = "{CORRIDOR}"
        methods = ["warm", "no_safeguard"]
        [train]
        max_steps = 12
        [test]
        episodes = 2
        [[stages]]
        spec = "specs/no_lava.sg"
        episodes = 5
        [[stages]]
        spec = "G (!lava & (goal -> X !lava))"
        episodes = 5
        """)
    root = tmp_path / "out"
    monkeypatch.chdir(tmp_path.parent)  # the spec path is relative to the file, not the cwd
    code, out, err = run(capsys, "curriculum", cfg, "--run-dir", root, "--no-progress")
    assert code == 0, err
    config = json.loads((root / "warm" / "seed0" / "config.json").read_text())
    assert config["stages"][0]["spec"] == str((specs / "no_lava.sg").resolve())
    assert "| warm | 1 |" in out and "| no_safeguard | 1 |" in out


# -- experiment-file errors -----------------------------------------------------------------------

STAGE = '[[stages]]\nenv = "safeguards/Minecraft-L1-v0"\nspec = "minecraft/safeguard0"\n' \
        'episodes = 5\n'

BAD_CONFIGS = [
    # (text, line, message, hint)
    ('seed = [0]\n' + STAGE, 1, "unknown key `seed` in the experiment", "did you mean `seeds`?"),
    (STAGE + 'episods = 3\n', 5, "unknown key `episods` in stage 1",
     "did you mean `episodes`?"),
    (STAGE + STAGE.replace("episodes = 5", 'episodes = "5"'), 8,
     "`episodes` must be an integer, not the string \"5\"", "without quotes"),
    ('seeds = [0]\n[train]\nalpha = 2\n' + STAGE, 3, "`alpha` must be in (0, 1]", None),
    ('seeds = [0]\n[train]\nupdate = "paperr"\n' + STAGE, 3, "`update` must be one of",
     "did you mean `paper`?"),
    (STAGE + '[methods.mine]\ntransfer = "semantc"\n', 6, "`transfer` must be one of",
     "did you mean `semantic`?"),
    (STAGE + '[methods.mine]\nepsilon = 0.2\n', 5, "[methods.mine] needs `transfer` or "
     "`baseline`", 'transfer = "paper"'),
    ('methods = ["paper", "scrach"]\n' + STAGE, 1, "unknown method `scrach`",
     "did you mean `scratch`?"),
    ('seeds = [0, 1]\n[test]\nepisodes = 3\n', None, "the experiment has no stages",
     "[[stages]]"),
    (STAGE.replace("Minecraft-L1-v0", "Minecraft-L7-v0"), 2,
     "unknown environment id `safeguards/Minecraft-L7-v0`", "did you mean"),
    (STAGE.replace("minecraft/safeguard0", "specs/nothing_here.sg"), 3,
     "spec file `specs/nothing_here.sg` does not exist", None),
    (STAGE.replace("minecraft/safeguard0", "G (creeper"), 3, "spec `G (creeper` does not compile",
     "expected `)`"),
    (STAGE + STAGE.replace("minecraft/safeguard0", "G !lava"), 7,
     "spec `G !lava` does not fit environment", "basalt_lava"),
    (STAGE + '[test]\nspec = "minecraft/safeguard9"\n', 6,
     "spec file `minecraft/safeguard9` does not exist", "did you mean"),
    ('seeds = [0\n' + STAGE, 2, "invalid TOML", "toml.io"),
    ('imports = ["no_such_module_xyz"]\n' + STAGE, 1, "cannot import `no_such_module_xyz`",
     None),
    (STAGE.replace("episodes = 5", "episodes = 0"), 1, "every stage has 0 episodes", None),
    ('seeds = 1000000000\n' + STAGE, 1, "`seeds` as a count must be in [1, 10,000]", None),
    ('seeds = [0, 4294967296]\n' + STAGE, 1, "`seeds[1]` must be in [0, 4.29497e+09]", None),
    ('seeds = ' + "9" * 5000 + '\n' + STAGE, 1, "a number with 5,000 digits", None),
    ('x = ' + "{a = " * 500 + "1" + "}" * 500 + '\n' + STAGE, 1,
     "values nest more than 100 levels deep", None),
    (STAGE + 'env_kwargs = {a = ' + "[" * 500 + "]" * 500 + '}\n', 5,
     "values nest more than 100 levels deep", None),
    ('name = "quick\\n"\n' + STAGE, 1, "`name` must be usable as a directory name", None),
]


@pytest.mark.parametrize("text, line, message, hint", BAD_CONFIGS)
def test_bad_experiment_files(tmp_path, capsys, text, line, message, hint):
    cfg = write(tmp_path, text, "exp.toml")
    code, out, err = run(capsys, "curriculum", cfg, "--run-dir", tmp_path / "r")
    assert code == 2, err
    where = f"{cfg}:{line}: error: " if line is not None else f"{cfg}: error: "
    first = err.splitlines()[0]
    assert first.startswith(where), err
    assert message in err
    if hint:
        assert hint in err
        if hint.startswith("did you mean"):
            assert "\nhint: did you mean" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_several_problems_are_reported_in_line_order(tmp_path, capsys):
    cfg = write(tmp_path, 'seeds = [0]\n[train]\nepsilon = 1.5\nmax_step = 3\n' + STAGE +
                'episods = 1\n')
    code, out, err = run(capsys, "curriculum", cfg)
    assert code == 2
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert [int(line.split(":")[1]) for line in lines] == [3, 4, 9]


def test_missing_experiment_file(tmp_path, capsys):
    code, out, err = run(capsys, "curriculum", "minecraft_quik")
    assert code == 2 and "does not exist" in err and "did you mean `minecraft_quick`?" in err


def test_yaml_experiment(tmp_path, capsys):
    pytest.importorskip("yaml")
    cfg = write(tmp_path, """\
        seeds: [0]
        env: safeguards/Minecraft-L1-v0
        train: {max_steps: 20}
        test: {episodes: 2}
        stages:
          - spec: minecraft/safeguard0
            episodes: 3
          - spec: minecraft/safeguard1
            episodez: 3
        """, "exp.yaml")
    code, out, err = run(capsys, "curriculum", cfg, "--run-dir", tmp_path / "r")
    assert code == 2
    assert err.startswith(f"{cfg}:8: error: stage 2 has no `episodes`")
    assert f"{cfg}:9: error: unknown key `episodez` in stage 2" in err
    assert "hint: did you mean `episodes`?" in err
    cfg.write_text(cfg.read_text().replace("episodez", "episodes"))
    code, out, err = run(capsys, "curriculum", cfg, "--run-dir", tmp_path / "r", "--no-progress")
    assert code == 0, err
    assert len(rows(tmp_path / "r" / "paper" / "seed0")) == 6


# -- resume after a kill ------------------------------------------------------------------------

RESUME = """\
name = "resume"
seeds = [0]
env = "safeguards/Minecraft-L1-v0"
methods = ["paper"]

[train]
max_steps = 80
checkpoint_every = 10

[test]
episodes = 5

[[stages]]
spec = "minecraft/safeguard0"
episodes = 60

[[stages]]
spec = "minecraft/safeguard2"
episodes = 60
"""

# the CLI in a subprocess, slowed down (2 ms per logged episode) so that the kill lands mid-run
_SLOW_CLI = """\
import sys, time
import safeguards.runs as runs
_log = runs.RunDir.log
def slow_log(self, record):
    time.sleep(0.002)
    _log(self, record)
runs.RunDir.log = slow_log
from safeguards.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, capsys):
    cfg = write(tmp_path, RESUME)
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    run_dir = killed / "paper" / "seed0"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_CLI, "curriculum", str(cfg),
                             "--run-dir", str(killed), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:  # past the stage switch (episode 60) and a checkpoint after it (70)
            assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no checkpoint after 60 s"
            if (run_dir / "checkpoint.npz").exists() and (run_dir / "metrics.jsonl").exists():
                logged = (run_dir / "metrics.jsonl").read_text().count("\n")
                if logged >= 75:
                    break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "result.json").exists()
    checkpoint = json.loads((run_dir / "checkpoint.json").read_text())
    logged = len(rows(run_dir))
    assert 70 <= checkpoint["episode"] < 120 and logged < 120

    code, out, err = run(capsys, "curriculum", cfg, "--run-dir", killed)
    assert code == 2 and "--resume" in err  # an interrupted run is not overwritten
    code, out, err = run(capsys, "curriculum", cfg, "--run-dir", killed, "--resume",
                         "--no-progress")
    assert code == 0, err
    code, _, err = run(capsys, "curriculum", cfg, "--run-dir", reference, "--no-progress")
    assert code == 0, err

    ref_dir = reference / "paper" / "seed0"
    assert len(rows(run_dir)) == 120
    assert (run_dir / "metrics.jsonl").read_text() == (ref_dir / "metrics.jsonl").read_text()
    assert (run_dir / "metrics.csv").read_text() == (ref_dir / "metrics.csv").read_text()
    assert result(run_dir) == result(ref_dir)
