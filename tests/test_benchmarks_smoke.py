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


FAKE_AUTHORS_SCRIPT = '''\
# Stands in for the authors' minecraft.py: the same globals, the same lines the benchmark edits.
import random
import numpy as np
number_of_episodes = 5000
DFA = DFA2 = DFA3 = DFA4 = object()
DFAs = [DFA, DFA2, DFA3, DFA4]
safety_violation_counter = np.zeros((1, number_of_episodes))
q_at_initial_state = []
for episode in range(number_of_episodes):
    DFA_indx = int(episode/1666)
    safety_violation_counter[0][episode] = random.random() < 0.2 * (DFA_indx + 1)
    q_at_initial_state.append(random.random())
print("episode:", episode)
number_of_tests = 100
successes_in_test = random.randint(0, number_of_tests)
number_of_safety_violations = number_of_tests - successes_in_test
number_of_metalearning = 0
'''


def test_bench_authors_fake_code(tmp_path: Path) -> None:
    """Against a stand-in for the authors' checkout (the real one is not needed), 34 episodes."""
    pytest.importorskip("matplotlib")
    authors = tmp_path / "safeguardedRL"
    authors.mkdir()
    (authors / "minecraft.py").write_text(FAKE_AUTHORS_SCRIPT)
    for _ in range(2):  # the second call finds every run recorded and only rewrites the tables
        subprocess.run([sys.executable, str(BENCH / "bench_authors.py"), "--authors-code",
                        str(authors), "--episodes", "34", "--seeds", "0-1", "--jobs", "1",
                        "--out-dir", str(tmp_path), "--name", "q"],
                       check=True, timeout=300, capture_output=True, text=True)
    data = json.loads((tmp_path / "q.json").read_text())
    assert (tmp_path / "q.md").read_text().startswith("# The authors' minecraft.py beside ours")
    assert len((tmp_path / "q_runs.jsonl").read_text().splitlines()) == len(data["runs"]) == 12
    groups = {(g["code"], g["method"]): g for g in data["summary"]["groups"]}
    assert set(groups) == {("authors", "progressive"), ("authors", "zero_shot"),
                           ("ours", "paper_exact"), ("ours", "paper"), ("ours", "zero_shot"),
                           ("ours", "zero_shot_exact")}
    assert groups["authors", "progressive"]["stage_episodes"] == [11, 11, 11, 1]
    assert groups["ours", "paper"]["stage_episodes"] == [11, 11, 11, 1]
    assert groups["authors", "zero_shot"]["stage_episodes"] == [34]
    assert groups["ours", "zero_shot_exact"]["stage_episodes"] == [34]
    assert len(data["summary"]["tests"]) == 7 * 4
    assert all(r["cpu_seconds"] >= 0 and 0 <= r["test_success"] <= 1 for r in data["runs"])


def test_mann_whitney_u_matches_scipy() -> None:
    """Values of ``scipy.stats.mannwhitneyu(x, y)`` (two-sided, default method)."""
    sys.path.insert(0, str(BENCH))
    from bench_authors import mann_whitney_u

    cases = [([1, 2, 3], [4, 5, 6], 0.0, 0.1),
             ([19, 22, 16, 29, 24], [20, 11, 17, 12], 17.0, 0.1111111111111111),
             ([19, 22, 16, 29, 24, 30, 31, 33, 35], [20, 11, 17, 12, 13, 14, 15, 18, 21],
              75.0, 0.0026797144168214833),
             ([1, 1, 2, 3, 3, 5, 7, 7, 7, 9], [2, 2, 4, 4, 4, 6, 8, 8, 10, 10],
              36.0, 0.3045625064971472),
             ([3, 1, 4, 1, 5], [9, 2, 6, 5, 3, 5, 8, 9, 7], 6.5, 0.03727402473815797)]
    for x, y, u, p in cases:
        assert mann_whitney_u(x, y) == pytest.approx((u, p), rel=1e-9)
    assert mann_whitney_u([1, 1], [1, 1])[1] != mann_whitney_u([1, 1], [1, 1])[1]  # NaN: all tied


def test_bench_hostile_quick(tmp_path: Path) -> None:
    _run("bench_hostile.py", tmp_path, "--budget", "5")
    data = json.loads((tmp_path / "hostile_quick.json").read_text())
    assert (tmp_path / "hostile_quick.md").read_text().startswith("# Hostile-input benchmark")
    assert {r["input"] for r in data["cases"]} == {"spec", "trace", "config"}
    assert all(r["outcome"] in ("result", "error") for r in data["cases"])


def test_bench_scale_quick(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    _run("bench_scale.py", tmp_path)
    data = json.loads((tmp_path / "scale_quick.json").read_text())
    assert (tmp_path / "scale_quick.md").read_text().startswith("# Scale-out benchmark")
    assert data["scaling"]["metrics_identical"] and data["two_nodes"]["metrics_identical"]
    assert data["two_nodes"]["nodes"] == 2


def test_bench_rllib_quick(tmp_path: Path) -> None:
    pytest.importorskip("ray.rllib")
    pytest.importorskip("vizdoom")
    _run("bench_rllib.py", tmp_path)
    data = json.loads((tmp_path / "rllib_quick.json").read_text())
    assert (tmp_path / "rllib_quick.md").read_text().startswith("# RLlib against")
    assert set(data["median_steps_per_s"]) == {"sb3", "rllib_0", "rllib_1", "rllib_2"}
    assert all(run["frames"] >= 256 and run["steps_per_s"] > 0 for run in data["runs"])
