"""The Minecraft-inspired gridworld of *Progressive Safeguards* (Omi, Hasanbeig et al., 2024).

A faithful port of the authors' tabular environment (``src/environments/minecraft.py`` and
``SlipperyGrid.py`` of ``grockious/safeguardedRL``) onto MiniGrid, so that it renders with
MiniGrid's renderer, plus the labeler the shipped Minecraft safeguards need.

>>> import gymnasium as gym
>>> import safeguards.envs.gridworld.minecraft  # registers safeguards/Minecraft-*-v0
>>> env = gym.make("safeguards/Minecraft-L1-v0")
>>> obs, info = env.reset(seed=0)
>>> obs, info["cell"], info["label"]
(52, (5, 2), 'safe')
>>> print(env.unwrapped.text_map())          # A: the agent; see MinecraftEnv.text_map
C..I.L.D..
.....L....
..W.SL..LL
..........
I....C...B
..A....W..
.B...B....
...W...S..
..........
S...I.....

The product with the paper's last safeguard (shaping +0.1 / -0.1, end on a violation):

>>> from importlib import resources
>>> import safeguards
>>> from safeguards.gym import SafeguardWrapper
>>> sg = safeguards.compile(resources.files("safeguards.specs") / "minecraft" / "safeguard3.sg")
>>> product = SafeguardWrapper(env, sg, MinecraftLabeler(), reward="paper",
...                            terminate_on_violation=True)
>>> obs, info = product.reset(seed=0)
>>> obs
{'obs': 52, 'safeguard': 0}
"""

from __future__ import annotations

import os
import struct
import zlib
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import WorldObj
from minigrid.minigrid_env import MiniGridEnv
from minigrid.utils.rendering import (
    fill_coords,
    point_in_circle,
    point_in_line,
    point_in_rect,
    point_in_triangle,
)

from safeguards.labels import FunctionLabeler, Labeler, LabelError

__all__ = [
    "MinecraftEnv", "MinecraftActions", "MinecraftLabeler", "MINECRAFT_PROPS", "LAYOUTS",
    "MINECRAFT_OBJECT_TO_IDX", "MinecraftObject", "Wood", "Iron", "WorkBench", "SmithTable",
    "Creeper", "BasaltLava", "Diamond", "register_minecraft", "record_trajectory",
    "save_trajectory",
]

#: Grid side (the paper's 10 x 10 grid; MiniGrid's grid is 12 x 12 with the outer wall).
SIZE = 10
#: The paper's start cell ``(row, col)``.
START = (5, 2)

#: The propositions of the Minecraft gridworld: every label except ``safe``.
MINECRAFT_PROPS = frozenset({"wood", "iron", "work_bench", "smith_table", "creeper",
                             "basalt_lava", "diamond"})

#: Object-type indices of the image encoding (MiniGrid's own types use 0-10).
MINECRAFT_OBJECT_TO_IDX = {"wood": 11, "iron": 12, "work_bench": 13, "smith_table": 14,
                           "creeper": 15, "basalt_lava": 16, "diamond": 17}


class MinecraftActions(IntEnum):
    """The paper's actions, in its order (``SlipperyGrid.action_space``)."""

    right = 0
    up = 1
    left = 2
    down = 3
    stay = 4


# (d_row, d_col) per action, and the MiniGrid direction the agent then faces (None: unchanged).
_MOVES = ((0, 1), (-1, 0), (0, -1), (1, 0), (0, 0))
_FACING = (0, 3, 2, 1, None)


# -- label layouts: transcribed from the authors' code, same assignment order ------------------
# Later assignments overwrite earlier ones, exactly as in the code (e.g. in layout 2 the wood at
# (7, 3 + i) overwrites the lava column when i = 0).  ``i`` is the jitter offset (-1, 0, +1).

def _empty() -> np.ndarray:
    labels = np.empty([SIZE, SIZE], dtype=object)
    labels[:, :] = "safe"
    return labels


def _place_objects(labels: np.ndarray, i: int, first: str = "creeper",
                   third: str = "iron") -> np.ndarray:
    """The objects, in the authors' assignment order (later labels overwrite earlier ones, lava
    included); layout 2 swaps the creeper and iron positions (``first``/``third``)."""
    labels[0][0] = labels[4 + i][5] = first
    labels[2][2 + i] = labels[7][3 + i] = labels[5 + i][7] = "wood"
    labels[0][3 + i] = labels[4 + i][0] = labels[9][4 + i] = third
    labels[6 + i][1] = labels[6][5 + i] = labels[4 + i][9] = "work_bench"
    labels[2 + i][4] = labels[9][0] = labels[7][7 + i] = "smith_table"
    labels[0][7] = "diamond"
    return labels


