"""Progressive safeguards from pixels: Stable-Baselines3 PPO through a sequence of (image
environment, safeguard) stages, the deep counterpart of :mod:`safeguards.learn.tabular`.

The paper trains Sample Factory's APPO on VizDoom and moves from one safeguard to the next by
resuming the same checkpoint with a fresh optimizer, optional parameter noise and a larger
exploration coefficient (papers.md §1.4, §1.6.3).  Here the engine is Stable-Baselines3's PPO
(``CnnPolicy``, or ``MultiInputPolicy`` when the policy observes the safeguard state), and
every stage trains on the product MDP of :mod:`safeguards.learn.deep_envs`:

* observation: the image, and the safeguard state as ``Discrete(n)`` (one-hot in the network),
  ``n`` = the largest automaton among the curriculum's specs and the final spec, computed
  before training, so the network's input has one size in every stage;
* reward: the task reward minus ``violation_penalty`` on a violating step, and the episode
  ends there (``terminate_on_violation``) — the paper's VizDoom mode;
* violations of the fixed final (test) spec are monitored on every step whatever the stage's
  safeguard, and logged per episode (``violated_final``, ``violations_final``).

Between stages (``transfer``):

``reuse``
    the same network goes on (the paper); ``load_optimizer=False`` gives it a fresh Adam
    optimizer (the paper's ``--load_optimizer=False``), ``noise_mult`` adds Gaussian parameter
    noise scaled by each tensor's range (the paper's ``--noise_mult``), ``transfer_ent_coef``
    replaces the entropy coefficient (the paper raises its exploration loss 0.001 -> 0.003).
``reset``
    a freshly initialised network and optimizer every stage.

Baselines replace the schedule by one stage on the last stage's environment for the whole
budget: ``scratch`` trains on the final spec (the paper's "zero-shot"), ``no_safeguard`` on the
task reward alone with the final spec only monitored (the paper's "baseline", safeguard -1).

Budgets are agent steps (``frames`` of a stage: policy decisions summed over the ``n_envs``
environments; a stage ends at the first rollout boundary at or after its cumulative budget).
Differences from the paper's setup, by necessity: PPO instead of asynchronous APPO, no
recurrent core (the safeguard state is observed instead), Stable-Baselines3's entropy bonus
instead of Sample Factory's symmetric-KL exploration loss.

Checkpoints (``checkpoint-<frames>.zip``, a ``PPO.save`` written atomically, named by the run
directory's ``checkpoint.json``) are taken at every stage end and every ``checkpoint_every``
agent steps; ``stage<k>.zip`` keeps the network at the end of stage ``k``.  A resumed run
continues from the last checkpoint with freshly reset environments: episodes that were under
way are dropped (the metrics are cut back to the checkpoint), and the random streams are not
those of an uninterrupted run.  The checkpoint is checked first (:func:`~safeguards.learn.
common.check_checkpoint`; its model must be a regular file of the run directory named after its
agent steps) and the agent is rebuilt from it without unpickling anything (:func:`load_model`).
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import time
import zipfile
import zlib
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from safeguards.automata import Safeguard
from safeguards.files import write_atomic
from safeguards.labels import Labeler, check_coverage
from safeguards.compiler import load_safeguard
from safeguards.learn.common import (
    Checkpoint, Plan, ViolationTotals, check_checkpoint, final_target, make_env, open_run,
    planned_stages, resolve_labeler, resolved_record,
)
from safeguards.learn.config import DeepConfig, DeepStage
from safeguards.learn.deep_envs import product_env
from safeguards.learn.episodes import Counters, evaluate_policy
from safeguards.learn.sb3_callbacks import EpisodeMetrics, PeriodicCheckpoint
from safeguards.runs import METRIC_FIELDS, Progress, RunDir, RunDirError, read_metrics, to_json

__all__ = ["run_deep_curriculum", "DeepResult", "DEEP_METRIC_FIELDS", "DeepPlan", "begin_stage",
           "new_model", "load_model", "plan_of", "resolved_config", "stage_seed", "deep_result",
           "checked_labeler", "check_stage_ends", "checkpoint_meta", "write_model_checkpoint"]

CHECKPOINT_VERSION = 1
#: ``metrics.csv`` columns of a deep run: the tabular ones and what PPO adds.
DEEP_METRIC_FIELDS = (*METRIC_FIELDS, "task_return", "violations_final", "frames")


@dataclass
class DeepPlan(Plan):
    """The PPO learner's plan: what the policy observes, the penalty, termination."""

    observe: bool
    violation_penalty: float
    terminate_on_violation: bool


