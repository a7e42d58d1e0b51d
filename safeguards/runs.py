"""Run directories: configuration, per-episode metrics, checkpoints, results, progress.

A run directory holds::

    config.json        the resolved configuration (written once; a resume must match it)
    metrics.jsonl      one JSON object per episode, appended as the run goes
    metrics.csv        the same rows as CSV (header first)
    checkpoint.npz     tables and counters of the last checkpoint (written atomically)
    checkpoint.json    the same metadata, readable (RNG states, stage / episode counters)
    result.json        the final result (test scores, violation counts), when the run finished
    lock               the pid of the process writing the run, ``flock``-ed while it runs

Checkpoints are taken at episode boundaries.  ``checkpoint.npz`` is written first and carries
its own copy of the metadata (``meta_json``), which is authoritative: a run killed between the
two writes still resumes from a consistent checkpoint.  Resuming truncates the metrics files to
the episodes the checkpoint covers, so a killed run loses at most one checkpoint interval.

Nothing in a run directory is trusted on resume: every checkpoint records what
``metrics.jsonl`` held when it was taken (``meta["metrics"]``: rows, bytes and their sha256),
and a metrics file that no longer starts with exactly those bytes, a line that is not a JSON
object, or a checkpoint that cannot be read is a :class:`RunDirError` naming the file (and the
line), never a silently shorter run.  Only one process works on a run directory at a time
(:meth:`RunDir.lock`; the lock goes with the process, however it ends).

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
import hashlib
import io
import json
import os
import sys
import time
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, TextIO

import numpy as np
from numpy.lib.npyio import NpzFile

from safeguards.errors import SafeguardsError
from safeguards.files import write_atomic

__all__ = ["RunDir", "METRIC_FIELDS", "read_metrics", "Progress", "to_json", "RunDirError",
           "RunDirInUse"]

DAMAGED_HINT = "restore the file, or start the run afresh in another run directory"


class RunDirError(SafeguardsError, ValueError):
    """A run directory that cannot be trusted: a damaged file, or a checkpoint that does not
    belong to the run or to its metrics.

    >>> print(RunDirError("runs/a/metrics.jsonl", "not a JSON object", line=3))
    runs/a/metrics.jsonl:3: error: not a JSON object
    hint: restore the file, or start the run afresh in another run directory
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, *, line: int | None = None,
                 hint: str | None = DAMAGED_HINT) -> None:
        where = os.fspath(path) + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: error: {problem}" + (f"\nhint: {hint}" if hint else ""))
        self.path, self.line = Path(path), line


