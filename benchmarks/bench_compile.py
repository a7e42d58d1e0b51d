#!/usr/bin/env python
"""Compile-time benchmark: native ``safeguards`` vs Spot (and LTLf2DFA + MONA when available).

Usage (from the repository root)::

    python benchmarks/bench_compile.py             # full run -> benchmarks/results/compile.{json,md}
    python benchmarks/bench_compile.py --quick     # < 20 s smoke run -> compile_quick.{json,md}
    python benchmarks/bench_compile.py --out-dir /tmp/bench --reps 3

Every formula is compiled by every competitor ``--reps`` times, the competitors interleaved and
their order rotated on each repetition, so that load spikes on a shared machine hit all of them
alike; a formula's time is the median of its repetitions.  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS, ROOT, render_only, fmt, finish_metadata, geomean, md_table, median, metadata, percentile,
    summary, write_results,
)

import safeguards  # noqa: E402
from safeguards.spec import ast  # noqa: E402
from safeguards.spec.loader import load_spec  # noqa: E402
from safeguards.spec.parser import parse_ltl  # noqa: E402
from safeguards.spec.printer import to_spot  # noqa: E402

try:
    import spot
except ImportError:  # pragma: no cover - Spot is optional
    spot = None

SPECS = ROOT / "specs"

# ---------------------------------------------------------------------------------------------
# Formula suite

FUTURE_UNARY = ("!", "X", "X[!]", "F", "G")
FUTURE_BINARY = ("&", "|", "->", "<->", "xor", "U", "R", "W", "M")
# Syntactic safety fragment in negation normal form: leaves are literals.
SAFETY_UNARY = ("X", "G")
SAFETY_BINARY = ("&", "|", "R", "W")

#: Future-only LTL equivalents of shipped specs whose rules are machines, regexes or use past
#: operators (taken from the comments of the spec files).  Specs whose rules are all future LTL
#: are converted automatically; a spec in neither is timed natively only.
HAZARD = "(creeper | basalt_lava)"
SHIPPED_EQUIVALENTS = {
    "minecraft/safeguard0.sg": f"G !{HAZARD}",
    "minecraft/safeguard1.sg": f"G !{HAZARD}",
    "minecraft/safeguard2.sg": (
        f"(!{HAZARD} & !wood) W (wood & !{HAZARD} & X("
        f"(!{HAZARD} & !work_bench) W (work_bench & !{HAZARD} & X G !creeper)))"),
    "minecraft/safeguard3.sg": (
        f"(!{HAZARD} & !wood) W (wood & !{HAZARD} & X("
        f"(!{HAZARD} & !work_bench & !iron) W ("
        f"(work_bench & !{HAZARD} & X G !creeper)"
        f" | (iron & !work_bench & !{HAZARD} & X("
        f"(!{HAZARD} & !smith_table) W (smith_table & !{HAZARD} & X G !basalt_lava))))))"),
    "patterns/no_repeat.sg": "G(bump -> X !bump)",
    "patterns/past_guard.sg": "!open W key",
    "patterns/response_bounded.sg": "G(request -> X(response | X(response | X response)))",
}


def random_formula(rng: random.Random, props: Sequence[str], size: int, unary: Sequence[str],
                   binary: Sequence[str], negate_leaves: bool = False,
                   constants: float = 0.05) -> ast.Formula:
    """A formula with exactly ``size`` operators drawn uniformly from ``unary + binary``.

    Leaves are propositions (negated with probability 1/2 if ``negate_leaves``, not counted in
    ``size``) or, with probability ``constants``, the constants true / false."""
    ops = list(unary) + list(binary)

    def leaf() -> ast.Formula:
        if rng.random() < constants:
            return ast.Const(rng.random() < 0.5)
        prop: ast.Formula = ast.Prop(rng.choice(props))
        return ast.Unary("!", prop) if negate_leaves and rng.random() < 0.5 else prop

    def build(n: int) -> ast.Formula:
        if n == 0:
            return leaf()
        op = rng.choice(ops)
        if op in unary:
            return ast.Unary(op, build(n - 1))
        left = rng.randint(0, n - 1)
        return ast.Binary(op, build(left), build(n - 1 - left))

    return build(size)


def n_operators(formula: ast.Formula) -> int:
    return sum(isinstance(node, (ast.Unary, ast.Binary)) for node in ast.walk(formula))


def to_ltlf2dfa(formula: ast.Formula) -> str:
    """Render a future LTLf formula in LTLf2DFA's syntax (``X`` strong next, ``WX`` weak next,
    no ``W`` ``M`` ``xor``: those are expanded)."""
    if isinstance(formula, ast.Const):
        return "true" if formula.value else "false"
    if isinstance(formula, ast.Prop):
        if not formula.name.replace("_", "a").isalnum() or not formula.name[0].islower() \
                or formula.name.lower() != formula.name or formula.name in ("true", "false", "last"):
            raise ValueError(f"proposition {formula.name!r} cannot be written for LTLf2DFA")
        return formula.name
    if isinstance(formula, ast.Unary):
        op = {"!": "!", "X": "WX", "X[!]": "X", "F": "F", "G": "G"}.get(formula.op)
        if op is None:
            raise ValueError(f"LTLf2DFA has no operator {formula.op}")
        return f"{op}({to_ltlf2dfa(formula.arg)})"
    assert isinstance(formula, ast.Binary)
    left, right = to_ltlf2dfa(formula.left), to_ltlf2dfa(formula.right)
    if formula.op in ("&", "|", "->", "<->", "U", "R"):
        return f"({left}) {formula.op} ({right})"
    if formula.op == "xor":
        return f"!(({left}) <-> ({right}))"
    if formula.op == "W":
        return f"(({left}) U ({right})) | G({left})"
    if formula.op == "M":
        return f"({right}) U (({left}) & ({right}))"
    raise ValueError(f"LTLf2DFA has no operator {formula.op}")


def shipped_formulas() -> tuple[list[dict[str, Any]], list[Path]]:
    """LTL equivalents of the shipped specs, and the list of all shipped spec files."""
    files = sorted(SPECS.rglob("*.sg"))
    entries = []
    for path in files:
        rel = path.relative_to(SPECS).as_posix()
        spec = load_spec(path)
        text = SHIPPED_EQUIVALENTS.get(rel)
        if text is None and spec.rules and all(
                r.kind == "ltl" and not any(isinstance(n, (ast.Unary, ast.Binary))
                                            and n.op in ast.PAST_OPS for n in ast.walk(r.body))
                for r in spec.rules):
            bodies = [to_spot(r.body) for r in spec.rules]  # type: ignore[arg-type]
            text = " & ".join(f"({b})" for b in bodies) if len(bodies) > 1 else bodies[0]
        if text is None:
            continue
        tree = parse_ltl(text)
        entries.append({"source": rel, "formula": to_spot(tree), "tree": tree})
    return entries, files


def build_suite(seed: int, per_size: int, sizes: Sequence[int], safety_per_size: int,
                safety_sizes: Sequence[int]) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    suite: list[dict[str, Any]] = []
    shipped, _ = shipped_formulas()
    for item in shipped:
        suite.append({"group": "shipped", "semantics": "finite", **item})
    for size in sizes:
        for _ in range(per_size):
            props = [f"p{i}" for i in range(rng.randint(3, 6))]
            tree = random_formula(rng, props, size, FUTURE_UNARY, FUTURE_BINARY)
            suite.append({"group": "random", "semantics": "finite", "size": size,
                          "n_props_drawn": len(props), "source": f"random(seed={seed})",
                          "formula": to_spot(tree), "tree": tree})
    from safeguards.automata.ltl import fragment

    for item in shipped:
        if fragment(item["tree"]) in ("safety", "both"):
            suite.append({"group": "shipped", "semantics": "infinite", **item})
    for size in safety_sizes:
        for _ in range(safety_per_size):
            props = [f"p{i}" for i in range(rng.randint(3, 6))]
            tree = random_formula(rng, props, size, SAFETY_UNARY, SAFETY_BINARY,
                                  negate_leaves=True)
            suite.append({"group": "random", "semantics": "infinite", "size": size,
                          "n_props_drawn": len(props), "source": f"random-safety(seed={seed})",
                          "formula": to_spot(tree), "tree": tree})
    for i, item in enumerate(suite):
        item["id"] = i
        item["ops"] = n_operators(item["tree"])
        item["props"] = len(ast.props_of(item["tree"]))
    return suite


# ---------------------------------------------------------------------------------------------
# Competitors: each runs in a child process that times itself and can be killed on a timeout

class Worker:
    """A JSON-lines child process (``_compile_worker.py`` or ``_ltlf2dfa_worker.py``); restarted
    after a timeout or a crash."""

    def __init__(self, argv: list[str], start_timeout: float = 300.0) -> None:
        self.argv = argv
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[str] | None = None
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.hello: dict[str, Any] = {}
        self.restarts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, text=True, bufsize=1,
                                        start_new_session=True)
        line = self._readline(self.start_timeout)
        if not line:
            self.kill()
            self.stderr.seek(0)
            tail = self.stderr.read().strip().splitlines()
            raise RuntimeError(tail[-1] if tail else "worker did not start")
        self.hello = json.loads(line)

    def _readline(self, timeout: float) -> str | None:
        assert self.process is not None and self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline() if ready else None

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.process is None or self.process.poll() is not None:
            self.start()
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self._readline(timeout)
        if line is None:
            self.restarts += 1
            self.kill()
            return {"ok": False, "error": f"timeout (> {timeout:g} s)", "timeout": True}
        if not line:
            self.restarts += 1
            self.kill()
            return {"ok": False, "error": "worker crashed (out of memory?)"}
        return json.loads(line)

    def kill(self) -> None:
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None

    def close(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None


def _default_ltlf2dfa_python() -> str | None:
    env = os.environ.get("SAFEGUARDS_BENCH_LTLF2DFA_PYTHON")
    if env:
        return env
    candidate = Path("/tmp/lvenv/bin/python")
    return str(candidate) if candidate.exists() else None


Competitor = Callable[[dict[str, Any]], dict[str, Any]]


def make_competitors(semantics: str, worker: Worker, have_spot: bool, ltlf2dfa: Worker | None,
                     timeout: float, mona_timeout: float) -> dict[str, Competitor]:
    """name -> function(item) returning the worker's reply (``ok``, ``seconds``, ``states``...)."""
    def in_worker(name: str) -> Competitor:
        return lambda item: worker.call({"competitor": name, "formula": item["formula"],
                                         "semantics": semantics}, timeout)

    competitors: dict[str, Competitor] = {"native": in_worker("native")}
    if have_spot:
        competitors["spot"] = in_worker("spot")
    if semantics == "finite" and ltlf2dfa is not None:
        def run_ltlf2dfa(item: dict[str, Any]) -> dict[str, Any]:
            try:
                text = to_ltlf2dfa(item["tree"])
            except ValueError as error:
                return {"ok": False, "error": str(error)}
            reply = ltlf2dfa.call({"formula": text, "timeout": mona_timeout},
                                  mona_timeout + timeout)
            if reply.get("error") == "timeout":
                reply["error"] = f"timeout (MONA > {mona_timeout:g} s)"
                reply["timeout"] = True
            if reply.get("ok"):
                reply["seconds"] = reply["total"]
            return reply
        competitors["ltlf2dfa"] = run_ltlf2dfa
    return competitors


