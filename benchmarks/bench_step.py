#!/usr/bin/env python
"""Stepping benchmark: how fast a compiled safeguard follows a trace.

Usage (from the repository root)::

    python benchmarks/bench_step.py             # full run -> benchmarks/results/step.{json,md}
    python benchmarks/bench_step.py --quick     # < 20 s smoke run -> step_quick.{json,md}

Measures, on the Minecraft ``safeguard3`` spec, a 3-rule spec and a 32-proposition spec:
(a) ``sg.step_letter(q, letter)`` calls per second, (b) ``sg.step(q, props)`` calls per second
with realistic valuations (frozensets and plain sets), (c) ``sg.step_batch(states, letters)``
monitor-steps per second for 4,096 (and 65,536) monitors, (d) compile time, peak traced memory
and letter classes of 32-proposition specs, plus how letter classes grow for a sequence machine.
See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS, ROOT, render_only, finish_metadata, fmt, md_table, median, metadata, write_results,
)

import safeguards  # noqa: E402

TARGETS = {"step_letter": 2e6, "step_frozenset": 5e5, "step_set": 5e5, "step_batch_4096": 2e7}

THREE_RULES = '''\
spec three_rules "Three rules: absence, bounded response (regex), precedence."

props:
    lava     "the agent stands on lava"
    request  "a request is issued"
    response "the request is answered"
    door     "the agent opens a door"
    key      "the agent picks up a key"

rule no_lava: ltl G !lava
rule respond_within_3 (penalty = 0.5):
    never request ; !response[*3]
rule key_first: ltl !door W key
'''


def _props_block(names: Sequence[str]) -> str:
    return "\n".join(f'    {p} "proposition {p}"' for p in names)


def _any(names: Sequence[str]) -> str:
    return "(" + " | ".join(names) + ")"


def wide_absence_spec(n: int = 32) -> str:
    names = [f"p{i}" for i in range(n)]
    return (f'spec absence{n} "G !(p0 | ... | p{n - 1})"\n\nprops:\n{_props_block(names)}\n\n'
            f"rule none: ltl G !{_any(names)}\n")


def wide_rules_spec() -> str:
    """Four rules (three LTL, one machine) that together read all 32 propositions, in groups:
    hazards p0..p7, forbidden-before-unlock p8..p15, unlock p16 & p17, requests p18..p23 and
    answers p24..p31."""
    p = [f"p{i}" for i in range(32)]
    hazard, early, requests, answers = _any(p[0:8]), _any(p[8:16]), _any(p[18:24]), _any(p[24:32])
    return f'''spec wide32 "Four rules over 32 propositions."

props:
{_props_block(p)}

rule no_hazard: ltl G !{hazard}
rule unlock_first: ltl !{early} W (p16 & p17)
rule answer_next: ltl G({requests} -> X {answers})
rule busy_machine:
    machine {{
        initial idle
        violation violated
        idle -> busy     : {_any(p[18:21])} & !(p0 | p1)
        idle -> violated : p0 | p1
        idle -> idle     : else
        busy -> idle     : {_any(p[24:28])} & !(p0 | p1)
        busy -> violated : p0 | p1
        busy -> busy     : else
    }}
'''


def sequence_machine_spec(k: int) -> str:
    """A machine that waits for p0, then p1, ..., then p(k-1): each state reads one proposition,
    so the joint letter partition distinguishes all 2^k valuations."""
    names = [f"p{i}" for i in range(k)]
    edges = "\n".join(f"        q{i} -> q{i + 1} : p{i}\n        q{i} -> q{i} : else"
                      for i in range(k))
    return (f'spec sequence{k} "p0, then p1, ..., then p{k - 1}"\n\nprops:\n'
            f"{_props_block(names)}\n\nrule sequence:\n    machine {{\n        initial q0\n"
            f"{edges}\n        q{k} -> q{k} : else\n    }}\n")


# ---------------------------------------------------------------------------------------------
# Traces

def realistic_valuations(rng: random.Random, props: Sequence[str], n: int) -> list[frozenset[str]]:
    """Grid-world-like labels: mostly 0 or 1 true propositions, sometimes 2 or 3."""
    out = []
    for _ in range(n):
        k = rng.choices((0, 1, 2, 3), weights=(40, 40, 15, 5))[0]
        out.append(frozenset(rng.sample(list(props), min(k, len(props)))))
    return out


def dense_valuations(rng: random.Random, props: Sequence[str], n: int) -> list[frozenset[str]]:
    """Every proposition true with probability 1/2: with many propositions nearly every set is
    new, so the letter cache rarely hits (worst case for ``sg.step``)."""
    return [frozenset(p for p in props if rng.random() < 0.5) for _ in range(n)]


# ---------------------------------------------------------------------------------------------
# Tight loops (module-level functions with locals for speed)

def loop_step_letter(sg: safeguards.Safeguard, letters: list[int]) -> int:
    step = sg.step_letter
    q = sg.initial
    for letter in letters:
        q = step(q, letter)
    return q


def loop_rows(sg: safeguards.Safeguard, letters: list[int]) -> int:
    rows = sg._rows  # the list-of-lists table step_letter reads: the ceiling for a Python loop
    q = sg.initial
    for letter in letters:
        q = rows[q][letter]
    return q


def loop_step(sg: safeguards.Safeguard, valuations: list[Any]) -> int:
    step = sg.step
    q = sg.initial
    for props in valuations:
        q = step(q, props)
    return q


def loop_batch(sg: safeguards.Safeguard, batch: np.ndarray) -> np.ndarray:
    step_batch = sg.step_batch
    states = np.full(batch.shape[1], sg.initial, dtype=np.int32)
    for letters in batch:
        states = step_batch(states, letters)
    return states


def rate(fn: Callable[[], Any], count: int, repeats: int) -> dict[str, Any]:
    """Calls per second of ``fn`` (which performs ``count`` operations), over ``repeats`` runs."""
    fn()  # warm-up (fills the letter cache, as in a long-running monitor)
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    rates = [count / t for t in times]
    return {"ops": count, "median_per_s": median(rates), "best_per_s": max(rates),
            "worst_per_s": min(rates), "ns_per_op_median": 1e9 / median(rates),
            "seconds": [round(t, 6) for t in times]}


def compile_stats(text_or_path: Any, repeats: int) -> tuple[safeguards.Safeguard, dict[str, Any]]:
    times, sg = [], None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        sg = safeguards.compile(text_or_path)
        times.append(time.perf_counter() - start)
    gc.collect()
    tracemalloc.start()
    safeguards.compile(text_or_path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sg is not None
    return sg, {
        "compile_ms_median": median(times) * 1e3, "compile_ms_min": min(times) * 1e3,
        "compile_reps_ms": [round(t * 1e3, 3) for t in times],
        "peak_traced_mib": peak / 2 ** 20, "n_props": len(sg.props), "n_rules": len(sg.rules),
        "n_states": sg.n_states, "n_letters": sg.n_letters,
        "classifier_nodes": len(sg.classifier[0]), "table_bytes": int(sg.table.nbytes),
    }


def bench_spec(name: str, source: Any, cfg: dict[str, Any], seed: int,
               dense: bool = False) -> dict[str, Any]:
    sg, info = compile_stats(source, cfg["compile_reps"])
    rng = random.Random(seed)
    n, reps = cfg["n_steps"], cfg["repeats"]
    valuations = realistic_valuations(rng, sg.props, n)
    letters = [int(x) for x in sg.letters(valuations)]
    sets = [set(v) for v in valuations]
    result: dict[str, Any] = {"name": name, **info, "distinct_valuations": len(set(valuations))}
    result["step_letter"] = rate(lambda: loop_step_letter(sg, letters), n, reps)
    result["rows_inline"] = rate(lambda: loop_rows(sg, letters), n, reps)
    result["step_frozenset"] = rate(lambda: loop_step(sg, valuations), n, reps)
    result["step_set"] = rate(lambda: loop_step(sg, sets), n, reps)
    if dense:
        fresh = dense_valuations(rng, sg.props, n)
        result["dense_distinct_valuations"] = len(set(fresh))
        result["step_frozenset_dense"] = rate(lambda: loop_step(sg, fresh), n, reps)
    np_rng = np.random.default_rng(seed)
    pool = np.asarray(letters, dtype=np.int32)
    for monitors in (4096, 65536):
        steps = max(1, cfg["batch_monitor_steps"] // monitors)
        batch = pool[np_rng.integers(0, len(pool), size=(steps, monitors))]
        result[f"step_batch_{monitors}"] = rate(lambda: loop_batch(sg, batch), steps * monitors,
                                                reps)
        result[f"step_batch_{monitors}"]["batch_steps"] = steps
    return result


def letter_growth(ks: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for k in ks:
        _, info = compile_stats(sequence_machine_spec(k), 1)
        rows.append({"k": k, **info, "two_to_k": 2 ** k})
    return rows


# ---------------------------------------------------------------------------------------------
# Report

OPS = [("step_letter", "a. `step_letter(q, l)`"), ("rows_inline", "a'. inline `rows[q][l]` (ceiling)"),
       ("step_frozenset", "b. `step(q, frozenset)`"), ("step_set", "b. `step(q, set)`"),
       ("step_frozenset_dense", "b''. `step(q, frozenset)`, ~all sets new"),
       ("step_batch_4096", "c. `step_batch`, 4,096 monitors"),
       ("step_batch_65536", "c'. `step_batch`, 65,536 monitors")]


def evaluate_targets(specs: list[dict[str, Any]], wide: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, goal in TARGETS.items():
        per = {s["name"]: s[key]["median_per_s"] for s in specs if key in s}
        out[key] = {"target_per_s": goal, "per_spec_median_per_s": per,
                    "met": all(v >= goal for v in per.values())}
    out["letters_32_props"] = {
        "per_spec": {w["name"]: w["n_letters"] for w in wide},
        "met": all(w["n_letters"] < 2 ** 16 for w in wide),
        "note": "target: the number of letter classes of a 32-proposition spec is not 2^32",
    }
    return out


def markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    specs = data["specs"]
    lines = [f"# Stepping benchmark{' (quick)' if data['quick'] else ''}", "",
             f"{meta['date_utc']} · commit {meta['git_commit']} · Python {meta['python']} · "
             f"numpy {meta['numpy']} · {meta['platform']} · {meta['cpu_count']} CPUs · load "
             f"{fmt(meta['load_average_start'][0]) if meta['load_average_start'] else '?'} → "
             f"{fmt(meta['load_average_end'][0]) if meta['load_average_end'] else '?'} · "
             f"{meta['wall_seconds']} s wall", "",
             f"Rates in operations per second: median (best) of {data['config']['repeats']} "
             f"timed runs of a tight loop over {data['config']['n_steps']:,} pre-generated steps "
             "(after one warm-up run). Batched: monitor-steps per second.", ""]
    header = ["operation", "target"] + [s["name"] for s in specs]
    rows = []
    for key, label in OPS:
        if not any(key in s for s in specs):
            continue
        goal = TARGETS.get(key)
        row: list[Any] = [label, f"≥ {goal / 1e6:g} M/s" if goal else ""]
        for s in specs:
            if key not in s:
                row.append("–")
                continue
            r = s[key]
            mark = "" if goal is None else (" ✅" if r["median_per_s"] >= goal else " ❌")
            row.append(f"{r['median_per_s'] / 1e6:,.2f} M/s ({r['best_per_s'] / 1e6:,.2f})"
                       f"{mark}")
        rows.append(row)
    lines += ["## Stepping rates", "", md_table(header, rows), ""]
    lines += ["## Specs", "", md_table(
        ["spec", "props", "rules", "states", "letters", "classifier nodes", "compile ms (median)",
         "peak traced MiB", "distinct valuations in trace"],
        [[s["name"], s["n_props"], s["n_rules"], s["n_states"], s["n_letters"],
          s["classifier_nodes"], s["compile_ms_median"], s["peak_traced_mib"],
          s["distinct_valuations"]] for s in specs]), ""]
    lines += ["## d. 32 propositions", "", md_table(
        ["spec", "props", "rules", "states", "letters", "classifier nodes", "compile ms (median)",
         "compile ms (min)", "peak traced MiB", "letters ≠ 2^32"],
        [[w["name"], w["n_props"], w["n_rules"], w["n_states"], w["n_letters"],
          w["classifier_nodes"], w["compile_ms_median"], w["compile_ms_min"],
          w["peak_traced_mib"], "yes" if w["n_letters"] < 2 ** 16 else "**no**"]
         for w in data["wide"]]), ""]
    lines += ["## Letter classes of a sequence machine over k propositions "
              "(each state reads a different proposition)", "", md_table(
                  ["k", "states", "letters", "2^k", "classifier nodes", "table KiB",
                   "compile ms", "peak traced MiB"],
                  [[g["k"], g["n_states"], g["n_letters"], g["two_to_k"], g["classifier_nodes"],
                    g["table_bytes"] / 1024, g["compile_ms_median"], g["peak_traced_mib"]]
                   for g in data["letter_growth"]]), ""]
    t = data["targets"]
    rows = []
    for key, goal in TARGETS.items():
        x = t[key]
        rows.append([key, f"≥ {goal / 1e6:g} M/s",
                     ", ".join(f"{k}: {v / 1e6:.2f} M/s" for k, v in
                               x["per_spec_median_per_s"].items()),
                     "**met**" if x["met"] else "**missed**"])
    x = t["letters_32_props"]
    rows.append(["letters, 32 props", "≠ 2^32",
                 ", ".join(f"{k}: {v}" for k, v in x["per_spec"].items()),
                 "**met**" if x["met"] else "**missed**"])
    lines += ["## Targets", "", md_table(["target", "goal", "measured (median)", "verdict"], rows),
              ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny version (CI smoke test, < 20 s)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--name", default=None,
                        help="result file stem (default: step, or step_quick with --quick)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--steps", type=int, default=None, help="trace length (1,000,000)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per loop (5)")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the .md from the existing .json (no measurement)")
    args = parser.parse_args(argv)
    if args.render:
        stem = args.name or ("step_quick" if args.quick else "step")
        paths = render_only(args.out_dir, stem, markdown)
        print(f"rewrote {paths[1]} from {paths[0]}")
        return 0
    started = time.perf_counter()
    meta = metadata()  # at the start: load average, commit
    quick = args.quick
    cfg = {
        "n_steps": args.steps or (20_000 if quick else 1_000_000),
        "repeats": args.repeats or (2 if quick else 5),
        "compile_reps": 1 if quick else 5,
        "batch_monitor_steps": 1_000_000 if quick else 8_000_000,
        "growth_ks": [4, 6, 8] if quick else [4, 6, 8, 10, 12, 14],
    }
    safeguards.compile_ltl("G a")  # warm-up: builds the parser
    specs = [
        bench_spec("minecraft_safeguard3", ROOT / "specs" / "minecraft" / "safeguard3.sg", cfg,
                   args.seed),
        bench_spec("three_rules", THREE_RULES, cfg, args.seed),
        bench_spec("wide32", wide_rules_spec(), cfg, args.seed, dense=True),
    ]
    wide = []
    for name, text in (("absence32: G !(p0 | … | p31)", wide_absence_spec(32)),
                       ("wide32: 4 rules over 32 props", wide_rules_spec())):
        _, info = compile_stats(text, cfg["compile_reps"])
        wide.append({"name": name, **info})
    growth = letter_growth(cfg["growth_ks"])
    finish_metadata(meta, started)
    data = {
        "benchmark": "step", "quick": quick, "meta": meta, "config": cfg,
        "targets": evaluate_targets(specs, wide), "specs": specs, "wide": wide,
        "letter_growth": growth,
        "spec_texts": {"three_rules": THREE_RULES, "wide32": wide_rules_spec()},
    }
    name = args.name or ("step_quick" if quick else "step")
    json_path, md_path = write_results(args.out_dir, name, data, markdown(data))
    print(f"wrote {json_path} and {md_path} ({meta['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