class RunDirInUse(RunDirError):
    """Another process holds the run directory (:meth:`RunDir.lock`); ``owner`` is its pid."""

    def __init__(self, path: str | os.PathLike[str], owner: str) -> None:
        SafeguardsError.__init__(self, f"error: run directory {os.fspath(path)} is in use by "
                                 f"pid {owner}\nhint: wait for that run to end, or stop it "
                                 "(it continues with --resume)")
        self.path, self.line, self.owner = Path(path), None, owner


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
        self.lock_path = self.path / "lock"
        self._jsonl: TextIO | None = None
        self._csv: TextIO | None = None
        self._writer: Any = None
        self._rows = self._bytes = 0
        self._digest = hashlib.sha256()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory for this process (POSIX ``flock``, not waiting): another process
        that tries meanwhile gets :class:`RunDirInUse` naming this one's pid.  The lock is
        released when the block ends, and by the system when the process dies.

        >>> import tempfile
        >>> run = RunDir(tempfile.mkdtemp())
        >>> with run.lock():
        ...     try:
        ...         with RunDir(run.path).lock():
        ...             pass
        ...     except RunDirInUse as busy:
        ...         busy.owner == str(os.getpid())
        True
        """
        import fcntl

        with open(self.lock_path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "?"
                raise RunDirInUse(self.path, owner) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield

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
    def start_metrics(self, keep: int | None = None,
                      recorded: Mapping[str, Any] | None = None) -> None:
        """Open the metrics files for appending.  ``keep=None`` starts them afresh; ``keep=n``
        keeps the rows of episodes ``0 .. n - 1`` (rewriting both files atomically) and drops
        whatever was logged after the checkpoint.  The file must hold those rows, in order,
        and when ``recorded`` (a checkpoint's ``meta["metrics"]``) is given, exactly the bytes
        it records; else :class:`RunDirError`."""
        self.close()
        lines = [] if keep is None else self._kept_lines(keep, recorded)
        rows = [row for _, row in lines]
        prefix = b"".join(raw for raw, _ in lines)
        write_atomic(self.jsonl_path, prefix)
        self._rows, self._bytes, self._digest = len(rows), len(prefix), hashlib.sha256(prefix)
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
        line = json.dumps(record) + "\n"
        self._jsonl.write(line)
        self._jsonl.flush()
        data = line.encode("utf-8")
        self._rows, self._bytes = self._rows + 1, self._bytes + len(data)
        self._digest.update(data)
        self._writer.writerow({k: _csv_cell(record.get(k)) for k in self.fields})
        self._csv.flush()

    def close(self) -> None:
        for handle in (self._jsonl, self._csv):
            if handle is not None:
                handle.close()
        self._jsonl = self._csv = self._writer = None

    def _kept_lines(self, keep: int, recorded: Mapping[str, Any] | None
                    ) -> list[tuple[bytes, dict[str, Any]]]:
        """The first ``keep`` lines of ``metrics.jsonl``, checked against the checkpoint."""
        if keep > 0 and not self.jsonl_path.is_file():
            raise RunDirError(self.jsonl_path, f"missing; the checkpoint {self.npz_path.name} "
                              f"covers {keep} episodes")
        lines = _metric_lines(self.jsonl_path)[:keep] if keep > 0 else []
        if len(lines) < keep:
            raise RunDirError(self.jsonl_path, f"holds {len(lines)} episodes; the checkpoint "
                              f"{self.npz_path.name} covers {keep}")
        for number, (_, row) in enumerate(lines):
            if row.get("episode") != number:
                raise RunDirError(self.jsonl_path, f"episode {row.get('episode')!r} where "
                                  f"episode {number} belongs", line=number + 1)
        if recorded is not None:
            prefix = b"".join(raw for raw, _ in lines)
            expected = (recorded.get("rows"), recorded.get("bytes"), recorded.get("sha256"))
            if expected != (keep, len(prefix), hashlib.sha256(prefix).hexdigest()):
                raise RunDirError(self.jsonl_path, f"its first {keep} episodes are not those "
                                  f"the checkpoint {self.npz_path.name} recorded (length or "
                                  "sha256 differ)")
        return lines

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Write ``checkpoint.npz`` (arrays + ``meta_json``) then ``checkpoint.json``, each
        atomically.  The metadata gain ``metrics``: the rows, bytes and sha256 of
        ``metrics.jsonl`` so far, which a resume checks (:meth:`start_metrics`)."""
        meta = {**meta, "metrics": {"rows": self._rows, "bytes": self._bytes,
                                    "sha256": self._digest.hexdigest()}}
        text = json.dumps(to_json(meta), indent=1)
        buffer = io.BytesIO()
        named = {k: np.asarray(v) for k, v in arrays.items()}
        np.savez(buffer, meta_json=np.array(text), **named)  # type: ignore[arg-type]  # numpy's stub
        write_atomic(self.npz_path, buffer.getvalue())
        write_atomic(self.checkpoint_path, text + "\n")

    def load_checkpoint(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """``(meta, arrays)`` of the last checkpoint, or None; :class:`RunDirError` when it
        cannot be read (truncated, corrupted, no metadata)."""
        if not self.npz_path.exists():
            return None
        try:
            arrays = _npz_arrays(self.npz_path)
            meta = json.loads(str(arrays.pop("meta_json")))
        except KeyError:
            raise RunDirError(self.npz_path, "not a checkpoint (no meta_json)") from None
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
            raise RunDirError(self.npz_path, f"cannot be read ({type(exc).__name__}: "
                              f"{exc})") from None
        if not isinstance(meta, dict):
            raise RunDirError(self.npz_path, "its meta_json is not a JSON object")
        return meta, arrays

    # -- results -------------------------------------------------------------------------------
    def write_result(self, result: Mapping[str, Any]) -> None:
        write_atomic(self.result_path, json.dumps(to_json(result), indent=1) + "\n")

    def read_result(self) -> dict[str, Any] | None:
        if not self.result_path.exists():
            return None
        return json.loads(self.result_path.read_text(encoding="utf-8"))


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, NpzFile):
        raise ValueError("not an .npz archive")
    with data:
        return {k: data[k] for k in data.files}


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl`` in a run directory (or of that file); none if it does not
    exist.  A last line cut short by a kill (no newline) is ignored; any other line that is not
    a JSON object is a :class:`RunDirError` naming the file and the line.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "metrics.jsonl"
    >>> _ = target.write_text('{"episode": 0}\\n{"episo')
    >>> read_metrics(target)
    [{'episode': 0}]
    """
    target = Path(path)
    if target.is_dir():
        target = target / "metrics.jsonl"
    if not target.exists():
        return []
    return [row for _, row in _metric_lines(target)]


def _metric_lines(target: Path) -> list[tuple[bytes, dict[str, Any]]]:
    """Every row of a metrics file with its bytes (newline included), blank lines skipped."""
    lines = target.read_bytes().splitlines(keepends=True)
    rows = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            if number == len(lines) and not raw.endswith(b"\n"):
                break  # the last line, cut short by a kill
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            raise RunDirError(target, f"not a JSON line ({reason})", line=number) from None
        if not isinstance(row, dict):
            raise RunDirError(target, f"a JSON {type(row).__name__}, not an object",
                              line=number)
        rows.append((raw if raw.endswith(b"\n") else raw + b"\n", row))
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
