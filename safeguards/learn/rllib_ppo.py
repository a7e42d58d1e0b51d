"""Progressive safeguards on RLlib: PPO (RLlib's new API stack) through the stages of a
curriculum, ``learner = "rllib_ppo"`` — the Stable-Baselines3 learner's protocol
(:mod:`safeguards.learn.deep`) with RLlib's engine, so sampling can spread over env-runner
processes (``num_env_runners``) and, under the Ray executor, over a cluster.

What is the same as ``learner = "ppo"``: the product MDP of every stage (reward minus the
penalty on a violation, the episode ending there, the final spec monitored), the safeguard
state in the observation (one-hot planes appended to the image, :mod:`~safeguards.learn.
rllib_env`), the transfers (``reuse``: the previous stage's RLModule weights, a fresh optimizer,
optional parameter noise and ``transfer_ent_coef``; ``reset``: fresh weights), the baselines,
the metrics rows (one per finished episode, ``safeguards report`` reads them unchanged; cost and
violations are also RLlib metrics, ``safeguards/...``), the greedy and stochastic tests and
``result.json``.  The settings map to RLlib's PPO: ``n_envs x n_steps`` agent steps a training
batch, ``batch_size`` a minibatch, ``n_epochs`` passes, ``clip_range``, ``ent_coef``,
``vf_coef``, ``max_grad_norm`` (global norm), no KL penalty and no value clipping (as SB3);
the network is RLlib's default CNN with the Nature-CNN filters of SB3's ``CnnPolicy``.

Differences, by necessity: an episode's row is written after the training iteration that
finished it, its ``frames`` being the agent steps at that iteration's end, and its ``value_s0``
empty (RLlib does not hand the critic's values to callbacks); a stage ends at the first
iteration at or after its budget.

Checkpoints: at every stage end and every ``checkpoint_every`` agent steps the RLModule's
weights go into ``checkpoint.npz`` (plain arrays: resuming reads no pickle), and at a stage end
RLlib's own checkpoint into ``rllib-stage<k>/`` (``Algorithm.from_checkpoint`` restores it, for
use outside safeguards).  A resumed run continues from the weights with a fresh optimizer and
freshly reset environments: its random streams are not those of an uninterrupted run.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from safeguards.automata import Safeguard
from safeguards.compiler import load_safeguard
from safeguards.learn.common import Checkpoint, check_checkpoint, open_run
from safeguards.learn.config import RLlibConfig
from safeguards.learn.deep import (
    DEEP_METRIC_FIELDS, DeepPlan, DeepResult, check_stage_ends, checked_labeler, deep_result,
    plan_of, resolved_config, stage_seed,
)
from safeguards.learn.episodes import Counters, EpisodeLog, EpisodeTally, evaluate_policy
from safeguards.runs import Progress, RunDir, RunDirError, read_metrics

__all__ = ["run_rllib_curriculum"]

CHECKPOINT_VERSION = 1
_ENV_NAME = "safeguards-stage"
_NATURE_CNN = [[32, [8, 8], 4], [64, [4, 4], 2], [64, [3, 3], 1]]


def _env_config(config: RLlibConfig, plan: DeepPlan, k: int | None, pad_to: int
                ) -> dict[str, Any]:
    """The plain settings :func:`~safeguards.learn.rllib_env.stage_env` builds stage ``k``
    from (``None``: the test environment, the final spec's product MDP)."""
    if k is None:
        return {"env_id": plan.test_env_id, "env_kwargs": plan.test_env_kwargs,
                "spec": plan.final_spec, "final_spec": plan.final_spec,
                "labeler": config.labeler, "observe": plan.observe, "pad_to": pad_to,
                "violation_penalty": 0.0, "terminate_on_violation": True,
                "max_steps": config.max_steps}
    stage = plan.stages[k]
    return {"env_id": stage.env_id, "env_kwargs": stage.env_kwargs, "spec": stage.spec,
            "final_spec": plan.final_spec, "labeler": config.labeler, "observe": plan.observe,
            "pad_to": pad_to, "violation_penalty": plan.violation_penalty,
            "terminate_on_violation": plan.terminate_on_violation,
            "max_steps": config.max_steps}


def _build(config: RLlibConfig, env_config: Mapping[str, Any], *, entropy: float,
           seed: int) -> Any:
    """An RLlib PPO algorithm on one stage's environment."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.registry import register_env

    from safeguards.learn.rllib_env import SafeguardMetrics, stage_env

    register_env(_ENV_NAME, stage_env)
    probe = stage_env(env_config)
    image = len(probe.observation_space.shape) == 3
    probe.close()
    model: dict[str, Any] = {"conv_filters": _NATURE_CNN, "head_fcnet_hiddens": [512]} \
        if image else {"fcnet_hiddens": [64, 64]}
    ppo = (PPOConfig()
           .environment(_ENV_NAME, env_config=dict(env_config))
           .framework("torch")
           .env_runners(num_env_runners=config.num_env_runners,
                        num_envs_per_env_runner=config.n_envs,
                        rollout_fragment_length="auto")
           .learners(num_learners=0)
           .training(train_batch_size_per_learner=config.n_envs * config.n_steps,
                     minibatch_size=config.batch_size, num_epochs=config.n_epochs,
                     lr=config.learning_rate, gamma=config.gamma, lambda_=config.gae_lambda,
                     clip_param=config.clip_range, entropy_coeff=entropy,
                     vf_loss_coeff=config.vf_coef, grad_clip=config.max_grad_norm,
                     grad_clip_by="global_norm", use_kl_loss=False,
                     vf_clip_param=float("inf"))
           .rl_module(model_config=model)
           .callbacks(SafeguardMetrics)
           .debugging(seed=seed, log_level="ERROR")
           .reporting(metrics_num_episodes_for_smoothing=1))
    return ppo.build_algo()


def _weights(algo: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in algo.get_module().get_state().items()}


def _set_weights(algo: Any, weights: Mapping[str, np.ndarray]) -> None:
    """Put ``weights`` into the learner's module and every env runner's copy."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    algo.learner_group.set_weights({DEFAULT_MODULE_ID: dict(weights)})
    algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group,
                                       inference_only=True)