def measure(item: dict[str, Any], competitors: dict[str, Competitor], reps: int, slow: float,
            timeouts: dict[str, float]) -> dict[str, Any]:
    """Time every competitor ``reps`` times, interleaved, rotating the order each repetition.

    A competitor stops repeating on this formula after an error, a timeout, or a run > ``slow``.
    """
    names = list(competitors)
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    stopped: dict[str, dict[str, Any]] = {}
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            if name in stopped or any(r["seconds"] > slow for r in runs[name]):
                continue
            reply = competitors[name](item)
            if reply.get("ok"):
                runs[name].append(reply)
            else:
                stopped[name] = reply
    out: dict[str, Any] = {}
    for name in names:
        done = runs[name]
        fail = stopped.get(name, {})
        out[name] = {
            "seconds": median([r["seconds"] for r in done]),
            "reps": [round(r["seconds"], 7) for r in done],
            "states": done[-1].get("states") if done else None,
            "error": None if done else fail.get("error"),
            "timed_out": not done and bool(fail.get("timeout")),
            "timeout_s": timeouts[name],
        }
        if name == "native" and done:
            out[name]["letters"] = done[-1].get("letters")
        if name == "ltlf2dfa" and done:
            out[name]["mona_seconds"] = median([r["mona"] for r in done])
    return out


