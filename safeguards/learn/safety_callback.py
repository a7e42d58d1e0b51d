"""Learn a safety critic beside any Stable-Baselines3 agent with discrete actions (PPO, A2C,
DQN): the discrete form of SQRL's critic, trained from the agent's own experience on the
product MDP, then used to filter its actions (:class:`~safeguards.learn.safety_filter.
SafetyFilterWrapper`).

Every agent step's transition ``(s, a, I(s'), done, s')`` goes into a FIFO of the most recent
``buffer_size`` transitions (``I(s')`` = the product MDP's ``info["cost"]`` > 0); every
``train_every`` agent steps the :class:`~safeguards.learn.safety_critic.DiscreteSafetyCritic`
takes ``train_steps`` gradient steps on batches drawn from it, the target's ``Q_safe(s', .)``
averaged under the agent's own policy at ``s'`` (:func:`policy_probs`: PPO's and A2C's action
probabilities, DQN's epsilon-greedy distribution).  Observations are flattened with
``gymnasium.spaces.flatten`` (a ``Discrete`` safeguard state becomes one-hot).

>>> import gymnasium as gym
>>> from stable_baselines3 import PPO
>>> from safeguards.learn.safety_critic import DiscreteSafetyCritic
>>> env = gym.make("CartPole-v1")
>>> critic = DiscreteSafetyCritic(4, 2, seed=0)
>>> learn = SafetyCriticCallback(critic, train_every=64, batch_size=32, seed=0)
>>> _ = PPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0).learn(128, callback=learn)
>>> learn.transitions, learn.updates
(128, 20)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback

from safeguards.learn.safety_critic import DiscreteSafetyCritic

__all__ = ["SafetyCriticCallback", "policy_probs"]


def policy_probs(model: Any, obs: Any) -> torch.Tensor:
    """``pi(.|s)`` of a Stable-Baselines3 agent with discrete actions for a batch of (vectorised)
    observations: the action distribution's probabilities, or DQN's epsilon-greedy one."""
    tensor, _ = model.policy.obs_to_tensor(obs)
    with torch.no_grad():
        if hasattr(model, "q_net"):  # DQN
            q = model.q_net(tensor)
            greedy = torch.nn.functional.one_hot(q.argmax(-1), q.shape[-1]).float()
            eps = float(getattr(model, "exploration_rate", 0.0))
            return (1 - eps) * greedy + eps / q.shape[-1]
        return model.policy.get_distribution(tensor).distribution.probs


class SafetyCriticCallback(BaseCallback):
    """Train ``critic`` from the agent's transitions while it learns (module docstring).

    Args:
        critic: the discrete safety critic (its input size: the flattened observation).
        train_every: agent steps between training bursts.
        train_steps: gradient steps per burst.
        batch_size: transitions per gradient step.
        buffer_size: the FIFO's size (the most recent transitions: on-policy data).
        seed: seeds the batch draws.
    """

    def __init__(self, critic: DiscreteSafetyCritic, *, train_every: int = 1000,
                 train_steps: int = 10, batch_size: int = 256, buffer_size: int = 5000,
                 seed: int | None = None) -> None:
        super().__init__()
        if not isinstance(critic, DiscreteSafetyCritic):
            raise TypeError(f"SafetyCriticCallback trains a DiscreteSafetyCritic, not "
                            f"{type(critic).__name__}")
        if min(train_every, train_steps, batch_size, buffer_size) < 1:
            raise ValueError("train_every, train_steps, batch_size and buffer_size must be >= 1")
        self.critic = critic
        self.train_every, self.train_steps = train_every, train_steps
        self.batch_size, self.buffer_size = batch_size, buffer_size
        self.rng = np.random.default_rng(seed)
        self.transitions = self.updates = 0
        self._since = 0
        self._store: dict[str, np.ndarray] = {}
        self._raw_next: list[Any] = []

    def _flat(self, obs: Any) -> np.ndarray:
        space = self.training_env.observation_space
        return np.asarray(spaces.flatten(space, obs), dtype=np.float32)

    def _on_training_start(self) -> None:
        if not isinstance(self.training_env.action_space, spaces.Discrete):
            raise TypeError(f"SafetyCriticCallback needs a Discrete action space, not "
                            f"{self.training_env.action_space}")
        size = self.critic.obs_dim
        self._store = {"obs": np.zeros((self.buffer_size, size), np.float32),
                       "next_obs": np.zeros((self.buffer_size, size), np.float32),
                       "action": np.zeros(self.buffer_size, np.int64),
                       "cost": np.zeros(self.buffer_size, np.float32),
                       "done": np.zeros(self.buffer_size, np.float32)}
        self._raw_next = [None] * self.buffer_size

    def _on_step(self) -> bool:
        last = self.model._last_obs  # the observations the actions were taken in
        new_obs, actions = self.locals["new_obs"], self.locals["actions"]
        dones, infos = self.locals["dones"], self.locals["infos"]
        for i, info in enumerate(infos):
            truncated = info.get("TimeLimit.truncated", False)
            next_raw = info["terminal_observation"] if dones[i] and "terminal_observation" \
                in info else _row(new_obs, i)
            k = self.transitions % self.buffer_size
            self._store["obs"][k] = self._flat(_row(last, i))
            self._store["next_obs"][k] = self._flat(next_raw)
            self._store["action"][k] = int(np.asarray(actions).reshape(-1)[i])
            self._store["cost"][k] = float(info.get("cost", 0.0))
            self._store["done"][k] = float(dones[i] and not truncated)
            self._raw_next[k] = next_raw
            self.transitions += 1
        self._since += len(infos)
        if self._since >= self.train_every:
            self._since = 0
            self._train()
        return True

    def _train(self) -> None:
        filled = min(self.transitions, self.buffer_size)
        for _ in range(self.train_steps):
            idx = self.rng.integers(0, filled, size=self.batch_size)
            batch = {k: torch.as_tensor(v[idx]) for k, v in self._store.items()}
            next_raw = _stack([self._raw_next[j] for j in idx])
            probs = policy_probs(self.model, next_raw)
            self.critic.update(batch["obs"], batch["action"], batch["cost"], batch["done"],
                               batch["next_obs"], probs)
            self.updates += 1


def _row(obs: Any, i: int) -> Any:
    """Environment ``i``'s entry of a vectorised observation (array or dict of arrays)."""
    if isinstance(obs, dict):
        return {k: v[i] for k, v in obs.items()}
    return obs[i]


def _stack(rows: list[Any]) -> Any:
    if isinstance(rows[0], dict):
        return {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    return np.stack(rows)
