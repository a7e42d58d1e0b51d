"""The SQRL action filter (Srinivasan et al. 2020, Eq. 3, 5-6; the authors' rejection sampler
``SafeActorPolicyRSVar``): act only where the safety critic's failure probability is under
``eps_safe``.

:class:`SafeActionFilter` (continuous actions, a Gaussian policy squashed by ``tanh`` as SAC's):
``n`` actions are drawn from ``pi(.|s)`` and scored by ``Q_safe(s, a)`` in one batched forward
pass; while none is under ``eps_safe`` the standard deviation widens by ``widen`` (1.5) and ``n``
new actions are drawn, up to ``max_rounds`` (6) rounds; if none is safe the least unsafe one is
taken and counted as a *fallback* (``fallbacks``; never silent).  Among the safe ones an action is
drawn so that the result follows the masked policy ``pi(a|s) 1[Q_safe < eps] / Z``
(``select="exact"``: importance weights ``pi / q`` of the round's sampling distribution ``q``,
uniform in the first round where ``q = pi``), or with probabilities proportional to ``pi(a_j|s)``
as the authors' code does (``select="code"``: since the samples already come from ``pi``, this
draws from ``pi^2``, a sharper policy).

:class:`DiscreteSafeActionFilter`: masks the actions with ``Q_safe(s, a) >= eps_safe`` and
draws among the rest in proportion to ``pi``; the fallback is the least unsafe action.

:class:`SafetyFilterWrapper` puts a filter in front of any agent: the agent's action passes when
``Q_safe(s, a) < eps_safe``; otherwise it is replaced by a safe action drawn near it (continuous:
a Gaussian around it, ``sigma`` of the action range, widening as above; discrete: uniformly among
the safe actions).  ``info["filter"]`` tells what happened on every step.

>>> import gymnasium as gym, torch
>>> from safeguards.learn.safety_critic import SafetyCritic
>>> critic = SafetyCritic(obs_dim=3, action_dim=1, seed=0)
>>> env = SafetyFilterWrapper(gym.make("Pendulum-v1"), critic, eps_safe=0.5, seed=0)
>>> _ = env.reset(seed=0)
>>> _, _, _, _, info = env.step([0.0])
>>> sorted(info["filter"])
['fallback', 'q_safe', 'replaced']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from safeguards.learn.safety_critic import DiscreteSafetyCritic, SafetyCritic, check_eps_safe

__all__ = ["SafeActionFilter", "DiscreteSafeActionFilter", "SafetyFilterWrapper",
           "FilterStats"]

_LOG_EPS = 1e-6


@dataclass
class FilterStats:
    """How often the filter acted, replaced an action, and fell back to the least unsafe one."""

    calls: int = 0
    replaced: int = 0
    fallbacks: int = 0
    rounds: int = 0
    """Sampling rounds summed over calls (1 per call when the first round finds a safe one)."""


def _check_rounds(n_samples: int, max_rounds: int, widen: float) -> None:
    if n_samples < 1 or max_rounds < 1 or widen < 1.0:
        raise ValueError(f"n_samples and max_rounds must be >= 1 and widen >= 1, not "
                         f"{n_samples}, {max_rounds}, {widen}")


class SafeActionFilter:
    """The masked policy ``pibar(a|s) ~ 1[Q_safe(s, a) < eps_safe] pi(a|s)`` by rejection sampling.

    Args:
        critic: the safety critic.
        eps_safe: the threshold, in (0, 1).
        n_samples: actions drawn per round (code: 50).
        max_rounds: rounds before falling back (code: 6).
        widen: factor on the standard deviation after a round without a safe action (1.5).
        squash: the policy's samples pass through ``tanh`` (SAC); False: clip to [-1, 1].
        select: ``"exact"`` (the masked policy) or ``"code"`` (weights ``pi(a_j|s)``).
        generator: a seeded ``torch.Generator``.

    >>> import torch
    >>> from safeguards.learn.safety_critic import SafetyCritic
    >>> critic = SafetyCritic(obs_dim=2, action_dim=1, seed=0)
    >>> with torch.no_grad():                                 # unsafe iff a > 0
    ...     critic.raw = lambda obs, action, target=False: (action[..., 0] > 0).float()
    >>> pick = SafeActionFilter(critic, eps_safe=0.5, generator=torch.Generator().manual_seed(0))
    >>> a = pick(torch.zeros(3, 2), mean=torch.full((3, 1), 2.0), log_std=torch.zeros(3, 1))
    >>> bool((a <= 0).all()), pick.stats.calls
    (True, 3)
    """

    def __init__(self, critic: SafetyCritic, eps_safe: float, *, n_samples: int = 50,
                 max_rounds: int = 6, widen: float = 1.5, squash: bool = True,
                 select: Literal["exact", "code"] = "exact",
                 generator: torch.Generator | None = None) -> None:
        if select not in ("exact", "code"):
            raise ValueError(f"select must be 'exact' or 'code', not {select!r}")
        if not isinstance(critic, SafetyCritic):
            raise TypeError(f"SafeActionFilter needs a continuous SafetyCritic, not "
                            f"{type(critic).__name__} (use DiscreteSafeActionFilter)")
        _check_rounds(n_samples, max_rounds, widen)
        self.critic = critic
        self.eps_safe = check_eps_safe(eps_safe)
        self.n_samples, self.max_rounds, self.widen = n_samples, max_rounds, widen
        self.squash = squash
        self.select = select
        self.generator = generator
        self.stats = FilterStats()

    def _log_pi(self, pre: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        log_p = torch.distributions.Normal(mean, std).log_prob(pre).sum(-1)
        if self.squash:
            log_p = log_p - torch.log(1.0 - torch.tanh(pre) ** 2 + _LOG_EPS).sum(-1)
        return log_p

    @torch.no_grad()
    def __call__(self, obs: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor, *,
                 count: bool = True) -> torch.Tensor:
        """Safe actions for a batch: ``obs`` ``(B, obs_dim)``; the policy's pre-squash
        ``mean`` and ``log_std`` ``(B, action_dim)``.  Returns ``(B, action_dim)``.
        ``count=False``: leave :attr:`stats` alone (draws that are not actions taken, such as
        the next actions of a critic's target)."""
        batch, dim = mean.shape
        std = log_std.exp()
        chosen = torch.empty(batch, dim)
        best = torch.empty(batch, dim)
        best_q = torch.full((batch,), float("inf"))
        pending = torch.arange(batch)
        scale, rounds = 1.0, 0  # rows still pending have all failed the same rounds
        while len(pending) and rounds < self.max_rounds:
            rounds += 1
            m, s = mean[pending, None, :], std[pending, None, :]
            noise = torch.randn(len(pending), self.n_samples, dim, generator=self.generator)
            pre = m + (s * scale) * noise
            actions = torch.tanh(pre) if self.squash else pre.clamp(-1.0, 1.0)
            q = self.critic(obs[pending, None, :].expand(-1, self.n_samples, -1), actions)
            safe = q < self.eps_safe
            found = safe.any(dim=1)
            if found.any():
                if self.select == "code":
                    logits = self._log_pi(pre[found], m[found], s[found])
                else:  # importance weights pi / q of the widened round: uniform when scale = 1
                    logits = -0.5 * (scale ** 2 - 1.0) * (noise[found] ** 2).sum(-1)
                logits = logits.masked_fill(~safe[found], float("-inf"))
                index = torch.multinomial(torch.softmax(logits, -1), 1,
                                          generator=self.generator).squeeze(-1)
                chosen[pending[found]] = actions[found].gather(
                    1, index.view(-1, 1, 1).expand(-1, 1, dim)).squeeze(1)
            missed = ~found
            if missed.any():
                lowest, where = q[missed].min(dim=1)
                rows = pending[missed]
                better = lowest < best_q[rows]
                best_q[rows[better]] = lowest[better]
                best[rows[better]] = actions[missed][better, where[better]]
            scale *= self.widen
            pending = pending[missed]
        chosen[pending] = best[pending]
        if count:
            self.stats.calls += batch
            self.stats.fallbacks += len(pending)
            self.stats.rounds += rounds
        return chosen


class DiscreteSafeActionFilter:
    """The masked policy for discrete actions: ``1[Q_safe(s, a) < eps_safe] pi(a|s)``.

    >>> import torch
    >>> from safeguards.learn.safety_critic import DiscreteSafetyCritic
    >>> critic = DiscreteSafetyCritic(obs_dim=1, n_actions=3, seed=0)
    >>> critic.forward = lambda obs, target=False: torch.tensor([[0.9, 0.2, 0.01]])
    >>> pick = DiscreteSafeActionFilter(critic, eps_safe=0.1)
    >>> pick.mask(torch.zeros(1, 1)).tolist(), pick(torch.zeros(1, 1), torch.ones(1, 3)).tolist()
    ([[False, False, True]], [2])
    """

    def __init__(self, critic: DiscreteSafetyCritic, eps_safe: float, *,
                 generator: torch.Generator | None = None) -> None:
        if not isinstance(critic, DiscreteSafetyCritic):
            raise TypeError(f"DiscreteSafeActionFilter needs a DiscreteSafetyCritic, not "
                            f"{type(critic).__name__}")
        self.critic = critic
        self.eps_safe = check_eps_safe(eps_safe)
        self.generator = generator
        self.stats = FilterStats()

    @torch.no_grad()
    def mask(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, n_actions)`` booleans: the actions under ``eps_safe``."""
        return self.critic(obs) < self.eps_safe

    @torch.no_grad()
    def __call__(self, obs: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Safe actions ``(B,)`` drawn in proportion to ``probs`` ``(B, n_actions)`` = pi."""
        q = self.critic(obs)
        safe = q < self.eps_safe
        weights = probs * safe
        none = weights.sum(-1) <= 0
        weights[none] = 1.0
        actions = torch.multinomial(weights, 1, generator=self.generator).squeeze(-1)
        actions[none] = q[none].argmin(-1)
        self.stats.calls += len(obs)
        self.stats.fallbacks += int(none.sum())
        self.stats.rounds += 1
        return actions


class SafetyFilterWrapper(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Filter any agent's actions through a safety critic (see the module docstring).

    The critic scores the wrapped environment's observations, so wrap the product MDP the critic
    was trained on (:class:`~safeguards.gym.SafeguardWrapper` with ``observe="onehot"``).

    Args:
        env: the environment (``Box`` actions for a :class:`SafetyCritic`, ``Discrete`` for a
            :class:`DiscreteSafetyCritic`).
        critic: the safety critic.
        eps_safe: the threshold, in (0, 1).
        sigma: continuous: standard deviation of the replacement samples, as a fraction of the
            half-range of the action space.
        n_samples, max_rounds, widen: as :class:`SafeActionFilter`.
        seed: seeds the replacement draws.
    """

    def __init__(self, env: gym.Env, critic: SafetyCritic | DiscreteSafetyCritic,
                 eps_safe: float, *, sigma: float = 0.2, n_samples: int = 50,
                 max_rounds: int = 6, widen: float = 1.5, seed: int | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, critic=critic, eps_safe=eps_safe,
                                                 sigma=sigma, n_samples=n_samples,
                                                 max_rounds=max_rounds, widen=widen, seed=seed)
        gym.ActionWrapper.__init__(self, env)
        space = env.action_space
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.filter: SafeActionFilter | DiscreteSafeActionFilter
        if isinstance(critic, DiscreteSafetyCritic):
            if not isinstance(space, spaces.Discrete):
                raise TypeError(f"a discrete safety critic needs a Discrete action space, not "
                                f"{space}")
            self.filter = DiscreteSafeActionFilter(critic, eps_safe, generator=generator)
        else:
            if not isinstance(space, spaces.Box):
                raise TypeError(f"a continuous safety filter needs a Box action space, not "
                                f"{space}; use a DiscreteSafetyCritic for discrete actions")
            if sigma <= 0:
                raise ValueError(f"sigma must be > 0, not {sigma!r}")
            self.filter = SafeActionFilter(critic, eps_safe, n_samples=n_samples,
                                           max_rounds=max_rounds, widen=widen, squash=False,
                                           generator=generator)
            self._low = torch.as_tensor(space.low, dtype=torch.float32)
            self._half = torch.as_tensor((space.high - space.low) / 2, dtype=torch.float32)
        self.sigma = sigma
        self.critic = critic
        self.eps_safe = self.filter.eps_safe
        self._obs: Any = None
        self._last: dict[str, Any] = {}

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(self.action(action))
        self._obs = obs
        info["filter"] = dict(self._last)
        return obs, reward, terminated, truncated, info

    def action(self, action: Any) -> Any:
        obs = torch.as_tensor(np.asarray(self._obs, dtype=np.float32)).reshape(1, -1)
        stats = self.filter.stats
        fallbacks = stats.fallbacks
        with torch.no_grad():
            if isinstance(self.filter, DiscreteSafeActionFilter):
                q_all = self.critic(obs)[0]
                q = float(q_all[int(action)])
                if q < self.eps_safe:
                    self._last = {"replaced": False, "fallback": False, "q_safe": q}
                    return action
                chosen: Any = int(self.filter(obs, torch.ones(1, len(q_all)))[0])
                q_new = float(q_all[chosen])
            else:
                unit = (torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1, -1)
                        - self._low) / self._half - 1.0
                q = float(self.critic(obs, unit)[0])
                if q < self.eps_safe:
                    self._last = {"replaced": False, "fallback": False, "q_safe": q}
                    return action
                log_std = torch.full_like(unit, float(np.log(self.sigma)))
                picked = self.filter(obs, unit, log_std)
                q_new = float(self.critic(obs, picked)[0])
                if q <= q_new:  # the fallback never does worse than the agent's own action
                    picked = unit
                    q_new = q
                chosen = ((picked + 1.0) * self._half + self._low)[0].numpy()
        stats.replaced += 1
        self._last = {"replaced": True, "fallback": stats.fallbacks > fallbacks, "q_safe": q_new}
        return chosen
