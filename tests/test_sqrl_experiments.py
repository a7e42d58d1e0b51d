"""Smoke runs of SQRL's shipped experiment files (``safeguards curriculum`` and ``report``) and
of its two benchmarks on their quick budgets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from safeguards.cli import main
from safeguards.experiment import find_experiment, load_experiment

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("name, methods, budget", [
    ("sqrl_spider", ["sqrl", "sqrl_code", "sac", "sac_lagrangian"], "9000 frames"),
    ("sqrl_spider_risk", ["eps_0.05", "eps_0.2"], "9000 frames"),
    ("sqrl_spider_temporal", ["product", "observation_only"], "9000 frames"),
    ("sqrl_spider_long", ["sqrl", "sac"], "40000 frames"),
    ("sqrl_spider_quick", ["sqrl", "sac", "sac_lagrangian"], "300 frames")])
def test_the_shipped_sqrl_experiments_parse(name: str, methods: list[str], budget: str) -> None:
    experiment = load_experiment(find_experiment(name))
    assert experiment.learner == "sqrl" and experiment.budget() == budget
    assert [m.name for m in experiment.methods] == methods


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("sqrl") / "runs"
    assert main(["curriculum", "sqrl_spider_quick", "--run-dir", str(runs),
                 "--no-progress"]) == 0
    return runs


def test_quick_experiment_runs_and_reports(quick_runs: Path, tmp_path: Path) -> None:
    for method in ("sqrl", "sac", "sac_lagrangian"):
        result = json.loads((quick_runs / method / "seed0" / "result.json").read_text())
        assert result["learner"] == "sqrl" and result["stage_frames"] == [200, 100]
    assert main(["report", str(quick_runs), "--output", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "summary.md").read_text().count("| sqrl") == 1


def test_bench_sqrl_spider_reads_the_runs(quick_runs: Path, tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(BENCH / "bench_sqrl_spider.py"), "--runs", str(quick_runs),
                    "--out-dir", str(tmp_path), "--pictures", str(tmp_path), "--episodes", "2"],
                   check=True, timeout=300, capture_output=True, text=True)
    data = json.loads((tmp_path / "sqrl_spider.json").read_text())
    assert set(data["summary"]) == {"sqrl", "sac", "sac_lagrangian"}
    assert {"fall_rate_at_most_1pct", "return_within_10pct_of_sac"} <= data["targets"].keys()
    assert (tmp_path / "sqrl_spider_paths.png").stat().st_size > 0
    assert (tmp_path / "sqrl_spider_curves.png").stat().st_size > 0


def test_bench_sqrl_quick(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(BENCH / "bench_sqrl.py"), "--quick", "--out-dir",
                    str(tmp_path)], check=True, timeout=300, capture_output=True, text=True)
    data = json.loads((tmp_path / "sqrl_quick.json").read_text())
    assert set(data["median_ratio_to_sac_cpu"]) == {"sac", "sqrl_pretrain", "sqrl_finetune"}
    assert data["filter_latency_ms"]["fallback_6_rounds_rounds"] == 6.0
    assert (tmp_path / "sqrl_quick.md").read_text().startswith("# SQRL against SAC")