def _layout_1(i: int) -> np.ndarray:
    """Layout 1 (the active one in the authors' code)."""
    labels = _empty()
    labels[0:3, 5] = "basalt_lava"
    labels[2, 8:10] = "basalt_lava"
    return _place_objects(labels, i)


def _layout_2(i: int) -> np.ndarray:
    """Layout 2 (a commented-out block of the authors' code): lava walls in column 3 (rows 0-2
    and 6-9); creepers and iron swap places with respect to layout 1."""
    labels = _empty()
    labels[0:3, 3] = "basalt_lava"
    labels[6:, 3] = "basalt_lava"
    return _place_objects(labels, i, first="iron", third="creeper")


def _layout_3(i: int) -> np.ndarray:
    """Layout 3 (a commented-out block of the authors' code): lava walls in column 2 (rows 0-3)
    and column 6 (rows 0-5); objects as in layout 1."""
    labels = _empty()
    labels[0:4, 2] = "basalt_lava"
    labels[0:6, 6] = "basalt_lava"
    return _place_objects(labels, i)


#: ``layout -> (jitter offset i -> 10 x 10 array of label strings)``.
LAYOUTS: dict[int, Callable[[int], np.ndarray]] = {1: _layout_1, 2: _layout_2, 3: _layout_3}


# -- world objects ------------------------------------------------------------------------------

class MinecraftObject(WorldObj):
    """A Minecraft cell content.  The agent walks over it (``can_overlap``); its image encoding
    is ``(MINECRAFT_OBJECT_TO_IDX[kind], COLOR_TO_IDX[color], 0)``."""

    kind = "safe"
    minigrid_color = "grey"   # the MiniGrid colour name used in the image encoding

    def __init__(self) -> None:
        # WorldObj only accepts MiniGrid's own type names; register as a floor, then rename.
        super().__init__("floor", self.minigrid_color)
        self.type = self.kind

    def can_overlap(self) -> bool:
        return True

    def encode(self) -> tuple[int, int, int]:
        return (MINECRAFT_OBJECT_TO_IDX[self.kind], COLOR_TO_IDX[self.color], 0)

    def render(self, img: np.ndarray) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Wood(MinecraftObject):
    """A log: brown bark with light rings."""

    kind, minigrid_color = "wood", "yellow"

    def render(self, img: np.ndarray) -> None:
        fill_coords(img, point_in_rect(0.15, 0.85, 0.15, 0.85), (102, 51, 0))
        fill_coords(img, point_in_circle(0.5, 0.5, 0.26), (204, 153, 102))
        fill_coords(img, point_in_circle(0.5, 0.5, 0.16), (153, 102, 51))
        fill_coords(img, point_in_circle(0.5, 0.5, 0.07), (204, 153, 102))


class Iron(MinecraftObject):
    """An iron ingot: silver bar with a highlight."""

    kind, minigrid_color = "iron", "grey"

    def render(self, img: np.ndarray) -> None:
        fill_coords(img, point_in_rect(0.15, 0.85, 0.35, 0.65), (204, 204, 204))
        fill_coords(img, point_in_rect(0.22, 0.78, 0.40, 0.47), (255, 255, 255))
        fill_coords(img, point_in_rect(0.15, 0.85, 0.60, 0.65), (153, 153, 153))


class WorkBench(MinecraftObject):
    """A crafting table: tan square with a 3 x 3 grid."""

    kind, minigrid_color = "work_bench", "yellow"

    def render(self, img: np.ndarray) -> None:
        fill_coords(img, point_in_rect(0.12, 0.88, 0.12, 0.88), (204, 153, 51))
        for t in (0.36, 0.62):
            fill_coords(img, point_in_rect(t, t + 0.04, 0.12, 0.88), (102, 51, 0))
            fill_coords(img, point_in_rect(0.12, 0.88, t, t + 0.04), (102, 51, 0))


class SmithTable(MinecraftObject):
    """A smithing table / anvil: blue-grey anvil silhouette."""

    kind, minigrid_color = "smith_table", "blue"

    def render(self, img: np.ndarray) -> None:
        c = (51, 102, 204)
        fill_coords(img, point_in_rect(0.12, 0.88, 0.22, 0.42), c)   # face
        fill_coords(img, point_in_rect(0.38, 0.62, 0.42, 0.68), c)   # waist
        fill_coords(img, point_in_rect(0.22, 0.78, 0.68, 0.82), c)   # foot