def plan_of(config: DeepConfig) -> DeepPlan:
    """The stages, final spec and product-MDP settings a configuration trains with."""
    final_spec, test_env, test_kwargs = final_target(config)
    observe, penalty, terminate = (config.observe_safeguard, config.violation_penalty,
                                   config.terminate_on_violation)
    if config.baseline == "no_safeguard":  # the final spec is only monitored
        observe, penalty, terminate = False, 0.0, False
    transfer = config.transfer if config.baseline is None else "reset"
    return DeepPlan(planned_stages(config, "frames"), final_spec, test_env, test_kwargs, transfer,
                 observe, penalty, terminate)


@dataclass
class DeepResult(ViolationTotals):
    """What :func:`run_deep_curriculum` returns (also written to ``result.json``)."""

    run_dir: Path
    method: str
    seed: int
    frames: int
    """Agent steps trained."""
    episodes: int
    """Training episodes finished."""
    stage_frames: list[int]
    stage_episodes: list[int]
    stage_violations: list[int]
    """Per stage: episodes that violated the stage's spec."""
    stage_violations_final: list[int]
    """Per stage: episodes that violated the final spec."""
    test: dict[str, Any] | None
    """Greedy test under the final spec (:func:`evaluate_policy`)."""
    test_stochastic: dict[str, Any] | None
    """The same with actions sampled from the policy."""
    wall_seconds: float
    """Wall time of every process that worked on the run (a killed one's up to its last
    checkpoint), the tests included."""
    train_seconds: float
    """Of which training."""
    learner: str = "ppo"
    """``ppo`` (Stable-Baselines3) or ``rllib_ppo``."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(train_violations=self.train_violations,
                    train_violations_final=self.train_violations_final,
                    wall_seconds=round(self.wall_seconds, 3),
                    train_seconds=round(self.train_seconds, 3))
        return to_json(data)


# -- the network and what carries over ---------------------------------------------------------

def new_model(config: DeepConfig, env: DummyVecEnv, *, observe: bool, seed: int) -> PPO:
    """A freshly initialised PPO agent for ``env`` with the configuration's hyperparameters."""
    return PPO("MultiInputPolicy" if observe else "CnnPolicy", env,
               n_steps=config.n_steps, batch_size=config.batch_size, n_epochs=config.n_epochs,
               learning_rate=config.learning_rate, gamma=config.gamma,
               gae_lambda=config.gae_lambda, clip_range=config.clip_range,
               ent_coef=config.ent_coef, vf_coef=config.vf_coef,
               max_grad_norm=config.max_grad_norm, seed=seed, device="cpu", verbose=0)


def begin_stage(model: PPO, config: DeepConfig, transfer: str, env: DummyVecEnv, *,
                observe: bool, seed: int) -> PPO:
    """The agent that starts a later stage: ``reuse`` keeps ``model`` (fresh optimizer unless
    ``load_optimizer``, parameter noise, ``transfer_ent_coef``); ``reset`` makes a new one.
    The agent-step counter carries over either way."""
    if transfer == "reset":
        fresh = new_model(config, env, observe=observe, seed=seed)
        fresh.num_timesteps = model.num_timesteps
        return fresh
    policy = model.policy
    if config.noise_mult > 0:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in policy.parameters():
                spread = float(param.max() - param.min()) or 0.1
                noise = torch.randn(param.shape, generator=generator) * spread * config.noise_mult
                param.add_(noise)
    if not config.load_optimizer:
        policy.optimizer = policy.optimizer_class(policy.parameters(), lr=model.lr_schedule(1.0),
                                                  **policy.optimizer_kwargs)
    if config.transfer_ent_coef is not None:
        model.ent_coef = config.transfer_ent_coef
    return model


