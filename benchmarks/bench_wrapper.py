#!/usr/bin/env python
"""Wrapper benchmark: what a safeguard costs an environment step.

Usage (from the repository root)::

    python benchmarks/bench_wrapper.py            # full run -> benchmarks/results/wrapper.{json,md}
    python benchmarks/bench_wrapper.py --quick    # < 15 s smoke run -> wrapper_quick.{json,md}

(a) Per-step overhead of :class:`~safeguards.gym.SafeguardWrapper` over the raw environment, as a
ratio measured in one run with interleaved repetitions (raw, wrapped; then wrapped, raw; ...):
MiniGrid ``LavaGapS7`` with a grid labeler and ``G !lava``, the same with a 3-rule spec, and a
trivial environment whose ``step`` returns constants.  Target: at most 15 % on MiniGrid.

(b) Vector throughput: the safeguard's cost per env-step, ``(time with wrapper - time without)
/ env-steps``, for 1, 8 and 64 copies of the trivial environment in a ``SyncVectorEnv``, for
:class:`~safeguards.gym.vector.SafeguardVectorWrapper` (and, for comparison, one
``SafeguardWrapper`` per sub-environment).  Target: at most 3 µs per env-step at 64 envs.
See ``benchmarks/README.md`` for the shared methodology.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import SyncVectorEnv

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS, finish_metadata, fmt, md_table, median, metadata, summary, write_results,
)

import safeguards  # noqa: E402
from safeguards.gym import SafeguardWrapper  # noqa: E402
from safeguards.gym.vector import SafeguardVectorWrapper  # noqa: E402
from safeguards.labels import labeler  # noqa: E402

TARGETS = {"minigrid_overhead_pct": 15.0, "vector_us_per_env_step_64": 3.0}

THREE_RULES = """spec lava_gap3 "Three rules on LavaGap: no lava, reach the goal, no spinning."
props:
    lava "the agent stands on lava"
    goal "the agent stands on the goal"
    turn "the agent turned left or right"