def time_spec_files(files: list[Path], reps: int) -> list[dict[str, Any]]:
    rows = []
    for path in files:
        gc.collect()
        times, sg, error = [], None, None
        for _ in range(reps):
            start = time.perf_counter()
            try:
                sg = safeguards.compile(path)
            except Exception as exc:  # noqa: BLE001
                error = f"{type(exc).__name__}: {exc}"
                break
            times.append(time.perf_counter() - start)
        spec = load_spec(path)
        rows.append({
            "file": path.relative_to(SPECS).as_posix(), "rules": len(spec.rules),
            "kinds": sorted({r.kind for r in spec.rules}), "props": len(spec.props),
            "seconds": median(times), "reps": [round(t, 7) for t in times],
            "states": sg.n_states if sg else None, "letters": sg.n_letters if sg else None,
            "error": error,
        })
    return rows


# ---------------------------------------------------------------------------------------------
# Summaries

def ms(value: float | None) -> float | None:
    return None if value is None else value * 1e3


def effective(result: dict[str, Any]) -> float | None:
    """A run's time for statistics: its median, or the timeout (a lower bound) if it timed out."""
    if result["seconds"] is not None:
        return result["seconds"]
    return result["timeout_s"] if result.get("timed_out") else None


def ratio_of(results: dict[str, Any], other: str) -> float | None:
    """native / other; a timeout enters as its bound; None if both timed out or either failed."""
    mine, theirs = results["native"], results[other]
    if mine["seconds"] is None and theirs["seconds"] is None:
        return None
    a, b = effective(mine), effective(theirs)
    return None if a is None or b is None else a / b


