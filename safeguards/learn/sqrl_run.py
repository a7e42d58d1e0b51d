"""An SQRL run (``learner = "sqrl"``): pre-train on the first stage, fine-tune on the second,
test on the final spec — run by ``safeguards curriculum`` like every learner.

Every stage trains on the product MDP of its environment and safeguard, with the safeguard
state appended to the observation as a one-hot vector (padded to the largest automaton, so one
network serves both stages) and the episode ending on a violation (the paper's terminal failure
states); the violation bit is the cost ``I(s)`` the safety critic learns.  Methods
(``transfer``): ``sqrl``, ``sac`` (no critic), ``sac_lagrangian``; the ``scratch`` baseline is SAC
on the fine-tuning stage alone.  Fine-tuning starts from an empty replay buffer (Algorithm 2,
``D_offline <- {}``) with the pre-trained networks, and acts with the policy from its first step.

Metrics: one row per episode (:mod:`safeguards.learn.episodes`); ``result.json`` adds, per
stage, the filter's calls, replacements-free fallbacks (``stage_fallbacks``) and the final
``nu``.  Tests under the final spec: ``test`` greedy (the actor's mean, unfiltered, as the
authors evaluate) and ``test_stochastic`` acting as the method does in fine-tuning (``sqrl``:
through the filter).

Checkpoints (``checkpoint-<frames>.pt``, and ``stage<k>.pt`` at stage ends): the networks'
tensors, written atomically and read back with ``torch.load(weights_only=True)``.  A resumed run
continues from the last one with fresh optimizers, an empty replay buffer and fresh
environments: its numbers are not those of an uninterrupted run.
"""

from __future__ import annotations

import io
import os
import pickle
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv

from safeguards.automata import Safeguard
from safeguards.compiler import load_safeguard
from safeguards.gym import SafeguardWrapper
from safeguards.labels import Labeler
from safeguards.learn.common import (
    Checkpoint, Plan, check_checkpoint, final_target, make_env, open_run, planned_stages,
    resolved_record,
)
from safeguards.learn.config import DeepStage, SQRLConfig
from safeguards.learn.deep import (
    DEEP_METRIC_FIELDS, DeepResult, check_stage_ends, checked_labeler, checkpoint_meta,
    deep_result, stage_seed, write_model_checkpoint,
)
from safeguards.learn.deep_envs import FinalSpecMonitor, ViolationPenalty
from safeguards.learn.episodes import Counters, evaluate_policy
from safeguards.learn.safety_critic import SafetyCritic
from safeguards.learn.sb3_callbacks import EpisodeMetrics, PeriodicCheckpoint
from safeguards.learn.sqrl import SQRL
from safeguards.runs import Progress, RunDir, RunDirError, read_metrics

__all__ = ["run_sqrl_curriculum", "SQRLResult", "sqrl_env", "env_problem", "new_agent",
           "load_agent"]

CHECKPOINT_VERSION = 1


@dataclass
class SQRLResult(DeepResult):
    """:class:`~safeguards.learn.deep.DeepResult` and what the filter and the dual did."""

    stage_filtered: list[int] = field(default_factory=list)
    """Per stage: actions chosen by the filter."""
    stage_fallbacks: list[int] = field(default_factory=list)
    """Per stage: filtered actions with no action under ``eps_safe`` (least unsafe taken)."""
    nu: float = 0.0
    """The safety multiplier at the end."""