rule no_lava (penalty = 2.0): ltl G !lava
rule reach_goal (penalty = 0.5): ltl F goal
rule no_spinning: never turn ; turn ; turn ; turn
"""


class Constant(gym.Env):
    """The trivial environment: ``step`` returns constants (never ends)."""

    metadata = {"render_modes": []}
    observation_space = spaces.Box(0.0, 1.0, (4,), np.float32)
    action_space = spaces.Discrete(16)
    _obs = np.zeros(4, np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self._obs, {}

    def step(self, action: Any):
        return self._obs, 0.0, False, False, {}


@labeler("lava", "goal", "turn")
def action_labeler(obs: Any, info: Any, action: Any) -> set[str]:
    """Trivial env: ``lava`` on action 0, ``goal`` on 1, ``turn`` on 2 and 3 (of 16)."""
    if action is None or action > 3:
        return set()
    return {"lava"} if action == 0 else {"goal"} if action == 1 else {"turn"}


def grid_labeler(env: gym.Env) -> Any:
    """MiniGrid: ``lava`` / ``goal`` when the grid cell under the agent is Lava / Goal; ``turn``
    when the action was left or right."""
    from minigrid.core.world_object import Goal, Lava

    base = env.unwrapped

    @labeler("lava", "goal", "turn")
    def under_agent(obs: Any, info: Any, action: Any) -> set[str]:
        cell = base.grid.get(*base.agent_pos)
        true = {"lava"} if isinstance(cell, Lava) else {"goal"} if isinstance(cell, Goal) \
            else set()
        if action is not None and action < 2:
            true.add("turn")
        return true
    return under_agent


# -- timing ------------------------------------------------------------------------------------
CLOCKS = ("cpu", "wall")


def _clocks() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def _elapsed(start: tuple[float, float]) -> dict[str, float]:
    cpu, wall = _clocks()
    return {"cpu": cpu - start[0], "wall": wall - start[1]}


def interleaved(fns: dict[str, Callable[[], dict[str, Any]]], reps: int
                ) -> dict[str, list[dict[str, Any]]]:
    """Run every function once per repetition, rotating the order; one untimed warm-up each."""
    names = list(fns)
    for name in names:
        fns[name]()
    # Objects alive now (modules, envs, caches) go to the permanent generation: the collections
    # between runs stay cheap, and the same for every contestant.
    gc.collect()
    gc.freeze()
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            gc.collect()
            out[name].append(fns[name]())
    gc.unfreeze()
    return out


def _series(runs: list[dict[str, Any]], clock: str) -> list[float]:
    return [run[clock] for run in runs]


# -- (a) single environment --------------------------------------------------------------------
def run_single(env: gym.Env, actions: Sequence[int], seed: int) -> dict[str, Any]:
    """Time ``actions`` on ``env`` (reset when an episode ends); also counts episodes."""
    env.reset(seed=seed)
    step, reset = env.step, env.reset
    episodes = 0
    start = _clocks()
    for action in actions:
        _, _, terminated, truncated, _ = step(action)
        if terminated or truncated:
            reset()
            episodes += 1
    return {**_elapsed(start), "episodes": episodes}


def bench_single(name: str, make_env: Callable[[], gym.Env], spec_name: str, spec: str,
                 make_labeler: Callable[[gym.Env], Any], steps: int, reps: int,
                 seed: int) -> dict[str, Any]:
    sg = safeguards.compile(spec) if "\n" in spec else safeguards.compile_ltl(spec)
    raw = make_env()
    inner = make_env()
    wrapped = SafeguardWrapper(inner, sg, make_labeler(inner))
    actions = np.random.default_rng(seed).integers(0, raw.action_space.n, size=steps).tolist()
    runs = interleaved({"raw": lambda: run_single(raw, actions, seed),
                        "wrapped": lambda: run_single(wrapped, actions, seed)}, reps)
    episodes = {run["episodes"] for run in runs["raw"] + runs["wrapped"]}
    assert len(episodes) == 1, "the wrapper changed the trajectory"
    result: dict[str, Any] = {
        "name": name, "spec": spec_name, "rules": len(sg.rules), "states": sg.n_states,
        "steps": steps, "reps": reps, "episodes_per_run": episodes.pop()}
    for clock in CLOCKS:
        t_raw, t_wrapped = _series(runs["raw"], clock), _series(runs["wrapped"], clock)
        ratios = [w / r for w, r in zip(t_wrapped, t_raw)]
        result[clock] = {
            "raw_us_per_step": median(t_raw) / steps * 1e6,
            "wrapped_us_per_step": median(t_wrapped) / steps * 1e6,
            "ratio": summary(ratios), "overhead_pct": (median(ratios) - 1) * 100,
            "ratio_of_min": min(t_wrapped) / min(t_raw),
            "overhead_pct_of_min": (min(t_wrapped) / min(t_raw) - 1) * 100,
            "overhead_us_per_step": median([(w - r) / steps * 1e6
                                            for w, r in zip(t_wrapped, t_raw)]),
            "raw_seconds": [round(t, 6) for t in t_raw],
            "wrapped_seconds": [round(t, 6) for t in t_wrapped]}
    return result


# -- (b) vector throughput ---------------------------------------------------------------------
def run_vector(envs: gym.vector.VectorEnv, actions: np.ndarray, seed: int) -> dict[str, Any]:
    envs.reset(seed=seed)
    step = envs.step
    start = _clocks()
    for row in actions:
        step(row)
    return _elapsed(start)


def _wrapped_constant(sg: safeguards.Safeguard) -> gym.Env:
    return SafeguardWrapper(Constant(), sg, action_labeler)


def bench_vector(spec_name: str, spec: str, n_envs: int, env_steps: int, max_steps: int,
                 reps: int, seed: int) -> dict[str, Any]:
    sg = safeguards.compile(spec) if "\n" in spec else safeguards.compile_ltl(spec)
    steps = min(max_steps, max(1, env_steps // n_envs))
    actions = np.random.default_rng(seed).integers(0, 16, size=(steps, n_envs))
    raw = SyncVectorEnv([Constant] * n_envs)
    vector = SafeguardVectorWrapper(SyncVectorEnv([Constant] * n_envs), sg, action_labeler)
    singles = SyncVectorEnv([lambda: _wrapped_constant(sg)] * n_envs)
    runs = interleaved({"raw": lambda: run_vector(raw, actions, seed),
                        "vector": lambda: run_vector(vector, actions, seed),
                        "singles": lambda: run_vector(singles, actions, seed)}, reps)
    total = steps * n_envs
    result: dict[str, Any] = {"spec": spec_name, "n_envs": n_envs, "vector_steps": steps,
                              "env_steps": total, "reps": reps}
    for clock in CLOCKS:
        series = {key: _series(value, clock) for key, value in runs.items()}

        def cost(key: str) -> list[float]:
            return [(t - r) / total * 1e6 for t, r in zip(series[key], series["raw"])]

        result[clock] = {
            "raw_us_per_env_step": median(series["raw"]) / total * 1e6,
            "vector_us_per_env_step": median(series["vector"]) / total * 1e6,
            "singles_us_per_env_step": median(series["singles"]) / total * 1e6,
            "vector_cost_us_per_env_step": median(cost("vector")),
            "vector_cost": summary(cost("vector")),
            "vector_cost_of_min_us_per_env_step": (min(series["vector"]) - min(series["raw"]))
            / total * 1e6,
            "singles_cost_us_per_env_step": median(cost("singles")),
            "seconds": {key: [round(t, 6) for t in value] for key, value in series.items()}}
    return result


def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


# -- report ------------------------------------------------------------------------------------
def evaluate_targets(single: list[dict[str, Any]], vector: list[dict[str, Any]]
                     ) -> dict[str, Any]:
    """Targets judged on CPU time (the wall-clock figures are recorded alongside)."""
    out: dict[str, Any] = {}
    for key, rows, pick in (
            ("minigrid_overhead_pct", [r for r in single if r["name"].startswith("minigrid")],
             lambda r, clock: r[clock]["overhead_pct"]),
            ("vector_us_per_env_step_64", [r for r in vector if r["n_envs"] == 64],
             lambda r, clock: r[clock]["vector_cost_us_per_env_step"])):
        measured = {r["spec"]: pick(r, "cpu") for r in rows}
        out[key] = {"goal": TARGETS[key], "clock": "cpu", "measured": measured,
                    "measured_wall": {r["spec"]: pick(r, "wall") for r in rows},
                    "met": bool(measured) and all(v <= TARGETS[key] for v in measured.values())}
    return out


def markdown(data: dict[str, Any]) -> str:
    meta, cfg = data["meta"], data["config"]
    lines = [f"# Wrapper benchmark{' (quick)' if data['quick'] else ''}", "",
             f"{meta['date_utc']} · commit {meta['git_commit']} · Python {meta['python']} · "
             f"numpy {meta['numpy']} · gymnasium {meta['gymnasium']} · minigrid "
             f"{meta['minigrid']} · {meta['platform']} · {meta['cpu_count']} CPUs · load "
             f"{fmt(meta['load_average_start'][0]) if meta['load_average_start'] else '?'} → "
             f"{fmt(meta['load_average_end'][0]) if meta['load_average_end'] else '?'} · "
             f"{meta['wall_seconds']} s wall", "",
             "Times are the CPU time of the benchmark process (`time.process_time`), which a "
             "busy shared machine disturbs less than wall-clock time; the wall-clock columns "
             "(and every repetition of both clocks, in the JSON) are there for comparison.", ""]
    lines += ["## a. SafeguardWrapper vs the raw environment (one env)", "",
              f"{cfg['single_steps']:,} pre-generated random actions per run on MiniGrid, "
              f"{cfg['trivial_steps']:,} on the trivial env (reset when an episode ends), "
              f"{cfg['single_reps']} interleaved repetitions after a warm-up; ratio = wrapped "
              "time ÷ raw time of the same repetition (median, and p95 over repetitions); "
              "overhead in µs = median of the per-repetition differences; *best runs* compares "
              "the fastest run of each (as `timeit` does).", "",
              md_table(["environment", "spec", "raw µs/step", "wrapped µs/step", "ratio (median)",
                        "ratio (p95)", "overhead", "overhead µs/step", "overhead, best runs",
                        "overhead (wall)", "episodes/run"],
                       [[r["name"], r["spec"], r["cpu"]["raw_us_per_step"],
                         r["cpu"]["wrapped_us_per_step"], r["cpu"]["ratio"]["median"],
                         r["cpu"]["ratio"]["p95"], f"{r['cpu']['overhead_pct']:.1f} %",
                         r["cpu"]["overhead_us_per_step"],
                         f"{r['cpu']['overhead_pct_of_min']:.1f} %",
                         f"{r['wall']['overhead_pct']:.1f} %",
                         r["episodes_per_run"]] for r in data["single"]]), ""]
    lines += ["## b. Vector throughput (trivial env, SyncVectorEnv)", "",
              f"{cfg['vector_env_steps']:,} env-steps per run (at most "
              f"{cfg['vector_max_steps']:,} vector steps), {cfg['vector_reps']} "
              "interleaved repetitions after a warm-up. Safeguard cost = (time with wrapper − "
              "time without) ÷ env-steps, median over repetitions (*best runs*: fastest run of "
              "each). *vector*: "
              "`SafeguardVectorWrapper(SyncVectorEnv([env] * n))`; *per-env wrappers*: "
              "`SyncVectorEnv([SafeguardWrapper(env)] * n)`.", "",
              md_table(["spec", "envs", "raw µs/env-step", "vector µs/env-step",
                        "safeguard cost, vector (µs/env-step)", "p95", "best runs",
                        "cost (wall)", "safeguard cost, per-env wrappers (µs/env-step)"],
                       [[r["spec"], r["n_envs"], r["cpu"]["raw_us_per_env_step"],
                         r["cpu"]["vector_us_per_env_step"],
                         r["cpu"]["vector_cost_us_per_env_step"], r["cpu"]["vector_cost"]["p95"],
                         r["cpu"]["vector_cost_of_min_us_per_env_step"],
                         r["wall"]["vector_cost_us_per_env_step"],
                         r["cpu"]["singles_cost_us_per_env_step"]]
                        for r in data["vector"]]), ""]
    t = data["targets"]
    rows = [["SafeguardWrapper overhead on MiniGrid LavaGapS7",
             f"≤ {TARGETS['minigrid_overhead_pct']:g} %",
             ", ".join(f"{k}: {v:.1f} %" for k, v in t["minigrid_overhead_pct"]
                       ["measured"].items()),
             ", ".join(f"{k}: {v:.1f} %" for k, v in t["minigrid_overhead_pct"]
                       ["measured_wall"].items()),
             "**met**" if t["minigrid_overhead_pct"]["met"] else "**missed**"],
            ["vector safeguard cost at 64 envs", f"≤ {TARGETS['vector_us_per_env_step_64']:g} µs"
             " per env-step", ", ".join(f"{k}: {v:.2f} µs" for k, v in
                                        t["vector_us_per_env_step_64"]["measured"].items()),
             ", ".join(f"{k}: {v:.2f} µs" for k, v in
                       t["vector_us_per_env_step_64"]["measured_wall"].items()),
             "**met**" if t["vector_us_per_env_step_64"]["met"] else "**missed**"]]
    lines += ["## Targets", "", md_table(["target", "goal", "measured (median, CPU)", "wall",
                                          "verdict"], rows), ""]
    lines += ["Labelers: MiniGrid reads the grid cell under the agent (`lava`, `goal`) and the "
              "action (`turn` = left/right); the trivial env labels by action (`lava` on 0, "
              "`goal` on 1, `turn` on 2–3 of 16 actions), so `G !lava` is violated on 1/16 of "
              "the steps (the safeguard then restarts: `after_violation=\"reset\"`). Both are "
              "`safeguards.labels.labeler` functions. Reward mode `task`, observe `dict`; the "
              "3-rule spec is in the JSON (`spec_texts`).", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny version (CI smoke test, < 15 s)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--name", default=None,
                        help="result file stem (default: wrapper, or wrapper_quick with --quick)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reps", type=int, default=None, help="interleaved repetitions (21)")
    parser.add_argument("--steps", type=int, default=None,
                        help="single-env steps per run (MiniGrid 1,000; trivial env 10x)")
    parser.add_argument("--env-steps", type=int, default=None,
                        help="vector env-steps per run (64,000)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    meta = metadata({"gymnasium": gym.__version__, "minigrid": _version("minigrid")})
    quick = args.quick
    reps = args.reps or (3 if quick else 21)
    single_steps = args.steps or (200 if quick else 1_000)
    cfg = {"single_steps": single_steps, "trivial_steps": single_steps * 10,
           "single_reps": reps, "vector_env_steps": args.env_steps or
           (3_200 if quick else 64_000), "vector_reps": reps, "seed": args.seed,
           "vector_max_steps": 200 if quick else 4_000, "vector_envs": [1, 8, 64]}

    single = []
    try:
        import minigrid  # noqa: F401

        def lava_gap() -> gym.Env:
            return gym.make("MiniGrid-LavaGapS7-v0")

        single.append(bench_single("minigrid LavaGapS7", lava_gap, "G !lava", "G !lava",
                                   grid_labeler, single_steps, reps, args.seed))
        single.append(bench_single("minigrid LavaGapS7", lava_gap, "3 rules", THREE_RULES,
                                   grid_labeler, single_steps, reps, args.seed))
    except ImportError:
        print("minigrid is not installed: skipping the MiniGrid rows", file=sys.stderr)
    for spec_name, spec in (("G !lava", "G !lava"), ("3 rules", THREE_RULES)):
        single.append(bench_single("trivial", Constant, spec_name, spec,
                                   lambda env: action_labeler, cfg["trivial_steps"], reps,
                                   args.seed))
    vector = []
    for spec_name, spec in (("G !lava", "G !lava"), ("3 rules", THREE_RULES)):
        for n in cfg["vector_envs"]:
            vector.append(bench_vector(spec_name, spec, n, cfg["vector_env_steps"],
                                       cfg["vector_max_steps"], reps, args.seed))

    finish_metadata(meta, started)
    data = {"benchmark": "wrapper", "quick": quick, "meta": meta, "config": cfg,
            "targets": evaluate_targets(single, vector), "single": single, "vector": vector,
            "spec_texts": {"three_rules": THREE_RULES}}
    name = args.name or ("wrapper_quick" if quick else "wrapper")
    json_path, md_path = write_results(args.out_dir, name, data, markdown(data))
    print(f"wrote {json_path} and {md_path} ({meta['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
