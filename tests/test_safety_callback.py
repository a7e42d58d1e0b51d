"""The discrete safety critic learned beside Stable-Baselines3 PPO and DQN on a product MDP
(FrozenLake's holes as the spec's incidents), then filtering a random agent."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import safeguards
from safeguards.gym import SafeguardWrapper
from safeguards.labels import labeler
from safeguards.learn.safety_callback import SafetyCriticCallback, policy_probs
from safeguards.learn.safety_critic import DiscreteSafetyCritic, SafetyCritic
from safeguards.learn.safety_filter import SafetyFilterWrapper

HOLES = {5, 7, 11, 12}
DOWN, LEFT = 1, 0


@labeler("hole")
def in_hole(obs, info, action):
    return {"hole"} if int(obs) in HOLES else set()


def product() -> gym.Env:
    env = gym.make("FrozenLake-v1", is_slippery=False)
    return SafeguardWrapper(env, safeguards.compile_ltl("G !hole"), in_hole,
                            terminate_on_violation=True)


def one_hot(state: int, safeguard_state: int = 0) -> torch.Tensor:
    flat = torch.zeros(1, 16 + 2)
    flat[0, state] = 1.0
    flat[0, 16 + safeguard_state] = 1.0
    return flat


@pytest.mark.parametrize("algo", ["PPO", "DQN"])
def test_the_critic_learns_where_the_holes_are(algo: str) -> None:
    import stable_baselines3

    torch.set_num_threads(1)
    env = product()
    size = gym.spaces.flatdim(env.observation_space)
    critic = DiscreteSafetyCritic(size, 4, gamma_safe=0.5, hidden=(32,), learning_rate=3e-3,
                                  seed=0)
    callback = SafetyCriticCallback(critic, train_every=128, train_steps=40, batch_size=64,
                                    buffer_size=2000, seed=0)
    kwargs = {"n_steps": 256, "batch_size": 128, "n_epochs": 2} if algo == "PPO" \
        else {"learning_starts": 100, "train_freq": 8}
    model = getattr(stable_baselines3, algo)("MultiInputPolicy", env, seed=0, **kwargs)
    model.learn(1536, callback=callback)
    assert callback.transitions == 1536 and callback.updates == 12 * 40
    with torch.no_grad():
        into_hole = float(critic(one_hot(1))[0, DOWN])       # 1 -> 5 is a hole
        stay_put = float(critic(one_hot(0))[0, LEFT])         # 0 -> 0 is safe
    assert into_hole > 0.7 and stay_put < 0.3
    probs = policy_probs(model, {"obs": np.array([0]), "safeguard": np.array([0])})
    assert probs.shape == (1, 4) and float(probs.sum()) == pytest.approx(1.0)

    # the critic filters a random agent: fewer falls than without it
    def falls(env: gym.Env) -> int:
        count = 0
        for seed in range(40):
            env.reset(seed=seed)
            env.action_space.seed(seed)
            done = False
            while not done:
                _, _, terminated, truncated, info = env.step(env.action_space.sample())
                done = terminated or truncated
            count += bool(info["violated_rules"])
        return count

    flat = gym.wrappers.FlattenObservation(product())
    filtered, unfiltered = falls(SafetyFilterWrapper(flat, critic, 0.5, seed=0)), falls(flat)
    assert filtered < unfiltered  # the critic knows only the holes the agent's data reached


def test_needs_a_discrete_critic_and_discrete_actions() -> None:
    with pytest.raises(TypeError, match="DiscreteSafetyCritic"):
        SafetyCriticCallback(SafetyCritic(3, 1))  # type: ignore[arg-type]
    from stable_baselines3 import PPO

    callback = SafetyCriticCallback(DiscreteSafetyCritic(3, 2))
    with pytest.raises(TypeError, match="Discrete action space"):
        PPO("MlpPolicy", gym.make("Pendulum-v1"), n_steps=64, batch_size=32).learn(
            64, callback=callback)
