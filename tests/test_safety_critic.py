"""The SQRL safety critic: its TD target, and that training converges to the closed form of
Eq. 2 on a tiny hand-made MDP, for both losses and both action kinds."""

from __future__ import annotations

import pytest
import torch

from safeguards.learn.safety_critic import DiscreteSafetyCritic, SafetyCritic

GAMMA = 0.5


def chain() -> tuple[torch.Tensor, ...]:
    """A chain s0 -> s1 -> s2 -> failure (one-hot states; every action moves right).

    ``Q_safe(s2, a) = 1`` (the next state is an incident), ``Q_safe(s1, a) = gamma``,
    ``Q_safe(s0, a) = gamma^2``; and a safe terminal branch s3 -> goal with ``Q_safe = 0``."""
    eye = torch.eye(5)
    obs = eye[[0, 1, 2, 3]]
    next_obs = eye[[1, 2, 4, 4]]
    cost = torch.tensor([0.0, 0.0, 1.0, 0.0])
    done = torch.tensor([0.0, 0.0, 1.0, 1.0])
    return obs, next_obs, cost, done


@pytest.mark.parametrize("loss", ["squared", "bce"])
def test_continuous_critic_converges_to_the_closed_form(loss: str) -> None:
    obs, next_obs, cost, done = chain()
    critic = SafetyCritic(5, 1, gamma_safe=GAMMA, loss=loss, hidden=(32,), learning_rate=1e-2,
                          tau=0.2, seed=0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(800):
        action = torch.rand(4, 1, generator=generator) * 2 - 1
        next_action = torch.rand(4, 1, generator=generator) * 2 - 1
        critic.update(obs, action, cost, done, next_obs, next_action)
    with torch.no_grad():
        q = critic(obs, torch.zeros(4, 1))
    assert q.tolist() == pytest.approx([GAMMA ** 2, GAMMA, 1.0, 0.0], abs=0.06)


def test_discrete_critic_converges_to_the_closed_form() -> None:
    obs, next_obs, cost, done = chain()
    critic = DiscreteSafetyCritic(5, 2, gamma_safe=GAMMA, hidden=(32,), learning_rate=1e-2,
                                  tau=0.2, seed=0)
    for k in range(800):
        action = torch.full((4,), k % 2)
        critic.update(obs, action, cost, done, next_obs)
    with torch.no_grad():
        q = critic(obs)
    assert q[:, 0].tolist() == pytest.approx([GAMMA ** 2, GAMMA, 1.0, 0.0], abs=0.06)
    assert q[:, 1].tolist() == pytest.approx([GAMMA ** 2, GAMMA, 1.0, 0.0], abs=0.06)


def test_td_target_is_eq_2() -> None:
    critic = SafetyCritic(2, 1, gamma_safe=0.7, seed=0)
    target = critic.td_target(torch.tensor([2.0, 0.0, 0.0, 0.0]),
                              torch.tensor([1.0, 0.0, 1.0, 0.0]),
                              torch.tensor([0.3, 0.3, 0.3, 1.0]))
    assert target.tolist() == pytest.approx([1.0, 0.21, 0.0, 0.7])


def test_fail_weight_weighs_incidents() -> None:
    critic = SafetyCritic(2, 1, loss="bce", fail_weight=0.75, seed=0)
    raw, target = torch.zeros(2), torch.tensor([1.0, 0.0])
    weighted = critic.loss(raw, target, torch.tensor([1.0, 0.0]))
    plain = SafetyCritic(2, 1, loss="bce", seed=0).loss(raw, target, torch.tensor([1.0, 0.0]))
    # both samples have the same BCE (log 2); weights 1.5 and 0.5 average to 1
    assert float(weighted) == pytest.approx(float(plain))
    only_incident = critic.loss(raw[:1], target[:1], torch.tensor([1.0]))
    assert float(only_incident) == pytest.approx(1.5 * float(plain))


@pytest.mark.parametrize("kwargs, name", [({"gamma_safe": 1.0}, "gamma_safe"),
                                          ({"gamma_safe": -0.1}, "gamma_safe"),
                                          ({"loss": "hinge"}, "loss"),
                                          ({"fail_weight": 1.0}, "fail_weight")])
def test_bad_settings_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SafetyCritic(2, 1, **kwargs)