class PadOneHot(gym.ObservationWrapper):
    """Append zeros to a 1-D ``Box`` observation up to ``size`` entries (a shorter one-hot
    safeguard state padded to the curriculum's largest automaton)."""

    def __init__(self, env: gym.Env, size: int) -> None:
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, spaces.Box) and len(space.shape) == 1
        extra = size - space.shape[0]
        if extra < 0:
            raise ValueError(f"cannot pad a {space.shape[0]}-entry observation to {size}")
        self.extra = extra
        pad = np.zeros(extra, np.float32)
        self.observation_space = spaces.Box(np.concatenate([space.low, pad]).astype(np.float32),
                                            np.concatenate([space.high, pad]).astype(np.float32),
                                            dtype=np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        return np.concatenate([np.asarray(observation, np.float32),
                               np.zeros(self.extra, np.float32)])


def env_problem(env: gym.Env) -> str | None:
    """Why SQRL cannot train on ``env``: it needs a 1-D ``Box`` observation and ``Box`` actions
    (its filter samples continuous actions); None when it can.

    >>> env_problem(gym.make("Pendulum-v1")) is None
    True
    >>> env_problem(gym.make("CartPole-v1")).split(";")[0]
    "SQRL's continuous filter needs a Box action space, not Discrete(2)"
    """
    obs, act = env.observation_space, env.action_space
    if not isinstance(obs, spaces.Box) or len(obs.shape) != 1:
        return f"SQRL needs a 1-D Box observation space, not {obs}"
    if not isinstance(act, spaces.Box):
        return (f"SQRL's continuous filter needs a Box action space, not {act}; for discrete "
                "actions use DiscreteSafetyCritic with SafetyCriticCallback")
    return None


def sqrl_env(stage: DeepStage, spec: Safeguard, final_sg: Safeguard, labeler: Labeler, *,
             pad_to: int, violation_penalty: float, max_steps: int | None,
             observe: bool = True) -> gym.Env:
    """The product MDP a stage trains on: observation + one-hot safeguard state (padded to
    ``pad_to`` states; ``observe=False``: zeros instead), reward minus the penalty on a
    violation, the episode ending there, the final spec monitored under ``info["final"]``."""
    env = make_env(stage.env_id, stage.env_kwargs)
    problem = env_problem(env)
    if problem is not None:
        raise ValueError(f"{stage.env_id}: {problem}")
    if max_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_steps)
    env = FinalSpecMonitor(env, final_sg, labeler)
    size = env.observation_space.shape[0] + pad_to  # type: ignore[index]
    env = SafeguardWrapper(env, spec, labeler, observe="onehot" if observe else "none",
                           reward=ViolationPenalty(violation_penalty), terminate_on_violation=True)
    return PadOneHot(env, size)


def new_agent(config: SQRLConfig, env: Any, *, method: str, pretrain_frames: int,
              seed: int) -> SQRL:
    """A fresh agent of ``method`` (``sqrl``, ``sac``, ``sac_lagrangian``) for ``env``."""
    critic = None
    if method != "sac":
        obs_dim = int(np.prod(env.observation_space.shape))
        act_dim = int(np.prod(env.action_space.shape))
        critic = SafetyCritic(obs_dim, act_dim, gamma_safe=config.gamma_safe,
                              loss=config.safety_loss, fail_weight=config.fail_weight,
                              hidden=tuple(config.hidden), learning_rate=config.learning_rate,
                              tau=config.tau, seed=seed)
    return SQRL("MlpPolicy", env, critic, eps_safe=config.eps_safe,
                lagrangian=method == "sac_lagrangian", safe_buffer_size=config.safe_buffer_size,
                train_sc_interval=config.train_sc_interval,
                train_sc_steps=config.train_sc_steps, sc_batch_size=config.batch_size,
                mask_from=int(config.mask_from * pretrain_frames),
                critic_next_action=config.critic_next_action,
                actor_safety_gradient=config.actor_safety_gradient,
                finetune_critic=config.finetune_critic, nu_init=config.nu_init,
                nu_lr=config.nu_lr, n_samples=config.n_samples, max_rounds=config.max_rounds,
                widen=config.widen, filter_select=config.filter_select,
                learning_rate=config.learning_rate, gamma=config.gamma,
                tau=config.tau, batch_size=config.batch_size, buffer_size=config.buffer_size,
                learning_starts=config.learning_starts,
                target_entropy=("auto" if config.target_entropy is None
                                else config.target_entropy),
                policy_kwargs={"net_arch": list(config.hidden)}, seed=seed, device="cpu",
                verbose=0)


def _agent_bytes(agent: SQRL) -> bytes:
    state: dict[str, Any] = {"policy": agent.policy.state_dict(),
                             "nu": torch.tensor(agent.nu, dtype=torch.float64)}
    if agent.log_ent_coef is not None:
        state["log_ent_coef"] = agent.log_ent_coef.detach().clone()
    if agent.safety_critic is not None:
        state["safety_critic"] = agent.safety_critic.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def load_agent(path: Path, agent: SQRL) -> SQRL:
    """Put the tensors ``path`` holds (``torch.load(weights_only=True)``) into ``agent``;
    :class:`~safeguards.runs.RunDirError` naming ``path`` when they do not fit."""
    try:
        with open(path, "rb") as handle:
            state = torch.load(handle, map_location="cpu", weights_only=True)
        agent.policy.load_state_dict(state["policy"])
        if agent.safety_critic is not None:
            agent.safety_critic.load_state_dict(state["safety_critic"])
        if agent.log_ent_coef is not None:
            with torch.no_grad():
                agent.log_ent_coef.copy_(state["log_ent_coef"])
        agent.nu = float(state["nu"])
    except (OSError, EOFError, KeyError, TypeError, ValueError, RuntimeError, AttributeError,
            pickle.UnpicklingError) as exc:
        raise RunDirError(path, f"not a checkpoint of this run's networks "
                          f"({type(exc).__name__}: {exc})") from None
    return agent