class Creeper(MinecraftObject):
    """A creeper: green face with black eyes and mouth."""

    kind, minigrid_color = "creeper", "green"

    def render(self, img: np.ndarray) -> None:
        fill_coords(img, point_in_rect(0.1, 0.9, 0.1, 0.9), (0, 153, 0))
        k = (0, 0, 0)
        fill_coords(img, point_in_rect(0.22, 0.40, 0.24, 0.42), k)   # eyes
        fill_coords(img, point_in_rect(0.60, 0.78, 0.24, 0.42), k)
        fill_coords(img, point_in_rect(0.42, 0.58, 0.42, 0.62), k)   # nose / mouth
        fill_coords(img, point_in_rect(0.32, 0.68, 0.56, 0.76), k)
        fill_coords(img, point_in_rect(0.42, 0.58, 0.76, 0.84), (0, 153, 0))


class BasaltLava(MinecraftObject):
    """Basalt lava: MiniGrid-style lava, orange with dark basalt waves."""

    kind, minigrid_color = "basalt_lava", "red"

    def render(self, img: np.ndarray) -> None:
        fill_coords(img, point_in_rect(0.031, 1, 0.031, 1), (255, 102, 0))
        for i in range(3):
            ylo, yhi = 0.3 + 0.2 * i, 0.4 + 0.2 * i
            for x0, y0, x1, y1 in ((0.1, ylo, 0.3, yhi), (0.3, yhi, 0.5, ylo),
                                   (0.5, ylo, 0.7, yhi), (0.7, yhi, 0.9, ylo)):
                fill_coords(img, point_in_line(x0, y0, x1, y1, r=0.03), (51, 51, 51))


class Diamond(MinecraftObject):
    """A diamond: cyan rhombus."""

    kind, minigrid_color = "diamond", "blue"

    def render(self, img: np.ndarray) -> None:
        c = (0, 255, 255)
        fill_coords(img, point_in_triangle((0.5, 0.12), (0.85, 0.5), (0.15, 0.5)), c)
        fill_coords(img, point_in_triangle((0.15, 0.5), (0.85, 0.5), (0.5, 0.88)), c)
        fill_coords(img, point_in_triangle((0.5, 0.2), (0.62, 0.5), (0.38, 0.5)), (204, 255, 255))


_OBJECTS: dict[str, type[MinecraftObject]] = {
    cls.kind: cls for cls in (Wood, Iron, WorkBench, SmithTable, Creeper, BasaltLava, Diamond)}
_TEXT = {"safe": ".", "wood": "W", "iron": "I", "work_bench": "B", "smith_table": "S",
         "creeper": "C", "basalt_lava": "L", "diamond": "D"}


# -- the environment ----------------------------------------------------------------------------

