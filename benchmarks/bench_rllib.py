#!/usr/bin/env python
"""Training throughput: Stable-Baselines3 PPO (``learner = "ppo"``) against RLlib PPO
(``learner = "rllib_ppo"``) with 0, 1 and 2 env runners, one run each, the same ViZDoom stage and
PPO settings, measured side by side in one process.

Usage (from the repository root)::

    python benchmarks/bench_rllib.py            # -> benchmarks/results/rllib.{json,md}
    python benchmarks/bench_rllib.py --quick    # smoke run -> rllib_quick.*

Agent steps/s = agent steps trained ÷ training wall time (environment, safeguard, sampling and
updates together; tests excluded), repeated ``--repeats`` times in interleaved order.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS, finish_metadata, fmt, md_table, metadata, median, write_results,
)

ENV = "safeguards/DoomSafeRL-v0"
VARIANTS = ("sb3", "rllib_0", "rllib_1", "rllib_2")


def _config(variant: str, frames: int, n_envs: int, n_steps: int) -> Any:
    from safeguards.learn.config import DeepConfig, DeepStage, RLlibConfig

    stage = DeepStage(ENV, {}, "doom/safeguard0", frames)
    common = dict(stages=[stage], n_envs=n_envs, n_steps=n_steps,
                  batch_size=n_envs * n_steps // 2,
                  n_epochs=4, test_episodes=0, seed=0,
                  labeler="safeguards.envs.doom.labels:DoomLabeler")
    if variant == "sb3":
        return DeepConfig(**common)
    return RLlibConfig(**common, num_env_runners=int(variant.split("_")[1]))


def measure(variant: str, frames: int, n_envs: int, n_steps: int, folder: Path) -> dict[str, Any]:
    from safeguards.learn.curriculum import run_curriculum

    started = time.perf_counter()
    result = run_curriculum(_config(variant, frames, n_envs, n_steps), folder,
                            progress=False).to_dict()
    return {"variant": variant, "frames": result["frames"], "episodes": result["episodes"],
            "train_seconds": result["train_seconds"],
            "wall_seconds": time.perf_counter() - started,
            "steps_per_s": result["frames"] / result["train_seconds"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    parser.add_argument("--frames", type=int, default=8192, help="agent steps a run (8192)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each variant (2)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    frames, repeats, n_envs, n_steps = (256, 1, 2, 64) if args.quick else \
        (args.frames, args.repeats, 4, 128)
    started = time.perf_counter()
    meta = metadata({"frames": frames, "repeats": repeats, "n_envs": n_envs, "n_steps": n_steps,
                     "env": ENV, "spec": "doom/safeguard0"})
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for variant in VARIANTS:
                runs.append(measure(variant, frames, n_envs, n_steps,
                                    Path(tmp) / f"{variant}-{r}"))
                print(f"{variant}: {runs[-1]['steps_per_s']:.1f} agent steps/s", file=sys.stderr)
    summary = {v: median([r["steps_per_s"] for r in runs if r["variant"] == v]) for v in VARIANTS}
    finish_metadata(meta, started)
    data = {"metadata": meta, "runs": runs, "median_steps_per_s": summary,
            "ratio_to_sb3": {v: summary[v] / summary["sb3"] for v in VARIANTS}}
    name = "rllib_quick" if args.quick else "rllib"
    write_results(args.out_dir, name, data, render(data))
    print(render(data))
    return 0


def render(data: dict[str, Any]) -> str:
    meta = data["metadata"]
    names = {"sb3": "Stable-Baselines3 PPO", "rllib_0": "RLlib PPO, sampling in the learner",
             "rllib_1": "RLlib PPO, 1 env runner", "rllib_2": "RLlib PPO, 2 env runners"}
    rows = [[names[v], data["median_steps_per_s"][v], data["ratio_to_sb3"][v]]
            for v in VARIANTS]
    quick = " --quick" if meta["frames"] < 1000 else ""
    return "\n".join([
        "# RLlib against Stable-Baselines3: training throughput", "",
        f"{meta['date_utc']} · commit {meta['git_commit']} · Python {meta['python']} · "
        f"{meta['cpu_count']} CPUs · load {fmt(meta['load_average_start'][0])} · "
        f"{meta['wall_seconds']} s wall", "",
        f"`{meta['env']}` under `{meta['spec']}`, {meta['frames']:,} agent steps a run, "
        f"{meta['n_envs']} environments x {meta['n_steps']} steps a batch, 4 epochs, "
        f"{meta['repeats']} runs of each (median), interleaved.", "",
        md_table(["learner", "agent steps/s", "÷ SB3"], rows), "",
        f"Command: `python benchmarks/bench_rllib.py{quick}`.",
    ])


if __name__ == "__main__":
    sys.exit(main())
