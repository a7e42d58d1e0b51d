"""Propositions of any MiniGrid environment, and their exact one-step prediction.

:class:`MiniGridLabeler` labels the state an environment is in (it reads the grid, the agent's
position and direction and what it carries from ``env.unwrapped``; MiniGrid's observation does
not contain the position).  :func:`predict_labels` computes, from the same data and without
stepping, the labels of the state an action *would* reach — the hook a
:class:`~safeguards.gym.shield.ShieldWrapper` needs to mask unsafe actions cheaply.

======================  ===============================================================
proposition             true when
======================  ===============================================================
``lava``                the agent's cell is lava
``goal``                the agent's cell is a goal
``wall_ahead``          the cell in front of the agent is a wall (or outside the grid)
``bump``                the action was ``forward`` and the agent did not move
``door_open``           the cell in front of the agent is an open door
``carrying_key``        the agent carries a key
======================  ===============================================================

>>> import gymnasium as gym
>>> env = gym.make("MiniGrid-LavaGapS5-v0")
>>> labeler = MiniGridLabeler(env)
>>> obs, info = env.reset(seed=0)
>>> sorted(labeler(obs, info, None)), sorted(predict_labels(env, 2))   # lava is in front
([], ['lava'])
>>> obs, *_, info = env.step(2)
>>> sorted(labeler(obs, info, 2))
['lava']
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from minigrid.core.actions import Actions
from minigrid.core.constants import DIR_TO_VEC
from minigrid.core.world_object import Box, Door, Key, WorldObj
from minigrid.envs.memory import MemoryEnv
from minigrid.minigrid_env import MiniGridEnv

from safeguards.labels import PropositionLabeler, proposition

__all__ = ["MiniGridLabeler", "predict_labels", "MINIGRID_PROPS"]

MINIGRID_PROPS = frozenset({"lava", "goal", "wall_ahead", "bump", "door_open", "carrying_key"})

_Pos = tuple[int, int]


def _minigrid(env: Any) -> MiniGridEnv:
    base = getattr(env, "unwrapped", env)
    if not isinstance(base, MiniGridEnv):
        raise TypeError(f"expected a MiniGrid environment (minigrid.MiniGridEnv, possibly "
                        f"wrapped), got {type(base).__name__}")
    return base


def _pos(value: Any) -> _Pos:
    return int(value[0]), int(value[1])


def _ahead(pos: _Pos, direction: int) -> _Pos:
    dx, dy = DIR_TO_VEC[direction]
    return pos[0] + int(dx), pos[1] + int(dy)


class _Outside:
    """Stands for a cell outside the grid: a wall the agent cannot enter."""

    type = "wall"

    @staticmethod
    def can_overlap() -> bool:
        return False


_OUTSIDE = _Outside()


def _cell(env: MiniGridEnv, pos: _Pos, overrides: Mapping[_Pos, Any] | None = None) -> Any:
    if overrides and pos in overrides:
        return overrides[pos]
    x, y = pos
    if not (0 <= x < env.grid.width and 0 <= y < env.grid.height):
        return _OUTSIDE
    return env.grid.get(x, y)


def _is(cell: Any, kind: str) -> bool:
    return cell is not None and cell.type == kind


def _labels(cell_here: Any, cell_ahead: Any, carrying: Any, bump: bool) -> set[str]:
    true = set()
    if _is(cell_here, "lava"):
        true.add("lava")
    if _is(cell_here, "goal"):
        true.add("goal")
    if _is(cell_ahead, "wall"):
        true.add("wall_ahead")
    if _is(cell_ahead, "door") and bool(cell_ahead.is_open):
        true.add("door_open")
    if _is(carrying, "key"):
        true.add("carrying_key")
    if bump:
        true.add("bump")
    return true


class MiniGridLabeler(PropositionLabeler):
    """Labels of a MiniGrid environment's current state (see the module docstring).

    Construct it with the environment it labels (wrapped or not; it keeps ``env.unwrapped``).
    ``bump`` needs the agent's previous position, which the labeler keeps: every call remembers
    the position, and a call with ``action=None`` (what the wrappers do at ``reset``) starts
    afresh.  Give each environment its own labeler.
    """

    def __init__(self, env: Any) -> None:
        self.env = _minigrid(env)
        self._previous: _Pos | None = None
        super().__init__()

    def __call__(self, obs: Any, info: Mapping[str, Any], action: Any) -> set[str]:
        if action is None:
            self._previous = None
        true = super().__call__(obs, info, action)
        self._previous = _pos(self.env.agent_pos)
        return true

    def _here(self) -> Any:
        return _cell(self.env, _pos(self.env.agent_pos))

    def _ahead(self) -> Any:
        return _cell(self.env, _ahead(_pos(self.env.agent_pos), int(self.env.agent_dir)))

    @proposition
    def lava(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the agent's cell is lava"
        return _is(self._here(), "lava")

    @proposition
    def goal(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the agent's cell is a goal"
        return _is(self._here(), "goal")

    @proposition
    def wall_ahead(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the cell in front of the agent is a wall (or outside the grid)"
        return _is(self._ahead(), "wall")

    @proposition
    def bump(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the action was `forward` and the agent did not move"
        return (action is not None and self._previous is not None
                and int(action) == int(self.env.actions.forward)
                and _pos(self.env.agent_pos) == self._previous)

    @proposition
    def door_open(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the cell in front of the agent is an open door"
        cell = self._ahead()
        return _is(cell, "door") and bool(cell.is_open)

    @proposition
    def carrying_key(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the agent carries a key"
        return _is(self.env.carrying, "key")


def predict_labels(env: Any, action: Any) -> set[str]:
    """The labels :class:`MiniGridLabeler` would give the state that ``action`` reaches.

    Computed from the grid without stepping (and without changing ``env``), following
    ``MiniGridEnv.step``: ``left``/``right`` turn in place; ``forward`` moves to ``front_pos``
    unless the cell there cannot be overlapped (then it is a ``bump``); ``pickup`` takes the
    object in front if it can be picked up and the hands are empty; ``drop`` puts the carried
    object on an empty cell in front; ``toggle`` opens/closes a door (a locked door opens only
    with a key of its colour) or replaces a box by its contents; ``done`` changes nothing.
    ``MiniGrid-Memory`` turns ``pickup`` into ``toggle``, as its ``step`` does.

    Exact for the deterministic MiniGrid dynamics — every environment shipped with MiniGrid and
    BabyAI except ``MiniGrid-Dynamic-Obstacles-*``, whose obstacles move at random before the
    agent does (there a predicted ``bump`` or ``goal`` can be wrong).  A custom object whose
    ``toggle`` MiniGrid does not define is toggled on a deep copy of the environment (exact, but
    slower).  Tested against stepping ``copy.deepcopy(env)`` from many random states.

    Raises:
        TypeError: ``env`` is not a MiniGrid environment.
        ValueError: ``action`` is not one of MiniGrid's actions.
    """
    base = _minigrid(env)
    try:
        act = Actions(action)
    except (TypeError, ValueError):
        raise ValueError(f"unknown MiniGrid action {action!r} (expected 0..{len(Actions) - 1})"
                         ) from None
    if isinstance(base, MemoryEnv) and act == Actions.pickup:
        act = Actions.toggle
    pos = _pos(base.agent_pos)
    direction = int(base.agent_dir)
    front = _ahead(pos, direction)
    front_cell = _cell(base, front)
    carrying = base.carrying
    overrides: dict[_Pos, Any] = {}
    bump = False

    if act == Actions.left:
        direction = (direction - 1) % 4
    elif act == Actions.right:
        direction = (direction + 1) % 4
    elif act == Actions.forward:
        if front_cell is None or front_cell.can_overlap():
            pos = front
        else:
            bump = True
    elif act == Actions.pickup:
        if front_cell is not None and front_cell.can_pickup() and carrying is None:
            carrying = front_cell
            overrides[front] = None
    elif act == Actions.drop:
        if front_cell is None and carrying is not None:
            overrides[front] = carrying
            carrying = None
    elif act == Actions.toggle and front_cell is not None and front_cell is not _OUTSIDE:
        overrides[front] = _toggled(base, front, front_cell)
    # Actions.done (and toggling nothing) changes nothing.

    return _labels(_cell(base, pos, overrides), _cell(base, _ahead(pos, direction), overrides),
                   carrying, bump)


class _DoorState:
    """A door as it would be after a toggle (only what the labels read)."""

    type = "door"

    def __init__(self, is_open: bool) -> None:
        self.is_open = is_open


def _toggled(env: MiniGridEnv, pos: _Pos, cell: WorldObj) -> Any:
    """What stands at ``pos`` after toggling ``cell`` there."""
    kind = type(cell)
    if kind.toggle is Door.toggle:
        if cell.is_locked:
            opens = isinstance(env.carrying, Key) and env.carrying.color == cell.color
            return _DoorState(True) if opens else cell
        return _DoorState(not cell.is_open)
    if kind.toggle is Box.toggle:
        return cell.contains
    if kind.toggle is WorldObj.toggle:
        return cell
    # An object with its own toggle: run it on a copy of the environment.
    clone = copy.deepcopy(env)
    clone.grid.get(*pos).toggle(clone, pos)
    return clone.grid.get(*pos)
