"""Run directories: configuration, per-episode metrics, checkpoints, results, progress.

A run directory holds::

    config.json        the resolved configuration (written once; a resume must match it)
    metrics.jsonl      one JSON object per episode, appended as the run goes
    metrics.csv        the same rows as CSV (header first)
    checkpoint.npz     tables and counters of the last checkpoint (written atomically)
    checkpoint.json    the same metadata, readable (RNG states, stage / episode counters)
    result.json        the final result (test scores, violation counts), when the run finished

Checkpoints are taken at episode boundaries.  ``checkpoint.npz`` is written first and carries
its own copy of the metadata (``meta_json``), which is authoritative: a run killed between the
two writes still resumes from a consistent checkpoint.  Resuming truncates the metrics files to
the episodes the checkpoint covers, so a killed run loses at most one checkpoint interval.

>>> import tempfile
>>> run = RunDir(tempfile.mkdtemp())
>>> run.start_metrics()
>>> run.log({"episode": 0, "return": 1.5, "violated_rules": ["no_lava"]})
>>> run.close()
>>> read_metrics(run.path)[0]["violated_rules"]
['no_lava']
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, TextIO

import numpy as np

from safeguards.files import write_atomic

__all__ = ["RunDir", "METRIC_FIELDS", "read_metrics", "Progress", "to_json"]

#: Columns of ``metrics.csv`` (and keys of every ``metrics.jsonl`` line), in order.
METRIC_FIELDS = (
    "method", "seed", "stage", "stage_episode", "episode", "return", "length", "violated",
    "violation_step", "violated_rules", "violated_final", "violation_step_final", "value_s0",
    "pessimistic_s0",
)


def to_json(value: Any) -> Any:
    """``value`` with numpy scalars / arrays, tuples and paths turned into JSON types."""
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return value


class RunDir:
    """The files of one run (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], fields: Iterable[str] = METRIC_FIELDS) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.fields = tuple(fields)
        self.config_path = self.path / "config.json"
        self.jsonl_path = self.path / "metrics.jsonl"
        self.csv_path = self.path / "metrics.csv"
        self.npz_path = self.path / "checkpoint.npz"
        self.checkpoint_path = self.path / "checkpoint.json"
        self.result_path = self.path / "result.json"
        self._jsonl: TextIO | None = None
        self._csv: TextIO | None = None
        self._writer: Any = None

    def has_run(self) -> bool:
        """Does the directory already hold (part of) a run?"""
        return any(p.exists() for p in (self.jsonl_path, self.npz_path, self.result_path))

    # -- configuration -------------------------------------------------------------------------
    def write_config(self, config: Mapping[str, Any]) -> None:
        write_atomic(self.config_path, json.dumps(to_json(config), indent=1) + "\n")

    def read_config(self) -> dict[str, Any] | None:
        if not self.config_path.exists():
            return None
        return json.loads(self.config_path.read_text(encoding="utf-8"))

    # -- metrics -------------------------------------------------------------------------------
    def start_metrics(self, keep: int | None = None) -> None:
        """Open the metrics files for appending.  ``keep=None`` starts them afresh; ``keep=n``
        keeps the rows of episodes ``0 .. n - 1`` (rewriting both files atomically) and drops
        whatever was logged after the checkpoint."""
        self.close()
        rows = [] if keep is None else [r for r in read_metrics(self.path)
                                         if int(r["episode"]) < keep]
        lines = "".join(json.dumps(r) + "\n" for r in rows)
        write_atomic(self.jsonl_path, lines)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.fields, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _csv_cell(r.get(k)) for k in self.fields})
        write_atomic(self.csv_path, buffer.getvalue())
        self._jsonl = open(self.jsonl_path, "a", encoding="utf-8")
        self._csv = open(self.csv_path, "a", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._csv, fieldnames=self.fields, extrasaction="ignore",
                                      lineterminator="\n")

    def log(self, record: Mapping[str, Any]) -> None:
        """Append one episode's row to both files (flushed)."""
        if self._jsonl is None or self._csv is None:
            raise RuntimeError("call start_metrics() before log()")
        record = to_json(record)
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        self._writer.writerow({k: _csv_cell(record.get(k)) for k in self.fields})
        self._csv.flush()

    def close(self) -> None:
        for handle in (self._jsonl, self._csv):
            if handle is not None:
                handle.close()
        self._jsonl = self._csv = self._writer = None

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Write ``checkpoint.npz`` (arrays + ``meta_json``) then ``checkpoint.json``, each
        atomically."""
        text = json.dumps(to_json(meta), indent=1)
        buffer = io.BytesIO()
        named = {k: np.asarray(v) for k, v in arrays.items()}
        np.savez(buffer, meta_json=np.array(text), **named)  # type: ignore[arg-type]  # numpy's stub
        write_atomic(self.npz_path, buffer.getvalue())
        write_atomic(self.checkpoint_path, text + "\n")

    def load_checkpoint(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """``(meta, arrays)`` of the last checkpoint, or None."""
        if not self.npz_path.exists():
            return None
        with np.load(self.npz_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("meta_json")))
        return meta, arrays

    # -- results -------------------------------------------------------------------------------
    def write_result(self, result: Mapping[str, Any]) -> None:
        write_atomic(self.result_path, json.dumps(to_json(result), indent=1) + "\n")

    def read_result(self) -> dict[str, Any] | None:
        if not self.result_path.exists():
            return None
        return json.loads(self.result_path.read_text(encoding="utf-8"))


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` in a run directory (or of that file).  A last line cut
    short by a kill is ignored."""
    target = Path(path)
    if target.is_dir():
        target = target / "metrics.jsonl"
    if not target.exists():
        return []
    rows = []
    for line in target.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


class Progress:
    """A progress bar on stderr: tqdm when installed, else one plain line redrawn at most
    five times a second.  ``enabled=False`` prints nothing."""

    def __init__(self, total: int, *, enabled: bool = True, desc: str = "",
                 initial: int = 0, stream: TextIO | None = None) -> None:
        self.total, self.count, self.desc = total, initial, desc
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.postfix = ""
        self._bar: Any = None
        self._last = 0.0
        self._start = time.perf_counter()
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, initial=initial, desc=desc, file=self.stream,
                         unit="ep", dynamic_ncols=True)

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        self.count += n
        if postfix is not None:
            self.postfix = postfix
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            if postfix is not None:
                self._bar.set_postfix_str(postfix, refresh=False)
            return
        now = time.perf_counter()
        if now - self._last >= 0.2 or self.count >= self.total:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        width = 30
        done = min(1.0, self.count / self.total) if self.total else 1.0
        bar = "#" * int(width * done) + "." * (width - int(width * done))
        elapsed = now - self._start
        self.stream.write(f"\r{self.desc} [{bar}] {self.count}/{self.total} "
                          f"{elapsed:5.1f}s {self.postfix}".rstrip() + " ")
        self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            return
        self._draw(time.perf_counter())
        self.stream.write("\n")
        self.stream.flush()