def _plan(config: SQRLConfig) -> Plan:
    """The stages and final target; ``transfer`` is the agent's method (``scratch``: SAC)."""
    final_spec, test_env, test_kwargs = final_target(config)
    method = "sac" if config.baseline == "scratch" else config.transfer
    return Plan(planned_stages(config, "frames"), final_spec, test_env, test_kwargs, method)


def run_sqrl_curriculum(config: SQRLConfig, run_dir: str | os.PathLike[str], *,
                        resume: bool = False, progress: bool = True,
                        on_episode: Callable[[dict[str, Any]], None] | None = None
                        ) -> SQRLResult:
    """Pre-train, fine-tune, test; see the module docstring.  Arguments as for
    :func:`~safeguards.learn.curriculum.run_curriculum`."""
    started = time.perf_counter()
    torch.set_num_threads(config.torch_threads)
    plan = _plan(config)
    stage_sgs = [load_safeguard(s.spec) for s in plan.stages]
    final_sg = load_safeguard(plan.final_spec)
    pad_to = max(sg.n_states for sg in [*stage_sgs, final_sg])
    with open_run(run_dir, resolved_record(config, plan, safeguard_states=pad_to), resume,
                  fields=DEEP_METRIC_FIELDS) as (run, checkpoint):
        return _train_and_test(config, plan, run, checkpoint, stage_sgs, final_sg, pad_to,
                               started=started, progress=progress, on_episode=on_episode)


def _check(run: RunDir, meta: Mapping[str, Any], config: SQRLConfig, plan: Plan) -> Path:
    check_checkpoint(run, meta, version=CHECKPOINT_VERSION, method=config.method_name,
                     seed=config.seed, n_stages=len(plan.stages))
    check_stage_ends(run, meta)
    for key in ("stage_filtered", "stage_fallbacks"):
        counts = meta.get(key)
        if not isinstance(counts, list) or len(counts) != meta["stage"] or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
            raise RunDirError(run.npz_path, f"{key} {counts!r} is not a count per finished "
                              "stage")
    name = meta.get("model")
    if name != f"checkpoint-{meta['frames']}.pt":
        raise RunDirError(run.npz_path, f"model {name!r} is not checkpoint-{meta['frames']}.pt")
    path = run.path / name
    if path.is_symlink() or not path.is_file():
        raise RunDirError(path, "missing, or not a regular file")
    return path


