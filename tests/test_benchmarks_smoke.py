"""Smoke test of the benchmark scripts: their ``--quick`` mode runs and writes well-formed results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script: str, out_dir: Path, *extra: str) -> None:
    subprocess.run([sys.executable, str(BENCH / script), "--quick", "--out-dir", str(out_dir),
                    *extra], check=True, timeout=300, capture_output=True, text=True)


def test_bench_compile_quick(tmp_path: Path) -> None:
    _run("bench_compile.py", tmp_path, "--ltlf2dfa-python", "none")
    data = json.loads((tmp_path / "compile_quick.json").read_text())
    assert (tmp_path / "compile_quick.md").read_text().startswith("# Compile-time benchmark")
    assert {"benchmark", "quick", "meta", "config", "competitors", "targets", "groups",
            "spec_files", "formulas", "n_formulas"} <= data.keys()
    assert data["benchmark"] == "compile" and data["quick"] is True
    assert data["competitors"]["ltlf2dfa"]["available"] is False
    for semantics in ("finite", "infinite"):
        assert {"n_formulas", "native_median_ms", "median_ratio_native_over_spot",
                "met"} <= data["targets"][semantics].keys()
        assert data["groups"][semantics]
        for group in data["groups"][semantics]:
            assert {"group", "n_formulas", "native_ms"} <= group.keys()
            assert {"n", "median", "p95", "max"} <= group["native_ms"].keys()
    assert data["n_formulas"]["finite"] > 0 and data["n_formulas"]["infinite"] > 0
    assert len(data["spec_files"]) >= 1
    assert all(r["error"] is None for r in data["spec_files"])
    for item in data["formulas"]:
        assert item["results"]["native"]["error"] is None, item
        assert item["results"]["native"]["seconds"] > 0
        assert item["results"]["native"]["states"] >= 1
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_bench_step_quick(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    _run("bench_step.py", tmp_path)
    data = json.loads((tmp_path / "step_quick.json").read_text())
    assert (tmp_path / "step_quick.md").read_text().startswith("# Stepping benchmark")
    assert {"benchmark", "quick", "meta", "config", "targets", "specs", "wide",
            "letter_growth"} <= data.keys()
    assert data["benchmark"] == "step" and data["quick"] is True
    names = [s["name"] for s in data["specs"]]
    assert "minecraft_safeguard3" in names and "three_rules" in names
    for spec in data["specs"]:
        for key in ("step_letter", "step_frozenset", "step_set", "step_batch_4096"):
            assert spec[key]["median_per_s"] > 0
        assert {"n_states", "n_letters", "compile_ms_median", "peak_traced_mib"} <= spec.keys()
    for key in ("step_letter", "step_frozenset", "step_set", "step_batch_4096",
                "letters_32_props"):
        assert "met" in data["targets"][key]
    assert all(w["n_props"] == 32 and w["n_letters"] < 2 ** 16 for w in data["wide"])
    assert [g["n_letters"] for g in data["letter_growth"]]


def test_bench_wrapper_quick(tmp_path: Path) -> None:
    pytest.importorskip("gymnasium")
    _run("bench_wrapper.py", tmp_path)
    data = json.loads((tmp_path / "wrapper_quick.json").read_text())
    assert (tmp_path / "wrapper_quick.md").read_text().startswith("# Wrapper benchmark")
    assert {"benchmark", "quick", "meta", "config", "targets", "single", "vector",
            "spec_texts"} <= data.keys()
    assert data["benchmark"] == "wrapper" and data["quick"] is True
    rows = {(r["name"], r["spec"]) for r in data["single"]}
    assert {("trivial", "G !lava"), ("trivial", "3 rules")} <= rows
    for row in data["single"]:
        for clock in ("cpu", "wall"):
            assert row[clock]["raw_us_per_step"] > 0 and row[clock]["wrapped_us_per_step"] > 0
            assert row[clock]["ratio"]["n"] == data["config"]["single_reps"]
            assert "overhead_pct" in row[clock] and "overhead_us_per_step" in row[clock]
    for spec in ("G !lava", "3 rules"):
        assert [r["n_envs"] for r in data["vector"] if r["spec"] == spec] == [1, 8, 64]
    for row in data["vector"]:
        assert row["env_steps"] == row["n_envs"] * row["vector_steps"]
        for clock in ("cpu", "wall"):
            assert row[clock]["raw_us_per_env_step"] > 0
            assert {"vector_cost_us_per_env_step", "singles_cost_us_per_env_step",
                    "vector_cost"} <= row[clock].keys()
    for key in ("minigrid_overhead_pct", "vector_us_per_env_step_64"):
        assert {"goal", "measured", "measured_wall", "met"} <= data["targets"][key].keys()
    assert set(data["targets"]["vector_us_per_env_step_64"]["measured"]) == {"G !lava",
                                                                          "3 rules"}
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries
