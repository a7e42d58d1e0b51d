"""The product MDP of a stage as RLlib sees it (``learner = "rllib_ppo"``).

:func:`stage_env` is the environment creator every RLlib env runner calls with the stage's plain
settings (``env_config``): it builds the same product MDP as the Stable-Baselines3 learner
(:func:`~safeguards.learn.deep_envs.product_env`: the safeguard's reward shaping and termination,
the final spec monitored), then

* :class:`FlatObservation`: one float tensor for RLlib's default encoders — an image scaled to
  [0, 1] with the safeguard state as one-hot planes appended to its channels, or a vector with
  the one-hot appended;
* :class:`EpisodeSummary`: at the end of an episode, ``info["safeguards_episode"]`` holds its
  :class:`~safeguards.learn.episodes.EpisodeTally` as a dict.

:class:`SafeguardMetrics`, an RLlib callback, turns those summaries into RLlib metrics
(``safeguards/violations``, ``safeguards/violations_final``, ``safeguards/cost``) and hands the
tallies to the driver (``safeguards/episodes``), which writes the run's metrics rows.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from ray.rllib.callbacks.callbacks import RLlibCallback

from safeguards.compiler import load_safeguard
from safeguards.learn.common import make_env, resolve_labeler
from safeguards.learn.deep_envs import product_env
from safeguards.learn.episodes import EpisodeTally

__all__ = ["stage_env", "FlatObservation", "EpisodeSummary", "SafeguardMetrics", "EPISODES_KEY"]

#: Where :class:`SafeguardMetrics` puts the finished episodes' tallies in RLlib's results.
EPISODES_KEY = "safeguards/episodes"


class FlatObservation(gym.ObservationWrapper):
    """A float32 ``Box`` observation: images (H x W x C, uint8) scaled to [0, 1] with the
    safeguard's one-hot state as extra planes; vectors and ``Discrete`` observations (one-hot)
    with the state's one-hot appended.  Without a safeguard state: the observation alone.

    >>> env = FlatObservation(gym.make("FrozenLake-v1"))
    >>> env.observation_space.shape, env.reset(seed=0)[0][:3]
    ((16,), array([1., 0., 0.], dtype=float32))
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        self.states = 0
        if isinstance(space, spaces.Dict):
            self.states, space = int(space["safeguard"].n), space["obs"]
        self.inner = space
        self.image = isinstance(space, spaces.Box) and len(space.shape) == 3
        if self.image:
            height, width, channels = space.shape
            shape: tuple[int, ...] = (height, width, channels + self.states)
        elif isinstance(space, spaces.Discrete):
            shape = (int(space.n) + self.states,)
        elif isinstance(space, spaces.Box) and len(space.shape) == 1:
            shape = (space.shape[0] + self.states,)
        else:
            raise TypeError(f"rllib_ppo takes image, vector or Discrete observations, not {space}")
        low = 0.0 if self.image or isinstance(space, spaces.Discrete) else -np.inf
        self.observation_space = spaces.Box(low, 1.0 if low == 0.0 else np.inf, shape,
                                            np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        state = None
        if self.states:
            observation, state = observation["obs"], int(observation["safeguard"])
        if self.image:
            out = np.zeros(self.observation_space.shape, np.float32)
            channels = observation.shape[-1]
            out[..., :channels] = np.asarray(observation, np.float32) / 255.0
            if state is not None:
                out[..., channels + state] = 1.0
            return out
        if isinstance(self.inner, spaces.Discrete):
            head = np.zeros(int(self.inner.n), np.float32)
            head[int(observation)] = 1.0
        else:
            head = np.asarray(observation, np.float32)
        tail = np.zeros(self.states, np.float32)
        if state is not None:
            tail[state] = 1.0
        return np.concatenate([head, tail])


class EpisodeSummary(gym.Wrapper):
    """Tally the episode; on its last step ``info["safeguards_episode"]`` holds the tally."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.tally = EpisodeTally()
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.tally.add(float(reward), info)
        if terminated or truncated:
            info = {**info, "safeguards_episode": asdict(self.tally)}
        return obs, reward, terminated, truncated, info


def stage_env(env_config: Mapping[str, Any]) -> gym.Env:
    """The environment of one stage, from the plain settings the driver registers."""
    base = make_env(env_config["env_id"], env_config["env_kwargs"])
    labeler = resolve_labeler(env_config["labeler"], base)
    env = product_env(lambda: base, spec=load_safeguard(env_config["spec"]),
                      final_spec=load_safeguard(env_config["final_spec"]), labeler=labeler,
                      observe=env_config["observe"], pad_to=env_config["pad_to"],
                      violation_penalty=env_config["violation_penalty"],
                      terminate_on_violation=env_config["terminate_on_violation"],
                      max_steps=env_config["max_steps"])
    return FlatObservation(EpisodeSummary(env))


class SafeguardMetrics(RLlibCallback):
    """Every finished episode: its violations and cost in RLlib's metrics, its tally for the
    driver's metrics rows."""

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        infos = episode.get_infos()
        summary = infos[-1].get("safeguards_episode") if infos else None
        if summary is None or metrics_logger is None:
            return
        metrics_logger.log_value(EPISODES_KEY, summary, reduce="item_series")
        metrics_logger.log_value("safeguards/violations",
                                 int(summary["violation_step"] is not None), reduce="sum")
        metrics_logger.log_value("safeguards/violations_final",
                                 int(summary["violation_step_final"] is not None), reduce="sum")
        metrics_logger.log_value("safeguards/cost", sum(float(i.get("cost", 0.0))
                                                        for i in infos), reduce="sum")
