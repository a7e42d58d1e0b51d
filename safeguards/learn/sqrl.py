"""SQRL (Srinivasan et al. 2020, "Learning to be Safe"): Stable-Baselines3's SAC with a safety
critic learned from a safeguard's violations, acting through an epsilon-safe filter.

:class:`SQRL` subclasses :class:`~stable_baselines3.SAC` and keeps its policies, replay buffer,
vector environments, callbacks and logger; what it adds:

* every transition's cost ``I(s')`` (the product MDP's ``info["cost"]``) is kept beside SB3's
  replay buffer (:class:`CostReplayBuffer`), and the most recent ``safe_buffer_size``
  transitions of the acting policy form ``D_safe``;
* ``phase = "pretrain"`` (Algorithm 1): SAC as is, failures allowed; every
  ``train_sc_interval`` agent steps the :class:`~safeguards.learn.safety_critic.SafetyCritic`
  takes ``train_sc_steps`` gradient steps on ``D_safe``; from ``mask_from`` agent steps on the
  agent acts through the :class:`~safeguards.learn.safety_filter.SafeActionFilter` (the
  authors' code switches it on at half of pre-training);
* ``phase = "finetune"`` (Algorithm 2): every action goes through the filter, the actor's loss
  gains ``nu * (Q_safe(s, a') - eps_safe)`` with ``a' ~ pi(.|s)`` (Eq. 4; with
  ``actor_safety_gradient=False`` the term is a constant to the actor, as in the code) and
  ``nu`` ascends ``nu <- max(0, nu + nu_lr * mean(Q_safe - eps_safe))``; the critic is frozen
  unless ``finetune_critic``;
* ``lagrangian=True`` (the ``sac_lagrangian`` baseline): the same critic, trained off-policy on
  every SAC batch from the replay buffer, serves as a cost critic with the Lagrangian term in
  fine-tuning and no filter.

Which piece is written here rather than inherited, and why: :meth:`SQRL.train` is SAC's update
(entropy coefficient, twin critics with targets, actor) written out once more, because SB3's
``SAC.train`` builds the actor loss inside one method with no hook for an extra term; it follows
SB3's update step for step (SB3's target-network cadence, its entropy loss).

>>> import gymnasium as gym
>>> from safeguards.learn.safety_critic import SafetyCritic
>>> env = gym.make("Pendulum-v1")
>>> critic = SafetyCritic(obs_dim=3, action_dim=1, seed=0)
>>> agent = SQRL("MlpPolicy", env, critic, eps_safe=0.1, learning_starts=10, seed=0)
>>> _ = agent.learn(20)
>>> agent.phase, agent.num_timesteps
('pretrain', 20)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import polyak_update
from torch.nn import functional as F

from safeguards.learn.safety_critic import SafetyCritic, check_eps_safe
from safeguards.learn.safety_filter import SafeActionFilter

__all__ = ["SQRL", "CostReplayBuffer", "Phase"]

Phase = Literal["pretrain", "finetune"]


class CostReplayBuffer(ReplayBuffer):
    """SB3's replay buffer that also keeps each transition's cost ``info["cost"]`` (one
    environment), and copies what it is given into ``mirror`` (``D_safe``) when set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.n_envs != 1:
            raise ValueError("SQRL trains on one environment (n_envs = 1)")
        self.costs = np.zeros(self.buffer_size, dtype=np.float32)
        self.mirror: CostReplayBuffer | None = None

    def add(self, obs: Any, next_obs: Any, action: Any, reward: Any, done: Any,
            infos: list[dict[str, Any]]) -> None:
        self.costs[self.pos] = float(infos[0].get("cost", 0.0))
        super().add(obs, next_obs, action, reward, done, infos)
        if self.mirror is not None:
            self.mirror.add(obs, next_obs, action, reward, done, infos)

    def sample_with_costs(self, batch_size: int) -> tuple[ReplayBufferSamples, torch.Tensor]:
        """A batch and the costs of its transitions."""
        indices = np.random.randint(0, self.size(), size=batch_size)
        return self._get_samples(indices), torch.as_tensor(self.costs[indices])


