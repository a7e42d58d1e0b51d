"""The drunk spider of SQRL (Srinivasan et al. 2020): a point mass crossing a one-cell bridge
between two lava pits, pushed by action noise.

Importing this package registers ``safeguards/DrunkSpider-v0``.

>>> import gymnasium as gym
>>> env = gym.make("safeguards/DrunkSpider-v0", action_noise=0.2)
>>> obs, info = env.reset(seed=0)
>>> obs.tolist(), type(env.unwrapped.labeler).__name__
([0.5, 3.5, 7.5, 3.5], 'SpiderLabeler')
"""

import gymnasium as gym

from safeguards.envs.spider.env import DrunkSpiderEnv
from safeguards.envs.spider.labels import SpiderLabeler

__all__ = ["DrunkSpiderEnv", "SpiderLabeler", "register_spider"]


def register_spider() -> None:
    """Register ``safeguards/DrunkSpider-v0`` (idempotent)."""
    if "safeguards/DrunkSpider-v0" not in gym.registry:
        gym.register(id="safeguards/DrunkSpider-v0",
                     entry_point="safeguards.envs.spider.env:DrunkSpiderEnv")


register_spider()
