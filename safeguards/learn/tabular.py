"""Progressive safeguards, tabular: Q-learning through a sequence of (environment, safeguard)
stages, with safety-bias transfer between them, baselines, checkpoints and a greedy test.

``run_tabular_curriculum(config, run_dir)`` (a :class:`~safeguards.learn.config.
CurriculumConfig`; :func:`safeguards.learn.run_curriculum` dispatches to it) trains stage after
stage, appending one metrics row per episode to the run directory (:mod:`safeguards.runs`), checkpointing every
``checkpoint_every`` episodes, then runs ``test_episodes`` greedy episodes under the test spec.

What carries over between stages is the ``transfer`` (:mod:`safeguards.learn.transfer`):
``none`` | ``warm`` | ``paper`` | ``semantic``.  Baselines replace the schedule by one stage on
the last stage's environment for the whole budget:

``scratch``
    Q-learning on the product MDP with the final spec only (the paper's "zero-shot learning").
``intrinsic_fear``
    ``scratch`` plus the tabular intrinsic fear of Lipton et al. 2016
    (:class:`~safeguards.learn.qlearning.FearModel`, ``fear_radius`` and ``fear_penalty``).
``no_safeguard``
    the agent sees only the environment's observation and learns from the task reward alone
    (0 in the Minecraft gridworld, so it never prefers any action); the final spec is only
    monitored: its violations end the episode (a catastrophe) and are counted.

Violations during training are always counted against both the stage's spec (``violated``)
and the final spec (``violated_final``): the test spec, by default the last stage's.

"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np

from safeguards.automata import Safeguard
from safeguards.compiler import load_safeguard
from safeguards.labels import check_coverage
from safeguards.learn.common import (
    Checkpoint, Plan, ViolationTotals, check_checkpoint, derive_seed, final_target, make_env,
    open_run, planned_stages, resolve_labeler,
)
from safeguards.learn.config import CurriculumConfig
from safeguards.learn.qlearning import (
    EpisodeStats, FearModel, LetterCache, MonitorTable, QLearningConfig, QTable,
    greedy_episode, run_episode,
)
from safeguards.learn.steppers import make_stepper
from safeguards.learn.transfer import apply_semantic, n_slots_for, semantic_sources, slot_map
from safeguards.runs import Progress, RunDir, RunDirError, read_metrics, to_json

__all__ = ["run_tabular_curriculum", "evaluate", "CurriculumResult", "TestResult"]

CHECKPOINT_VERSION = 1


# -- results ------------------------------------------------------------------------------------

@dataclass
class TestResult:
    """Greedy test episodes under the test spec."""

    __test__ = False  # not a pytest test class

    episodes: int
    """Episodes run."""
    successes: int
    """Episodes that ended without violating the test spec (reached ``max_steps``)."""
    violations: int
    """Episodes that violated the test spec."""
    meta_learning_queries: int
    """Greedy decisions at product states never visited in training."""
    mean_length: float
    """Mean episode length."""

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def violation_rate(self) -> float:
        return self.violations / self.episodes if self.episodes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "success_rate": self.success_rate,
                "violation_rate": self.violation_rate}


@dataclass
class CurriculumResult(ViolationTotals):
    """What :func:`run_curriculum` returns (also written to ``result.json``)."""

    run_dir: Path
    method: str
    seed: int
    episodes: int
    """Training episodes."""
    stage_episodes: list[int]
    stage_violations: list[int]
    """Per stage: episodes that violated the stage's spec."""
    stage_violations_final: list[int]
    """Per stage: episodes that violated the final spec."""
    value_s0: np.ndarray
    """``max_a Q[s0, q0, a]`` at the start of every training episode."""
    test: TestResult | None
    table: QTable
    wall_seconds: float
    """Wall time of every process that worked on the run (a killed one's up to its last
    checkpoint), the test included."""
    semantic_sources: dict[int, dict[int, list[tuple[int, int]]]] = field(default_factory=dict)
    """Semantic transfer: stage -> live state -> the earlier ``(stage, state)`` it inherits."""

    @property
    def Q(self) -> np.ndarray:  # noqa: N802
        return self.table.Q

    def to_dict(self) -> dict[str, Any]:
        return to_json({
            "method": self.method, "seed": self.seed, "episodes": self.episodes,
            "stage_episodes": self.stage_episodes, "stage_violations": self.stage_violations,
            "stage_violations_final": self.stage_violations_final,
            "train_violations": self.train_violations,
            "train_violations_final": self.train_violations_final,
            "final_value_s0": float(self.value_s0[-1]) if len(self.value_s0) else None,
            "test": self.test.to_dict() if self.test is not None else None,
            "wall_seconds": round(self.wall_seconds, 3),
            "semantic_sources": {str(k): {str(q): [list(m) for m in ms] for q, ms in v.items()}
                                 for k, v in self.semantic_sources.items()},
        })


