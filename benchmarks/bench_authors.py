#!/usr/bin/env python
"""Reproduction benchmark: the authors' ``minecraft.py`` beside ours, seed by seed.

Usage (from the repository root)::

    python benchmarks/bench_authors.py --authors-code PATH/TO/safeguardedRL   # -> results/authors.*
    python benchmarks/bench_authors.py --authors-code PATH --episodes 40 --seeds 0-1 --name q
    python benchmarks/bench_authors.py --render        # rewrite authors.md from authors.json

The authors' code (``grockious/safeguardedRL``, a checkout the user points to; never copied
here) runs in a child process per run (``_authors_worker.py``: their file executed from its
folder, seeded, ``progressive`` unchanged and ``zero_shot`` with the two in-memory substitutions
documented there).  Ours runs the methods of ``specs/curricula/minecraft_authors.toml``
(``paper_exact``, ``paper``, ``zero_shot``, ``zero_shot_exact``) with
:func:`safeguards.executor.run_one`.  Both at the paper's budget (5000 episodes; stages
1666 / 1666 / 1666 / 2) unless ``--episodes N`` (a smoke budget: stages of ``N // 3`` episodes,
the rest in the last).  ``--jobs`` runs that many at once (default 2).

Every finished run is appended to ``<name>_runs.jsonl`` at once and the tables are rewritten,
so an interrupted benchmark keeps what finished; run the same command again to complete it
(runs already recorded at the same budget are skipped).  Per run: training violations per
stage, test success (100 greedy episodes under safeguard 3), ``max_a Q(s0, a)`` at the start of
the last training episode, and CPU seconds (``time.process_time`` of the process that trained,
around training and test).  Between the two codes, and between progressive and zero-shot within
each code, a two-sided Mann-Whitney U test per metric (scipy's when installed, else
:func:`mann_whitney_u`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, RESULTS, finish_metadata, md_table, metadata, render_only  # noqa: E402
from _common import write_results  # noqa: E402

EXPERIMENT = ROOT / "specs" / "curricula" / "minecraft_authors.toml"
WORKER = Path(__file__).resolve().parent / "_authors_worker.py"
AUTHORS_VARIANTS = ("progressive", "zero_shot")
#: (label, (code, method), (code, method)) of the compared pairs
PAIRS = (
    ("progressive: authors vs paper_exact", ("authors", "progressive"), ("ours", "paper_exact")),
    ("progressive: authors vs paper", ("authors", "progressive"), ("ours", "paper")),
    ("zero-shot: authors vs zero_shot_exact", ("authors", "zero_shot"), ("ours", "zero_shot_exact")),
    ("zero-shot: authors vs zero_shot", ("authors", "zero_shot"), ("ours", "zero_shot")),
    ("authors: progressive vs zero-shot", ("authors", "progressive"), ("authors", "zero_shot")),
    ("ours: paper_exact vs zero_shot_exact", ("ours", "paper_exact"), ("ours", "zero_shot_exact")),
    ("ours: paper vs zero_shot", ("ours", "paper"), ("ours", "zero_shot")),
)
METRICS = ("train_violations", "test_success", "final_value_s0", "cpu_seconds")


# -- the rank test ------------------------------------------------------------------------------

def _ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties given their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _exact_cdf(u: int, n1: int, n2: int) -> float:
    """``P(U <= u)`` without ties: the count of arrangements by Mann and Whitney's recursion."""
    table = {(0, 0): [1]}
    for i in range(n1 + 1):
        for j in range(n2 + 1):
            if i == j == 0:
                continue
            size = i * j + 1
            dist = [0] * size
            if i:  # the largest value is an x: it is above all j y's
                for v, c in enumerate(table[(i - 1, j)]):
                    dist[v + j] += c
            if j:  # the largest value is a y
                for v, c in enumerate(table[(i, j - 1)]):
                    dist[v] += c
            table[(i, j)] = dist
    dist = table[(n1, n2)]
    return sum(dist[:u + 1]) / math.comb(n1 + n2, n1)


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: ``(U of x, p)``, as ``scipy.stats.mannwhitneyu`` with its
    defaults (exact distribution when a sample has at most 8 values and there are no ties, else
    the normal approximation with tie and continuity corrections).  ``p`` is NaN when all
    values are equal.

    >>> mann_whitney_u([1, 2, 3], [4, 5, 6])
    (0.0, 0.1)
    >>> u, p = mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12])
    >>> u, round(p, 4)
    (17.0, 0.1111)
    """
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        return math.nan, math.nan
    values = [*x, *y]
    ranks = _ranks(values)
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    ties = [values.count(v) for v in set(values)]
    if min(n1, n2) <= 8 and max(ties) == 1:
        low = min(u, n1 * n2 - u)
        return u, min(1.0, 2 * _exact_cdf(int(low), n1, n2))
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - sum(t ** 3 - t for t in ties) / (n * (n - 1)))
    if variance <= 0:
        return u, math.nan
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(variance)
    return u, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


def rank_test(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """:func:`mann_whitney_u`, by scipy when installed."""
    try:
        from scipy.stats import mannwhitneyu
    except ImportError:
        return mann_whitney_u(x, y)
    if not x or not y or len(set([*x, *y])) == 1:
        return math.nan, math.nan
    result = mannwhitneyu(x, y, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


# -- the runs -----------------------------------------------------------------------------------

def smoke_stages(stages: Sequence[Any], episodes: int) -> list[Any]:
    """The experiment's stages at a total of ``episodes``: ``episodes // 3`` per stage but the
    last, which gets the rest (the authors' rule; at 5000: 1666 / 1666 / 1666 / 2)."""
    length = max(1, episodes // 3)
    sizes = [length] * (len(stages) - 1)
    return [replace(s, episodes=n) for s, n in zip(stages, [*sizes, episodes - sum(sizes)])]


def run_authors(authors: str, variant: str, seed: int, episodes: int | None,
                python: str) -> dict[str, Any]:
    """One run of the authors' script in a child process (``_authors_worker.py``)."""
    command = [python, str(WORKER), authors, variant, str(seed)]
    if episodes is not None:
        command.append(str(episodes))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the authors' minecraft.py failed ({variant}, seed {seed}):\n"
                           + done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_ours(method: str, seed: int, config: Any) -> dict[str, Any]:
    """One run of ours in this process, in a temporary run directory."""
    from safeguards.executor import run_one

    with tempfile.TemporaryDirectory() as work:
        start = time.process_time()
        result = run_one(config, os.path.join(work, "run"))
        cpu = time.process_time() - start
    return {"code": "ours", "variant": method, "seed": seed, "cpu_seconds": cpu,
            "stage_episodes": result["stage_episodes"],
            "train_violations": result["stage_violations"],
            "test_success": result["test"]["success_rate"],
            "test_violations": result["test"]["violation_rate"],
            "test_queries": result["test"]["meta_learning_queries"],
            "final_value_s0": result["final_value_s0"]}


def tasks(args: argparse.Namespace) -> tuple[list[tuple[str, str, int, Any]], int, list[int]]:
    """``(code, method, seed, config)`` of every run, seed by seed (a partial run covers the
    first seeds of every method), the budget of one run in episodes, and the seeds."""
    from safeguards.experiment import load_experiment, parse_seeds

    experiment = load_experiment(args.experiment)
    if args.episodes is not None:
        experiment.stages = smoke_stages(experiment.stages, args.episodes)
    seeds = parse_seeds(args.seeds) if args.seeds else experiment.seeds
    todo: list[tuple[str, str, int, Any]] = []
    for seed in seeds:
        if args.authors_code is not None:
            todo += [("authors", variant, seed, None) for variant in AUTHORS_VARIANTS]
        todo += [("ours", name, seed, config) for name, _, config in experiment.runs([seed])]
    return todo, sum(stage.episodes for stage in experiment.stages), seeds


def run_task(task: tuple[str, str, int, Any], args: argparse.Namespace) -> dict[str, Any]:
    code, method, seed, config = task
    if code == "authors":
        return run_authors(str(Path(args.authors_code).resolve()), method, seed, args.episodes,
                           args.python)
    return run_ours(method, seed, config)


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def key(record: dict[str, Any]) -> tuple[str, str, int, int]:
    return record["code"], record["variant"], record["seed"], sum(record["stage_episodes"])


# -- the tables ---------------------------------------------------------------------------------

def metric_values(records: Sequence[dict[str, Any]], metric: str) -> list[float]:
    """One value per run; ``train_violations`` summed over the stages."""
    return [sum(r[metric]) if metric == "train_violations" else r[metric] for r in records]


def mean_sd(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "sd": None}
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) \
        if len(values) > 1 else 0.0
    return {"mean": mean, "sd": sd}


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per (code, method): seeds, stage episodes, mean ± sd of every metric and of the
    violations of every stage; the rank tests of :data:`PAIRS`."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: r["seed"]):
        groups.setdefault((record["code"], record["variant"]), []).append(record)
    rows = []
    for (code, method), runs in groups.items():
        stages = len(runs[0]["stage_episodes"])
        rows.append({
            "code": code, "method": method, "seeds": [r["seed"] for r in runs],
            "stage_episodes": runs[0]["stage_episodes"],
            "stage_violations": [mean_sd([r["train_violations"][k] for r in runs])
                                 for k in range(stages)],
            **{metric: mean_sd(metric_values(runs, metric)) for metric in METRICS},
        })
    tests = []
    for label, a, b in PAIRS:
        if a not in groups or b not in groups:
            continue
        for metric in METRICS:
            x, y = metric_values(groups[a], metric), metric_values(groups[b], metric)
            u, p = rank_test(x, y)
            tests.append({"comparison": label, "metric": metric, "n": [len(x), len(y)],
                          "mean": [mean_sd(x)["mean"], mean_sd(y)["mean"]],
                          "U": None if math.isnan(u) else u, "p": None if math.isnan(p) else p})
    return {"groups": rows, "tests": tests}


def _pm(stat: dict[str, float | None], digits: int = 2) -> str:
    if stat["mean"] is None:
        return "–"
    return f"{stat['mean']:,.{digits}f} ± {stat['sd']:,.{digits}f}"


def render(data: dict[str, Any]) -> str:
    meta, summary = data["metadata"], data["summary"]
    lines = [
        "# The authors' minecraft.py beside ours",
        "",
        f"Budget: {data['budget_episodes']:,} training episodes per run, 100 greedy test "
        "episodes under safeguard 3; layout 1, at most 1,000 steps per episode, "
        "alpha = gamma = 0.9, epsilon = 0.1.  Mean ± sample sd over the seeds; CPU: "
        "`time.process_time` of the training process, training and test.  Generated by "
        f"`benchmarks/bench_authors.py` on {meta['date_utc']} (commit {meta['git_commit']}, "
        f"authors' commit {meta.get('authors_commit')}, {meta['cpu_count']} CPUs, load "
        f"{' / '.join(f'{x:.1f}' for x in meta['load_average_start'] or [])}).",
        "",
        md_table(["code", "method", "seeds", "stage episodes", "train violations per stage",
                  "train violations", "test success", "value at s0", "CPU s / run"],
                 [[g["code"], g["method"], len(g["seeds"]),
                   " / ".join(f"{n:,}" for n in g["stage_episodes"]),
                   " / ".join(_pm(s, 1) for s in g["stage_violations"]),
                   _pm(g["train_violations"], 1), _pm(g["test_success"]),
                   _pm(g["final_value_s0"], 3), _pm(g["cpu_seconds"], 1)]
                  for g in summary["groups"]]),
        "",
        "## Two-sided Mann-Whitney U tests",
        "",
        f"`train_violations` is the total over the stages.  Test: {data['rank_test']}.",
        "",
        md_table(["comparison", "metric", "n", "mean A", "mean B", "U", "p"],
                 [[t["comparison"], t["metric"], " / ".join(str(n) for n in t["n"]),
                   t["mean"][0], t["mean"][1], t["U"], t["p"]] for t in summary["tests"]],
                 digits=3),
    ]
    return "\n".join(lines)


def publish(records: list[dict[str, Any]], budget: int, meta: dict[str, Any],
            out_dir: Path, name: str) -> None:
    try:
        import scipy  # noqa: F401
        test = "scipy.stats.mannwhitneyu"
    except ImportError:
        test = "bench_authors.mann_whitney_u (scipy is not installed)"
    data = {"metadata": meta, "budget_episodes": budget, "rank_test": test,
            "summary": summarise(records), "runs": records}
    write_results(out_dir, name, data, render(data))


def authors_commit(path: str) -> str | None:
    done = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors-code", metavar="PATH",
                        help="a checkout of grockious/safeguardedRL (its minecraft.py)")
    parser.add_argument("--experiment", default=str(EXPERIMENT))
    parser.add_argument("--seeds", help="e.g. 0-9 (default: the experiment's)")
    parser.add_argument("--episodes", type=int, help="smoke budget (>= 34 episodes)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for the authors' code (numpy, matplotlib)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--name", default="authors")
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the .json")
    args = parser.parse_args(argv)
    if args.render:
        print(*render_only(args.out_dir, args.name, render), sep="\n")
        return 0
    if args.authors_code is not None and not (Path(args.authors_code) / "minecraft.py").is_file():
        parser.error(f"{args.authors_code}: no minecraft.py there")
    if args.episodes is not None and args.episodes < 34:
        parser.error("--episodes: at least 34 (the authors' plot averages over 3% of them)")
    started = time.perf_counter()
    todo, budget, seeds = tasks(args)
    runs_path = args.out_dir / f"{args.name}_runs.jsonl"
    records = [r for r in read_records(runs_path)
               if sum(r["stage_episodes"]) == budget and r["seed"] in seeds]
    done = {key(r) for r in records}
    todo = [t for t in todo if (t[0], t[1], t[2], budget) not in done]
    meta = metadata({"authors_code": args.authors_code, "jobs": args.jobs,
                     "authors_commit": authors_commit(args.authors_code)
                     if args.authors_code else None})
    args.out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{len(records)} runs recorded, {len(todo)} to go", flush=True)
    failures = 0
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_task, task, args): task for task in todo}
        for future in as_completed(futures):
            code, method, seed, _ = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # noqa: BLE001 - reported, the other runs go on
                failures += 1
                print(f"FAILED {code} {method} seed {seed}: {exc}", file=sys.stderr, flush=True)
                continue
            with runs_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            records.append(record)
            finish_metadata(meta, started)
            publish(records, budget, meta, args.out_dir, args.name)
            print(f"{code} {method} seed {seed}: {record['cpu_seconds']:.1f} s CPU", flush=True)
    finish_metadata(meta, started)
    publish(records, budget, meta, args.out_dir, args.name)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
