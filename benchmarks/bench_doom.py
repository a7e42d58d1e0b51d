#!/usr/bin/env python
"""Doom benchmark: what the safeguard costs the VizDoom environment, and the training runs.

Usage (from the repository root)::

    python benchmarks/bench_doom.py                     # -> benchmarks/results/doom.{json,md}
    python benchmarks/bench_doom.py --runs runs/doom    # also summarise a `safeguards
                                                        # curriculum doom` run directory
    python benchmarks/bench_doom.py --quick             # smoke run -> doom_quick.{json,md}

(a) Environment throughput of ``safeguards/DoomSafeRL-v0`` (60 x 80 RGB observations, 4 game
tics per step) stepped with one pre-generated random action sequence (reset when an episode
ends), three ways, interleaved in one process (``bench_wrapper.interleaved``: every variant once
per repetition, the order rotating, after an untimed warm-up):

* ``raw``: the environment;
* ``safeguard``: ``SafeguardWrapper(env, doom/safeguard2, DoomLabeler, observe="dict")``;
* ``training stack``: what the PPO learner steps (:func:`safeguards.learn.deep_envs.product_env`:
  the final-spec monitor, the safeguard with the violation penalty, the padded state).

The wrappers are built with ``terminate_on_violation=False`` so that all three follow the same
trajectory (checked: same number of episodes).  Steps/s = steps / median time of a repetition;
the ratio is taken per repetition (wrapped time / raw time of the same repetition), median.

(b) With ``--runs DIR``: for every run directory under DIR (``result.json`` of the PPO learner),
agent steps, training time, agent steps per second of training (environment, safeguard and PPO
updates together), training violations per stage, the task return and final-spec violation
rate of the episodes that ended in the last 10 % of the agent steps, and the greedy /
stochastic test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS, finish_metadata, fmt, md_table, median, metadata, summary, write_results,
)
from bench_wrapper import interleaved, run_single  # noqa: E402

from safeguards.gym import SafeguardWrapper  # noqa: E402
from safeguards import load_safeguard  # noqa: E402
from safeguards.learn.common import make_env  # noqa: E402
from safeguards.learn.deep_envs import product_env  # noqa: E402
from safeguards.runs import read_metrics  # noqa: E402

ENV_ID = "safeguards/DoomSafeRL-v0"
SPEC = "doom/safeguard2"
VARIANTS = ("raw", "safeguard", "training stack")


def bench_env(steps: int, reps: int, seed: int) -> dict[str, Any]:
    from safeguards.envs.doom.labels import DoomLabeler

    sg = load_safeguard(SPEC)
    envs = {
        "raw": make_env(ENV_ID),
        "safeguard": SafeguardWrapper(make_env(ENV_ID), sg, DoomLabeler(), observe="dict",
                                      reward="penalty"),
        "training stack": product_env(lambda: make_env(ENV_ID), spec=sg, final_spec=sg,
                                      labeler=DoomLabeler(), observe=True, pad_to=sg.n_states,
                                      violation_penalty=1.0, terminate_on_violation=False),
    }
    n_actions = int(envs["raw"].action_space.n)
    actions = np.random.default_rng(seed).integers(0, n_actions, size=steps).tolist()
    runs = interleaved({name: (lambda env=env: run_single(env, actions, seed))
                        for name, env in envs.items()}, reps)
    for env in envs.values():
        env.close()
    episodes = {name: sorted({r["episodes"] for r in rs}) for name, rs in runs.items()}
    out: dict[str, Any] = {"steps": steps, "reps": reps, "spec": SPEC,
                           "states": sg.n_states, "episodes_per_run": episodes,
                           "same_trajectory": len({tuple(e) for e in episodes.values()}) == 1}
    for clock in ("wall", "cpu"):
        times = {name: [r[clock] for r in rs] for name, rs in runs.items()}
        out[clock] = {name: {"steps_per_second": steps / median(ts),
                             "us_per_step": median(ts) / steps * 1e6,
                             "seconds": [round(t, 6) for t in ts]}
                      for name, ts in times.items()}
        for name in VARIANTS[1:]:
            ratios = [w / r for w, r in zip(times[name], times["raw"])]
            out[clock][name]["time_ratio_vs_raw"] = summary(ratios)
            out[clock][name]["throughput_ratio_vs_raw"] = 1 / median(ratios)
    return out


def summarise_runs(root: Path) -> list[dict[str, Any]]:
    rows = []
    for result_path in sorted(root.glob("**/result.json")):
        result = json.loads(result_path.read_text(encoding="utf-8"))
        if result.get("learner") != "ppo":
            continue
        train = result.get("train_seconds") or 0.0
        metrics = read_metrics(result_path.parent)
        late = [r for r in metrics if r["frames"] > 0.9 * result["frames"]]
        rows.append({
            "run": str(result_path.parent.relative_to(root)), "method": result["method"],
            "seed": result["seed"], "frames": result["frames"], "episodes": result["episodes"],
            "train_seconds": train,
            "agent_steps_per_second": result["frames"] / train if train else None,
            "stage_frames": result["stage_frames"],
            "stage_episodes": result["stage_episodes"],
            "stage_violations": result["stage_violations"],
            "stage_violations_final": result["stage_violations_final"],
            "late_episodes": len(late),
            "late_task_return": float(np.mean([r["task_return"] for r in late])) if late
            else None,
            "late_final_violation_rate": float(np.mean([r["violated_final"] for r in late]))
            if late else None,
            "test": result.get("test"), "test_stochastic": result.get("test_stochastic")})
    return rows


def _test_cell(test: dict[str, Any] | None) -> str:
    if not test:
        return "–"
    return (f"{100 * test['violation_rate']:.0f} % violations, return "
            f"{fmt(test['mean_return'])} ({test['episodes']} ep.)")


def markdown(data: dict[str, Any]) -> str:
    meta, env = data["meta"], data["env"]
    load = meta["load_average_start"], meta["load_average_end"]
    lines = [f"# Doom benchmark{' (quick)' if data['quick'] else ''}", "",
             f"{meta['date_utc']} · commit {meta['git_commit']} · Python {meta['python']} · "
             f"{meta['platform']} · {meta['cpu_count']} CPUs · load "
             f"{fmt(load[0][0]) if load[0] else '?'} → {fmt(load[1][0]) if load[1] else '?'} · "
             f"{meta['wall_seconds']} s wall", "",
             "## a. Environment throughput with and without the safeguard", "",
             f"`{ENV_ID}` (60 × 80 RGB, 4 tics per step), {env['steps']:,} random actions per "
             f"repetition, {env['reps']} interleaved repetitions after a warm-up, spec "
             f"`{env['spec']}` ({env['states']} states), labeler `DoomLabeler`. Same trajectory "
             f"in all three: {'yes' if env['same_trajectory'] else 'NO'} "
             f"(episodes per repetition {env['episodes_per_run']['raw']}).", "",
             md_table(["variant", "steps/s (wall)", "µs/step (wall)", "throughput ÷ raw (wall)",
                       "steps/s (CPU)", "throughput ÷ raw (CPU)"],
                      [[name, env["wall"][name]["steps_per_second"],
                        env["wall"][name]["us_per_step"],
                        env["wall"][name].get("throughput_ratio_vs_raw", 1.0),
                        env["cpu"][name]["steps_per_second"],
                        env["cpu"][name].get("throughput_ratio_vs_raw", 1.0)]
                       for name in VARIANTS], digits=3), "",
             "Wall = `time.perf_counter` (includes the ViZDoom process, which runs beside "
             "Python); CPU = `time.process_time` of the Python process only.", ""]
    if data["runs"] is not None:
        lines += ["## b. Training runs", "", f"`{data['runs_dir']}`: agent steps/s of training "
                  "= agent steps ÷ training wall time (environment, safeguard and PPO updates "
                  "together, one torch thread per run).", "",
                  md_table(["run", "agent steps", "episodes", "train s", "agent steps/s",
                            "violations per stage (stage spec)",
                            "violations per stage (final spec)",
                            "last 10 %: episodes, task return, final-spec violations",
                            "greedy test", "stochastic test"],
                           [[r["run"], r["frames"], r["episodes"], r["train_seconds"],
                             r["agent_steps_per_second"],
                             " / ".join(map(str, r["stage_violations"])),
                             " / ".join(map(str, r["stage_violations_final"])),
                             f"{r['late_episodes']}, {fmt(r['late_task_return'])}, "
                             f"{fmt(100 * r['late_final_violation_rate'], 0)} %"
                             if r["late_episodes"] else "–",
                             _test_cell(r["test"]), _test_cell(r["test_stochastic"])]
                            for r in data["runs"]]), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny version (smoke test)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument("--name", default=None,
                        help="result file stem (default: doom, or doom_quick with --quick)")
    parser.add_argument("--runs", type=Path, default=None,
                        help="summarise the PPO runs under this directory")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reps", type=int, default=None, help="interleaved repetitions (7)")
    parser.add_argument("--steps", type=int, default=None, help="steps per repetition (2,000)")
    args = parser.parse_args(argv)
    if args.runs is not None and not args.runs.is_dir():
        parser.error(f"--runs: {args.runs} is not a directory")
    started = time.perf_counter()
    meta = metadata({"gymnasium": gym.__version__})
    reps = args.reps or (2 if args.quick else 7)
    steps = args.steps or (100 if args.quick else 2_000)
    env = bench_env(steps, reps, args.seed)
    runs = summarise_runs(args.runs) if args.runs is not None else None
    finish_metadata(meta, started)
    data = {"benchmark": "doom", "quick": args.quick, "meta": meta,
            "config": {"env": ENV_ID, "spec": SPEC, "steps": steps, "reps": reps,
                       "seed": args.seed},
            "env": env, "runs_dir": str(args.runs) if args.runs else None, "runs": runs}
    name = args.name or ("doom_quick" if args.quick else "doom")
    json_path, md_path = write_results(args.out_dir, name, data, markdown(data))
    print(f"wrote {json_path} and {md_path} ({meta['wall_seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