class SQRL(SAC):
    """SAC with a safety critic and an epsilon-safe filter; see the module docstring.

    Args:
        policy, env: as :class:`~stable_baselines3.SAC` (a ``Box`` action space, one env).
        safety_critic: the critic (None: plain SAC, the ``sac`` ablation).
        eps_safe: the threshold, in (0, 1).
        lagrangian: the ``sac_lagrangian`` baseline (module docstring).
        safe_buffer_size: size of ``D_safe``.
        train_sc_interval, train_sc_steps, sc_batch_size: the critic's training cadence.
        mask_from: act through the filter from this agent step of pre-training on
            (None: never in pre-training).
        critic_next_action: ``a'`` of the critic's target: ``"unconstrained"`` or ``"masked"``.
        actor_safety_gradient: the dual term reaches the actor (paper) or not (code).
        finetune_critic: train the critic in fine-tuning too.
        nu_init, nu_lr: the safety multiplier and its step size.
        n_samples, max_rounds, widen, filter_select: the filter's rejection sampling.
        **kwargs: SAC's.
    """

    def __init__(self, policy: Any, env: Any, safety_critic: SafetyCritic | None = None, *,
                 eps_safe: float = 0.1, lagrangian: bool = False,
                 safe_buffer_size: int = 5000, train_sc_interval: int = 1000,
                 train_sc_steps: int = 10, sc_batch_size: int = 256,
                 mask_from: int | None = None,
                 critic_next_action: Literal["unconstrained", "masked"] = "unconstrained",
                 actor_safety_gradient: bool = True, finetune_critic: bool = False,
                 nu_init: float = 1.0, nu_lr: float = 3e-4, n_samples: int = 50,
                 max_rounds: int = 6, widen: float = 1.5,
                 filter_select: Literal["exact", "code"] = "exact", **kwargs: Any) -> None:
        if critic_next_action not in ("unconstrained", "masked"):
            raise ValueError(f"critic_next_action must be 'unconstrained' or 'masked', not "
                             f"{critic_next_action!r}")
        if lagrangian and safety_critic is None:
            raise ValueError("lagrangian=True needs a safety (cost) critic")
        kwargs.setdefault("replay_buffer_class", CostReplayBuffer)
        super().__init__(policy, env, **kwargs)
        if not isinstance(self.action_space, spaces.Box):
            raise TypeError(f"SQRL's filter is for Box action spaces, not {self.action_space}; "
                            "for discrete actions use a DiscreteSafetyCritic with "
                            "DiscreteSafeActionFilter")
        self.safety_critic = safety_critic
        self.eps_safe = check_eps_safe(eps_safe)
        self.lagrangian = lagrangian
        self.phase: Phase = "pretrain"
        self.mask_from = mask_from
        self.train_sc_interval, self.train_sc_steps = train_sc_interval, train_sc_steps
        self.sc_batch_size = sc_batch_size
        self.critic_next_action = critic_next_action
        self.actor_safety_gradient = actor_safety_gradient
        self.finetune_critic = finetune_critic
        self.nu = float(nu_init)
        self.nu_lr = nu_lr
        self._last_sc_train = 0
        self.filter: SafeActionFilter | None = None
        self.safe_buffer: CostReplayBuffer | None = None
        if safety_critic is not None:
            self.filter = SafeActionFilter(
                safety_critic, eps_safe, n_samples=n_samples, max_rounds=max_rounds,
                widen=widen, select=filter_select,
                generator=torch.Generator().manual_seed(self.seed or 0))
            if not lagrangian:
                self.safe_buffer = CostReplayBuffer(
                    safe_buffer_size, self.observation_space, self.action_space, device="cpu",
                    n_envs=1, handle_timeout_termination=True)
                assert isinstance(self.replay_buffer, CostReplayBuffer)
                self.replay_buffer.mirror = self.safe_buffer

    # -- acting --------------------------------------------------------------------------------
    @property
    def filtering(self) -> bool:
        """Whether the agent acts through the filter now."""
        if self.filter is None or self.lagrangian:
            return False
        if self.phase == "finetune":
            return True
        return self.mask_from is not None and self.num_timesteps >= self.mask_from

    def safe_actions(self, obs: np.ndarray, *, count: bool = True) -> np.ndarray:
        """Filtered actions (in ``[-1, 1]``, the policy's scale) for a batch of observations;
        ``count=False``: not actions taken, the filter's statistics are left alone."""
        assert self.filter is not None
        tensor = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(len(obs), -1)
        with torch.no_grad():
            mean, log_std, _ = self.actor.get_action_dist_params(tensor)
        return self.filter(tensor, mean, log_std, count=count).numpy()

    def _sample_action(self, learning_starts: int, action_noise: Any = None,
                       n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        if self.phase == "finetune":
            learning_starts = 0  # the pre-trained policy acts from the first step
        if not self.filtering or self.num_timesteps < learning_starts:
            return super()._sample_action(learning_starts, action_noise, n_envs)
        scaled = self.safe_actions(self._last_obs)  # type: ignore[arg-type]
        return self.policy.unscale_action(scaled), scaled

    # -- learning ------------------------------------------------------------------------------
    def _critic_trains(self) -> bool:
        if self.safety_critic is None or self.lagrangian:
            return False
        return self.phase == "pretrain" or self.finetune_critic

    def train_safety_critic(self, steps: int) -> float:
        """``steps`` gradient steps of the safety critic on ``D_safe``; the mean loss."""
        assert self.safety_critic is not None and self.safe_buffer is not None
        losses = []
        for _ in range(steps):
            batch, cost = self.safe_buffer.sample_with_costs(self.sc_batch_size)
            losses.append(self._critic_step(batch, cost))
        return float(np.mean(losses))

    def _critic_step(self, batch: ReplayBufferSamples, cost: torch.Tensor) -> float:
        assert self.safety_critic is not None
        with torch.no_grad():
            if self.critic_next_action == "masked" and self.filter is not None:
                next_actions = torch.as_tensor(
                    self.safe_actions(batch.next_observations.numpy(), count=False))
            else:
                next_actions, _ = self.actor.action_log_prob(batch.next_observations)
        return self.safety_critic.update(batch.observations, batch.actions, cost,
                                         batch.dones.reshape(-1), batch.next_observations,
                                         next_actions)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self._critic_trains() and self.safe_buffer is not None \
                and self.num_timesteps - self._last_sc_train >= self.train_sc_interval:
            self._last_sc_train = self.num_timesteps
            self.logger.record("safety/critic_loss", self.train_safety_critic(self.train_sc_steps))
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        constrained = self.safety_critic is not None and self.phase == "finetune"
        for step in range(gradient_steps):
            assert isinstance(self.replay_buffer, CostReplayBuffer)
            batch, cost = self.replay_buffer.sample_with_costs(batch_size)
            if self.lagrangian:
                self.logger.record("safety/critic_loss", self._critic_step(batch, cost))
            actions_pi, log_prob = self.actor.action_log_prob(batch.observations)
            log_prob = log_prob.reshape(-1, 1)
            ent_coef = self._entropy_step(log_prob)
            self._critic_update(batch, ent_coef)
            q_pi = torch.min(torch.cat(self.critic(batch.observations, actions_pi), dim=1),
                             dim=1, keepdim=True)[0]
            actor_loss = (ent_coef * log_prob - q_pi).mean()
            if constrained:
                actor_loss = actor_loss + self._safety_term(batch.observations, actions_pi)
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            if step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(),
                              self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
            self.logger.record("train/actor_loss", float(actor_loss.detach()))
        self._n_updates += gradient_steps
        self.logger.record("safety/nu", self.nu)

    def _entropy_step(self, log_prob: torch.Tensor) -> torch.Tensor:
        """SAC's entropy coefficient (and its update when it is learned)."""
        if self.ent_coef_optimizer is None or self.log_ent_coef is None:
            return self.ent_coef_tensor
        ent_coef = torch.exp(self.log_ent_coef.detach())
        assert isinstance(self.target_entropy, float)
        loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
        self.ent_coef_optimizer.zero_grad()
        loss.backward()
        self.ent_coef_optimizer.step()
        return ent_coef

    def _critic_update(self, batch: ReplayBufferSamples, ent_coef: torch.Tensor) -> None:
        """SAC's twin-critic TD step."""
        with torch.no_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(batch.next_observations)
            next_q = torch.min(torch.cat(self.critic_target(batch.next_observations,
                                                            next_actions), dim=1),
                               dim=1, keepdim=True)[0]
            next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
            target = batch.rewards + (1 - batch.dones) * self.gamma * next_q
        current = self.critic(batch.observations, batch.actions)
        loss = 0.5 * sum(F.mse_loss(q, target) for q in current)
        assert isinstance(loss, torch.Tensor)
        self.critic.optimizer.zero_grad()
        loss.backward()
        self.critic.optimizer.step()

    def _safety_term(self, obs: torch.Tensor, actions_pi: torch.Tensor) -> torch.Tensor:
        """``nu * (Q_safe(s, a') - eps_safe)`` for the actor's loss, and the dual step of nu."""
        assert self.safety_critic is not None
        q_safe = self.safety_critic(obs, actions_pi)
        gap = q_safe - self.eps_safe
        self.nu = max(0.0, self.nu + self.nu_lr * float(gap.detach().mean()))
        term = self.nu * gap.mean()
        return term if self.actor_safety_gradient else term.detach()