#: The plain numbers of a saved agent's ``data`` that :func:`load_model` takes over.
_SAVED_COUNTERS = ("num_timesteps", "_total_timesteps", "_num_timesteps_at_start",
                   "_episode_num", "_current_progress_remaining", "_n_updates", "ent_coef")


def load_model(path: Path, config: DeepConfig, env: DummyVecEnv, *, observe: bool) -> PPO:
    """The agent ``PPO.save`` wrote to ``path``, rebuilt without unpickling the file's objects:
    a fresh agent (:func:`new_model` with the saved seed) takes the saved weights and optimizer
    state (``policy.pth``, ``policy.optimizer.pth``, through ``torch.load(weights_only=True)``)
    and the plain numbers of the saved ``data`` (read as JSON: the agent-step counter, the
    entropy coefficient, ...).  The cloudpickled entries of ``data`` (spaces, schedules, the
    policy class, buffers) and ``pytorch_variables.pth`` are never read: they follow from the
    configuration.  :class:`~safeguards.runs.RunDirError` naming ``path`` when it is not a
    saved agent of this network."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data").decode("utf-8"))
            weights = {name: torch.load(io.BytesIO(archive.read(f"{name}.pth")),
                                        map_location="cpu", weights_only=True)
                       for name in ("policy", "policy.optimizer")}
    except (OSError, EOFError, KeyError, ValueError, RuntimeError, zipfile.BadZipFile,
            zlib.error, pickle.UnpicklingError) as exc:
        raise RunDirError(path, f"not a readable PPO checkpoint ({type(exc).__name__}: "
                          f"{exc})") from None
    counters = {key: data.get(key) for key in _SAVED_COUNTERS} if isinstance(data, dict) else {}
    seed = data.get("seed") if isinstance(data, dict) else None
    if not isinstance(seed, int) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in counters.values()) or len(counters) != len(_SAVED_COUNTERS):
        raise RunDirError(path, "its data do not hold the agent's seed and counters as numbers")
    model = new_model(config, env, observe=observe, seed=seed)
    try:
        model.policy.load_state_dict(weights["policy"])
        model.policy.optimizer.load_state_dict(weights["policy.optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(path, f"its weights do not fit this run's network ({exc})") from None
    for key, value in counters.items():
        setattr(model, key, value)
    return model


def _model_bytes(model: PPO) -> bytes:
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


# -- environments ------------------------------------------------------------------------------

def _vec_env(stage: DeepStage, spec: Safeguard, final_sg: Safeguard, labeler: Labeler,
             plan: DeepPlan, config: DeepConfig, pad_to: int, seed: int) -> DummyVecEnv:
    make = partial(product_env, partial(make_env, stage.env_id, stage.env_kwargs), spec=spec,
                   final_spec=final_sg, labeler=labeler, observe=plan.observe, pad_to=pad_to,
                   violation_penalty=plan.violation_penalty,
                   terminate_on_violation=plan.terminate_on_violation,
                   max_steps=config.max_steps)
    env = DummyVecEnv([make] * config.n_envs)
    env.seed(seed)
    return env


def stage_seed(seed: int, purpose: int, *index: int) -> int:
    """A seed for a purpose (1: stage environments, 2: test, 3: networks, 4: noise)."""
    return int(np.random.SeedSequence([seed, purpose, *index]).generate_state(1)[0] % 2**31)


def _act(model: PPO, obs: Any, deterministic: bool) -> int:
    action, _ = model.predict(obs, deterministic=deterministic)
    return int(action)


# -- the run -----------------------------------------------------------------------------------

def resolved_config(config: DeepConfig, plan: DeepPlan, pad_to: int) -> dict[str, Any]:
    """What ``config.json`` records: the configuration and the plan resolved from it."""
    return resolved_record(config, plan, observe_safeguard=plan.observe,
                           violation_penalty=plan.violation_penalty,
                           terminate_on_violation=plan.terminate_on_violation,
                           safeguard_states=pad_to)


def run_deep_curriculum(config: DeepConfig, run_dir: str | os.PathLike[str], *,
                        resume: bool = False, progress: bool = True,
                        on_episode: Callable[[dict[str, Any]], None] | None = None
                        ) -> DeepResult:
    """Train PPO through the stages, then test greedily and stochastically under the final
    spec; see the module docstring.  Arguments as for
    :func:`~safeguards.learn.curriculum.run_curriculum` (``on_episode`` gets every metrics row;
    raising from it stops the run as a kill would)."""
    started = time.perf_counter()
    torch.set_num_threads(config.torch_threads)
    plan = plan_of(config)
    stage_sgs = [load_safeguard(s.spec) for s in plan.stages]
    final_sg = load_safeguard(plan.final_spec)
    pad_to = max(sg.n_states for sg in [*stage_sgs, final_sg])
    with open_run(run_dir, resolved_config(config, plan, pad_to), resume,
                  fields=DEEP_METRIC_FIELDS) as (run, checkpoint):
        return _train_and_test(config, plan, run, checkpoint, stage_sgs, final_sg, pad_to,
                               started=started, progress=progress, on_episode=on_episode)


def _train_and_test(config: DeepConfig, plan: DeepPlan, run: RunDir, checkpoint: Checkpoint | None,
                    stage_sgs: Sequence[Safeguard], final_sg: Safeguard, pad_to: int, *,
                    started: float, progress: bool,
                    on_episode: Callable[[dict[str, Any]], None] | None) -> DeepResult:
    """:func:`run_deep_curriculum` in its run directory (locked), from ``checkpoint``."""
    labeler = checked_labeler(config, plan, [*stage_sgs, final_sg])

    counters = Counters()
    stage_ends: list[int] = []
    stage_started = False
    model: PPO | None = None
    model_file: Path | None = None
    earlier_seconds = earlier_train_seconds = 0.0
    if checkpoint is None:
        run.start_metrics()
    else:
        meta, _ = checkpoint
        model_file = _check_deep_checkpoint(run, meta, config, plan)
        counters = Counters(meta["stage"], meta["episode"], meta["stage_episode"])
        stage_started = meta["stage_started"]
        stage_ends = list(meta["stage_ends"])
        earlier_seconds = meta.get("wall_seconds", 0.0)
        earlier_train_seconds = meta.get("train_seconds", 0.0)
        run.start_metrics(keep=counters.episode, recorded=meta.get("metrics"))
    ends = np.cumsum([s.frames for s in plan.stages]).tolist()

    def save(agent: PPO, started_stage: bool, stage_file: str | None = None) -> None:
        write_model_checkpoint(run, _model_bytes(agent), suffix=".zip", stage_file=stage_file,
                               meta=checkpoint_meta(
                                   config, counters, version=CHECKPOINT_VERSION,
                                   started_stage=started_stage, frames=int(agent.num_timesteps),
                                   stage_ends=stage_ends,
                                   wall_seconds=earlier_seconds + time.perf_counter() - started,
                                   train_seconds=earlier_train_seconds + time.perf_counter()
                                   - train_started))

    frames_done = int(checkpoint[0]["frames"]) if checkpoint is not None else 0
    bar = Progress(int(ends[-1]), enabled=progress, desc=config.method_name, initial=frames_done)
    metrics = EpisodeMetrics(run, counters, method=config.method_name, seed=config.seed,
                             progress=bar, on_episode=on_episode)
    train_started = time.perf_counter()
    try:
        while counters.stage < len(plan.stages):
            k = counters.stage
            env = _vec_env(plan.stages[k], stage_sgs[k], final_sg, labeler, plan, config, pad_to,
                           stage_seed(config.seed, 1, k, counters.episode))
            if model is None and model_file is not None:
                model = _load_checkpoint_model(model_file, config, env, plan, meta)
            elif model is None:
                model = new_model(config, env, observe=plan.observe, seed=stage_seed(config.seed, 3))
            else:
                model.set_env(env)
            if not stage_started and k > 0:  # deterministic: redone when resumed from here
                model = begin_stage(model, config, plan.transfer, env, observe=plan.observe,
                                    seed=stage_seed(config.seed, 3 if plan.transfer == "reset" else 4,
                                               k))
            stage_started = True
            remaining = int(ends[k]) - model.num_timesteps
            if plan.stages[k].frames > 0:
                checkpoints = PeriodicCheckpoint(config.checkpoint_every,
                                                 lambda: save(model, True))
                model.learn(max(remaining, 1), callback=[metrics, checkpoints],
                            reset_num_timesteps=False)
            env.close()
            counters.stage, counters.stage_episode, stage_started = k + 1, 0, False
            stage_ends.append(int(model.num_timesteps))
            save(model, False, f"stage{k + 1}.zip")
    finally:
        bar.close()
        run.close()
    train_seconds = earlier_train_seconds + time.perf_counter() - train_started

    test = stochastic = None
    if config.test_episodes > 0:
        make_test = partial(product_env, partial(make_env, plan.test_env_id,
                                                 plan.test_env_kwargs),
                            spec=final_sg, final_spec=final_sg, labeler=labeler,
                            observe=plan.observe, pad_to=pad_to, violation_penalty=0.0,
                            terminate_on_violation=True, max_steps=config.max_steps)
        if model is None and model_file is not None:  # finished before: only test again
            spaces_env = DummyVecEnv([make_test])
            model = _load_checkpoint_model(model_file, config, spaces_env, plan, meta)
            spaces_env.close()
        assert model is not None  # trained here, or loaded from the checkpoint
        test, stochastic = (evaluate_policy(partial(_act, model), make_test,
                                            episodes=config.test_episodes,
                                            deterministic=greedy, seed=stage_seed(config.seed, 2))
                            for greedy in (True, False))
    rows = read_metrics(run.path)
    result = deep_result(config, run.path, rows, stage_ends, test, stochastic,
                     earlier_seconds + time.perf_counter() - started, train_seconds)
    run.write_result(result.to_dict())
    return result


def checkpoint_meta(config: Any, counters: Counters, *, version: int, started_stage: bool,
                    frames: int, stage_ends: Sequence[int], wall_seconds: float,
                    train_seconds: float, **extra: Any) -> dict[str, Any]:
    """The metadata of a deep learner's checkpoint (what :func:`check_checkpoint` and
    :func:`check_stage_ends` read back), plus ``extra``."""
    return {"version": version, "method": config.method_name, "seed": config.seed,
            "stage": counters.stage, "stage_started": started_stage, "episode": counters.episode,
            "stage_episode": counters.stage_episode, "frames": frames,
            "stage_ends": list(stage_ends), "wall_seconds": wall_seconds,
            "train_seconds": train_seconds, **extra}


def write_model_checkpoint(run: RunDir, data: bytes, *, suffix: str, stage_file: str | None,
                           meta: Mapping[str, Any]) -> None:
    """Write the model ``checkpoint-<frames><suffix>`` (and ``stage_file``) atomically, then the
    checkpoint naming it (``meta`` plus ``model`` and ``saved_at``), then remove older models."""
    name = f"checkpoint-{meta['frames']}{suffix}"
    if stage_file is not None:
        write_atomic(run.path / stage_file, data)
    write_atomic(run.path / name, data)
    run.save_checkpoint({**meta, "model": name,
                         "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, {})
    for old in run.path.glob(f"checkpoint-*{suffix}"):
        if old.name != name:
            old.unlink()


def checked_labeler(config: DeepConfig, plan: DeepPlan, safeguards: Sequence[Safeguard]
                    ) -> Labeler:
    """The run's labeler (the configuration's, else the first stage environment's own),
    checked to label every proposition of ``safeguards``."""
    probe = make_env(plan.stages[0].env_id, plan.stages[0].env_kwargs)
    labeler = resolve_labeler(config.labeler, probe)
    probe.close()
    for sg in {id(sg): sg for sg in safeguards}.values():
        check_coverage(sg.props, labeler)
    return labeler


def check_stage_ends(run: RunDir, meta: Mapping[str, Any]) -> None:
    """A deep checkpoint's ``stage_ends``, ``frames`` and ``stage_started`` must be those of a
    run at its ``stage`` (:func:`check_checkpoint` checked ``stage``)."""
    ends, frames = meta.get("stage_ends"), meta.get("frames")
    counts: list[Any] = [*ends, frames] if isinstance(ends, list) else [None]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts) \
            or counts != sorted(counts) or len(counts) != meta["stage"] + 1 \
            or not isinstance(meta.get("stage_started"), bool):
        raise RunDirError(run.npz_path, f"stage_ends {ends!r}, frames {frames!r} and "
                          f"stage_started {meta.get('stage_started')!r} are not those of a "
                          f"run at stage {meta['stage']}")


def _check_deep_checkpoint(run: RunDir, meta: Mapping[str, Any], config: DeepConfig,
                           plan: DeepPlan) -> Path:
    """Check a PPO checkpoint's metadata (:func:`check_checkpoint` and the stage ends, agent
    steps and model file); returns its model file, a regular file of the run directory."""
    check_checkpoint(run, meta, version=CHECKPOINT_VERSION, method=config.method_name,
                     seed=config.seed, n_stages=len(plan.stages))
    check_stage_ends(run, meta)
    frames, name = meta["frames"], meta.get("model")
    if name != f"checkpoint-{frames}.zip":
        raise RunDirError(run.npz_path, f"model {name!r} is not checkpoint-{frames}.zip, a "
                          "file of the run directory")
    model_file = run.path / name
    if model_file.is_symlink() or not model_file.is_file():
        raise RunDirError(model_file, "missing, or not a regular file")
    return model_file


def _load_checkpoint_model(path: Path, config: DeepConfig, env: DummyVecEnv, plan: DeepPlan,
                           meta: Mapping[str, Any]) -> PPO:
    """:func:`load_model`, checked to be the agent the checkpoint names (its agent steps)."""
    model = load_model(path, config, env, observe=plan.observe)
    if model.num_timesteps != meta["frames"]:
        raise RunDirError(path, f"an agent of {model.num_timesteps} agent steps; the "
                          f"checkpoint names one of {meta['frames']}")
    return model


def deep_result(config: DeepConfig, path: Path, rows: Sequence[Mapping[str, Any]],
            stage_ends: Sequence[int], test: dict[str, Any] | None,
            stochastic: dict[str, Any] | None, wall: float, train_seconds: float) -> DeepResult:
    """The result of a deep run from its metrics rows, stage ends and tests."""
    def per_stage(key: str | None) -> list[int]:
        return [sum(1 for r in rows if r["stage"] == k and (key is None or r[key]))
                for k in range(len(stage_ends))]

    return DeepResult(run_dir=path, method=config.method_name, seed=config.seed,
                      frames=int(stage_ends[-1]), episodes=len(rows),
                      stage_frames=[b - a for a, b in zip([0, *stage_ends[:-1]], stage_ends)],
                      stage_episodes=per_stage(None), stage_violations=per_stage("violated"),
                      stage_violations_final=per_stage("violated_final"), test=test,
                      test_stochastic=stochastic, wall_seconds=wall,
                      train_seconds=train_seconds, learner=config.learner)