class MinecraftEnv(MiniGridEnv):
    """
    ## Description

    The Minecraft-inspired gridworld of *Progressive Safeguards* (Omi, Hasanbeig et al., 2024),
    ported from the authors' code (``grockious/safeguardedRL``: ``src/environments/minecraft.py``
    and ``SlipperyGrid.py``).  A 10 x 10 grid of cells, each carrying exactly one label:
    ``wood``, ``iron``, ``work_bench``, ``smith_table``, ``creeper``, ``basalt_lava``,
    ``diamond`` or ``safe`` (empty).  There is no task reward: the task is whatever safeguard
    the agent is trained under (``specs/minecraft/safeguard*.sg``; wrap the environment with
    :class:`safeguards.gym.SafeguardWrapper` and :class:`MinecraftLabeler`).  Nothing blocks the
    agent: it walks over every object, hazards included (the safeguard decides what a hazard
    costs).

    Coordinates: the paper's cell ``(row, col)``, rows 0-9 top to bottom and columns 0-9 left
    to right, is MiniGrid's ``(x, y) = (col + 1, row + 1)``: MiniGrid's grid is 12 x 12, the
    10 x 10 playable interior surrounded by a wall that the agent never reaches.  ``up``
    decreases the row (MiniGrid's ``-y``).  The agent starts at ``(row 5, col 2)`` facing right.

    Dynamics (as ``SlipperyGrid.step``): with probability ``slip`` (0.05) the chosen action is
    replaced by one drawn uniformly from all five actions (it may draw the chosen one: the
    executed action differs with probability ``slip * 4/5``).  A move off the grid is clamped:
    the agent stays in its cell.  After a move (also a clamped one) the agent faces the
    direction of the executed action; ``stay`` keeps its direction (the direction only matters
    for ``obs_mode="image"`` and rendering).

    Labels (the authors' code, ``labels[row][col]``; assignments in this order, a later one
    overwrites an earlier one; ``i`` is the jitter offset):

    | label         | layout 1 (and 3, except lava) | layout 2                    |
    |---------------|-------------------------------|-----------------------------|
    | `basalt_lava` | rows 0-2 of col 5; (2,8), (2,9) | rows 0-2 and 6-9 of col 3 |
    | `creeper`     | (0,0), (4+i,5)                | (0,3+i), (4+i,0), (9,4+i)   |
    | `wood`        | (2,2+i), (7,3+i), (5+i,7)     | as layout 1                 |
    | `iron`        | (0,3+i), (4+i,0), (9,4+i)     | (0,0), (4+i,5)              |
    | `work_bench`  | (6+i,1), (6,5+i), (4+i,9)     | as layout 1                 |
    | `smith_table` | (2+i,4), (9,0), (7,7+i)       | as layout 1                 |
    | `diamond`     | (0,7)                         | as layout 1                 |

    Layout 3: the objects of layout 1; `basalt_lava` at rows 0-3 of col 2 and rows 0-5 of col 6.

    Order of assignment: lava, then creeper, wood, iron, work bench, smith table, diamond; in
    layout 2 the iron line comes before wood and the creeper line after it (as in the code).
    Objects never overwrite each other, but some overwrite lava: in layout 2 the wood at (7,3)
    and the creeper at (0,3) when ``i = 0``, the creeper at (9,3) when ``i = -1``, the wood at
    (2,3) when ``i = +1``; in layout 3 the wood at (2,2) when ``i = 0``, the iron at (0,2) when
    ``i = -1``.  Layouts 2 and 3 are the commented-out blocks of the authors' ``reset``,
    transcribed verbatim (layout 1 is the active one there); the start cell is ``safe`` in
    every layout and for every offset.

    Label jitter (the code's "labels stochasticity"): at every reset one offset is drawn,
    ``i = +1`` with probability ``jitter`` (0.05), ``i = -1`` with probability ``jitter``,
    else ``i = 0``, and shifts every ``i``-term above at once.

    ## Mission Space

    "stay safe: the safeguard defines the task"

    ## Action Space

    | Num | Name  | Action                            |
    |-----|-------|-----------------------------------|
    | 0   | right | Move one cell right (col + 1)     |
    | 1   | up    | Move one cell up (row - 1)        |
    | 2   | left  | Move one cell left (col - 1)      |
    | 3   | down  | Move one cell down (row + 1)      |
    | 4   | stay  | Stay in the cell                  |

    ## Observation Encoding

    - ``obs_mode="cell"`` (default): ``Discrete(100)``, the cell index ``row * 10 + col`` (the
      paper's tabular state; labels are not part of it, as in the paper).
    - ``obs_mode="image"``: MiniGrid's usual dict ``{"image", "direction", "mission"}``, the
      image being the agent's partial ``agent_view_size`` x ``agent_view_size`` view.  Each
      tile is encoded as ``(OBJECT_IDX, COLOR_IDX, STATE)``; the Minecraft objects use
      ``OBJECT_IDX`` 11-17 (``MINECRAFT_OBJECT_TO_IDX``: wood 11, iron 12, work_bench 13,
      smith_table 14, creeper 15, basalt_lava 16, diamond 17), MiniGrid's own types 0-10.

    ``info`` always has ``cell`` (``(row, col)``), ``label`` (the cell's label string) and
    ``jitter`` (this episode's offset ``i``); after a step also ``slipped`` (the slip fired)
    and ``executed_action`` (the action actually executed).

    ## Rewards

    Always 0: the task is defined by the safeguard, as in the paper (its shaping, +0.1 per
    non-violating step and -0.1 on a violation, is ``SafeguardWrapper(..., reward="paper")``).

    ## Termination

    The environment never terminates by itself (the paper's episodes end on a safeguard
    violation: ``SafeguardWrapper(..., terminate_on_violation=True)``).  It truncates after
    ``max_steps`` (1000) steps.

    ## Registered Configurations

    - `safeguards/Minecraft-v0` (``layout=1, slip=0.05, jitter=0.05, obs_mode="cell"``; pass
      ``layout=2`` or ``3``, ``slip``, ``jitter``, ``obs_mode`` to ``gym.make``)
    - `safeguards/Minecraft-L1-v0`
    - `safeguards/Minecraft-L2-v0`
    - `safeguards/Minecraft-L3-v0`

    ## Atomic propositions

    :class:`MinecraftLabeler` (reads ``info["label"]``): ``wood``, ``iron``, ``work_bench``,
    ``smith_table``, ``creeper``, ``basalt_lava``, ``diamond`` — the label of the cell the agent
    reached; at most one is true (``safe`` makes none true).  Hazards of the shipped safeguards:
    ``creeper`` and ``basalt_lava``.

    Args:
        layout: 1, 2 or 3.
        slip: probability that the chosen action is replaced by a uniformly random one.
        jitter: probability of each of the offsets ``+1`` and ``-1`` at reset (at most 0.5).
        obs_mode: ``"cell"`` or ``"image"``.
        max_steps: truncation horizon.
        agent_view_size: MiniGrid's partial view size (``obs_mode="image"``).
        highlight: shade the agent's view when rendering; default: only in image mode.
        **kwargs: passed to :class:`minigrid.minigrid_env.MiniGridEnv` (``render_mode``,
            ``tile_size``, ``screen_size``, ``agent_pov``).
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(self, layout: int = 1, slip: float = 0.05, jitter: float = 0.05,
                 obs_mode: str = "cell", max_steps: int = 1000, agent_view_size: int = 7,
                 highlight: bool | None = None, **kwargs: Any) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, not {layout!r}")
        if not 0.0 <= float(slip) <= 1.0:
            raise ValueError(f"slip must be a probability in [0, 1], not {slip!r}")
        if not 0.0 <= float(jitter) <= 0.5:
            raise ValueError(f"jitter must be in [0, 0.5] (it is the probability of each of "
                             f"+1 and -1), not {jitter!r}")
        if obs_mode not in ("cell", "image"):
            raise ValueError(f"obs_mode must be 'cell' or 'image', not {obs_mode!r}")
        if not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, not {max_steps!r}")
        self.layout = int(layout)
        self.slip = float(slip)
        self.jitter = float(jitter)
        self.obs_mode = obs_mode
        super().__init__(mission_space=MissionSpace(mission_func=self._gen_mission),
                         width=SIZE + 2, height=SIZE + 2, max_steps=int(max_steps),
                         agent_view_size=agent_view_size,
                         highlight=(obs_mode == "image") if highlight is None else highlight,
                         **kwargs)
        self.actions = MinecraftActions  # type: ignore[assignment]
        self.action_space = spaces.Discrete(len(MinecraftActions))
        if obs_mode == "cell":
            self.observation_space = spaces.Discrete(SIZE * SIZE)
        self.reward_range = (0, 0)
        self.jitter_offset = 0
        self._grids: dict[int, tuple[np.ndarray, list[list[str]], Grid]] = {}
        self._labels = _layout_1(0)
        self._label_rows: list[list[str]] = self._labels.tolist()

    @staticmethod
    def _gen_mission() -> str:
        return "stay safe: the safeguard defines the task"

    # -- grid ----------------------------------------------------------------------------------
    def _gen_grid(self, width: int, height: int) -> None:
        # Drawn at every reset (also when jitter = 0), as the code's random.random().
        u = self._uniform()
        forced = self._reset_options.get("jitter")
        if forced is not None:
            if forced not in (-1, 0, 1):
                raise ValueError(f"options['jitter'] must be -1, 0 or 1, not {forced!r}")
            self.jitter_offset = int(forced)
        else:
            self.jitter_offset = 1 if u < self.jitter else -1 if u < 2 * self.jitter else 0
        cached = self._grids.get(self.jitter_offset)
        if cached is None:   # three possible grids per layout: build each once (never mutated)
            labels = LAYOUTS[self.layout](self.jitter_offset)
            rows = labels.tolist()
            grid = Grid(width, height)
            grid.wall_rect(0, 0, width, height)
            for row in range(SIZE):
                for col in range(SIZE):
                    if rows[row][col] != "safe":
                        obj = _OBJECTS[rows[row][col]]()
                        grid.set(col + 1, row + 1, obj)
                        obj.init_pos = obj.cur_pos = (col + 1, row + 1)
            cached = self._grids[self.jitter_offset] = (labels, rows, grid)
        self._labels, self._label_rows, self.grid = cached
        row, col = self._reset_options.get("start", START)
        if not (0 <= row < SIZE and 0 <= col < SIZE):
            raise ValueError(f"options['start'] must be a cell (row, col) of the 10 x 10 grid, "
                             f"not {(row, col)!r}")
        self.agent_pos = (int(col) + 1, int(row) + 1)
        self.agent_dir = 0
        self.mission = self._gen_mission()

    # -- queries ---------------------------------------------------------------------------------
    @property
    def cell(self) -> tuple[int, int]:
        """The agent's cell ``(row, col)``."""
        x, y = self.agent_pos
        return int(y) - 1, int(x) - 1

    @property
    def label(self) -> str:
        """The label of the agent's cell."""
        row, col = self.cell
        return self._label_rows[row][col]

    @property
    def labels(self) -> np.ndarray:
        """This episode's labels: a 10 x 10 array of strings, ``labels[row, col]`` (a copy)."""
        return self._labels.copy()

    def label_at(self, row: int, col: int) -> str:
        """The label of cell ``(row, col)`` in this episode."""
        return self._label_rows[row][col]

    @staticmethod
    def cell_index(row: int, col: int) -> int:
        """The ``obs_mode="cell"`` observation of cell ``(row, col)``: ``row * 10 + col``."""
        return row * SIZE + col

    @staticmethod
    def index_cell(index: int) -> tuple[int, int]:
        """The cell ``(row, col)`` of an ``obs_mode="cell"`` observation."""
        return divmod(int(index), SIZE)

    def text_map(self, agent: bool = True) -> str:
        """The labels as text, one character per cell (``.`` safe, ``W`` wood, ``I`` iron,
        ``B`` work bench, ``S`` smith table, ``C`` creeper, ``L`` basalt lava, ``D`` diamond,
        ``A`` the agent)."""
        here = self.cell if agent and self.agent_pos is not None else None
        return "\n".join("".join("A" if (r, c) == here else _TEXT[self._label_rows[r][c]]
                                 for c in range(SIZE)) for r in range(SIZE))

    def pprint_grid(self) -> str:
        if self.agent_pos is None:
            raise ValueError("The environment hasn't been `reset` therefore the `agent_pos` is "
                             "unknown.")
        return self.text_map()

    # -- gymnasium API ---------------------------------------------------------------------------
    def _observation(self) -> Any:
        if self.obs_mode == "cell":
            x, y = self.agent_pos
            return (int(y) - 1) * SIZE + int(x) - 1
        return self.gen_obs()

    @property
    def labeler(self) -> "MinecraftLabeler":
        """The labeler the shipped Minecraft safeguards read (a learner's default)."""
        return MinecraftLabeler()

    def fast_stepper(self, env: gym.Env, labeler: Labeler, max_steps: int | None) -> Any:
        """The tabular learner's exact fast path for ``env`` (this environment, wrapped), or
        None where it does not apply (:mod:`safeguards.envs.gridworld.stepper`)."""
        from safeguards.envs.gridworld.stepper import MinecraftStepper

        if not MinecraftStepper.applies(env, labeler):
            return None
        return MinecraftStepper(env, labeler, max_steps)

    def _info(self) -> dict[str, Any]:
        row, col = self.cell
        return {"cell": (row, col), "label": self._label_rows[row][col],
                "jitter": self.jitter_offset}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start an episode.  ``options``: ``{"jitter": -1 | 0 | 1}`` forces the offset (the
        random draw still happens), ``{"start": (row, col)}`` another start cell."""
        gym.Env.reset(self, seed=seed)
        self._reset_options = dict(options or {})
        self._buffer = []
        self.agent_pos = (-1, -1)
        self.agent_dir = -1
        self._gen_grid(self.width, self.height)
        self.carrying = None
        self.step_count = 0
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    _reset_options: dict[str, Any] = {}
    _buffer: list[float] = []

    def _uniform(self) -> float:
        """A uniform draw in [0, 1) from ``np_random``, taken in blocks of 256 for speed (the
        block is dropped at every reset, so an episode depends only on ``np_random`` then)."""
        if not self._buffer:
            self._buffer = self.np_random.random(256).tolist()
            self._buffer.reverse()
        return self._buffer.pop()

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        try:
            chosen = int(action)
        except (TypeError, ValueError):
            raise ValueError(f"action must be an integer in 0..4, not {action!r}") from None
        if not 0 <= chosen < 5 or chosen != action:
            raise ValueError(f"action must be an integer in 0..4, not {action!r}")
        self.step_count += 1
        executed = chosen
        slipped = self._uniform() < self.slip   # drawn every step, as the code's random.random()
        if slipped:
            executed = min(int(self._uniform() * 5), 4)   # random.choice of the 5 actions
        d_row, d_col = _MOVES[executed]
        x, y = self.agent_pos
        row = min(max(int(y) - 1 + d_row, 0), SIZE - 1)
        col = min(max(int(x) - 1 + d_col, 0), SIZE - 1)
        self.agent_pos = (col + 1, row + 1)
        facing = _FACING[executed]
        if facing is not None:
            self.agent_dir = facing
        truncated = self.step_count >= self.max_steps
        if self.render_mode == "human":
            self.render()
        info = {"cell": (row, col), "label": self._label_rows[row][col],
                "jitter": self.jitter_offset, "slipped": slipped, "executed_action": executed}
        obs = row * SIZE + col if self.obs_mode == "cell" else self.gen_obs()
        return obs, 0.0, False, truncated, info


# -- labeler ------------------------------------------------------------------------------------

class MinecraftLabeler(FunctionLabeler):
    """The Minecraft propositions, read from ``info["label"]`` (the label of the cell the
    agent reached).  Needs only ``info``, so it works unchanged with vector environments.

    >>> labeler = MinecraftLabeler()
    >>> labeler(None, {"label": "creeper"}, None), labeler(None, {"label": "safe"}, None)
    ({'creeper'}, set())
    """

    docs = {
        "wood": "the agent stands on a wood cell",
        "iron": "the agent stands on an iron cell",
        "work_bench": "the agent stands on a work bench",
        "smith_table": "the agent stands on a smithing table",
        "creeper": "a creeper occupies the agent's cell (hazard)",
        "basalt_lava": "the agent stands on basalt lava (hazard)",
        "diamond": "the agent stands on a diamond cell",
    }

    def __init__(self) -> None:
        super().__init__(_cell_label, self.docs, name="MinecraftLabeler")

    def __reduce__(self) -> Any:
        return (MinecraftLabeler, ())


def _cell_label(obs: Any, info: Mapping[str, Any], action: Any) -> set[str]:
    try:
        label = info["label"]
    except (KeyError, TypeError):
        raise LabelError("MinecraftLabeler reads info['label'] (set by MinecraftEnv), but "
                         f"info has no 'label' (keys: {sorted(info or {})})") from None
    if label in MinecraftLabeler.docs:
        return {label}
    if label == "safe":
        return set()
    raise LabelError(f"MinecraftLabeler: unknown cell label {label!r} (expected one of "
                     f"{', '.join(sorted(MinecraftLabeler.docs))} or 'safe')")


# -- registration -------------------------------------------------------------------------------

_ENTRY_POINT = "safeguards.envs.gridworld.minecraft:MinecraftEnv"
_DEFAULTS = {"layout": 1, "slip": 0.05, "jitter": 0.05, "obs_mode": "cell"}


def register_minecraft() -> None:
    """Register ``safeguards/Minecraft-v0`` and ``safeguards/Minecraft-L{1,2,3}-v0`` with
    Gymnasium (idempotent)."""
    configs = {"safeguards/Minecraft-v0": dict(_DEFAULTS)}
    for layout in LAYOUTS:
        configs[f"safeguards/Minecraft-L{layout}-v0"] = {**_DEFAULTS, "layout": layout}
    for env_id, kwargs in configs.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=_ENTRY_POINT, kwargs=kwargs)


register_minecraft()


# -- looking at trajectories --------------------------------------------------------------------

def record_trajectory(env: gym.Env, actions: Iterable[int], *, seed: int | None = None,
                      options: dict[str, Any] | None = None, tile_size: int = 32
                      ) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Reset ``env`` (a :class:`MinecraftEnv`, possibly wrapped — e.g. a ``SafeguardWrapper``)
    and play ``actions`` until they run out or the episode ends.

    Returns the frames (``H x W x 3`` uint8, the reset state first) and the infos (reset's
    first).  Frames come from MiniGrid's renderer whatever the ``render_mode``.
    """
    base = env.unwrapped
    if not isinstance(base, MiniGridEnv):
        raise TypeError(f"record_trajectory needs a MiniGrid environment, got "
                        f"{type(base).__name__}")

    def frame() -> np.ndarray:
        return np.asarray(base.get_frame(base.highlight, tile_size, base.agent_pov), np.uint8)

    _, info = env.reset(seed=seed, options=options)
    frames, infos = [frame()], [info]
    for action in actions:
        _, _, terminated, truncated, info = env.step(action)
        frames.append(frame())
        infos.append(info)
        if terminated or truncated:
            break
    return frames, infos


