"""Smoke test of the benchmark scripts: their ``--quick`` mode runs and writes well-formed results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
