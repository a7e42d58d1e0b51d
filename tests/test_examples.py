"""Smoke test: the examples run and print what the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                            capture_output=True, text=True, check=True, timeout=120)
    assert "minecraft_safeguard3: 6 states" in result.stdout
    assert "violated: safeguard3" in result.stdout


def test_wrap_minigrid_runs() -> None:
    pytest.importorskip("minigrid")
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "wrap_minigrid.py"),
                             "--episodes", "3", "--seed", "0"],
                            capture_output=True, text=True, check=True, timeout=120)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("MiniGrid-LavaGapS5-v0 x <Safeguard 'lava_gap'")
    assert lines[1].split() == ["episode", "steps", "return", "violations", "cost", "rules"]
    assert [line.split()[0] for line in lines[2:5]] == ["0", "1", "2"]
    assert lines[-1].startswith("total: 3 episodes, ") and " cost " in lines[-1]