# -- the run ------------------------------------------------------------------------------------

@dataclass
class _Plan(Plan):
    """The tabular learner's plan: what the agent observes and how it is rewarded."""

    observe_safeguard: bool
    reward: str
    fear: bool


def _plan(config: CurriculumConfig) -> _Plan:
    final_spec, test_env, test_kwargs = final_target(config)
    stages = planned_stages(config, "episodes")
    if config.baseline is None:
        return _Plan(stages, final_spec, test_env, test_kwargs, config.transfer, True,
                     config.reward, False)
    if config.baseline == "no_safeguard":
        return _Plan(stages, final_spec, test_env, test_kwargs, "none", False, "task", False)
    return _Plan(stages, final_spec, test_env, test_kwargs, "none", True, config.reward,
                 config.baseline == "intrinsic_fear")


def _resolved_config(config: CurriculumConfig, plan: _Plan) -> dict[str, Any]:
    data = config.to_dict()
    data["method"] = config.method_name
    data["resolved"] = {
        "stages": [asdict(s) for s in plan.stages], "final_spec": plan.final_spec,
        "test_env_id": plan.test_env_id, "test_env_kwargs": plan.test_env_kwargs,
        "transfer": plan.transfer, "observe_safeguard": plan.observe_safeguard,
        "reward": plan.reward, "intrinsic_fear": plan.fear,
    }
    return to_json(data)


def _fallback(config: CurriculumConfig, plan: _Plan) -> str:
    if config.test_fallback != "auto":
        return config.test_fallback
    return "paper" if plan.transfer in ("paper", "semantic") else "none"


