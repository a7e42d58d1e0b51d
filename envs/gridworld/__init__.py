"""MiniGrid support: propositions of any MiniGrid environment and their one-step prediction.

Needs the ``gridworld`` extra (``pip install 'safeguards[gridworld]'``: Gymnasium and MiniGrid).
See :mod:`safeguards.envs.gridworld.labels`.
"""

from safeguards.envs.gridworld.labels import MINIGRID_PROPS, MiniGridLabeler, predict_labels

__all__ = ["MiniGridLabeler", "predict_labels", "MINIGRID_PROPS"]
