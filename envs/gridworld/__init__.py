"""Gridworlds on MiniGrid: the Progressive Safeguards Minecraft world and labelers for any
MiniGrid environment (with one-step label prediction for shields).

Importing this package registers ``safeguards/Minecraft-v0`` and ``safeguards/Minecraft-L{1,2,3}-v0``.
Needs the ``gridworld`` extra (``pip install 'safeguards[gridworld]'``: Gymnasium and MiniGrid).
"""

from safeguards.envs.gridworld.labels import MINIGRID_PROPS, MiniGridLabeler, predict_labels
from safeguards.envs.gridworld.minecraft import MinecraftEnv, MinecraftLabeler, register_minecraft

__all__ = ["MiniGridLabeler", "predict_labels", "MINIGRID_PROPS", "MinecraftEnv",
           "MinecraftLabeler", "register_minecraft"]