def _noisy(weights: Mapping[str, np.ndarray], mult: float, seed: int) -> dict[str, np.ndarray]:
    """Gaussian parameter noise scaled by each tensor's range (the paper's ``noise_mult``)."""
    if mult <= 0:
        return dict(weights)
    rng = np.random.default_rng(seed)
    out = {}
    for name, value in weights.items():
        spread = float(value.max() - value.min()) or 0.1 if value.size else 0.0
        out[name] = (value + rng.normal(0.0, spread * mult, value.shape)).astype(value.dtype)
    return out


def _act(algo: Any, seed: int) -> Callable[[Any, bool], int]:
    """``act(obs, deterministic)`` of the trained RLModule (greedy: the most likely action)."""
    import torch

    module = algo.get_module()
    generator = torch.Generator().manual_seed(seed)

    def act(obs: Any, deterministic: bool) -> int:
        with torch.no_grad():
            out = module.forward_inference({"obs": torch.as_tensor(obs[None])})
            logits = out["action_dist_inputs"][0]
            if deterministic:
                return int(torch.argmax(logits))
            return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
    return act


def _episodes_of(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The tallies of the episodes an iteration finished (RLlib reports one item alone)."""
    from safeguards.learn.rllib_env import EPISODES_KEY

    items = result.get(EPISODES_KEY, [])
    return [items] if isinstance(items, Mapping) else list(items)


def run_rllib_curriculum(config: RLlibConfig, run_dir: str | os.PathLike[str], *,
                         resume: bool = False, progress: bool = True,
                         on_episode: Callable[[dict[str, Any]], None] | None = None
                         ) -> DeepResult:
    """Train RLlib PPO through the stages, then test greedily and stochastically under the final
    spec; see the module docstring.  Arguments as for
    :func:`~safeguards.learn.curriculum.run_curriculum`.  Starts a local Ray instance unless one
    is running (as in a Ray executor's task)."""
    import ray
    import torch

    started = time.perf_counter()
    torch.set_num_threads(config.torch_threads)
    plan = plan_of(config)
    stage_sgs = [load_safeguard(s.spec) for s in plan.stages]
    final_sg = load_safeguard(plan.final_spec)
    pad_to = max(sg.n_states for sg in [*stage_sgs, final_sg])
    own_ray = not ray.is_initialized()
    with open_run(run_dir, resolved_config(config, plan, pad_to), resume,
                  fields=DEEP_METRIC_FIELDS) as (run, checkpoint):
        if own_ray:
            ray.init(num_cpus=config.num_env_runners + 1, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.WARNING)
        try:
            return _train_and_test(config, plan, run, checkpoint, stage_sgs, final_sg, pad_to,
                                   started=started, progress=progress, on_episode=on_episode)
        finally:
            if own_ray:
                ray.shutdown()


def _check_rllib_checkpoint(run: RunDir, meta: Mapping[str, Any], config: RLlibConfig,
                            plan: DeepPlan, arrays: Mapping[str, np.ndarray]) -> None:
    check_checkpoint(run, meta, version=CHECKPOINT_VERSION, method=config.method_name,
                     seed=config.seed, n_stages=len(plan.stages))
    check_stage_ends(run, meta)
    if not arrays and (meta["stage"] > 0 or meta["stage_started"]):
        raise RunDirError(run.npz_path, "it holds no network weights")


def _train_and_test(config: RLlibConfig, plan: DeepPlan, run: RunDir,
                    checkpoint: Checkpoint | None, stage_sgs: Sequence[Safeguard],
                    final_sg: Safeguard, pad_to: int, *, started: float, progress: bool,
                    on_episode: Callable[[dict[str, Any]], None] | None) -> DeepResult:
    """:func:`run_rllib_curriculum` in its run directory (locked), from ``checkpoint``."""
    checked_labeler(config, plan, [*stage_sgs, final_sg])

    counters, stage_ends, stage_started = Counters(), [], False
    weights: dict[str, np.ndarray] = {}
    frames, earlier_seconds, earlier_train_seconds = 0, 0.0, 0.0
    if checkpoint is None:
        run.start_metrics()
    else:
        meta, arrays = checkpoint
        _check_rllib_checkpoint(run, meta, config, plan, arrays)
        counters = Counters(meta["stage"], meta["episode"], meta["stage_episode"])
        stage_started, stage_ends = meta["stage_started"], list(meta["stage_ends"])
        weights, frames = dict(arrays), int(meta["frames"])
        earlier_seconds = meta.get("wall_seconds", 0.0)
        earlier_train_seconds = meta.get("train_seconds", 0.0)
        run.start_metrics(keep=counters.episode, recorded=meta.get("metrics"))
    ends = np.cumsum([s.frames for s in plan.stages]).tolist()
    train_started = time.perf_counter()

    def save(started_stage: bool) -> None:
        meta = {"version": CHECKPOINT_VERSION, "method": config.method_name,
                "seed": config.seed, "stage": counters.stage, "stage_started": started_stage,
                "episode": counters.episode, "stage_episode": counters.stage_episode,
                "frames": frames, "stage_ends": stage_ends,
                "wall_seconds": earlier_seconds + time.perf_counter() - started,
                "train_seconds": earlier_train_seconds + time.perf_counter() - train_started,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        run.save_checkpoint(meta, weights)

    bar = Progress(int(ends[-1]), enabled=progress, desc=config.method_name, initial=frames)
    episodes = EpisodeLog(run, counters, method=config.method_name, seed=config.seed,
                          progress=bar, on_episode=on_episode)
    algo = None
    try:
        while counters.stage < len(plan.stages):
            k = counters.stage
            fresh = plan.transfer == "reset" and not stage_started
            entropy = config.ent_coef if k == 0 or config.transfer_ent_coef is None \
                else config.transfer_ent_coef
            algo = _build(config, _env_config(config, plan, k, pad_to), entropy=entropy,
                          seed=stage_seed(config.seed, 3, k))
            if weights and not fresh:
                if not stage_started and k > 0:
                    weights = _noisy(weights, config.noise_mult, stage_seed(config.seed, 4, k))
                _set_weights(algo, weights)
            stage_started, last_save = True, frames
            while frames < ends[k] and plan.stages[k].frames > 0:
                result = algo.train()["env_runners"]
                steps = int(result.get("num_env_steps_sampled", 0))
                frames += steps
                for summary in _episodes_of(result):
                    episodes.log(EpisodeTally(**summary), frames)
                episodes.advance(steps)
                if config.checkpoint_every and frames - last_save >= config.checkpoint_every \
                        and frames < ends[k]:
                    weights, last_save = _weights(algo), frames
                    save(True)
            weights = _weights(algo)
            counters.stage, counters.stage_episode, stage_started = k + 1, 0, False
            stage_ends.append(frames)
            algo.save_to_path(os.fspath((run.path / f"rllib-stage{k + 1}").resolve()))
            save(False)
            if counters.stage < len(plan.stages):
                algo.stop()
                algo = None
    finally:
        bar.close()
        run.close()
    train_seconds = earlier_train_seconds + time.perf_counter() - train_started

    test = stochastic = None
    if config.test_episodes > 0:
        from safeguards.learn.rllib_env import stage_env

        test_config = _env_config(config, plan, None, pad_to)
        if algo is None:  # finished before: only test again
            algo = _build(config, test_config, entropy=config.ent_coef,
                          seed=stage_seed(config.seed, 3, len(plan.stages)))
            _set_weights(algo, weights)
        test, stochastic = (evaluate_policy(_act(algo, stage_seed(config.seed, 5)),
                                            lambda: stage_env(test_config),
                                            episodes=config.test_episodes,
                                            deterministic=greedy,
                                            seed=stage_seed(config.seed, 2))
                            for greedy in (True, False))
    if algo is not None:
        algo.stop()
    rows = read_metrics(run.path)
    result = deep_result(config, run.path, rows, stage_ends, test, stochastic,
                         earlier_seconds + time.perf_counter() - started, train_seconds)
    run.write_result(result.to_dict())
    return result
