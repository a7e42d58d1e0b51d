"""The epsilon-safe action filter: only actions under eps_safe when one exists, widening when
none does, fallbacks counted, sampling in proportion to pi; the discrete mask; the wrapper."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from safeguards.learn.safety_critic import DiscreteSafetyCritic, SafetyCritic
from safeguards.learn.safety_filter import (
    DiscreteSafeActionFilter, SafeActionFilter, SafetyFilterWrapper,
)


class Rule:
    """A fixed 'critic' output: failure probability 1 where ``unsafe(action)``, else 0."""

    def __init__(self, unsafe) -> None:
        self.unsafe = unsafe

    def __call__(self, obs, action, target=False):
        return self.unsafe(action).float()


def critic_with(unsafe) -> SafetyCritic:
    critic = SafetyCritic(2, 1, seed=0)
    critic.raw = Rule(unsafe)  # squared loss: the output is the raw value
    return critic


def make_filter(unsafe, **kwargs) -> SafeActionFilter:
    return SafeActionFilter(critic_with(unsafe), 0.5,
                            generator=torch.Generator().manual_seed(0), **kwargs)


def test_only_safe_actions_when_some_exist() -> None:
    pick = make_filter(lambda a: a[..., 0] > 0)
    actions = pick(torch.zeros(64, 2), torch.zeros(64, 1), torch.zeros(64, 1))
    assert (actions <= 0).all()
    assert pick.stats.calls == 64 and pick.stats.fallbacks == 0 and pick.stats.rounds == 1


def test_widens_sigma_when_no_sample_is_safe() -> None:
    # safe only beyond tanh(u) < -0.999 (u < -3.8): N(0, 0.1) never gets there, widened it can
    pick = make_filter(lambda a: a[..., 0] > -0.999, n_samples=50, max_rounds=30)
    actions = pick(torch.zeros(4, 2), torch.zeros(4, 1), torch.log(torch.full((4, 1), 0.1)))
    assert (actions < -0.999).all()
    assert pick.stats.rounds > 1 and pick.stats.fallbacks == 0


def test_falls_back_to_the_least_unsafe_and_counts_it() -> None:
    critic = SafetyCritic(2, 1, seed=0)
    critic.raw = lambda obs, action, target=False: 0.6 + 0.1 * action[..., 0]  # all >= 0.5
    pick = SafeActionFilter(critic, 0.4, generator=torch.Generator().manual_seed(0))
    actions = pick(torch.zeros(3, 2), torch.zeros(3, 1), torch.zeros(3, 1))
    assert pick.stats.fallbacks == 3 and pick.stats.rounds == 6
    assert (actions < -0.9).all()                      # the least unsafe: the lowest action


def test_samples_in_proportion_to_pi() -> None:
    # everything is safe: the filter must reproduce pi = tanh(N(1, 0.5))
    pick = make_filter(lambda a: a[..., 0] > 2)
    actions = pick(torch.zeros(4000, 2), torch.ones(4000, 1), torch.log(torch.full((4000, 1), 0.5)))
    reference = torch.tanh(1 + 0.5 * torch.randn(200_000, generator=torch.Generator().manual_seed(1)))
    assert float(actions.mean()) == pytest.approx(float(reference.mean()), abs=0.02)
    assert float(actions.std()) == pytest.approx(float(reference.std()), abs=0.02)


def test_discrete_filter_masks_and_falls_back() -> None:
    critic = DiscreteSafetyCritic(1, 3, seed=0)
    critic.forward = lambda obs, target=False: torch.tensor([[0.9, 0.05, 0.01],
                                                             [0.9, 0.8, 0.7]])
    pick = DiscreteSafeActionFilter(critic, 0.1, generator=torch.Generator().manual_seed(0))
    draws = [pick(torch.zeros(2, 1), torch.tensor([[0.1, 0.6, 0.3]] * 2)).tolist()
             for _ in range(300)]
    first = [d[0] for d in draws]
    assert set(first) == {1, 2} and 0.55 < first.count(1) / 300 < 0.78   # 0.6 / 0.9
    assert {d[1] for d in draws} == {2} and pick.stats.fallbacks == 300


def test_wrapper_passes_safe_actions_and_replaces_unsafe_ones() -> None:
    critic = SafetyCritic(3, 1, seed=0)
    critic.raw = lambda obs, action, target=False: (action[..., 0] > 0).float()
    env = SafetyFilterWrapper(gym.make("Pendulum-v1"), critic, 0.5, seed=0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([-1.0]))
    assert info["filter"] == {"replaced": False, "fallback": False, "q_safe": 0.0}
    assert env.action(np.array([1.5])).item() <= 0      # Pendulum's actions are in [-2, 2]
    assert env.filter.stats.replaced == 1


def test_wrapper_with_a_discrete_critic() -> None:
    critic = DiscreteSafetyCritic(4, 2, seed=0)
    critic.forward = lambda obs, target=False: torch.tensor([[0.9, 0.0]])
    env = SafetyFilterWrapper(gym.make("CartPole-v1"), critic, 0.1, seed=0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["filter"]["replaced"] and env.action(1) == 1


def test_errors_name_the_problem() -> None:
    with pytest.raises(TypeError, match="Box action space"):
        SafetyFilterWrapper(gym.make("CartPole-v1"), SafetyCritic(4, 1), 0.1)
    with pytest.raises(TypeError, match="Discrete action space"):
        SafetyFilterWrapper(gym.make("Pendulum-v1"), DiscreteSafetyCritic(3, 2), 0.1)
    for eps in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="eps_safe"):
            SafetyFilterWrapper(gym.make("Pendulum-v1"), SafetyCritic(3, 1), eps)
    with pytest.raises(TypeError, match="DiscreteSafeActionFilter"):
        SafeActionFilter(DiscreteSafetyCritic(3, 2), 0.1)  # type: ignore[arg-type]


def test_code_selection_draws_from_pi_squared() -> None:
    # the authors' code weighs samples drawn from pi by pi again: N(0, 1) becomes N(0, 1/2)
    critic = critic_with(lambda a: a[..., 0] > 2)
    pick = SafeActionFilter(critic, 0.5, squash=False, select="code", n_samples=200,
                            generator=torch.Generator().manual_seed(0))
    actions = pick(torch.zeros(4000, 2), torch.zeros(4000, 1), torch.log(torch.full((4000, 1), 0.3)))
    assert float(actions.std()) == pytest.approx(0.3 / np.sqrt(2), abs=0.01)
