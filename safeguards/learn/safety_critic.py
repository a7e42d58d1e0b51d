"""The SQRL safety critic (Srinivasan et al. 2020, Eq. 2): ``Q_safe(s, a)``, the discounted
probability that a safety incident follows taking ``a`` in ``s``.

The incident indicator ``I(s)`` is the violation bit of a compiled safeguard on the product MDP
(``info["cost"] > 0`` of :class:`~safeguards.gym.SafeguardWrapper`), and ``s`` is the product
state: the observation with the safeguard state appended (``observe="onehot"``), so one critic
learns from any spec.  The TD target (papers.md §2.2)::

    y = I(s') + (1 - I(s')) * (1 - done') * gamma_safe * Qbar_safe(s', a')

with ``Qbar_safe`` a Polyak-averaged target network and ``a'`` drawn by the caller (the paper's
App. D: from the unconstrained policy).  ``done'`` marks an episode that ended without an
incident (the goal): nothing follows it.  Two losses:

``squared`` (the paper)
    ``(Q_safe(s, a) - y)^2`` on the raw output.
``bce`` (the authors' code)
    ``Q_safe = sigmoid(logit)``, binary cross-entropy against ``y``, each sample weighted
    ``2 * fail_weight`` when ``I(s') = 1`` and ``2 * (1 - fail_weight)`` otherwise
    (``fail_weight = 0.75``: 1.5 and 0.5).

:class:`DiscreteSafetyCritic` is the discrete-action form: one output per action.

>>> import torch
>>> critic = SafetyCritic(obs_dim=3, action_dim=2, gamma_safe=0.5, seed=0)
>>> y = critic.td_target(cost=torch.tensor([1.0, 0.0, 0.0]), done=torch.tensor([1.0, 1.0, 0.0]),
...                      next_q=torch.tensor([0.9, 0.9, 0.4]))
>>> y.tolist()        # incident: 1; ended safely: 0; else gamma_safe * Qbar(s', a')
[1.0, 0.0, 0.20000000298023224]
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SafetyCritic", "DiscreteSafetyCritic", "SafetyLoss", "check_eps_safe",
           "check_gamma_safe"]

SafetyLoss = Literal["squared", "bce"]


def check_eps_safe(eps_safe: float, name: str = "eps_safe") -> float:
    """``eps_safe`` must be a probability threshold in (0, 1)."""
    if not 0.0 < float(eps_safe) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), not {eps_safe!r}")
    return float(eps_safe)


def check_gamma_safe(gamma_safe: float) -> float:
    """``gamma_safe`` must be a discount in [0, 1)."""
    if not 0.0 <= float(gamma_safe) < 1.0:
        raise ValueError(f"gamma_safe must be in [0, 1), not {gamma_safe!r}")
    return float(gamma_safe)


def _mlp(inputs: int, outputs: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.ReLU()]
        inputs = width
    layers.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*layers)


class _Critic(nn.Module):
    """What both critics share: the target network, the TD target, the loss, the update."""

    def __init__(self, net: nn.Module, *, gamma_safe: float, loss: SafetyLoss,
                 fail_weight: float | None, learning_rate: float, tau: float) -> None:
        super().__init__()
        if loss not in ("squared", "bce"):
            raise ValueError(f"loss must be 'squared' (the paper) or 'bce' (the authors' code), "
                             f"not {loss!r}")
        if fail_weight is not None and not 0.0 < fail_weight < 1.0:
            raise ValueError(f"fail_weight must be in (0, 1), not {fail_weight!r}")
        self.gamma_safe = check_gamma_safe(gamma_safe)
        self.loss_kind: SafetyLoss = loss
        self.fail_weight = fail_weight
        self.tau = tau
        self.net = net
        self.target_net = copy.deepcopy(net).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=learning_rate)

    def _output(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw) if self.loss_kind == "bce" else raw

    def td_target(self, cost: torch.Tensor, done: torch.Tensor,
                  next_q: torch.Tensor) -> torch.Tensor:
        """``I(s') + (1 - I(s')) (1 - done') gamma_safe Qbar(s', a')`` (``cost`` > 0 is an
        incident)."""
        incident = (cost > 0).float()
        return incident + (1.0 - incident) * (1.0 - done.float()) * self.gamma_safe * next_q

    def loss(self, predicted_raw: torch.Tensor, target: torch.Tensor,
             cost: torch.Tensor) -> torch.Tensor:
        """The squared (paper) or weighted binary cross-entropy (code) loss."""
        if self.loss_kind == "squared":
            error = (predicted_raw - target) ** 2
        else:
            error = F.binary_cross_entropy_with_logits(predicted_raw, target.clamp(0.0, 1.0),
                                                       reduction="none")
        if self.fail_weight is not None:
            incident = (cost > 0).float()
            error = error * 2.0 * (incident * self.fail_weight
                                   + (1.0 - incident) * (1.0 - self.fail_weight))
        return error.mean()

    def step(self, loss: torch.Tensor) -> float:
        """One Adam step on ``loss``, then the Polyak update of the target network."""
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            for param, target in zip(self.net.parameters(), self.target_net.parameters()):
                target.mul_(1.0 - self.tau).add_(param, alpha=self.tau)
        return float(loss.detach())


class SafetyCritic(_Critic):
    """``Q_safe(s, a)`` for continuous actions: an MLP (2 x 256, ReLU) on ``[s, a]``.

    Args:
        obs_dim: size of the (flat, product) observation.
        action_dim: size of the action.
        gamma_safe: the safety discount, in [0, 1) (paper: 0.7; drunk spider 0.65).
        loss: ``"squared"`` (paper) or ``"bce"`` (code).
        fail_weight: class weight of incidents (code: 0.75), None for none.
        hidden: hidden layer sizes.
        learning_rate: Adam's step size (paper: 3e-4).
        tau: Polyak rate of the target network.
        seed: seeds the initial weights.
    """

    def __init__(self, obs_dim: int, action_dim: int, *, gamma_safe: float = 0.7,
                 loss: SafetyLoss = "squared", fail_weight: float | None = None,
                 hidden: tuple[int, ...] = (256, 256), learning_rate: float = 3e-4,
                 tau: float = 0.005, seed: int | None = None) -> None:
        if seed is not None:
            torch.manual_seed(seed)
        super().__init__(_mlp(obs_dim + action_dim, 1, hidden), gamma_safe=gamma_safe,
                         loss=loss, fail_weight=fail_weight, learning_rate=learning_rate,
                         tau=tau)
        self.obs_dim, self.action_dim = obs_dim, action_dim

    def raw(self, obs: torch.Tensor, action: torch.Tensor, *, target: bool = False
            ) -> torch.Tensor:
        """The network's output before the sigmoid of the ``bce`` form, shape ``(batch,)``."""
        net = self.target_net if target else self.net
        return net(torch.cat([obs, action], dim=-1)).squeeze(-1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, *, target: bool = False
                ) -> torch.Tensor:
        """``Q_safe(s, a)``, shape ``(batch,)`` (broadcast over leading dimensions)."""
        return self._output(self.raw(obs, action, target=target))

    def update(self, obs: torch.Tensor, action: torch.Tensor, cost: torch.Tensor,
               done: torch.Tensor, next_obs: torch.Tensor, next_action: torch.Tensor) -> float:
        """One gradient step on a batch of transitions; ``next_action`` is ``a'``."""
        with torch.no_grad():
            next_q = self(next_obs, next_action, target=True)
            target = self.td_target(cost, done, next_q)
        return self.step(self.loss(self.raw(obs, action), target, cost))


