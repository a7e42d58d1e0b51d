"""Smoke test: Stable-Baselines3 PPO trains on a safeguarded MiniGrid env (dict observations)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("minigrid")

import gymnasium as gym  # noqa: E402
from gymnasium.wrappers import FlattenObservation  # noqa: E402
from minigrid.core.world_object import Lava  # noqa: E402
from minigrid.wrappers import ImgObsWrapper  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402

import safeguards  # noqa: E402
from safeguards.gym import SafeguardWrapper  # noqa: E402
from safeguards.labels import labeler  # noqa: E402

pytestmark = pytest.mark.slow


def make_env() -> SafeguardWrapper:
    """LavaGap, image observation flattened, composed with `G !lava`."""
    base = FlattenObservation(ImgObsWrapper(gym.make("MiniGrid-LavaGapS5-v0")))

    @labeler("lava")
    def on_lava(obs: Any, info: Any, action: Any) -> set[str]:
        grid = base.unwrapped
        return {"lava"} if isinstance(grid.grid.get(*grid.agent_pos), Lava) else set()

    return SafeguardWrapper(base, safeguards.compile_ltl("G !lava"), on_lava, reward="penalty")


class CostLog(BaseCallback):
    """Collect what the rollouts put in `info`."""

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[dict[str, Any]] = []

    def _on_step(self) -> bool:
        self.infos.extend(self.locals["infos"])
        return True


def test_the_labeler_sees_lava() -> None:
    env = make_env()
    env.reset(seed=0)
    grid = env.unwrapped
    lava = [(x, y) for x in range(grid.width) for y in range(grid.height)
            if isinstance(grid.grid.get(x, y), Lava) and grid.grid.get(x - 1, y) is None]
    assert lava
    x, y = lava[0]
    grid.agent_pos, grid.agent_dir = (x - 1, y), 0             # face the lava, east
    obs, reward, terminated, truncated, info = env.step(grid.actions.forward)
    assert info["labels"] == ["lava"] and info["violated_rules"] == ["formula"]
    assert info["cost"] == 1.0 and reward == -1.0 and terminated   # the env ends the episode
    assert obs["safeguard"] == env.safeguard.violation_state


def test_ppo_trains_on_the_product_env() -> None:
    env = make_env()
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0,
                device="cpu", verbose=0)
    log = CostLog()
    model.learn(total_timesteps=256, callback=log)
    assert len(log.infos) >= 256
    assert all("cost" in info and info["cost"] in (0.0, 1.0) for info in log.infos)
    assert all("verdict" in info for info in log.infos)

    obs, _ = env.reset(seed=1)
    assert set(obs) == {"obs", "safeguard"}
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
    obs, *_ = env.step(int(action))
    batch = {key: np.stack([np.asarray(obs[key])] * 2) for key in obs}
    actions, _ = model.predict(batch, deterministic=True)
    assert actions.shape == (2,)
