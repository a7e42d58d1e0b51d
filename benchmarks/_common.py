"""Helpers shared by the benchmark scripts: statistics, atomic result files, run metadata."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

_PIPE = re.compile(r"(?<!\\)\|")  # an unescaped | would end a table cell
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def median(values: Sequence[float]) -> float | None:
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    mid = len(data) // 2
    return data[mid] if len(data) % 2 else (data[mid - 1] + data[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), ``q`` in [0, 100]."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    pos = (len(data) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return data[low] + (data[high] - data[low]) * (pos - low)


def geomean(values: Iterable[float]) -> float | None:
    data = [v for v in values if v is not None and v > 0]
    if not data:
        return None
    return math.exp(sum(math.log(v) for v in data) / len(data))


def summary(values: Sequence[float | None]) -> dict[str, Any]:
    data = [v for v in values if v is not None]
    return {"n": len(data), "median": median(data), "p95": percentile(data, 95),
            "max": max(data) if data else None, "min": min(data) if data else None}


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10 ** -digits:
            return f"{value:.{digits}g}"
        return f"{value:,.{digits}f}"
    return str(value)


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 2) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    for row in rows:
        cells = (_PIPE.sub(r"\\|", fmt(cell, digits)) for cell in row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``safeguards.files.write_atomic``)."""
    from safeguards.files import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


def render_only(out_dir: Path, name: str, render: Any) -> tuple[Path, Path]:
    """Rewrite ``<name>.md`` from an existing ``<name>.json`` (after a change to the report)."""
    data = json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8"))
    md_path = out_dir / f"{name}.md"
    atomic_write(md_path, render(data).rstrip() + "\n")
    return out_dir / f"{name}.json", md_path


def write_results(out_dir: Path, name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    atomic_write(json_path, json.dumps(data, indent=1, sort_keys=False, default=str) + "\n")
    atomic_write(md_path, markdown.rstrip() + "\n")
    return json_path, md_path


def _git_commit() -> str | None:
    try:  # read-only query
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "safeguards"], capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or None
        if commit and dirty.stdout.strip():
            commit += " (+ uncommitted changes in safeguards/)"
        return commit
    except (OSError, subprocess.SubprocessError):
        return None


def metadata(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    import numpy

    import safeguards

    meta: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "safeguards": safeguards.__version__,
        "numpy": numpy.__version__,
        "git_commit": _git_commit(),
    }
    try:
        import spot

        meta["spot"] = spot.version()
    except ImportError:
        meta["spot"] = None
    meta.update(extra or {})
    return meta


def finish_metadata(meta: dict[str, Any], started: float) -> None:
    meta["wall_seconds"] = round(time.perf_counter() - started, 2)
    meta["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
