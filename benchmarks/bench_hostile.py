#!/usr/bin/env python
"""Hostile-input benchmark: a corpus of hostile spec texts, trace lines and experiment files,
each run in a fresh worker process, with the outcome, the time and the peak memory of each.

Usage (from the repository root)::

    python benchmarks/bench_hostile.py            # -> benchmarks/results/hostile.{json,md}
    python benchmarks/bench_hostile.py --quick    # < 1 min smoke run -> hostile_quick.*

Outcomes: ``result`` (compiled / parsed), ``error`` (a :class:`~safeguards.errors.SafeguardsError`:
the promised clean message), ``crash`` (any other exception: a bug), ``killed`` (the worker
ran past ``--timeout`` or died).  Targets: no crash, no kill; every case within the compile
budget plus slack; peak memory (growth of the worker's resident set over its baseline) under a
few hundred MB.  The generators are ``benchmarks/_hostile.py`` (shared with
``tests/test_hostile.py``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS, finish_metadata, fmt, md_table, metadata, summary, write_results,
)
from _hostile import config_texts, spec_cases, trace_lines  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_case(kind: str, payload: Any, budget: float) -> dict[str, Any]:
    """One case, in the worker: its outcome, error type, seconds and peak memory growth."""
    import tempfile

    import safeguards
    from safeguards.errors import SafeguardsError
    from safeguards.experiment import parse_experiment
    from safeguards.traces import open_trace, read_trace

    base = _rss_mb()
    started = time.perf_counter()
    outcome, error = "result", None
    try:
        if kind == "spec":
            safeguards.compile(payload, max_seconds=budget)
        elif kind == "trace":
            with tempfile.NamedTemporaryFile(suffix=".jsonl") as handle:
                handle.write(b'["a"]\n' + payload + b"\n")
                handle.flush()
                with open_trace(handle.name) as (stream, name):
                    list(read_trace(stream, ("a", "b"), name))
        else:
            parse_experiment(payload, "hostile.toml", check_envs=False)
    except SafeguardsError as exc:
        outcome, error = "error", type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - a crash is what this benchmark counts
        outcome, error = "crash", f"{type(exc).__name__}: {str(exc)[:120]}"
    return {"outcome": outcome, "error": error, "seconds": time.perf_counter() - started,
            "peak_mb": max(0.0, _rss_mb() - base)}


def _worker(conn: Any, kind: str, payload: Any, budget: float) -> None:
    conn.send(_run_case(kind, payload, budget))
    conn.close()


def run_isolated(kind: str, payload: Any, budget: float, timeout: float) -> dict[str, Any]:
    """Run one case in a fresh process (``fork``: the import cost is paid once)."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_worker, args=(child, kind, payload, budget))
    started = time.perf_counter()
    process.start()
    child.close()
    result = None
    if parent.poll(timeout):
        try:
            result = parent.recv()
        except EOFError:
            result = None
    process.join(1)
    if process.is_alive():
        process.kill()
        process.join()
    if result is None:
        return {"outcome": "killed", "error": f"exit code {process.exitcode}",
                "seconds": time.perf_counter() - started, "peak_mb": None}
    return result


def cases(seeds: int, scale: int) -> Iterator[tuple[str, str, Any]]:
    for seed in range(seeds):
        for name, text in spec_cases(seed, scale):
            yield "spec", name, text
        for name, line in trace_lines(seed, scale):
            yield "trace", name, line
        for name, text in config_texts(seed, scale):
            yield "config", name, text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small corpus (smoke test)")
    parser.add_argument("--seeds", type=int, default=3, help="generator seeds (3)")
    parser.add_argument("--scale", type=int, default=2, help="size multiplier (2)")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="compile budget in seconds given to every spec (10)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds before a worker is killed (120)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    seeds, scale = (1, 1) if args.quick else (args.seeds, args.scale)
    name = "hostile_quick" if args.quick else "hostile"
    started = time.perf_counter()
    meta = metadata({"seeds": seeds, "scale": scale, "budget_s": args.budget,
                     "timeout_s": args.timeout})
    rows = []
    for kind, case, payload in cases(seeds, scale):
        result = run_isolated(kind, payload, args.budget, args.timeout)
        rows.append({"input": kind, "case": case, "size": len(payload), **result})
        if result["outcome"] in ("crash", "killed"):
            print(f"{kind} {case}: {result['outcome']} {result['error']}", file=sys.stderr)
    finish_metadata(meta, started)
    data = {"metadata": meta, "cases": rows}
    write_results(args.out_dir, name, data, render(data))
    print(render(data))
    return 0 if all(r["outcome"] in ("result", "error") for r in rows) else 1


def render(data: dict[str, Any]) -> str:
    meta, rows = data["metadata"], data["cases"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["input"], row["case"]), []).append(row)
    table = []
    for (kind, case), items in groups.items():
        outcomes = {o: sum(1 for r in items if r["outcome"] == o)
                    for o in ("result", "error", "crash", "killed")}
        seconds = summary([r["seconds"] for r in items])
        memory = summary([r["peak_mb"] for r in items])
        table.append([kind, case, len(items), outcomes["result"], outcomes["error"],
                      outcomes["crash"], outcomes["killed"], seconds["max"], memory["max"]])
    totals = {o: sum(1 for r in rows if r["outcome"] == o)
              for o in ("result", "error", "crash", "killed")}
    worst_s = max((r["seconds"] for r in rows), default=0.0)
    worst_mb = max((r["peak_mb"] or 0.0 for r in rows), default=0.0)
    return "\n".join([
        "# Hostile-input benchmark", "",
        f"{meta['date_utc']} · commit {meta['git_commit']} · Python {meta['python']} · "
        f"{meta['cpu_count']} CPUs · {meta['wall_seconds']} s wall", "",
        f"{len(rows)} cases ({meta['seeds']} generator seeds, scale {meta['scale']}), each in a "
        f"fresh worker process; compile budget {meta['budget_s']} s, workers killed after "
        f"{meta['timeout_s']} s.  Peak memory: growth of the worker's maximum resident set.", "",
        f"**Totals:** {totals['result']} results, {totals['error']} clean errors, "
        f"{totals['crash']} crashes, {totals['killed']} killed; slowest case {fmt(worst_s)} s, "
        f"largest memory growth {fmt(worst_mb, 0)} MB.", "",
        md_table(["input", "case", "cases", "result", "error", "crash", "killed", "max s",
                  "max MB"], table),
        "", f"Command: `python benchmarks/bench_hostile.py{' --quick' if meta['seeds'] == 1 else ''}`.",
    ])


if __name__ == "__main__":
    sys.exit(main())