def save_trajectory(env: gym.Env, actions: Iterable[int], path: str | os.PathLike[str], *,
                    seed: int | None = None, options: dict[str, Any] | None = None,
                    fps: float = 4, tile_size: int = 16, columns: int = 8) -> Path:
    """Play ``actions`` in ``env`` (see :func:`record_trajectory`) and save what it looked like.

    * ``*.gif``: an animated, looping GIF, written with Pillow when installed, else with a
      small built-in encoder (216-colour palette, uncompressed LZW: larger files; keep
      ``tile_size`` small).
    * ``*.png``: a contact sheet, the frames in reading order, ``columns`` per row (built-in
      writer, no dependency).

    Returns the path written.
    """
    path = Path(path)
    frames, _ = record_trajectory(env, actions, seed=seed, options=options, tile_size=tile_size)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        _write_gif(path, frames, fps)
    elif suffix == ".png":
        _write_png(path, _contact_sheet(frames, columns))
    else:
        raise ValueError(f"save_trajectory writes .gif or .png files, not {path.name!r}")
    return path


def _contact_sheet(frames: list[np.ndarray], columns: int, gap: int = 4) -> np.ndarray:
    h, w, _ = frames[0].shape
    columns = max(1, min(columns, len(frames)))
    rows = -(-len(frames) // columns)
    sheet = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 255, np.uint8)
    for k, img in enumerate(frames):
        r, c = divmod(k, columns)
        sheet[gap + r * (h + gap):gap + r * (h + gap) + h,
              gap + c * (w + gap):gap + c * (w + gap) + w] = img
    return sheet


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """An 8-bit RGB PNG (no dependency)."""
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8),
                          np.ascontiguousarray(rgb, np.uint8).reshape(h, w * 3)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b""))
    path.write_bytes(png)


