"""The drunk spider (SQRL's point-mass environment): geometry, dynamics, rewards, the time-limit
bonuses, goal sampling, the labeler and the no-fall spec."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import safeguards
from safeguards.envs.spider import DrunkSpiderEnv, SpiderLabeler
from safeguards.envs.spider.env import WALLS
from safeguards.gym import SafeguardWrapper

DIAGONAL = float(np.hypot(8, 7))


def test_map_is_the_authors_drunk_spider_short() -> None:
    assert WALLS.shape == (8, 7)
    lava = {tuple(c) for c in np.argwhere(WALLS == 1)}
    assert lava == {(r, c) for r in range(2, 6) for c in (2, 4)}


def test_registered_and_starts_at_the_cell_centre() -> None:
    env = gym.make("safeguards/DrunkSpider-v0")
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [0.5, 3.5, 7.5, 3.5]
    assert env.spec.id == "safeguards/DrunkSpider-v0"
    assert not any(info[k] for k in ("lava", "off_map", "at_goal", "on_bridge"))


def test_straight_across_the_bridge_reaches_the_goal_with_the_bonus() -> None:
    env = DrunkSpiderEnv(action_noise=0.0)
    env.reset(seed=0)
    rewards, bridge = [], []
    for _ in range(7):
        obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0]))
        rewards.append(reward)
        bridge.append(info["on_bridge"])
        if terminated:
            break
    # rows 1.5 .. 6.5: distance 6 .. 1 from the goal; at 6.5 the goal is 1.0 away (not < 1)
    assert rewards[:6] == pytest.approx([-d / DIAGONAL for d in (6, 5, 4, 3, 2, 1)])
    assert bridge[:6] == [False, True, True, True, True, False]
    assert terminated and not truncated and info["at_goal"]
    assert rewards[6] == pytest.approx(30.0 + (30 - 7))   # goal reward + early bonus


def test_lava_and_off_map_end_the_episode() -> None:
    env = DrunkSpiderEnv(action_noise=0.0, fall_penalty=1.0)
    env.reset(seed=0)
    env.step(np.array([1.0, 0.0]))
    env.step(np.array([0.0, -1.0]))                      # (1.5, 2.5): above the left pit
    obs, reward, terminated, _, info = env.step(np.array([1.0, 0.0]))
    assert info["lava"] and not info["off_map"] and terminated
    assert 2.0 <= obs[0] < 2.2 and 2 <= obs[1] < 3       # stopped at the first lava sub-step
    assert reward == pytest.approx(-np.linalg.norm(obs[:2] - obs[2:]) / DIAGONAL - (30 - 3 + 1))
    env.reset(seed=0)
    obs, _, terminated, _, info = env.step(np.array([-1.0, 0.0]))
    assert info["off_map"] and terminated and obs[0] == 0.0


def test_time_limit_truncates_with_the_penalty() -> None:
    env = DrunkSpiderEnv(action_noise=0.0, max_episode_steps=3)
    env.reset(seed=0)
    for _ in range(3):
        _, reward, terminated, truncated, _ = env.step(np.zeros(2))
    assert truncated and not terminated
    assert reward == pytest.approx(-7.0 / DIAGONAL - 30.0)


def test_noise_is_uniform_of_the_given_width() -> None:
    env = DrunkSpiderEnv(action_noise=0.4)
    moves = []
    for seed in range(200):
        env.reset(seed=seed)
        obs, *_ = env.step(np.zeros(2))
        moves.append(obs[:2] - np.array([0.5, 3.5]))
    moves = np.array(moves)
    assert np.abs(moves).max() <= 0.2 + 1e-6 and np.abs(moves).max() > 0.15
    assert abs(moves.mean()) < 0.03


def test_random_goals_are_safe_and_far_and_seeded() -> None:
    env = DrunkSpiderEnv(random_goal=True)
    goals = []
    for seed in range(100):
        obs, _ = env.reset(seed=seed)
        goal = obs[2:]
        row, col = (min(int(v), n - 1) for v, n in zip(goal, (8, 7)))
        assert WALLS[row, col] == 0 and np.abs(goal - [0.5, 3.5]).sum() >= 4
        goals.append(tuple(goal))
    assert len(set(goals)) == 100
    assert env.reset(seed=3)[0].tolist() == env.reset(seed=3)[0].tolist()


@pytest.mark.parametrize("kwargs", [{"goal": (3, 2)}, {"goal": (9, 0)}, {"goal": False},
                                    {"action_noise": -0.1}, {"max_episode_steps": 0}])
def test_bad_arguments_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        DrunkSpiderEnv(**kwargs)


def test_no_fall_spec_on_the_product_mdp() -> None:
    spec = safeguards.load_safeguard("sqrl/no_fall")
    assert set(spec.props) <= SpiderLabeler().props
    env = SafeguardWrapper(DrunkSpiderEnv(action_noise=0.0), spec, SpiderLabeler(),
                           observe="onehot", terminate_on_violation=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4 + spec.n_states,)
    _, _, _, _, info = env.step(np.array([-1.0, 0.0]))
    assert info["cost"] == 1.0 and info["violated_rules"] == ["no_fall"]


def test_hurry_across_spec_needs_the_safeguard_state() -> None:
    spec = safeguards.load_safeguard("sqrl/hurry_across")
    env = SafeguardWrapper(DrunkSpiderEnv(action_noise=0.0), spec, SpiderLabeler(),
                           observe="onehot", terminate_on_violation=True)
    env.reset(seed=0)
    env.step(np.array([1.0, 0.0]))
    obs, _, _, _, info = env.step(np.array([1.0, 0.0]))  # row 2.5: on the bridge
    states = [int(np.argmax(obs[4:]))]
    for _ in range(4):                                   # stay on the bridge, barely moving
        obs, _, terminated, _, info = env.step(np.array([0.1, 0.0]))
        states.append(int(np.argmax(obs[4:])))
    assert terminated and info["violated_rules"] == ["hurry_across"]
    assert len(set(states[:4])) == 4                      # the count lives in the safeguard state


def test_render_draws_the_trajectory() -> None:
    env = DrunkSpiderEnv(render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.array([1.0, 0.0]))
    image = env.render()
    assert image is not None and image.ndim == 3 and image.shape[2] == 3