def group_summary(label: str, items: list[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"group": label, "n_formulas": len(items)}
    for name in names:
        results = [it["results"][name] for it in items if name in it["results"]]
        stats = summary([ms(effective(r)) for r in results])
        stats["timeouts"] = sum(bool(r.get("timed_out")) for r in results)
        stats["errors"] = sum(r["seconds"] is None and not r.get("timed_out") for r in results)
        out[name + "_ms"] = stats
    for other in names:
        if other == "native":
            continue
        ratios, faster, eq, fewer, more = [], 0, 0, 0, 0
        for it in items:
            r = it["results"]
            if other not in r:
                continue
            ratio = ratio_of(r, other)
            if ratio is None:
                continue
            ratios.append(ratio)
            faster += ratio < 1
            a, b = r["native"]["states"], r[other]["states"]
            if a is not None and b is not None:
                eq += a == b
                fewer += a < b
                more += a > b
        out[f"ratio_native_over_{other}"] = {
            "n": len(ratios), "median": median(ratios), "p95": percentile(ratios, 95),
            "max": max(ratios) if ratios else None, "geomean": geomean(ratios),
            "native_faster": faster,
        }
        out[f"states_vs_{other}"] = {"equal": eq, "native_fewer": fewer, "native_more": more}
    return out


def summarize(suite: list[dict[str, Any]], names_finite: Sequence[str],
              names_infinite: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    fin = [it for it in suite if it["semantics"] == "finite"]
    inf = [it for it in suite if it["semantics"] == "infinite"]
    rnd = [it for it in fin if it["group"] == "random"]
    groups_fin = [group_summary("shipped specs (LTL equivalents)",
                                [it for it in fin if it["group"] == "shipped"], names_finite)]
    for low, high in ((5, 10), (11, 15), (16, 20), (21, 25), (26, 30)):
        chosen = [it for it in rnd if low <= it["size"] <= high]
        if chosen:
            groups_fin.append(group_summary(f"random, {low}–{high} operators", chosen, names_finite))
    groups_fin.append(group_summary("all random", rnd, names_finite))
    groups_fin.append(group_summary("typical: ≤ 15 operators (shipped + random)",
                                    [it for it in fin if it["ops"] <= 15], names_finite))
    groups_fin.append(group_summary("all finite", fin, names_finite))
    rinf = [it for it in inf if it["group"] == "random"]
    groups_inf = [group_summary("shipped specs (safety LTL equivalents)",
                                [it for it in inf if it["group"] == "shipped"], names_infinite)]
    for low, high in ((5, 15), (16, 30)):
        chosen = [it for it in rinf if low <= it["size"] <= high]
        if chosen:
            groups_inf.append(group_summary(f"random safety, {low}–{high} operators", chosen,
                                            names_infinite))
    groups_inf.append(group_summary("typical: ≤ 15 operators (shipped + random)",
                                    [it for it in inf if it["ops"] <= 15], names_infinite))
    groups_inf.append(group_summary("all infinite (safety)", inf, names_infinite))
    return {"finite": groups_fin, "infinite": groups_inf}


def targets(suite: list[dict[str, Any]], have_spot: bool) -> dict[str, Any]:
    """Issue target: a typical spec (≤ 15 operators) compiles in < 5 ms, within 20x of Spot."""
    out: dict[str, Any] = {}
    for semantics in ("finite", "infinite"):
        typical = [it for it in suite if it["semantics"] == semantics and it["ops"] <= 15]
        times = [ms(effective(it["results"]["native"])) for it in typical]
        times = [t for t in times if t is not None]
        ratios = [ratio_of(it["results"], "spot") for it in typical] if have_spot else []
        ratios = [r for r in ratios if r is not None]
        med, rmed = median(times), median(ratios)
        out[semantics] = {
            "n_formulas": len(typical),
            "native_median_ms": med, "native_p95_ms": percentile(times, 95),
            "native_max_ms": max(times) if times else None,
            "share_under_5ms": (sum(t < 5 for t in times) / len(times)) if times else None,
            "median_ratio_native_over_spot": rmed, "p95_ratio": percentile(ratios, 95),
            "share_within_20x": (sum(r <= 20 for r in ratios) / len(ratios)) if ratios else None,
            "met_under_5ms_median": med is not None and med < 5,
            "met_within_20x_median": rmed is not None and rmed <= 20,
            "met_every_formula": bool(times) and all(t < 5 for t in times)
            and (not have_spot or (bool(ratios) and all(r <= 20 for r in ratios))),
        }
        out[semantics]["met"] = (out[semantics]["met_under_5ms_median"]
                                 and (not have_spot or out[semantics]["met_within_20x_median"]))
    return out


# ---------------------------------------------------------------------------------------------
# Report

LABELS = {"native": "native", "spot": "Spot", "ltlf2dfa": "LTLf2DFA+MONA"}


def markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    lines = [f"# Compile-time benchmark{' (quick)' if data['quick'] else ''}", "",
             f"{meta['date_utc']} · commit {meta['git_commit']} · Python {meta['python']} · "
             f"Spot {meta['spot']} · {meta['platform']} · {meta['cpu_count']} CPUs · load "
             f"{fmt(meta['load_average_start'][0]) if meta['load_average_start'] else '?'} → "
             f"{fmt(meta['load_average_end'][0]) if meta['load_average_end'] else '?'} · "
             f"{meta['wall_seconds']} s wall", "",
             f"Times in **ms**, per formula the median of {data['config']['reps']} interleaved "
             "repetitions; group columns are the median / p95 / max over formulas. "
             "Ratio = native time / competitor time on the same formula (median over formulas; "
             "< 1 means native is faster). A run that exceeds the timeout "
             f"({data['config']['timeout_s']:g} s) enters the statistics as the timeout (a lower "
             "bound). States: formulas where native has the same / fewer / more states than the "
             "competitor (Spot completed with a sink; native = Spot − 1 is expected under finite "
             "semantics, see README).", ""]
    comp = data["competitors"]
    lines.append("Competitors: " + "; ".join(
        f"{LABELS.get(k, k)}: " + ("yes" + (f" ({v['version']})" if v.get("version") else "")
                                   if v["available"] else f"not run ({v['reason']})")
        for k, v in comp.items()))
    lines.append("")
    t = data["targets"]
    lines += ["## Target: typical spec (≤ 15 operators) compiles in < 5 ms, within 20× of Spot", ""]
    rows = []
    for sem in ("finite", "infinite"):
        x = t[sem]
        rows.append([sem, x["n_formulas"], x["native_median_ms"], x["native_p95_ms"],
                     None if x["share_under_5ms"] is None else 100 * x["share_under_5ms"],
                     x["median_ratio_native_over_spot"], x["p95_ratio"],
                     None if x["share_within_20x"] is None else 100 * x["share_within_20x"],
                     "**met**" if x["met"] else "**missed**",
                     "yes" if x["met_every_formula"] else "no"])
    lines.append(md_table(["semantics", "formulas", "native median ms", "native p95 ms",
                           "% < 5 ms", "median ratio vs Spot", "p95 ratio", "% within 20×",
                           "target (medians)", "every formula"], rows))
    lines.append("")
    for sem, title in (("finite", "Finite semantics (LTLf)"),
                       ("infinite", "Infinite semantics, safety fragment (monitor)")):
        groups = data["groups"][sem]
        names = [n for n in data["competitor_order"][sem]]
        lines += [f"## {title}: compile time (ms)", ""]
        header = ["group", "n"]
        for n in names:
            header += [f"{LABELS[n]} median", f"{LABELS[n]} p95", f"{LABELS[n]} max"]
        header.append("timeouts / errors (" + ", ".join(LABELS[n] for n in names) + ")")
        rows = []
        for g in groups:
            row: list[Any] = [g["group"], g["n_formulas"]]
            for n in names:
                row += [g[n + "_ms"]["median"], g[n + "_ms"]["p95"], g[n + "_ms"]["max"]]
            row.append(", ".join(f"{g[n + '_ms']['timeouts']}/{g[n + '_ms']['errors']}"
                                 for n in names))
            rows.append(row)
        lines += [md_table(header, rows), ""]
        others = [n for n in names if n != "native"]
        if others:
            lines += [f"## {title}: ratios and state counts", ""]
            header = ["group"]
            for n in others:
                header += [f"ratio vs {LABELS[n]}: median", "p95", "max", "geomean",
                           "native faster", f"states =/</> {LABELS[n]}"]
            rows = []
            for g in groups:
                row = [g["group"]]
                for n in others:
                    r, s = g[f"ratio_native_over_{n}"], g[f"states_vs_{n}"]
                    row += [r["median"], r["p95"], r["max"], r["geomean"],
                            f"{r['native_faster']}/{r['n']}",
                            f"{s['equal']}/{s['native_fewer']}/{s['native_more']}"]
                rows.append(row)
            lines += [md_table(header, rows), ""]
    lines += ["## Shipped spec files: `safeguards.compile(path)` (native only)", ""]
    rows = [[f"`{r['file']}`", r["rules"], ", ".join(r["kinds"]), r["props"], ms(r["seconds"]),
             r["states"], r["letters"], r["error"] or ""] for r in data["spec_files"]]
    files_ms = [ms(r["seconds"]) for r in data["spec_files"] if r["seconds"] is not None]
    rows.append(["**median / p95 / max**", "", "", "",
                 f"{fmt(median(files_ms))} / {fmt(percentile(files_ms, 95))} / "
                 f"{fmt(max(files_ms) if files_ms else None)}", "", "", ""])
    lines += [md_table(["file", "rules", "kinds", "props", "compile ms", "states", "letters",
                        "error"], rows), ""]
    shipped = [it for it in data["formulas"] if it["group"] == "shipped"]
    if shipped:
        lines += ["## Shipped specs: LTL equivalents, per formula (ms)", ""]
        rows = []
        for it in shipped:
            r = it["results"]
            row = [f"`{it['source']}`", it["semantics"], it["ops"], ms(r["native"]["seconds"])]
            row += [ms(r["spot"]["seconds"]) if "spot" in r else None]
            row += [ratio_of(r, "spot") if "spot" in r else None]
            row += [ms(r["ltlf2dfa"]["seconds"]) if "ltlf2dfa" in r else None]
            row += [f"{r['native']['states']} / "
                    f"{r['spot']['states'] if 'spot' in r else '–'} / "
                    f"{r['ltlf2dfa']['states'] if 'ltlf2dfa' in r else '–'}"]
            rows.append(row)
        lines += [md_table(["spec", "semantics", "ops", "native", "Spot", "ratio",
                            "LTLf2DFA+MONA", "states native / Spot / LTLf2DFA"], rows), ""]
    def cell(result: dict[str, Any]) -> Any:
        if result["seconds"] is None and result.get("timed_out"):
            return f"timeout (> {ms(result['timeout_s']):,.0f})"
        return ms(result["seconds"]) if result["seconds"] is not None else "error"

    ranked = sorted((it for it in data["formulas"] if effective(it["results"]["native"])),
                    key=lambda it: -effective(it["results"]["native"]))[:10]
    lines += ["## Slowest formulas for the native compiler", ""]
    rows = []
    for it in ranked:
        r = it["results"]
        text = it["formula"] if len(it["formula"]) <= 90 else it["formula"][:87] + "..."
        rows.append([it["id"], it["semantics"], it["ops"], cell(r["native"]),
                     cell(r["spot"]) if "spot" in r else None,
                     r["native"]["states"], r["native"].get("letters"),
                     "`" + text.replace("|", "\\|") + "`"])
    lines += [md_table(["id", "semantics", "ops", "native ms", "Spot ms", "states", "letters",
                        "formula"], rows), ""]
    worst = sorted((it for it in data["formulas"] if "spot" in it["results"]
                    and ratio_of(it["results"], "spot") is not None),
                   key=lambda it: -ratio_of(it["results"], "spot"))[:10]
    lines += ["## Worst ratios native / Spot", ""]
    rows = []
    for it in worst:
        r = it["results"]
        text = it["formula"] if len(it["formula"]) <= 90 else it["formula"][:87] + "..."
        rows.append([it["id"], it["semantics"], it["ops"], ratio_of(r, "spot"), cell(r["native"]),
                     cell(r["spot"]), "`" + text.replace("|", "\\|") + "`"])
    lines += [md_table(["id", "semantics", "ops", "ratio", "native ms", "Spot ms", "formula"],
                       rows), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny suite (CI smoke test, < 20 s)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--name", default=None,
                        help="result file stem (default: compile, or compile_quick with --quick)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per formula (5)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--per-size", type=int, default=None,
                        help="random finite formulas per size 5..30 (5)")
    parser.add_argument("--safety-per-size", type=int, default=None,
                        help="random safety formulas per size 5..30 (3)")
    parser.add_argument("--ltlf2dfa-python", default="auto",
                        help="interpreter with ltlf2dfa installed ('none' to skip; default: "
                             "$SAFEGUARDS_BENCH_LTLF2DFA_PYTHON or /tmp/lvenv/bin/python)")
    parser.add_argument("--mona-timeout", type=float, default=20.0, help="seconds per MONA call")
    parser.add_argument("--slow", type=float, default=3.0,
                        help="stop repeating a competitor on a formula once one run took longer")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds before a native or Spot run is killed (counted as timeout)")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the .md from the existing .json (no measurement)")
    args = parser.parse_args(argv)
    if args.render:
        stem = args.name or ("compile_quick" if args.quick else "compile")
        paths = render_only(args.out_dir, stem, markdown)
        print(f"rewrote {paths[1]} from {paths[0]}")
        return 0
    started = time.perf_counter()
    meta = metadata()  # at the start: load average, commit
    quick = args.quick
    reps = args.reps or (3 if quick else 5)
    if quick:
        sizes, per_size = (5, 10, 15), args.per_size or 1
        safety_sizes, safety_per = (5, 12), args.safety_per_size or 1
    else:
        sizes, per_size = tuple(range(5, 31)), args.per_size or 5
        safety_sizes, safety_per = tuple(range(5, 31)), args.safety_per_size or 3
    name = args.name or ("compile_quick" if quick else "compile")

    competitors_info: dict[str, dict[str, Any]] = {
        "native": {"available": True, "version": safeguards.__version__},
        "spot": ({"available": True, "version": spot.version()} if spot is not None
                 else {"available": False, "reason": "import spot failed (pip install spottl)"}),
    }
    worker = Worker([sys.executable, str(Path(__file__).resolve().parent / "_compile_worker.py")])
    worker.start()
    have_spot = bool(worker.hello.get("spot"))
    if spot is None or not have_spot:
        competitors_info["spot"] = {"available": False,
                                    "reason": "import spot failed (pip install spottl)"}
    ltlf2dfa = None
    python = _default_ltlf2dfa_python() if args.ltlf2dfa_python == "auto" else args.ltlf2dfa_python
    if python in (None, "none"):
        competitors_info["ltlf2dfa"] = {
            "available": False, "reason": "no interpreter with ltlf2dfa given (see README)"}
    else:
        try:
            ltlf2dfa = Worker([python, str(Path(__file__).resolve().parent
                                           / "_ltlf2dfa_worker.py")], start_timeout=60)
            ltlf2dfa.start()
            competitors_info["ltlf2dfa"] = {"available": True,
                                            "version": ltlf2dfa.hello.get("version"),
                                            "python": python, "mona_timeout_s": args.mona_timeout}
        except Exception as error:  # noqa: BLE001
            ltlf2dfa = None
            competitors_info["ltlf2dfa"] = {"available": False,
                                            "reason": f"{type(error).__name__}: {error}"}

    suite = build_suite(args.seed, per_size, sizes, safety_per, safety_sizes)
    comps = {sem: make_competitors(sem, worker, have_spot, ltlf2dfa, args.timeout,
                                   args.mona_timeout) for sem in ("finite", "infinite")}
    timeouts = {"native": args.timeout, "spot": args.timeout,
                "ltlf2dfa": args.mona_timeout + args.timeout}
    total = len(suite)
    for i, item in enumerate(suite):
        item["results"] = measure(item, comps[item["semantics"]], reps, args.slow, timeouts)
        if not quick and (i + 1) % 10 == 0:
            print(f"  {i + 1}/{total} formulas ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)
    restarts = {"compile_worker": worker.restarts}
    worker.close()
    if ltlf2dfa is not None:
        restarts["ltlf2dfa_worker"] = ltlf2dfa.restarts
        ltlf2dfa.close()
    safeguards.compile_ltl("G(a -> X b) & F c")  # warm up this process for the spec files
    spec_files = time_spec_files(shipped_formulas()[1], reps)

    order = {sem: list(comps[sem]) for sem in comps}
    formulas = [{k: v for k, v in it.items() if k != "tree"} for it in suite]
    finish_metadata(meta, started)
    data = {
        "benchmark": "compile", "quick": quick, "meta": meta,
        "config": {"reps": reps, "seed": args.seed, "sizes": list(sizes), "per_size": per_size,
                   "safety_sizes": list(safety_sizes), "safety_per_size": safety_per,
                   "slow_cutoff_s": args.slow, "timeout_s": args.timeout,
                   "mona_timeout_s": args.mona_timeout, "worker_restarts": restarts,
                   "timer": "time.perf_counter, inside the worker process",
                   "spot_finite_route": "to_finite(translate(from_ltlf(f), 'buchi', 'sbacc', "
                                        "'deterministic'))",
                   "spot_infinite_route": "translate(f, 'monitor', 'det')",
                   "native_finite": "safeguards.compile_ltl(f)",
                   "native_infinite": "safeguards.compile_ltl(f, semantics='infinite')"},
        "competitors": competitors_info, "competitor_order": order,
        "n_formulas": {"finite": sum(it["semantics"] == "finite" for it in suite),
                       "infinite": sum(it["semantics"] == "infinite" for it in suite),
                       "spec_files": len(spec_files)},
        "targets": targets(suite, have_spot),
        "groups": summarize(suite, order["finite"], order["infinite"]),
        "spec_files": spec_files,
        "formulas": formulas,
    }
    json_path, md_path = write_results(args.out_dir, name, data, markdown(data))
    print(f"wrote {json_path} and {md_path} ({meta['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