class DiscreteSafetyCritic(_Critic):
    """``Q_safe(s, .)`` for a discrete action space: one output per action.

    The target's ``Qbar(s', a')`` is the expectation over ``a' ~ pi(.|s')`` given as
    probabilities (uniform when the caller gives none).

    >>> import torch
    >>> critic = DiscreteSafetyCritic(obs_dim=2, n_actions=3, seed=0)
    >>> critic(torch.zeros(4, 2)).shape
    torch.Size([4, 3])
    """

    def __init__(self, obs_dim: int, n_actions: int, *, gamma_safe: float = 0.7,
                 loss: SafetyLoss = "squared", fail_weight: float | None = None,
                 hidden: tuple[int, ...] = (256, 256), learning_rate: float = 3e-4,
                 tau: float = 0.005, seed: int | None = None) -> None:
        if seed is not None:
            torch.manual_seed(seed)
        super().__init__(_mlp(obs_dim, n_actions, hidden), gamma_safe=gamma_safe, loss=loss,
                         fail_weight=fail_weight, learning_rate=learning_rate, tau=tau)
        self.obs_dim, self.n_actions = obs_dim, n_actions

    def forward(self, obs: torch.Tensor, *, target: bool = False) -> torch.Tensor:
        """``Q_safe(s, a)`` for every action, shape ``(batch, n_actions)``."""
        return self._output((self.target_net if target else self.net)(obs))

    def update(self, obs: torch.Tensor, action: torch.Tensor, cost: torch.Tensor,
               done: torch.Tensor, next_obs: torch.Tensor,
               next_policy: torch.Tensor | None = None) -> float:
        """One gradient step; ``next_policy``: ``pi(.|s')`` as probabilities."""
        with torch.no_grad():
            next_all = self(next_obs, target=True)
            weights = (next_policy if next_policy is not None
                       else torch.full_like(next_all, 1.0 / self.n_actions))
            target = self.td_target(cost, done, (weights * next_all).sum(-1))
        raw = self.net(obs).gather(-1, action.long().reshape(-1, 1)).squeeze(-1)
        return self.step(self.loss(raw, target, cost))
