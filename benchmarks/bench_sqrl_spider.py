#!/usr/bin/env python
"""SQRL on the drunk spider, the reproduction's numbers and pictures, from the run folders of
``safeguards curriculum sqrl_spider`` (and, optionally, of the risk-knob experiment
``sqrl_spider_risk``).

Usage (from the repository root, after the runs)::

    safeguards curriculum sqrl_spider --run-dir runs/sqrl_spider --jobs 2
    safeguards curriculum sqrl_spider_risk --run-dir runs/sqrl_spider_risk --jobs 2
    python benchmarks/bench_sqrl_spider.py --runs runs/sqrl_spider --risk runs/sqrl_spider_risk
        # -> benchmarks/results/sqrl_spider.{json,md}, docs/results/sqrl/*.png

Per run: falls (episodes that violated ``sqrl/no_fall``) in pre-training and fine-tuning, the
fine-tuning fall rate, successes (episodes that ended before the time limit without a fall),
the mean task return of the last quarter of fine-tuning episodes, the filter's fallbacks and
the test (20 episodes, acting as in fine-tuning); mean ± std over seeds.  Pictures: cumulative
falls and return over fine-tuning, and trajectories of each method's final policy (seed 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, finish_metadata, fmt, md_table, metadata, write_results  # noqa: E402

PICTURES = Path(__file__).resolve().parent.parent / "docs" / "results" / "sqrl"


def _rows(run: Path) -> list[dict[str, Any]]:
    with open(run / "metrics.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def run_numbers(run: Path, max_steps: int) -> dict[str, Any]:
    """The numbers of one finished run."""
    rows = _rows(run)
    result = json.loads((run / "result.json").read_text())
    last = max(r["stage"] for r in rows)
    pre = [r for r in rows if r["stage"] < last]
    fine = [r for r in rows if r["stage"] == last]
    tail = fine[len(fine) * 3 // 4:]
    test = result["test_stochastic"] or {}
    return {"seed": result["seed"], "pretrain_episodes": len(pre),
            "pretrain_falls": sum(r["violated"] for r in pre),
            "finetune_episodes": len(fine), "finetune_falls": sum(r["violated"] for r in fine),
            "finetune_fall_rate": sum(r["violated"] for r in fine) / max(1, len(fine)),
            "finetune_success_rate": sum(not r["violated"] and r["length"] < max_steps
                                         for r in fine) / max(1, len(fine)),
            "final_return": float(np.mean([r["task_return"] for r in tail])) if tail else None,
            "finetune_fallbacks": result["stage_fallbacks"][-1],
            "finetune_filtered": result["stage_filtered"][-1],
            "test_fall_rate": test.get("violation_rate"), "test_return": test.get("mean_return"),
            "greedy_test_return": (result["test"] or {}).get("mean_return"),
            "train_seconds": result["train_seconds"]}


def collect(folder: Path, max_steps: int) -> dict[str, list[dict[str, Any]]]:
    """Method -> the numbers of its finished runs (``folder/METHOD/seedN``)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for method in sorted(p for p in folder.iterdir() if p.is_dir()):
        runs = [run_numbers(seed, max_steps) for seed in sorted(method.glob("seed*"))
                if (seed / "result.json").is_file()]
        if runs:
            out[method.name] = runs
    return out


def mean_std(runs: list[dict[str, Any]], key: str) -> list[float] | None:
    values = [r[key] for r in runs if r[key] is not None]
    if not values:
        return None
    return [float(np.mean(values)), float(np.std(values))]


KEYS = ("pretrain_falls", "finetune_episodes", "finetune_falls", "finetune_fall_rate",
        "finetune_success_rate", "final_return", "finetune_fallbacks", "test_fall_rate",
        "test_return", "greedy_test_return", "train_seconds")


