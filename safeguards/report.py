"""Reports of curriculum runs: a Markdown summary table and matplotlib plots.

:func:`load_runs` finds every run directory (one holding ``metrics.jsonl``, see
:mod:`safeguards.runs`) under the given folders; :func:`summarize` reduces the runs of each
method over its seeds; :func:`summary_markdown` renders the table; :func:`write_report` writes
``summary.md``, ``summary.json`` and the PNG plots (each file atomically):

``value_s0.png``
    ``max_a Q(s0, q0, a)`` per training episode (the paper's figure; for PPO runs the critic's
    value of the episode's first observation): a trailing moving average
    over 3 % of the episodes, the mean over seeds with a ± one standard deviation band, one line
    per method, dotted lines at the stage switches.
``violations_per_stage.png``
    training episodes that violated the spec being trained, per stage (mean over seeds, error
    bars ± std).  A baseline trains one long stage; its episodes are split at the curriculum's
    stage boundaries (episodes for the tabular learner, agent steps — the rows' ``frames`` —
    for PPO), so the bars compare the same windows.
``cumulative_violations.png``
    episodes that violated the final (test) spec so far, per training episode (per agent step
    for PPO runs, whose methods differ in episode lengths but not in budget).
``test.png``
    success and violation rate of the greedy test, per method (mean ± std over seeds).
``task_return.png``
    the task reward of every training episode (``task_return``: the environment's reward
    without the safeguard's shaping or penalty; ``return`` for runs that did not log it),
    averaged like ``value_s0.png``: the learning curve.

Standard deviations are over seeds, population form (``ddof = 0``), in the table and the plots.

>>> rows = [{"episode": e, "stage": e // 2, "violated": e % 2 == 0, "value_s0": e / 10}
...         for e in range(4)]
>>> run = Run(path=Path("r"), method="paper", seed=0, rows=rows, stage_episodes=[2, 2],
...           finished=True)
>>> run.stage_violations()
[1, 1]
>>> print(summary_markdown(summarize([run])), end="")
| method | seeds | violations S1 | violations S2 | violations total | final-spec violations | test success % | test violation % | meta-learning queries | value at s0 (final) |
|---|---|---|---|---|---|---|---|---|---|
| paper | 1 | 1.0 ± 0.0 | 1.0 ± 0.0 | 2.0 ± 0.0 | 2.0 ± 0.0 | – | – | – | 0.300 ± 0.000 |
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from safeguards.errors import SafeguardsError
from safeguards.files import write_atomic

__all__ = ["Run", "MethodSummary", "ReportError", "load_run", "find_runs", "load_runs",
           "moving_average", "summarize", "summary_markdown", "summary_json", "write_report",
           "plot_value_s0", "plot_task_return", "plot_violations", "plot_cumulative_violations",
           "plot_test", "PLOTS"]

#: The PNG files :func:`write_report` renders.
PLOTS = ("value_s0.png", "violations_per_stage.png", "cumulative_violations.png", "test.png",
         "task_return.png")
DASH = "–"


class ReportError(SafeguardsError, ValueError):
    """No runs to report, or a run directory that cannot be read."""


@dataclass
class Run:
    """One (method, seed) run: its metrics rows and what its directory says about it."""

    path: Path
    method: str
    seed: int
    rows: list[dict[str, Any]]
    """Per-episode metrics (``metrics.jsonl``), in episode order."""
    stage_episodes: list[int] = field(default_factory=list)
    """Episodes of each stage of the curriculum as configured (``config.json`` ``stages``);
    a baseline's episodes are split at these boundaries.  Empty: use the rows' ``stage``."""
    stage_names: list[str] = field(default_factory=list)
    """A short name per configured stage (its spec)."""
    stage_frames: list[int] = field(default_factory=list)
    """PPO runs: agent steps of each configured stage; episodes are split by the agent step
    they ended at (the rows' ``frames``).  Empty for tabular runs."""
    test: dict[str, Any] | None = None
    """``result.json``'s ``test``: ``episodes``, ``success_rate``, ``violation_rate``,
    ``meta_learning_queries``, ... (None: no test, or the run has not finished)."""
    finished: bool = False
    """Did the run write ``result.json``?"""
    label: str = ""
    """The name of its line in plots and its row in the table (default: ``method``)."""

    def __post_init__(self) -> None:
        self.label = self.label or self.method

    @property
    def episodes(self) -> int:
        return len(self.rows)

    def stage_of(self) -> np.ndarray:
        """The curriculum stage of every episode (by the configured boundaries)."""
        episodes = np.array([int(r.get("episode", k)) for k, r in enumerate(self.rows)])
        if self.stage_frames:
            frames = np.array([int(r.get("frames", 0)) for r in self.rows])
            return np.minimum(np.searchsorted(np.cumsum(self.stage_frames), frames, side="left"),
                              len(self.stage_frames) - 1)
        if self.stage_episodes:
            bounds = np.cumsum(self.stage_episodes)
            return np.minimum(np.searchsorted(bounds, episodes, side="right"),
                              len(self.stage_episodes) - 1)
        return np.array([int(r.get("stage", 0)) for r in self.rows], dtype=int)

    @property
    def n_stages(self) -> int:
        configured = self.stage_episodes or self.stage_frames or self.stage_names
        if configured:
            return len(configured)
        return 1 + max((int(r.get("stage", 0)) for r in self.rows), default=0)

    def stage_violations(self) -> list[int]:
        """Training episodes that violated the trained spec (``violated``), per stage."""
        stages = self.stage_of()
        flags = np.array([bool(r.get("violated")) for r in self.rows], dtype=bool)
        return [int(flags[stages == k].sum()) for k in range(self.n_stages)]

    def final_violations(self) -> np.ndarray:
        """Per episode: did it violate the final spec (``violated_final``, else ``violated``)?"""
        return np.array([bool(r.get("violated_final", r.get("violated"))) for r in self.rows],
                        dtype=bool)

    def value_s0(self) -> np.ndarray:
        """Per episode: the value of its first state (NaN where the learner logs none)."""
        values = [r.get("value_s0") for r in self.rows]
        return np.array([math.nan if v is None else float(v) for v in values], dtype=float)

    def task_returns(self) -> np.ndarray:
        """Per episode: the task reward (``task_return``, else ``return``)."""
        return np.array([float(r.get("task_return", r.get("return", math.nan)))
                         for r in self.rows], dtype=float)

    def frames(self) -> np.ndarray | None:
        """The agent step at which every episode ended (PPO runs), else None."""
        if not self.rows or any("frames" not in r for r in self.rows):
            return None
        return np.array([int(r["frames"]) for r in self.rows])


# -- loading ------------------------------------------------------------------------------------

def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: error: cannot read ({exc})") from None


def _spec_name(spec: str) -> str:
    spec = str(spec)
    if "\n" in spec:
        return spec.strip().splitlines()[0][:20]
    name = spec.replace("\\", "/").rstrip("/").split("/")[-1]
    return name[:-3] if name.endswith(".sg") else name


def _budget_of(learner: Any) -> str:
    """The budget unit of a learner's stages (``episodes`` for an unknown one)."""
    from safeguards.learn.curriculum import LEARNERS

    known = LEARNERS.get(learner) if isinstance(learner, str) else None
    return known.budget if known is not None else "episodes"


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read one run directory (``metrics.jsonl``, and ``config.json`` / ``result.json`` when
    present); a damaged file is a :class:`ReportError` naming it."""
    from safeguards.runs import RunDirError, read_metrics

    folder = Path(path)
    try:
        rows = read_metrics(folder)
    except RunDirError as exc:
        raise ReportError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{folder / 'metrics.jsonl'}: error: cannot read ({exc})") from None
    rows.sort(key=lambda r: int(r.get("episode", 0)))
    config = _read_object(folder / "config.json") or {}
    result = _read_object(folder / "result.json")
    first = rows[0] if rows else {}
    try:
        method = config.get("method") or first.get("method") or folder.parent.name or folder.name
        seed = config.get("seed", first.get("seed"))
        if seed is None:
            digits = "".join(ch for ch in folder.name if ch.isdigit())[:12]
            seed = int(digits) if digits else 0
        stages = [s for s in config.get("stages") or [] if isinstance(s, Mapping)]
        stage_names = [_spec_name(s.get("spec", "")) for s in stages]
        stage_episodes: list[int] = []
        stage_frames: list[int] = []
        if _budget_of(config.get("learner")) == "frames":  # budgets in agent steps
            stage_frames = [int(s.get("frames", 0)) for s in stages]
        else:
            stage_episodes = [int(s.get("episodes", 0)) for s in stages]
        test = _test_of(result, folder / "result.json")
        return Run(path=folder, method=str(method), seed=int(seed), rows=rows,
                   stage_episodes=stage_episodes, stage_names=stage_names, test=test,
                   finished=result is not None, stage_frames=stage_frames)
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise ReportError(f"{folder / 'config.json'}: error: malformed ({exc})") from None


def _read_object(path: Path) -> dict[str, Any] | None:
    """A JSON object file (None if there is none); anything else is a ReportError."""
    data = _read_json(path)
    if data is not None and not isinstance(data, dict):
        raise ReportError(f"{path}: error: malformed (a JSON object was expected)")
    return data


def _test_of(result: Mapping[str, Any] | None, path: Path) -> dict[str, Any] | None:
    """``result.json``'s test statistics, checked: rates in [0, 1], episodes a count."""
    test = result.get("test") if result is not None else None
    if test is None:
        return None
    rates = ("success_rate", "violation_rate")
    if not (isinstance(test, dict) and isinstance(test.get("episodes"), int)
            and all(isinstance(test.get(k), (int, float)) and 0 <= test[k] <= 1 for k in rates)):
        raise ReportError(f"{path}: error: malformed `test` (episodes and rates in [0, 1] "
                          "were expected)")
    return test


def find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    """``(root, run directory)`` of every run under ``paths`` (a run directory is one holding
    ``metrics.jsonl``; the search does not descend into it), sorted per root."""
    found: list[tuple[Path, Path]] = []
    for root in map(Path, paths):
        if not root.exists():
            raise ReportError(f"{root}: error: no such directory")
        if not root.is_dir():
            raise ReportError(f"{root}: error: not a directory (give run directories)")
        runs = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            if "metrics.jsonl" in files:
                runs.append(Path(folder))
                dirs[:] = []
        found += [(root, r) for r in sorted(runs)]
    return found


def load_runs(paths: Iterable[str | os.PathLike[str]]) -> list[Run]:
    """Every run under ``paths``.  Runs of the same method found under different roots get
    the root's name as a prefix of their label (``layout1/paper``); methods keep the order of
    ``experiment.json`` (written by ``safeguards curriculum``) when a root has one."""
    paths = list(paths)
    pairs = find_runs(paths)
    if not pairs:
        shown = ", ".join(str(p) for p in paths)
        raise ReportError(f"{shown}: error: no runs found (a run directory holds metrics.jsonl)")
    loaded = [(root, load_run(folder)) for root, folder in pairs]
    roots_of: dict[str, set[Path]] = {}
    for root, run in loaded:
        roots_of.setdefault(run.method, set()).add(root)
    order: dict[Path, list[str]] = {}
    for root, run in loaded:
        if root not in order:
            meta = _read_json(root / "experiment.json")
            order[root] = [str(m) for m in meta.get("methods", [])] \
                if isinstance(meta, Mapping) else []
        if len(roots_of[run.method]) > 1:
            run.label = f"{root.resolve().name}/{run.method}"
    root_rank = {root: k for k, root in enumerate(order)}

    def key(item: tuple[Path, Run]) -> tuple[Any, ...]:
        root, run = item
        ranks = order[root]
        rank = ranks.index(run.method) if run.method in ranks else len(ranks)
        return (root_rank[root], rank, run.label, run.seed)

    return [run for _, run in sorted(loaded, key=key)]


# -- numbers ------------------------------------------------------------------------------------

def moving_average(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average: entry ``i`` is the mean of ``values[max(0, i - window + 1)
    : i + 1]`` (so the curve starts at the first episode, not ``window`` episodes later).

    >>> moving_average([0, 2, 4, 6], 2).tolist()
    [0.0, 1.0, 3.0, 5.0]
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return x
    window = max(1, int(window))
    csum = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(0, idx - window)
    return (csum[idx] - csum[lo]) / (idx - lo)


def window_for(episodes: int, fraction: float = 0.03) -> int:
    """The moving-average window: ``fraction`` of the episodes (the paper's 3 %), at least 1.

    >>> window_for(5000)
    150
    """
    return max(1, int(round(fraction * episodes)))


def _mean_std(values: Sequence[float]) -> tuple[float, float] | None:
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return None
    return float(np.mean(xs)), float(np.std(xs))


@dataclass
class MethodSummary:
    """The runs of one method (one table row)."""

    label: str
    seeds: list[int]
    stage_names: list[str]
    stage_violations: list[tuple[float, float] | None]
    """Per stage: (mean, std) over seeds of the training episodes that violated the trained
    spec."""
    total_violations: tuple[float, float] | None
    final_violations: tuple[float, float] | None
    """Training episodes that violated the final (test) spec."""
    test_success: tuple[float, float] | None
    """Percent."""
    test_violation: tuple[float, float] | None
    """Percent."""
    meta_queries: tuple[float, float] | None
    """Meta-learning queries in the test (summed over its episodes; tabular runs only)."""
    test_return: tuple[float, float] | None
    """Mean task return of the test episodes (PPO runs only)."""
    value_s0: tuple[float, float] | None
    """``value_s0`` of the last training episode."""
    episodes: list[int]
    """Training episodes of every run."""
    unfinished: list[tuple[int, int]]
    """``(seed, episodes logged)`` of the runs without ``result.json`` (not finished)."""


def _groups(runs: Iterable[Run]) -> dict[str, list[Run]]:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    return groups


def summarize(runs: Sequence[Run]) -> list[MethodSummary]:
    """One :class:`MethodSummary` per method (label), in the order of ``runs``."""
    out = []
    for label, group in _groups(runs).items():
        n_stages = max(r.n_stages for r in group)
        trained = [r for r in group if r.rows]
        per_run = [r.stage_violations() for r in trained]
        stages = [_mean_std([v[k] for v in per_run if k < len(v)]) for k in range(n_stages)]
        names = next((r.stage_names for r in group if len(r.stage_names) == n_stages), [])
        tests = [r.test for r in group if r.test]
        out.append(MethodSummary(
            label=label, seeds=[r.seed for r in group], stage_names=list(names),
            stage_violations=stages,
            total_violations=_mean_std([sum(v) for v in per_run]),
            final_violations=_mean_std([int(r.final_violations().sum()) for r in trained]),
            test_success=_mean_std([100.0 * float(t.get("success_rate", 0.0)) for t in tests]),
            test_violation=_mean_std([100.0 * float(t.get("violation_rate", 0.0))
                                      for t in tests]),
            meta_queries=_mean_std([float(t["meta_learning_queries"]) for t in tests
                                    if "meta_learning_queries" in t]),
            test_return=_mean_std([float(t["mean_return"]) for t in tests
                                   if t.get("mean_return") is not None]),
            value_s0=_mean_std([r.value_s0()[-1] for r in group if r.rows]),
            episodes=[r.episodes for r in group],
            unfinished=[(r.seed, r.episodes) for r in group if not r.finished]))
    return out


def _fmt(value: tuple[float, float] | None, digits: int = 1) -> str:
    if value is None:
        return DASH
    mean, std = value
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summary_markdown(summaries: Sequence[MethodSummary]) -> str:
    """The summary table (GitHub Markdown), with a note on unfinished runs."""
    n_stages = max((len(s.stage_violations) for s in summaries), default=0)
    names = next((s.stage_names for s in summaries if len(s.stage_names) == n_stages), [])
    stage_cols = [f"violations S{k + 1}" + (f" ({names[k]})" if k < len(names) and names[k]
                                            and n_stages > 1 and _distinct(names) else "")
                  for k in range(n_stages)]
    returns = any(s.test_return is not None for s in summaries)
    header = ["method", "seeds", *stage_cols, "violations total", "final-spec violations",
              "test success %", "test violation %", *(["test return"] if returns else []),
              "meta-learning queries", "value at s0 (final)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summaries:
        stages = [_fmt(s.stage_violations[k]) if k < len(s.stage_violations) else DASH
                  for k in range(n_stages)]
        cells = [s.label, str(len(s.seeds)), *stages, _fmt(s.total_violations),
                 _fmt(s.final_violations), _fmt(s.test_success), _fmt(s.test_violation),
                 *([_fmt(s.test_return)] if returns else []), _fmt(s.meta_queries),
                 _fmt(s.value_s0, 3)]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"{s.label} seed {seed} ({episodes} episodes)"
             for s in summaries for seed, episodes in s.unfinished]
    if notes:
        lines += ["", "Unfinished runs (no test yet): " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


def _distinct(names: Sequence[str]) -> bool:
    return len(set(names)) == len(names)


def summary_json(summaries: Sequence[MethodSummary]) -> list[dict[str, Any]]:
    """The table as JSON-ready rows (mean and std as ``[mean, std]`` or null)."""
    def pair(v: tuple[float, float] | None) -> list[float] | None:
        return None if v is None else [v[0], v[1]]

    return [{"method": s.label, "seeds": s.seeds, "episodes": s.episodes,
             "stage_names": s.stage_names,
             "stage_violations": [pair(v) for v in s.stage_violations],
             "violations_total": pair(s.total_violations),
             "final_spec_violations": pair(s.final_violations),
             "test_success_percent": pair(s.test_success),
             "test_violation_percent": pair(s.test_violation),
             "meta_learning_queries": pair(s.meta_queries),
             "test_return": pair(s.test_return),
             "value_s0_final": pair(s.value_s0),
             "unfinished": [{"seed": seed, "episodes": n} for seed, n in s.unfinished]}
            for s in summaries]


# -- plots --------------------------------------------------------------------------------------

def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ReportError("plots need matplotlib: pip install matplotlib "
                          "(or pip install 'safeguards[gridworld]')") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _colors(labels: Sequence[str]) -> dict[str, Any]:
    plt = _pyplot()
    cycle = plt.get_cmap("tab10")
    return {label: cycle(k % 10) for k, label in enumerate(labels)}


def _save(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    write_atomic(path, buffer.getvalue())


def _stack(series: Sequence[np.ndarray]) -> np.ndarray:
    """Seeds x episodes, padded with NaN where a run is shorter."""
    n = max(len(s) for s in series)
    out = np.full((len(series), n), np.nan)
    for k, s in enumerate(series):
        out[k, :len(s)] = s
    return out


def _nan_mean_std(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    count = np.sum(~np.isnan(stack), axis=0)
    total = np.nansum(stack, axis=0)
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    dev = np.where(np.isnan(stack), 0.0, (stack - mean) ** 2)
    std = np.sqrt(np.where(count > 0, dev.sum(axis=0) / np.maximum(count, 1), np.nan))
    return mean, std


def _frames_grid(runs: Sequence[Run], points: int = 400) -> np.ndarray | None:
    """A common agent-step axis when every run logged ``frames`` (PPO), else None."""
    ends = [r.frames() for r in runs if r.rows]
    if not ends or any(e is None for e in ends):
        return None
    return np.linspace(0, max(int(e[-1]) for e in ends), points)


def _on_grid(values: np.ndarray, run: Run, grid: np.ndarray,
             before: float = math.nan) -> np.ndarray:
    """At every grid point the value of the last episode of ``run`` that ended by then
    (``before`` earlier; NaN after the last episode of an unfinished run)."""
    frames = run.frames()
    index = np.searchsorted(frames, grid, side="right")
    out = np.concatenate([[before], values])[index].astype(float)
    if not run.finished:
        out[grid > frames[-1]] = np.nan
    return out


def _stage_lines(ax: Any, runs: Sequence[Run], by_frames: bool = False) -> None:
    def bounds_of(run: Run) -> list[int]:
        return run.stage_frames if by_frames else run.stage_episodes

    reference = next((r for r in runs if len(bounds_of(r)) > 1), None)
    if reference is None:
        return
    bounds = np.cumsum(bounds_of(reference))[:-1]
    for k, x in enumerate(bounds):
        ax.axvline(x, color="0.6", linestyle=":", linewidth=1)
    starts = [0, *bounds]
    for k, x in enumerate(starts):
        name = reference.stage_names[k] if k < len(reference.stage_names) else ""
        ax.annotate(f"S{k + 1}" + (f" {name}" if name else ""), xy=(x, 0.0),
                    xycoords=("data", "axes fraction"), xytext=(3, 4),
                    textcoords="offset points", fontsize=7, color="0.4")


def _plot_episode_series(runs: Sequence[Run], path: str | os.PathLike[str],
                         series: Callable[[Run], np.ndarray], ylabel: str, title: str,
                         fraction: float) -> None:
    """One line per method: ``series(run)`` (a value per episode) as a trailing moving
    average, mean ± std over seeds, on the agent-step axis for PPO runs."""
    plt = _pyplot()
    groups = _groups(r for r in runs if r.rows)
    colors = _colors(list(groups))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    longest = max((r.episodes for r in runs), default=1)
    window = window_for(longest, fraction)
    grid = _frames_grid(runs)
    for label, group in groups.items():
        lines = [moving_average(series(r), window) for r in group]
        if grid is not None:
            lines = [_on_grid(v, r, grid) for v, r in zip(lines, group)]
        mean, std = _nan_mean_std(_stack(lines))
        x = grid if grid is not None else np.arange(len(mean))
        ax.plot(x, mean, color=colors[label], linewidth=1.4, label=f"{label} (n={len(group)})")
        if len(group) > 1:
            ax.fill_between(x, mean - std, mean + std, color=colors[label], alpha=0.2,
                            linewidth=0)
    _stage_lines(ax, runs, grid is not None)
    ax.set_xlabel("agent steps" if grid is not None else "training episode")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} (moving average over {window} episodes, {fraction:.0%}; "
                 f"mean ± std over seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _save(fig, Path(path))


def plot_value_s0(runs: Sequence[Run], path: str | os.PathLike[str], *,
                  fraction: float = 0.03) -> None:
    """The value at the start state per episode (moving average, mean ± std over seeds)."""
    _plot_episode_series(runs, path, Run.value_s0,
                         r"value at $s_0$: $\max_a Q(s_0, q_0, a)$ (PPO: critic $V(s_0)$)",
                         "Value at the start state", fraction)


def plot_task_return(runs: Sequence[Run], path: str | os.PathLike[str], *,
                     fraction: float = 0.03) -> None:
    """The task reward per training episode (moving average, mean ± std over seeds)."""
    _plot_episode_series(runs, path, Run.task_returns,
                         "task return per episode (no safeguard shaping or penalty)",
                         "Learning curve: task return of training episodes", fraction)


def plot_violations(summaries: Sequence[MethodSummary], path: str | os.PathLike[str]) -> None:
    """Grouped bars: training violations per stage and method (mean, error bar ± std)."""
    plt = _pyplot()
    colors = _colors([s.label for s in summaries])
    summaries = [s for s in summaries if any(v is not None for v in s.stage_violations)]
    n_stages = max((len(s.stage_violations) for s in summaries), default=1)
    names = next((s.stage_names for s in summaries if len(s.stage_names) == n_stages), [])
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * n_stages + 2), 4.5))
    width = 0.8 / max(1, len(summaries))
    x = np.arange(n_stages)
    for j, s in enumerate(summaries):
        means = [v[0] if v else 0.0 for v in s.stage_violations] + [0.0] * (
            n_stages - len(s.stage_violations))
        stds = [v[1] if v else 0.0 for v in s.stage_violations] + [0.0] * (
            n_stages - len(s.stage_violations))
        ax.bar(x - 0.4 + width * (j + 0.5), means, width, yerr=stds, capsize=2,
               color=colors[s.label], label=s.label)
    ax.set_xticks(x, [f"S{k + 1}" + (f"\n{names[k]}" if k < len(names) else "")
                      for k in range(n_stages)])
    ax.set_ylabel("episodes that violated the trained spec")
    ax.set_title("Training violations per stage (mean ± std over seeds)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, Path(path))


def plot_cumulative_violations(runs: Sequence[Run], path: str | os.PathLike[str]) -> None:
    """Cumulative training episodes that violated the final spec (mean ± std over seeds)."""
    plt = _pyplot()
    groups = _groups(r for r in runs if r.rows)
    colors = _colors(list(groups))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    grid = _frames_grid(runs)
    for label, group in groups.items():
        series = [np.cumsum(r.final_violations()) for r in group]
        if grid is not None:
            series = [_on_grid(c, r, grid, 0.0) for c, r in zip(series, group)]
        mean, std = _nan_mean_std(_stack(series))
        x = grid if grid is not None else np.arange(len(mean))
        ax.plot(x, mean, color=colors[label], linewidth=1.4, label=label)
        if len(group) > 1:
            ax.fill_between(x, mean - std, mean + std, color=colors[label], alpha=0.2,
                            linewidth=0)
    _stage_lines(ax, runs, grid is not None)
    ax.set_xlabel("agent steps" if grid is not None else "training episode")
    ax.set_ylabel("episodes that violated the final spec")
    ax.set_title("Cumulative violations of the final (test) spec during training", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    _save(fig, Path(path))


def plot_test(summaries: Sequence[MethodSummary], path: str | os.PathLike[str]) -> None:
    """Success and violation rate of the greedy test per method (mean ± std over seeds)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(summaries) + 2), 4.5))
    x = np.arange(len(summaries))
    for j, (title, attr, color) in enumerate((("success", "test_success", "tab:green"),
                                              ("violation", "test_violation", "tab:red"))):
        values = [getattr(s, attr) for s in summaries]
        ax.bar(x - 0.2 + 0.4 * j, [v[0] if v else 0.0 for v in values], 0.4,
               yerr=[v[1] if v else 0.0 for v in values], capsize=2, color=color,
               label=f"{title} %")
        for k, v in enumerate(values):
            if v is None:
                ax.annotate("no test", (x[k], 1), ha="center", fontsize=7, color="0.4")
    ax.set_xticks(x, [s.label for s in summaries], rotation=20, ha="right")
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of test episodes")
    ax.set_title("Greedy test under the final spec (mean ± std over seeds)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, Path(path))


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    markdown: str
    files: list[Path]
    runs: list[Run]
    summaries: list[MethodSummary]
    plots_skipped: str | None = None
    """Why no plots were drawn (matplotlib missing), or None."""


def write_report(paths: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                 fraction: float = 0.03, plots: bool = True) -> Report:
    """Summarise every run under ``paths`` into ``out_dir``: ``summary.md``, ``summary.json``
    and (with ``plots`` and matplotlib installed) the PNGs of :data:`PLOTS`."""
    runs = load_runs(paths)
    summaries = summarize(runs)
    markdown = summary_markdown(summaries)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "summary.md", out / "summary.json"]
    write_atomic(files[0], markdown)
    write_atomic(files[1], json.dumps(summary_json(summaries), indent=1) + "\n")
    skipped = None
    if plots:
        try:
            _pyplot()
        except ReportError as exc:
            skipped = str(exc)
        else:
            plot_value_s0(runs, out / PLOTS[0], fraction=fraction)
            plot_violations(summaries, out / PLOTS[1])
            plot_cumulative_violations(runs, out / PLOTS[2])
            plot_test(summaries, out / PLOTS[3])
            plot_task_return(runs, out / PLOTS[4], fraction=fraction)
            files += [out / name for name in PLOTS]
    return Report(markdown, files, runs, summaries, skipped)