def _train_and_test(config: SQRLConfig, plan: Plan, run: RunDir, checkpoint: Checkpoint | None,
                    stage_sgs: Sequence[Safeguard], final_sg: Safeguard, pad_to: int, *,
                    started: float, progress: bool,
                    on_episode: Callable[[dict[str, Any]], None] | None) -> SQRLResult:
    labeler = checked_labeler(config, plan, [*stage_sgs, final_sg])  # type: ignore[arg-type]
    counters, stage_ends = Counters(), []
    filtered: list[int] = []
    fallbacks: list[int] = []
    model_file: Path | None = None
    earlier_seconds = earlier_train_seconds = 0.0
    frames = 0
    if checkpoint is None:
        run.start_metrics()
    else:
        meta, _ = checkpoint
        model_file = _check(run, meta, config, plan)
        counters = Counters(meta["stage"], meta["episode"], meta["stage_episode"])
        stage_ends = list(meta["stage_ends"])
        filtered, fallbacks = list(meta["stage_filtered"]), list(meta["stage_fallbacks"])
        frames = int(meta["frames"])
        earlier_seconds = meta.get("wall_seconds", 0.0)
        earlier_train_seconds = meta.get("train_seconds", 0.0)
        run.start_metrics(keep=counters.episode, recorded=meta.get("metrics"))
    ends = np.cumsum([s.frames for s in plan.stages]).tolist()
    make = partial(sqrl_env, final_sg=final_sg, labeler=labeler, pad_to=pad_to,
                   violation_penalty=config.violation_penalty, max_steps=config.max_steps,
                   observe=config.observe_safeguard)
    train_started = time.perf_counter()
    agent: SQRL | None = None

    def save(started_stage: bool, stage_file: str | None = None) -> None:
        assert agent is not None
        write_model_checkpoint(run, _agent_bytes(agent), suffix=".pt", stage_file=stage_file,
                               meta=checkpoint_meta(
                                   config, counters, version=CHECKPOINT_VERSION,
                                   started_stage=started_stage, frames=int(agent.num_timesteps),
                                   stage_ends=stage_ends, stage_filtered=filtered,
                                   stage_fallbacks=fallbacks,
                                   wall_seconds=earlier_seconds + time.perf_counter() - started,
                                   train_seconds=earlier_train_seconds + time.perf_counter()
                                   - train_started))

    bar = Progress(int(ends[-1]), enabled=progress, desc=config.method_name, initial=frames)
    metrics = EpisodeMetrics(run, counters, method=config.method_name, seed=config.seed,
                             progress=bar, on_episode=on_episode)
    pretrain_frames = plan.stages[0].frames if len(plan.stages) > 1 else 0
    try:
        while counters.stage < len(plan.stages):
            k = counters.stage
            env = DummyVecEnv([partial(make, plan.stages[k], stage_sgs[k])])
            env.seed(stage_seed(config.seed, 1, k, counters.episode))
            if agent is None:
                agent = new_agent(config, env, method=plan.transfer,
                                  pretrain_frames=pretrain_frames, seed=stage_seed(config.seed, 3))
                if model_file is not None:
                    load_agent(model_file, agent)
                    agent.num_timesteps = frames
                    agent._last_sc_train = frames
            else:
                agent.set_env(env)
            # the last stage fine-tunes (a baseline's only stage is the fine-tuning task)
            if k == len(plan.stages) - 1 and agent.phase != "finetune":
                agent.phase = "finetune"
                agent.replay_buffer.reset()  # type: ignore[union-attr]
                agent.learning_starts = agent.num_timesteps + config.batch_size
            stats = agent.filter.stats if agent.filter is not None else None
            before = (stats.calls, stats.fallbacks) if stats else (0, 0)
            remaining = int(ends[k]) - agent.num_timesteps
            if plan.stages[k].frames > 0 and remaining > 0:
                checkpoints = PeriodicCheckpoint(config.checkpoint_every,
                                                 lambda: save(True))
                agent.learn(remaining, callback=[metrics, checkpoints],
                            reset_num_timesteps=False)
            env.close()
            filtered.append(stats.calls - before[0] if stats else 0)
            fallbacks.append(stats.fallbacks - before[1] if stats else 0)
            counters.stage, counters.stage_episode = k + 1, 0
            stage_ends.append(int(agent.num_timesteps))
            save(False, f"stage{k + 1}.pt")
    finally:
        bar.close()
        run.close()
    train_seconds = earlier_train_seconds + time.perf_counter() - train_started

    if agent is None:  # finished before: only test again
        env = DummyVecEnv([partial(make, plan.stages[-1], stage_sgs[-1])])
        agent = new_agent(config, env, method=plan.transfer, pretrain_frames=pretrain_frames,
                          seed=stage_seed(config.seed, 3))
        assert model_file is not None
        load_agent(model_file, agent)
        agent.phase = "finetune"
        env.close()
    test = stochastic = None
    if config.test_episodes > 0:
        make_test = partial(make, DeepStage(plan.test_env_id, plan.test_env_kwargs,
                                            plan.final_spec, 0), final_sg)
        test, stochastic = (evaluate_policy(partial(_act, agent), make_test,
                                            episodes=config.test_episodes,
                                            deterministic=greedy, seed=stage_seed(config.seed, 2))
                            for greedy in (True, False))
    rows = read_metrics(run.path)
    base = deep_result(config, run.path, rows, stage_ends, test, stochastic,  # type: ignore[arg-type]
                       earlier_seconds + time.perf_counter() - started, train_seconds)
    result = SQRLResult(**{**vars(base), "stage_filtered": filtered,
                           "stage_fallbacks": fallbacks, "nu": agent.nu})
    run.write_result(result.to_dict())
    return result


def _act(agent: SQRL, obs: Any, deterministic: bool) -> np.ndarray:
    """Greedy: the actor's mean; otherwise as the agent acts in fine-tuning (the filter for
    ``sqrl``)."""
    if not deterministic and agent.filtering:
        return agent.policy.unscale_action(agent.safe_actions(np.asarray(obs)[None]))[0]
    action, _ = agent.predict(obs, deterministic=deterministic)
    return action