def summarise(methods: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {m: {"seeds": len(runs), **{k: mean_std(runs, k) for k in KEYS}}
            for m, runs in methods.items()}


def targets(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets: SQRL's fine-tuning fall rate <= 1 % and <= 1/3 of SAC's, at a final
    return within 10 % of SAC's."""
    if "sqrl" not in summary or "sac" not in summary:
        return {}
    sqrl, sac = summary["sqrl"], summary["sac"]
    rate, sac_rate = sqrl["finetune_fall_rate"][0], sac["finetune_fall_rate"][0]
    ret, sac_ret = sqrl["final_return"][0], sac["final_return"][0]
    return {"sqrl_fall_rate": rate, "sac_fall_rate": sac_rate,
            "fall_rate_at_most_1pct": rate <= 0.01,
            "fall_rate_at_most_third_of_sac": rate <= sac_rate / 3,
            "sqrl_final_return": ret, "sac_final_return": sac_ret,
            "return_within_10pct_of_sac": abs(ret - sac_ret) <= 0.1 * abs(sac_ret)}


# -- pictures ----------------------------------------------------------------------------------

def _curves(folder: Path, methods: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (falls_ax, return_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
    for method in methods:
        per_seed = []
        for seed in sorted((folder / method).glob("seed*")):
            rows = _rows(seed)
            last = max(r["stage"] for r in rows)
            fine = [r for r in rows if r["stage"] == last]
            start = fine[0]["frames"] - fine[0]["length"] if fine else 0
            per_seed.append(([r["frames"] - start for r in fine],
                             np.cumsum([r["violated"] for r in fine]),
                             [r["task_return"] for r in fine]))
        grid = np.linspace(0, max(max(f) for f, _, _ in per_seed), 100)
        falls = np.array([np.interp(grid, f, c, left=0) for f, c, _ in per_seed])
        returns = np.array([np.interp(grid, *_trailing_mean(f, r, 20)) for f, _, r in per_seed])
        for ax, values in ((falls_ax, falls), (return_ax, returns)):
            mean, std = values.mean(0), values.std(0)
            ax.plot(grid, mean, label=method)
            ax.fill_between(grid, mean - std, mean + std, alpha=0.2)
    falls_ax.set(xlabel="fine-tuning agent steps", ylabel="cumulative falls",
                 title="falls while fine-tuning")
    return_ax.set(xlabel="fine-tuning agent steps", ylabel="task return (20-episode mean)",
                  title="return while fine-tuning")
    falls_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _trailing_mean(frames: list[int], values: list[float], width: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The mean of the last ``width`` values (fewer at the start) at each episode's end."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    counts = np.minimum(np.arange(1, len(values) + 1), width)
    means = (sums[1:] - sums[np.maximum(0, np.arange(1, len(values) + 1) - width)]) / counts
    return np.asarray(frames, dtype=float), means


def rollouts(run: Path, episodes: int, seed: int = 0) -> tuple[list[list[tuple[float, float]]],
                                                                  list[bool], tuple[float, float]]:
    """Trajectories of a finished run's final policy acting as in fine-tuning (the filter for
    SQRL) on the fine-tuning stage."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from safeguards.compiler import load_safeguard
    from safeguards.learn.common import resolve_labeler
    from safeguards.learn.config import SQRLConfig
    from safeguards.learn.deep import stage_seed
    from safeguards.learn.sqrl_run import _act, _plan, load_agent, new_agent, sqrl_env

    config = SQRLConfig.from_dict({k: v for k, v in json.loads(
        (run / "config.json").read_text()).items() if k not in ("resolved",)})
    plan = _plan(config)
    stage, spec = plan.stages[-1], load_safeguard(plan.stages[-1].spec)
    pad_to = json.loads((run / "config.json").read_text())["resolved"]["safeguard_states"]
    make = lambda: sqrl_env(stage, spec, spec, labeler, pad_to=pad_to,  # noqa: E731
                            violation_penalty=0.0, max_steps=config.max_steps,
                            observe=config.observe_safeguard)
    from safeguards.envs import make as make_env

    labeler = resolve_labeler(config.labeler, make_env(stage.env_id, stage.env_kwargs))
    agent = new_agent(config, DummyVecEnv([make]), method=plan.transfer, pretrain_frames=0,
                      seed=stage_seed(config.seed, 3))
    load_agent(run / f"stage{len(plan.stages)}.pt", agent)
    agent.phase = "finetune"
    env = make()
    paths, falls = [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done, fell = False, False
        while not done:
            obs, _, terminated, truncated, info = env.step(_act(agent, obs, False))
            fell = fell or bool(info["violated_rules"])
            done = terminated or truncated
        paths.append(list(env.unwrapped.trajectory))
        falls.append(fell)
    return paths, falls, tuple(env.unwrapped.goal)


def _trajectories(folder: Path, methods: list[str], out: Path, episodes: int,
                  titles: dict[str, str] | None = None) -> dict[str, float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from safeguards.envs.spider.render import draw_map

    images, rates = [], {}
    for method in methods:
        paths, falls, goal = rollouts(folder / method / "seed0", episodes)
        rates[method] = sum(falls) / len(falls)
        title = (titles or {}).get(method, method)
        images.append(draw_map(paths, goal=goal, falls=falls,
                               title=f"{title}: {sum(falls)}/{len(falls)} falls"))
    fig, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3.6))
    for ax, image in zip(np.atleast_1d(axes), images):
        ax.imshow(image)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="the sqrl_spider run folder")
    parser.add_argument("--risk", type=Path, help="the sqrl_spider_risk run folder")
    parser.add_argument("--episodes", type=int, default=20, help="trajectories drawn (20)")
    parser.add_argument("--max-steps", type=int, default=30, help="the episode limit (30)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--pictures", type=Path, default=PICTURES)
    parser.add_argument("--name", default="sqrl_spider")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    meta = metadata({"runs": str(args.runs), "risk": str(args.risk) if args.risk else None})
    args.pictures.mkdir(parents=True, exist_ok=True)
    methods = collect(args.runs, args.max_steps)
    data: dict[str, Any] = {"metadata": meta, "runs": methods, "summary": summarise(methods)}
    data["targets"] = targets(data["summary"])
    names = list(methods)
    _curves(args.runs, names, args.pictures / f"{args.name}_curves.png")
    data["trajectory_fall_rates"] = _trajectories(args.runs, names,
                                                  args.pictures / f"{args.name}_paths.png",
                                                  args.episodes)
    if args.risk is not None:
        risk = collect(args.risk, args.max_steps)
        data["risk"] = {"runs": risk, "summary": summarise(risk)}
        data["risk"]["trajectory_fall_rates"] = _trajectories(
            args.risk, list(risk), args.pictures / f"{args.name}_risk.png", args.episodes,
            {m: m.replace("eps_", "eps_safe = ") for m in risk})
        data["risk"]["bridge_crossings"] = _crossings(args.risk, list(risk), args.episodes)
    finish_metadata(meta, started)
    write_results(args.out_dir, args.name, data, render(data))
    print(render(data))
    return 0


def _crossings(folder: Path, methods: list[str], episodes: int) -> dict[str, float]:
    """Share of the final policy's episodes (seed 0) that set foot on the bridge."""
    from safeguards.envs.spider.env import WALLS

    out = {}
    for method in methods:
        paths, _, _ = rollouts(folder / method / "seed0", episodes)
        on = [any(2 <= r < 6 and 3 <= c < 4 and WALLS[int(r), 2] == 1 for r, c in p)
              for p in paths]
        out[method] = sum(on) / len(on)
    return out


def _cell(value: list[float] | None, digits: int = 2, scale: float = 1.0) -> str:
    if value is None:
        return "–"
    return f"{fmt(value[0] * scale, digits)} ± {fmt(value[1] * scale, digits)}"


def render(data: dict[str, Any]) -> str:
    meta = data["metadata"]
    rows = [[m, s["seeds"], _cell(s["pretrain_falls"], 1), _cell(s["finetune_falls"], 1),
             _cell(s["finetune_episodes"], 0), _cell(s["finetune_fall_rate"], 2, 100),
             _cell(s["finetune_success_rate"], 1, 100), _cell(s["final_return"], 1),
             _cell(s["finetune_fallbacks"], 1), _cell(s["test_fall_rate"], 1, 100),
             _cell(s["test_return"], 1)] for m, s in data["summary"].items()]
    header = ["method", "seeds", "falls, pre-training", "falls, fine-tuning",
              "fine-tuning episodes", "fine-tuning fall rate %", "fine-tuning success %",
              "return, last quarter", "filter fallbacks", "test fall %", "test return"]
    lines = ["# SQRL on the drunk spider", "",
             f"{meta['date_utc']} · commit {meta['git_commit']} · runs `{meta['runs']}`", "",
             md_table(header, rows), ""]
    t = data.get("targets")
    if t:
        lines += [f"Targets: SQRL's fine-tuning fall rate {fmt(100 * t['sqrl_fall_rate'])} % "
                  f"(≤ 1 %: {'yes' if t['fall_rate_at_most_1pct'] else 'no'}; SAC's "
                  f"{fmt(100 * t['sac_fall_rate'])} %, ≤ 1/3 of it: "
                  f"{'yes' if t['fall_rate_at_most_third_of_sac'] else 'no'}); final return "
                  f"{fmt(t['sqrl_final_return'])} vs SAC's {fmt(t['sac_final_return'])} "
                  f"(within 10 %: {'yes' if t['return_within_10pct_of_sac'] else 'no'}).", ""]
    if "risk" in data:
        risk = data["risk"]
        lines += ["## Risk knob (action noise 0.2)", "",
                  md_table(["method", "seeds", "fine-tuning fall rate %", "return, last quarter",
                            "final policy on the bridge % (seed 0)"],
                           [[m, s["seeds"], _cell(s["finetune_fall_rate"], 2, 100),
                             _cell(s["final_return"], 1),
                             fmt(100 * risk["bridge_crossings"][m], 0)]
                            for m, s in risk["summary"].items()]), ""]
    lines.append(f"Command: `python benchmarks/bench_sqrl_spider.py --runs {meta['runs']}"
                 + (f" --risk {meta['risk']}`" if meta.get("risk") else "`"))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
