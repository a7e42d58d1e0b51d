"""Smoke test: the examples run and print what the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                            capture_output=True, text=True, check=True, timeout=120)
    assert "minecraft_safeguard3: 6 states" in result.stdout
    assert "violated: safeguard3" in result.stdout