def _checkpoint_arrays(table: QTable, fear: FearModel | None,
                       snapshots: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    arrays = {"Q": table.Q, "U": table.U, "known": table.known}
    if fear is not None:
        arrays.update(fear.arrays())
    for j, (snap_q, snap_known) in enumerate(snapshots):
        arrays[f"snapshot_Q_{j}"] = snap_q
        arrays[f"snapshot_known_{j}"] = snap_known
    return arrays


def _restore(path: Path, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
             plan: _Plan, table: QTable, fear: FearModel | None, rng: np.random.Generator
             ) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[int, dict[int, list[Any]]],
                        dict[str, Any] | None]:
    """Put a checkpoint (checked by :func:`check_checkpoint`) back into ``table``, ``fear``
    and ``rng``; returns its stage snapshots, semantic sources and environment random state.
    :class:`~safeguards.runs.RunDirError` naming ``path`` unless it is a point of this run's
    schedule with tables of this run's shapes, finite values and valid random states."""
    stage, stage_episode = meta["stage"], meta["stage_episode"]
    in_stage = stage_episode == 0 or (stage < len(plan.stages)
                                      and stage_episode < plan.stages[stage].episodes)
    if not in_stage or meta["episode"] != sum(s.episodes for s in plan.stages[:stage]) + \
            stage_episode or meta.get("snapshots") != stage:
        raise RunDirError(path, f"episode {meta['episode']} (episode {stage_episode} of stage "
                          f"{stage}, {meta.get('snapshots')!r} snapshots) is not a point of "
                          "this run's schedule")
    table_shape = table.Q.shape
    expected = {"Q": ("f", table_shape), "U": ("f", table_shape), "known": ("b", table_shape[:2])}
    for j in range(stage):
        expected.update({f"snapshot_Q_{j}": ("f", table_shape),
                         f"snapshot_known_{j}": ("b", table_shape[:2])})
    if fear is not None:
        expected.update({"fear_danger": ("i", fear.arrays()["fear_danger"].shape),
                         "fear_safe": ("i", fear.arrays()["fear_safe"].shape)})
    for name, (kind, shape) in expected.items():
        array = arrays.get(name)
        if array is None or array.dtype.kind != kind or array.shape != shape:
            raise RunDirError(path, f"array {name} is missing or not of kind {kind!r} and "
                              f"shape {shape}")
        if (kind == "f" and not np.isfinite(array).all()) or (kind == "i" and (array < 0).any()):
            raise RunDirError(path, f"array {name} holds "
                              f"{'NaN or infinite' if kind == 'f' else 'negative'} values")
    env_state = meta.get("env_rng")
    try:
        rng.bit_generator.state = meta["rng"]
        if env_state is not None:
            np.random.PCG64().state = env_state
        semantic = {int(k): {int(q): [tuple(m) for m in ms] for q, ms in v.items()}
                    for k, v in meta.get("semantic_sources", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunDirError(path, f"malformed random state or semantic sources "
                          f"({type(exc).__name__}: {exc})") from None
    table.set_arrays(arrays["Q"], arrays["U"], arrays["known"])
    if fear is not None:
        fear.load(arrays["fear_danger"], arrays["fear_safe"])
    snapshots = [(arrays[f"snapshot_Q_{j}"], arrays[f"snapshot_known_{j}"].astype(bool))
                 for j in range(stage)]
    return snapshots, semantic, env_state


def run_tabular_curriculum(config: CurriculumConfig, run_dir: str | os.PathLike[str], *,
                           resume: bool = False, progress: bool = True,
                           on_episode: Callable[[dict[str, Any]], None] | None = None
                           ) -> CurriculumResult:
    """Train through the stages, then test; see the module docstring.

    Args:
        config: the run.
        run_dir: its directory (:class:`~safeguards.runs.RunDir`); must not hold another run
            unless ``resume``.
        resume: continue from the directory's last checkpoint (from scratch if it has none);
            the configuration must be the one the directory was started with.  The result is the
            one an uninterrupted run gives.
        progress: draw a progress bar on stderr.
        on_episode: called with every metrics row, after it is logged and after any checkpoint
            of that episode (raising from it stops the run, as a kill would).
    """
    started = time.perf_counter()
    plan = _plan(config)
    with open_run(run_dir, _resolved_config(config, plan), resume) as (run, checkpoint):
        return _train_and_test(config, plan, run, checkpoint, started=started,
                               progress=progress, on_episode=on_episode)


def _train_and_test(config: CurriculumConfig, plan: _Plan, run: RunDir,
                    checkpoint: Checkpoint | None, *, started: float, progress: bool,
                    on_episode: Callable[[dict[str, Any]], None] | None) -> CurriculumResult:
    """:func:`run_tabular_curriculum` in its run directory (locked), from ``checkpoint``."""
    q_config = QLearningConfig(config.alpha, config.gamma, config.epsilon, config.update,
                               config.q_init)
    stage_sgs = [load_safeguard(s.spec) for s in plan.stages]
    final_sg = load_safeguard(plan.final_spec)
    observed = plan.observe_safeguard
    n_slots = n_slots_for([*stage_sgs, final_sg]) if observed else 1
    stage_slots = [slot_map(sg, n_slots) if observed else [0] * sg.n_states for sg in stage_sgs]
    probe = make_env(plan.stages[0].env_id, plan.stages[0].env_kwargs)
    labeler = resolve_labeler(config.labeler, probe)
    for sg in {id(sg): sg for sg in [*stage_sgs, final_sg]}.values():
        check_coverage(sg.props, labeler)
    shape = make_stepper(probe, labeler, max_steps=config.max_steps, fast=config.fast_env)
    n_obs, n_actions = shape.n_obs, shape.n_actions
    probe.close()
    table = QTable(n_obs, n_slots, n_actions, config.q_init)
    fear = (FearModel(n_obs * n_slots, config.fear_radius, config.fear_penalty)
            if plan.fear else None)
    rng = np.random.default_rng(config.seed)
    snapshots: list[tuple[np.ndarray, np.ndarray]] = []
    stage = stage_episode = episode = 0
    env_state: dict[str, Any] | None = None
    semantic: dict[int, dict[int, list[tuple[int, int]]]] = {}

    earlier_seconds = 0.0
    if checkpoint is None:
        run.start_metrics()
    else:
        meta, arrays = checkpoint
        check_checkpoint(run, meta, version=CHECKPOINT_VERSION, method=config.method_name,
                         seed=config.seed, n_stages=len(plan.stages))
        snapshots, semantic, env_state = _restore(run.npz_path, meta, arrays, plan, table, fear,
                                                  rng)
        stage, stage_episode, episode = meta["stage"], meta["stage_episode"], meta["episode"]
        earlier_seconds = meta.get("wall_seconds", 0.0)
        run.start_metrics(keep=episode, recorded=meta.get("metrics"))

    def save() -> None:
        meta = {"version": CHECKPOINT_VERSION, "method": config.method_name,
                "seed": config.seed, "stage": stage, "stage_episode": stage_episode,
                "episode": episode, "snapshots": len(snapshots),
                "rng": rng.bit_generator.state, "env_rng": env_state,
                "semantic_sources": {str(k): {str(q): ms for q, ms in v.items()}
                                     for k, v in semantic.items()},
                "wall_seconds": earlier_seconds + time.perf_counter() - started,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        run.save_checkpoint(meta, _checkpoint_arrays(table, fear, snapshots))

    total = sum(s.episodes for s in plan.stages)
    bar = Progress(total, enabled=progress, desc=config.method_name, initial=episode)
    recent: list[bool] = []
    try:
        while stage < len(plan.stages):
            current = plan.stages[stage]
            if current.episodes == 0:  # an empty stage still ends (and is snapshotted)
                snapshots.append((table.Q, table.known))
                stage, stage_episode, env_state = stage + 1, 0, None
                save()
                continue
            env = make_env(current.env_id, current.env_kwargs)
            stepper = make_stepper(env, labeler, max_steps=config.max_steps,
                                   fast=config.fast_env)
            if (stepper.n_obs, stepper.n_actions) != (n_obs, n_actions):
                raise ValueError(f"stage {stage} ({current.env_id}) has {stepper.n_obs} "
                                 f"observations and {stepper.n_actions} actions; the first "
                                 f"stage has {n_obs} and {n_actions}")
            stepper.seed(derive_seed(config.seed, 1, stage))
            if stage_episode == 0:
                semantic.update(_begin_stage(plan, table, fear, stage, stage_sgs, stage_slots,
                                             snapshots, config))
            elif env_state is not None:
                stepper.np_random.bit_generator.state = env_state
            train = MonitorTable(stage_sgs[stage], n_slots, plan.reward, observed=observed)
            final = MonitorTable(final_sg, n_slots, plan.reward, observed=observed)
            letters = LetterCache(stepper, train, final)
            paper_stage = stage if plan.transfer == "paper" else None
            while stage_episode < current.episodes:
                stats = run_episode(stepper, table, train, final, rng, q_config,
                                    max_steps=config.max_steps, letters=letters,
                                    paper_stage=paper_stage, fear=fear)
                record = _record(config, stage, stage_episode, episode, stats)
                run.log(record)
                stage_episode += 1
                episode += 1
                recent.append(stats.violated_final)
                del recent[:-100]
                bar.update(1, f"stage {stage + 1}/{len(plan.stages)} "
                              f"final-spec violations (last 100) {sum(recent)}")
                finished = stage_episode == current.episodes
                if finished:
                    snapshots.append((table.Q, table.known))
                    stage, stage_episode, env_state = stage + 1, 0, None
                    save()
                elif config.checkpoint_every and episode % config.checkpoint_every == 0:
                    env_state = stepper.np_random.bit_generator.state
                    save()
                if on_episode is not None:
                    on_episode(record)
                if finished:
                    break
            env.close()
    finally:
        bar.close()
        run.close()

    fallback = _fallback(config, plan)
    test = None
    if config.test_episodes > 0:
        test = evaluate(table, env_id=plan.test_env_id, env_kwargs=plan.test_env_kwargs,
                        spec=plan.final_spec, episodes=config.test_episodes,
                        seed=derive_seed(config.seed, 2), max_steps=config.max_steps,
                        fallback=fallback, observe_safeguard=observed, labeler=labeler,
                        fast_env=config.fast_env)
    rows = read_metrics(run.path)
    n_stages = len(plan.stages)
    result = CurriculumResult(
        run_dir=run.path, method=config.method_name, seed=config.seed, episodes=len(rows),
        stage_episodes=[sum(1 for r in rows if r["stage"] == k) for k in range(n_stages)],
        stage_violations=[sum(1 for r in rows if r["stage"] == k and r["violated"])
                          for k in range(n_stages)],
        stage_violations_final=[sum(1 for r in rows if r["stage"] == k and r["violated_final"])
                                for k in range(n_stages)],
        value_s0=np.array([r["value_s0"] for r in rows], dtype=np.float64),
        test=test, table=table, wall_seconds=earlier_seconds + time.perf_counter() - started,
        semantic_sources=semantic)
    run.write_result({**result.to_dict(), "test_fallback": fallback})
    return result


def _begin_stage(plan: _Plan, table: QTable, fear: FearModel | None, stage: int,
                 stage_sgs: Sequence[Safeguard], stage_slots: Sequence[Sequence[int]],
                 snapshots: Sequence[tuple[np.ndarray, np.ndarray]], config: CurriculumConfig
                 ) -> dict[int, dict[int, list[tuple[int, int]]]]:
    """Apply the transfer at the start of ``stage`` (nothing to do for stage 0)."""
    if stage == 0:
        return {}
    if plan.transfer == "none":
        table.reset()
        if fear is not None:
            fear.load(np.zeros(len(fear.danger), np.int64), np.zeros(len(fear.safe), np.int64))
        return {}
    if plan.transfer == "semantic":
        sources = semantic_sources(stage_sgs[:stage + 1], stage, horizon=config.semantic_horizon)
        q_table, known = table.Q, table.known
        apply_semantic(q_table, known, snapshots, stage_slots, sources, stage, config.q_init)
        table.set_arrays(Q=q_table, known=known)
        return {stage: sources}
    return {}  # warm and paper keep the table (paper initialises lazily, on first visits)


def _record(config: CurriculumConfig, stage: int, stage_episode: int, episode: int,
            stats: EpisodeStats) -> dict[str, Any]:
    return {"method": config.method_name, "seed": config.seed, "stage": stage,
            "stage_episode": stage_episode, "episode": episode, "return": stats.ret,
            "length": stats.length, "violated": stats.violated,
            "violation_step": stats.violation_step, "violated_rules": stats.violated_rules,
            "violated_final": stats.violated_final,
            "violation_step_final": stats.violation_step_final, "value_s0": stats.value_s0,
            "pessimistic_s0": stats.pessimistic_s0}


def evaluate(table: QTable, *, env_id: str, env_kwargs: Mapping[str, Any] | None = None,
             spec: str | Safeguard, episodes: int = 100, seed: int = 0, max_steps: int = 1000,
             fallback: Literal["paper", "none"] = "paper", observe_safeguard: bool = True,
             labeler: Any = None, fast_env: bool = True) -> TestResult:
    """Greedy test of a learnt table under ``spec`` (the paper's test: 100 episodes; success =
    no violation within ``max_steps``); see :func:`~safeguards.learn.qlearning.greedy_episode`
    for the meta-learning queries and the fallback.  ``observe_safeguard=False``: the table
    has one slot and the agent ignores the safeguard state (the ``no_safeguard`` baseline)."""
    sg = load_safeguard(spec)
    env = make_env(env_id, env_kwargs)
    labeler = resolve_labeler(labeler, env)
    check_coverage(sg.props, labeler)
    stepper = make_stepper(env, labeler, max_steps=max_steps, fast=fast_env)
    stepper.seed(seed)
    monitor = MonitorTable(sg, table.n_slots, "task", observed=observe_safeguard)
    letters = LetterCache(stepper, monitor, monitor)
    rng = np.random.default_rng(seed)
    successes = violations = queries = steps = 0
    for _ in range(episodes):
        stats = greedy_episode(stepper, table, monitor, rng, max_steps=max_steps,
                               fallback=fallback, letters=letters)
        violations += stats.violated
        successes += not stats.violated
        queries += stats.meta_queries
        steps += stats.length
    env.close()
    return TestResult(episodes, successes, violations, queries,
                      steps / episodes if episodes else 0.0)

