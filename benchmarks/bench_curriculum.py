#!/usr/bin/env python
"""Curriculum benchmark: how long the paper's full progressive-safeguards run takes.

Usage (from the repository root)::

    python benchmarks/bench_curriculum.py          # full runs -> results/curriculum.{json,md}
    python benchmarks/bench_curriculum.py --quick  # < 30 s smoke run -> curriculum_quick.*
    python benchmarks/bench_curriculum.py --methods paper --profile   # one method, with cProfile

Each method runs the paper's Minecraft setup (papers.md §1.5: layout 1, safeguards 0-3
switching at episodes 1666, 3332 and 4998 of 5,000, at most 1,000 steps per episode,
alpha = gamma = 0.9, epsilon = 0.1, 100 greedy test episodes) with
``safeguards.learn.run_curriculum``, one seed, in this process, one after the other.  Timed:
the whole call (training, metrics and checkpoint files every 100 episodes, the test), as wall
time and as CPU time of this process (``time.process_time``: what one core spent, robust to
other load on the machine).  Target: one method and seed in at most 60 s.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, finish_metadata, md_table, metadata, write_results  # noqa: E402

from safeguards.learn import CurriculumConfig, run_curriculum  # noqa: E402
from safeguards.runs import read_metrics  # noqa: E402

TARGET_SECONDS = 60.0

#: method name -> CurriculumConfig.paper overrides
METHODS: dict[str, dict[str, Any]] = {
    "paper": {"transfer": "paper"},
    "paper_exact": {"transfer": "paper", "update": "paper"},
    "semantic": {"transfer": "semantic"},
    "warm": {"transfer": "warm"},
    "none": {"transfer": "none"},
    "scratch": {"baseline": "scratch"},
    "intrinsic_fear": {"baseline": "intrinsic_fear"},
    "no_safeguard": {"baseline": "no_safeguard"},
}
DEFAULT_METHODS = ["paper", "paper_exact", "semantic", "scratch", "intrinsic_fear",
                   "no_safeguard"]


def bench_method(name: str, episodes: int, switch_every: int, seed: int, test_episodes: int,
                 work: Path, profile: bool) -> dict[str, Any]:
    config = CurriculumConfig.paper(episodes=episodes, switch_every=switch_every, seed=seed,
                                    test_episodes=test_episodes, method=name, **METHODS[name])
    run_dir = work / name
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    result = run_curriculum(config, run_dir, progress=False)
    if profiler is not None:
        profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = read_metrics(run_dir)
    steps = sum(r["length"] for r in rows)
    entry: dict[str, Any] = {
        "method": name, "overrides": METHODS[name], "episodes": len(rows), "steps": steps,
        "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "cpu_us_per_step": round(cpu / steps * 1e6, 3) if steps else None,
        "met_cpu": cpu <= TARGET_SECONDS, "met_wall": wall <= TARGET_SECONDS,
        **{k: v for k, v in result.to_dict().items()
           if k in ("stage_violations", "stage_violations_final", "train_violations",
                    "train_violations_final", "final_value_s0", "test")},
    }
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
        entry["profile_top15"] = text.getvalue()
    return entry


def markdown(data: dict[str, Any]) -> str:
    cfg = data["config"]
    lines = [
        "# Curriculum benchmark (tabular progressive safeguards, Minecraft layout 1)",
        "",
        f"{cfg['episodes']:,} episodes, safeguard switches every {cfg['switch_every']:,} "
        f"episodes, at most 1,000 steps per episode, seed {cfg['seed']}, "
        f"{cfg['test_episodes']} greedy test episodes; "
        f"target: one method and seed in at most {TARGET_SECONDS:.0f} s "
        "(CPU time = one core's work; wall time also shows other load on the machine).",
        "",
        md_table(["method", "episodes", "env steps", "wall s", "CPU s", "CPU us/step",
                  "target met (CPU)", "train violations (stage / final spec)",
                  "test success", "meta queries"],
                 [[r["method"], r["episodes"], r["steps"], r["wall_s"], r["cpu_s"],
                   r["cpu_us_per_step"], r["met_cpu"],
                   f"{r['train_violations']} / {r['train_violations_final']}",
                   f"{r['test']['success_rate']:.0%}" if r["test"] else "–",
                   r["test"]["meta_learning_queries"] if r["test"] else "–"]
                  for r in data["results"]]),
        "",
        f"Machine: {data['meta']['platform']}, {data['meta']['cpu_count']} CPUs, Python "
        f"{data['meta']['python']}; load average at start {data['meta']['load_average_start']}, "
        f"at end {data['meta']['load_average_end']}; total {data['meta']['wall_seconds']} s.",
        "",
        f"Command: `{data['command']}`.",
    ]
    for r in data["results"]:
        if "profile_top15" in r:
            lines += ["", f"## cProfile of `{r['method']}` (top 15 by own time)", "", "```",
                      r["profile_top15"].strip(), "```"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short runs (400 episodes, 2 methods; CI smoke test)")
    parser.add_argument("--methods", default=None,
                        help=f"comma-separated, from {', '.join(METHODS)} "
                             f"(default: {', '.join(DEFAULT_METHODS)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="cProfile every method")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--name", default=None,
                        help="result file stem (default: curriculum, or curriculum_quick)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    methods = (args.methods.split(",") if args.methods
               else ["paper", "semantic"] if args.quick else DEFAULT_METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    cfg = {"episodes": 400 if args.quick else 5000, "switch_every": 133 if args.quick else 1666,
           "seed": args.seed, "test_episodes": 10 if args.quick else 100, "methods": methods}
    meta = metadata()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_curriculum_") as work:
        for name in methods:
            entry = bench_method(name, cfg["episodes"], cfg["switch_every"], args.seed,
                                 cfg["test_episodes"], Path(work), args.profile)
            results.append(entry)
            print(f"{name}: {entry['steps']:,} steps, wall {entry['wall_s']:.1f} s, "
                  f"CPU {entry['cpu_s']:.1f} s", file=sys.stderr)
    finish_metadata(meta, started)
    command = " ".join(["python benchmarks/bench_curriculum.py",
                        *(sys.argv[1:] if argv is None else argv)])
    data = {"benchmark": "curriculum", "quick": args.quick, "command": command,
            "meta": meta, "config": cfg,
            "target_seconds": TARGET_SECONDS, "results": results}
    name = args.name or ("curriculum_quick" if args.quick else "curriculum")
    json_path, md_path = write_results(args.out_dir, name, data, markdown(data))
    print(f"wrote {json_path} and {md_path} ({meta['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