def _write_gif(path: Path, frames: list[np.ndarray], fps: float) -> None:
    # Pillow directly rather than imageio: imageio writes GIFs through Pillow anyway, and the unit
    # of its `duration` changed between versions.
    try:
        from PIL import Image
    except ImportError:
        pass
    else:
        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:],
                       duration=int(round(1000 / fps)), loop=0)
        return
    path.write_bytes(_gif_bytes(frames, fps))


def _quantize(rgb: np.ndarray) -> np.ndarray:
    """Indices into the 6 x 6 x 6 colour cube (levels 0, 51, ..., 255)."""
    q = np.rint(rgb.astype(np.float32) / 51.0).astype(np.uint8)
    return q[..., 0] * 36 + q[..., 1] * 6 + q[..., 2]


def _lzw_uncompressed(indices: np.ndarray) -> bytes:
    """GIF LZW data that only uses literal codes (9 bits; a clear code every 253 literals so
    the code width never grows), split into sub-blocks."""
    pixels = indices.ravel().astype(np.uint16)
    group = 253
    n_groups = -(-pixels.size // group)
    padded = np.full(n_groups * group, 0xFFFF, np.uint16)
    padded[:pixels.size] = pixels
    codes = np.concatenate([np.full((n_groups, 1), 256, np.uint16),
                            padded.reshape(n_groups, group)], axis=1).ravel()
    codes = np.append(codes[codes != 0xFFFF], np.uint16(257))
    bits = ((codes[:, None] >> np.arange(9, dtype=np.uint16)) & 1).astype(np.uint8).ravel()
    data = np.packbits(bits, bitorder="little").tobytes()
    blocks = b"".join(bytes([len(data[k:k + 255])]) + data[k:k + 255]
                      for k in range(0, len(data), 255))
    return b"\x08" + blocks + b"\x00"


def _gif_bytes(frames: list[np.ndarray], fps: float) -> bytes:
    """An animated, looping GIF89a of ``frames`` (no dependency)."""
    h, w, _ = frames[0].shape
    levels = np.arange(6, dtype=np.uint8) * 51
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    palette = np.zeros((256, 3), np.uint8)
    palette[:216] = cube
    delay = max(1, int(round(100 / fps)))
    out = [b"GIF89a", struct.pack("<HHBBB", w, h, 0xF7, 0, 0), palette.tobytes(),
           b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"]
    for img in frames:
        out.append(b"\x21\xf9\x04" + struct.pack("<BHBB", 0x04, delay, 0, 0))
        out.append(b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0))
        out.append(_lzw_uncompressed(_quantize(img)))
    out.append(b"\x3b")
    return b"".join(out)
