#!/usr/bin/env python
"""SQRL's cost: agent steps/s of SQRL (pre-training with its critic and filter, fine-tuning
through the filter with the dual term) against plain Stable-Baselines3 SAC on the same product
MDP (the drunk spider under ``sqrl/no_fall``), and the filter's latency per action.

Usage (from the repository root)::

    python benchmarks/bench_sqrl.py            # -> benchmarks/results/sqrl.{json,md}
    python benchmarks/bench_sqrl.py --quick    # smoke run -> sqrl_quick.*

Each variant warms up (``learning_starts`` random steps, untimed), then trains ``--steps``
agent steps (one SAC update each); the variants run interleaved, ``--repeats`` times, in one
process with one torch thread, and time per step is compared as a ratio within each repeat.
The filter's latency is the median time of one call for one observation (50 samples, 2 x 256
critic), when the first round finds a safe action and when all 6 rounds fail (fallback).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS, finish_metadata, fmt, md_table, metadata, median, write_results,
)

VARIANTS = ("sac", "sqrl_pretrain", "sqrl_finetune")


def _env() -> Any:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from safeguards.compiler import load_safeguard
    from safeguards.envs.spider import SpiderLabeler
    from safeguards.learn.config import DeepStage
    from safeguards.learn.sqrl_run import sqrl_env

    spec = load_safeguard("sqrl/no_fall")
    stage = DeepStage("safeguards/DrunkSpider-v0", {"random_goal": True}, "sqrl/no_fall", 0)
    return DummyVecEnv([lambda: sqrl_env(stage, spec, spec, SpiderLabeler(), pad_to=spec.n_states,
                                         violation_penalty=0.0, max_steps=None)])


def _agent(variant: str, hidden: int, warmup: int) -> Any:
    from stable_baselines3 import SAC

    from safeguards.learn.safety_critic import SafetyCritic
    from safeguards.learn.sqrl import SQRL

    env = _env()
    common = dict(learning_starts=warmup, batch_size=256, policy_kwargs={"net_arch": [hidden] * 2},
                  target_entropy=-2.0, seed=0, device="cpu", verbose=0)
    if variant == "sac":
        return SAC("MlpPolicy", env, **common)
    obs_dim = env.observation_space.shape[0]
    critic = SafetyCritic(obs_dim, 2, gamma_safe=0.65, hidden=(hidden, hidden), seed=0)
    agent = SQRL("MlpPolicy", env, critic, eps_safe=0.1, mask_from=0, train_sc_interval=100,
                 train_sc_steps=10, sc_batch_size=256, **common)
    if variant == "sqrl_finetune":
        agent.phase = "finetune"
    return agent


def measure(variant: str, steps: int, hidden: int, warmup: int) -> dict[str, Any]:
    agent = _agent(variant, hidden, warmup)
    agent.learn(warmup)
    wall, cpu = time.perf_counter(), time.process_time()
    agent.learn(steps, reset_num_timesteps=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    filtered = agent.filter.stats.calls if getattr(agent, "filter", None) else 0
    return {"variant": variant, "steps": steps, "wall_seconds": wall, "cpu_seconds": cpu,
            "ms_per_step_wall": 1000 * wall / steps, "ms_per_step_cpu": 1000 * cpu / steps,
            "filtered_actions": filtered}


def filter_latency(calls: int, hidden: int) -> dict[str, float]:
    """Median milliseconds of one filter call for one observation."""
    import torch

    from safeguards.learn.safety_critic import SafetyCritic
    from safeguards.learn.safety_filter import SafeActionFilter

    critic = SafetyCritic(10, 2, hidden=(hidden, hidden), seed=0)
    obs, mean, log_std = torch.zeros(1, 10), torch.zeros(1, 2), torch.zeros(1, 2)
    out = {}
    for case, eps in (("safe_first_round", 0.999999), ("fallback_6_rounds", 1e-9)):
        with torch.no_grad():
            critic.net[-1].bias.fill_(0.0 if case == "safe_first_round" else 5.0)
        pick = SafeActionFilter(critic, eps, generator=torch.Generator().manual_seed(0))
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            pick(obs, mean, log_std)
            times.append(1000 * (time.perf_counter() - started))
        out[case] = median(times) or 0.0
        out[f"{case}_rounds"] = pick.stats.rounds / calls
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    parser.add_argument("--steps", type=int, default=1500, help="timed agent steps a run (1500)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (3)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    steps, repeats, hidden, warmup, calls = (60, 1, 32, 32, 50) if args.quick else \
        (args.steps, args.repeats, 256, 500, 2000)
    started = time.perf_counter()
    meta = metadata({"quick": args.quick, "steps": steps, "repeats": repeats, "hidden": hidden,
                     "warmup": warmup,
                     "env": "safeguards/DrunkSpider-v0", "spec": "sqrl/no_fall",
                     "torch_threads": 1})
    runs = []
    for r in range(repeats):
        for variant in VARIANTS:
            runs.append({**measure(variant, steps, hidden, warmup), "repeat": r})
            print(f"{variant}: {runs[-1]['ms_per_step_cpu']:.2f} ms/step CPU", file=sys.stderr)
    ratios = {v: median([next(x for x in runs if x["variant"] == v and x["repeat"] == r)
                         ["cpu_seconds"] /
                         next(x for x in runs if x["variant"] == "sac" and x["repeat"] == r)
                         ["cpu_seconds"] for r in range(repeats)]) for v in VARIANTS}
    latency = filter_latency(calls, hidden)
    finish_metadata(meta, started)
    data = {"metadata": meta, "runs": runs,
            "median_ms_per_step_cpu": {v: median([x["ms_per_step_cpu"] for x in runs
                                                  if x["variant"] == v]) for v in VARIANTS},
            "median_ratio_to_sac_cpu": ratios, "filter_latency_ms": latency}
    name = "sqrl_quick" if args.quick else "sqrl"
    write_results(args.out_dir, name, data, render(data))
    print(render(data))
    return 0


def render(data: dict[str, Any]) -> str:
    meta = data["metadata"]
    names = {"sac": "Stable-Baselines3 SAC", "sqrl_pretrain":
             "SQRL pre-training (filter on, critic every 100 steps x 10)",
             "sqrl_finetune": "SQRL fine-tuning (filter every step, dual term)"}
    rows = [[names[v], data["median_ms_per_step_cpu"][v], 1000 / data["median_ms_per_step_cpu"][v],
             data["median_ratio_to_sac_cpu"][v]] for v in VARIANTS]
    lat = data["filter_latency_ms"]
    quick = " --quick" if meta.get("quick") else \
        f" --steps {meta['steps']} --repeats {meta['repeats']}"
    return "\n".join([
        "# SQRL against SAC: time per agent step, and the filter's latency", "",
        f"{meta['date_utc']} · commit {meta['git_commit']} · Python {meta['python']} · "
        f"{meta['cpu_count']} CPUs · load {fmt(meta['load_average_start'][0])} · "
        f"{meta['wall_seconds']} s wall", "",
        f"`{meta['env']}` under `{meta['spec']}`, {meta['steps']:,} timed agent steps a run "
        f"(one update each, batch 256, {meta['hidden']} x 2 networks, 1 torch thread), "
        f"{meta['repeats']} interleaved runs of each; ratios of CPU time within a repeat "
        "(median).", "",
        md_table(["learner", "ms/step (CPU)", "steps/s (CPU)", "÷ SAC"], rows), "",
        md_table(["filter call, 1 observation, 50 samples", "ms (median)", "rounds"],
                 [["a safe action in the first round", lat["safe_first_round"],
                   lat["safe_first_round_rounds"]],
                  ["no safe action: 6 rounds, fallback", lat["fallback_6_rounds"],
                   lat["fallback_6_rounds_rounds"]]], digits=3), "",
        "Targets (issue 12): SQRL ≤ 2x SAC's time per step, filter included; ≤ 1 ms a filter "
        "call of 50 samples.", "",
        f"Command: `python benchmarks/bench_sqrl.py{quick}`.",
    ])


if __name__ == "__main__":
    sys.exit(main())
