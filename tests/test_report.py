"""``safeguards report`` and :mod:`safeguards.report` on synthetic run directories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from safeguards import report
from safeguards.cli import main

STAGES = [{"env_id": "x", "env_kwargs": {}, "spec": "minecraft/safeguard0", "episodes": 4},
          {"env_id": "x", "env_kwargs": {}, "spec": "/abs/path/safeguard1.sg", "episodes": 2}]


def make_run(folder: Path, method: str, seed: int, violated, values, *, stages=None,
             final=None, test=None, finished=True):
    """A run directory as safeguards.runs writes it."""
    folder.mkdir(parents=True)
    stage_of = stages or [0] * len(violated)
    lines = []
    for e, (v, value) in enumerate(zip(violated, values)):
        row = {"method": method, "seed": seed, "stage": stage_of[e], "episode": e,
               "return": 0.0, "length": 10, "violated": bool(v),
               "violation_step": 9 if v else None, "violated_rules": ["r"] if v else [],
               "value_s0": value}
        if final is not None:
            row["violated_final"] = bool(final[e])
        lines.append(json.dumps(row))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "config.json").write_text(json.dumps({"method": method, "seed": seed,
                                                    "stages": STAGES}))
    if finished:
        (folder / "result.json").write_text(json.dumps({"method": method, "seed": seed,
                                                        "test": test}))


@pytest.fixture
def runs_root(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "paper" / "seed0", "paper", 0, [1, 0, 1, 0, 1, 0],
             [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], stages=[0, 0, 0, 0, 1, 1],
             final=[1, 1, 1, 0, 0, 0],
             test={"episodes": 10, "successes": 9, "violations": 1, "success_rate": 0.9,
                   "violation_rate": 0.1, "meta_learning_queries": 3})
    make_run(root / "paper" / "seed1", "paper", 1, [1, 1, 1, 1, 0, 0],
             [0.0, 0.2, 0.4, 0.6, 0.6, 0.7], stages=[0, 0, 0, 0, 1, 1],
             final=[1, 1, 1, 1, 1, 0],
             test={"episodes": 10, "successes": 7, "violations": 3, "success_rate": 0.7,
                   "violation_rate": 0.3, "meta_learning_queries": 5})
    # a baseline: one long stage, split at the curriculum's boundaries (4 | 2 episodes)
    make_run(root / "zero_shot" / "seed0", "zero_shot", 0, [0, 0, 1, 0, 1, 1],
             [0.0, 0.05, 0.1, 0.15, 0.2, 0.25],
             test={"episodes": 10, "successes": 10, "violations": 0, "success_rate": 1.0,
                   "violation_rate": 0.0, "meta_learning_queries": 0})
    make_run(root / "zero_shot" / "seed1", "zero_shot", 1, [1, 0, 0, 0, 1],
             [0.0, 0.2, 0.4, 0.6, 0.75], finished=False)
    return root


HEADER = ("| method | seeds | violations S1 (safeguard0) | violations S2 (safeguard1) | "
          "violations total | final-spec violations | test success % | test violation % | "
          "meta-learning queries | value at s0 (final) |")
PAPER = ("| paper | 2 | 3.0 ± 1.0 | 0.5 ± 0.5 | 3.5 ± 0.5 | 4.0 ± 1.0 | 80.0 ± 10.0 | "
         "20.0 ± 10.0 | 4.0 ± 1.0 | 0.600 ± 0.100 |")
ZERO_SHOT = ("| zero_shot | 2 | 1.0 ± 0.0 | 1.5 ± 0.5 | 2.5 ± 0.5 | 2.5 ± 0.5 | 100.0 ± 0.0 | "
             "0.0 ± 0.0 | 0.0 ± 0.0 | 0.500 ± 0.250 |")


def test_summary_numbers(runs_root):
    runs = report.load_runs([runs_root])
    assert [(r.method, r.seed) for r in runs] == [("paper", 0), ("paper", 1), ("zero_shot", 0),
                                                  ("zero_shot", 1)]
    assert runs[2].stage_violations() == [1, 2]  # split at the configured boundaries
    assert runs[3].stage_violations() == [1, 1]
    text = report.summary_markdown(report.summarize(runs))
    lines = text.splitlines()
    assert lines[0] == HEADER
    assert lines[1] == "|" + "---|" * 10
    assert lines[2] == PAPER
    assert lines[3] == ZERO_SHOT
    assert lines[5] == "Unfinished runs (no test yet): zero_shot seed 1 (5 episodes)."


def test_summary_json(runs_root):
    rows = report.summary_json(report.summarize(report.load_runs([runs_root])))
    paper = rows[0]
    assert paper["method"] == "paper" and paper["seeds"] == [0, 1]
    assert paper["stage_violations"] == [[3.0, 1.0], [0.5, 0.5]]
    assert paper["test_success_percent"] == pytest.approx([80.0, 10.0])
    assert rows[1]["unfinished"] == [{"seed": 1, "episodes": 5}]


def test_method_order_from_experiment_json(runs_root):
    (runs_root / "experiment.json").write_text(json.dumps({"methods": ["zero_shot", "paper"]}))
    summaries = report.summarize(report.load_runs([runs_root]))
    assert [s.label for s in summaries] == ["zero_shot", "paper"]


def test_same_method_under_two_roots_gets_prefixed(tmp_path):
    for name in ("layout1", "layout2"):
        make_run(tmp_path / name / "paper" / "seed0", "paper", 0, [1, 0], [0.1, 0.2])
    runs = report.load_runs([tmp_path / "layout1", tmp_path / "layout2"])
    assert [r.label for r in runs] == ["layout1/paper", "layout2/paper"]


def test_task_returns_prefer_the_task_reward():
    rows = [{"episode": 0, "return": -1.0, "task_return": 0.5}, {"episode": 1, "return": 2.0}]
    run = report.Run(path=Path("r"), method="m", seed=0, rows=rows)
    assert run.task_returns().tolist() == [0.5, 2.0]


def test_moving_average_and_window():
    assert report.window_for(100) == 3 and report.window_for(10) == 1
    values = np.arange(10, dtype=float)
    smooth = report.moving_average(values, 3)
    assert smooth.tolist() == [0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert report.moving_average([], 5).size == 0


def test_write_report_files(runs_root, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    result = report.write_report([runs_root], out)
    for name in ("summary.md", "summary.json", *report.PLOTS):
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "summary.md").read_text() == result.markdown
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_cli_report(runs_root, capsys):
    pytest.importorskip("matplotlib")
    code = main(["report", str(runs_root)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert PAPER in out and ZERO_SHOT in out
    folder = runs_root / "report"
    assert (folder / "summary.md").read_text() == out
    assert (folder / "value_s0.png").is_file()
    assert "4 runs of 2 methods" in err
    # the report folder inside the run folder is not mistaken for a run
    assert main(["report", str(runs_root), "--no-plots", "-o", str(runs_root / "r2")]) == 0
    out, _ = capsys.readouterr()
    assert PAPER in out
    assert not (runs_root / "r2" / "value_s0.png").exists()


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "no such directory"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no runs found"),
])
def test_cli_report_bad_input(tmp_path, capsys, make, message):
    code = main(["report", str(make(tmp_path))])
    out, err = capsys.readouterr()
    assert code == 2
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("file, text, message", [
    ("result.json", '["not", "an", "object"]', "result.json: error: malformed (a JSON object"),
    ("result.json", '{"test": "x"}', "result.json: error: malformed `test`"),
    ("result.json", '{"test": {"episodes": 3, "success_rate": 7, "violation_rate": 0}}',
     "result.json: error: malformed `test`"),
    ("config.json", '{"stages": [{"episodes": "many"}]}', "config.json: error: malformed"),
    ("config.json", '{"seed": [1]}', "config.json: error: malformed"),
    ("result.json", '{"test": ', "result.json: error: cannot read"),
    ("metrics.jsonl", 'garbage\n', "metrics.jsonl:1: error:"),
])
def test_cli_report_on_damaged_run_files(runs_root, capsys, file, text, message):
    (runs_root / "paper" / "seed0" / file).write_text(text)
    code = main(["report", str(runs_root), "--no-plots", "-o", str(runs_root / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count(message) == 1, err


@pytest.mark.slow
def test_report_of_a_real_curriculum(tmp_path, capsys):
    pytest.importorskip("gymnasium")
    pytest.importorskip("minigrid")
    pytest.importorskip("matplotlib")
    config = tmp_path / "exp.toml"
    config.write_text('seeds = [0, 1]\nenv = "safeguards/Minecraft-L1-v0"\n'
                      'methods = ["paper", "scratch"]\n[train]\nmax_steps = 30\n'
                      '[test]\nepisodes = 3\n'
                      '[[stages]]\nspec = "minecraft/safeguard0"\nepisodes = 5\n'
                      '[[stages]]\nspec = "minecraft/safeguard3"\nepisodes = 5\n')
    root = tmp_path / "runs"
    assert main(["curriculum", str(config), "--run-dir", str(root), "--no-progress"]) == 0
    printed, _ = capsys.readouterr()
    assert main(["report", str(root), "-o", str(tmp_path / "rep")]) == 0
    out, _ = capsys.readouterr()
    assert out == printed  # the same table as the curriculum printed
    summaries = report.summarize(report.load_runs([root]))
    assert [s.label for s in summaries] == ["paper", "scratch"]
    from safeguards.runs import read_metrics

    for s in summaries:
        per_seed = [[sum(1 for r in read_metrics(root / s.label / f"seed{k}")
                         if r["violated"] and (r["episode"] < 5) == (stage == 0))
                     for stage in (0, 1)] for k in (0, 1)]
        for stage in (0, 1):
            values = [per_seed[0][stage], per_seed[1][stage]]
            assert s.stage_violations[stage] == pytest.approx((np.mean(values), np.std(values)))
