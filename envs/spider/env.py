"""The drunk spider (SQRL, Srinivasan et al. 2020, §7; the authors' ``envs/point_mass.py``,
``DrunkSpiderShort``), as a Gymnasium environment.

An 8 x 7 map (rows x columns) with lava in columns 2 and 4 of rows 2-5, which leaves a
one-cell bridge in column 3.  The spider starts at the centre of cell (0, 3); the goal is the
centre of cell (7, 3) across the bridge (or, with ``random_goal=True``, a point sampled at every
reset in a safe cell at least 4 away in L1 distance, the authors' goal-sampling rule).

A step: the action in [-1, 1]^2 is scaled by ``action_scale``, uniform noise in
``[-action_noise / 2, action_noise / 2]`` is added per axis, the result is clipped to
``[-action_scale, action_scale]``, and the point moves in 10 sub-steps of a tenth of it, one
axis after the other; a sub-step into lava or off the map is a fall (the position is clipped to
the map) and the motion stops there.

Reward, as the authors' ``GoalConditionedPointWrapper`` (``task_rew_type = "l2"``) and
``TimeLimitBonus`` with their drunk-spider settings (``configs/sqrl_point_mass.gin``):
``-||s - g|| / sqrt(8^2 + 7^2)`` per step, 30 on reaching the goal (within 1.0), plus
``early_term_bonus`` per remaining step when the goal ends the episode early, minus
``fall_penalty`` per remaining step (+1) on a fall (the gin file: 0) and minus
``time_limit_penalty`` when the ``max_episode_steps`` limit (30) ends the episode.

A fall or the goal ends the episode (``terminated``); the time limit truncates it.  ``info``
carries what the labeler (:class:`~safeguards.envs.spider.labels.SpiderLabeler`) reads:
``lava``, ``off_map``, ``at_goal``, ``on_bridge``, and ``position``.

>>> env = DrunkSpiderEnv(action_noise=0.0)
>>> obs, info = env.reset(seed=0)
>>> obs, reward, terminated, truncated, info = env.step([1.0, 0.0])   # one row down
>>> obs.tolist(), round(reward, 3), terminated
([1.5, 3.5, 7.5, 3.5], -0.564, False)
>>> _ = env.step([0.0, -1.0]); obs, reward, terminated, truncated, info = env.step([1.0, 0.0])
>>> info["lava"], terminated                                        # into the left pit
(True, True)
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["DrunkSpiderEnv", "WALLS", "START", "GOAL"]

#: 1 = lava; rows x columns (the authors' ``DrunkSpiderShort``).
WALLS = np.array([[0, 0, 0, 0, 0, 0, 0],
                  [0, 0, 0, 0, 0, 0, 0],
                  [0, 0, 1, 0, 1, 0, 0],
                  [0, 0, 1, 0, 1, 0, 0],
                  [0, 0, 1, 0, 1, 0, 0],
                  [0, 0, 1, 0, 1, 0, 0],
                  [0, 0, 0, 0, 0, 0, 0],
                  [0, 0, 0, 0, 0, 0, 0]], dtype=np.int8)
#: Start and goal cells (row, column); the spider starts at the cell's centre.
START = (0, 3)
GOAL = (7, 3)
_SUBSTEPS = 10
_BRIDGE_COLUMN = 3


class DrunkSpiderEnv(gym.Env[np.ndarray, np.ndarray]):
    """The drunk spider; observation ``(row, column, goal row, goal column)``.

    Args:
        action_noise: width of the uniform noise added to each action axis (paper: 0.1; its
            risk-knob figure: 0.2).
        action_scale: the largest move per step along an axis.
        goal: the goal cell (row, column).
        random_goal: sample a goal at every reset instead.
        max_episode_steps: the time limit (paper: 30).
        early_term_bonus: reward per step left when the goal is reached early.
        fall_penalty: penalty per step left (+1) on a fall.
        time_limit_penalty: penalty when the time limit ends the episode.
        goal_distance: the goal counts as reached within this distance.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, action_noise: float = 0.1, action_scale: float = 1.0,
                 goal: tuple[int, int] = GOAL, random_goal: bool = False,
                 max_episode_steps: int = 30,
                 early_term_bonus: float = 1.0, fall_penalty: float = 0.0,
                 time_limit_penalty: float = 30.0, goal_distance: float = 1.0,
                 render_mode: str | None = None) -> None:
        if action_noise < 0 or action_scale <= 0 or max_episode_steps < 1 or goal_distance <= 0:
            raise ValueError("action_noise must be >= 0, action_scale and goal_distance > 0, "
                             "max_episode_steps >= 1")
        self.height, self.width = WALLS.shape
        if not (isinstance(goal, (tuple, list)) and len(goal) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in goal)
                and self._safe_cell(*goal)):
            raise ValueError(f"goal must be a safe cell (row, column) of the "
                             f"{self.height}x{self.width} map, not {goal!r}")
        self.action_noise = action_noise
        self.action_scale = action_scale
        self.random_goal = random_goal
        self.max_episode_steps = max_episode_steps
        self.early_term_bonus = early_term_bonus
        self.fall_penalty = fall_penalty
        self.time_limit_penalty = time_limit_penalty
        self.goal_distance = goal_distance
        self.render_mode = render_mode
        high = np.array([self.height, self.width] * 2, dtype=np.float32)
        self.observation_space = spaces.Box(np.zeros(4, np.float32), high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.position = np.array(START, dtype=np.float64) + 0.5
        self.goal_cell = tuple(goal)
        self.goal = np.array(goal, dtype=np.float64) + 0.5
        self.steps = 0
        self.trajectory: list[tuple[float, float]] = []

    @property
    def labeler(self) -> Any:
        from safeguards.envs.spider.labels import SpiderLabeler

        return SpiderLabeler()

    # -- geometry ------------------------------------------------------------------------------
    def _safe_cell(self, row: int, col: int) -> bool:
        return 0 <= row < self.height and 0 <= col < self.width and WALLS[row, col] == 0

    def _cell(self, point: np.ndarray) -> tuple[int, int]:
        row, col = (int(v) for v in np.floor(point))
        return min(row, self.height - 1), min(col, self.width - 1)

    def _off_map(self, point: np.ndarray) -> bool:
        return not (0.0 <= point[0] <= self.height and 0.0 <= point[1] <= self.width)

    def _in_lava(self, point: np.ndarray) -> bool:
        return bool(WALLS[self._cell(point)] == 1)

    def _sample_goal(self) -> np.ndarray:
        start = np.array(START, dtype=np.float64) + 0.5
        while True:
            goal = self.np_random.uniform((0.0, 0.0), (self.height, self.width))
            if not self._in_lava(goal) and np.abs(goal - start).sum() >= 4:
                return goal

    def _info(self, lava: bool = False, off_map: bool = False) -> dict[str, Any]:
        row, col = self._cell(self.position)
        return {"lava": lava, "off_map": off_map, "at_goal": self._at_goal(),
                "on_bridge": col == _BRIDGE_COLUMN and WALLS[row, col - 1] == 1,
                "position": self.position.copy()}

    def _at_goal(self) -> bool:
        return bool(np.linalg.norm(self.position - self.goal) < self.goal_distance)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.position, self.goal]).astype(np.float32)

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.position = np.array(START, dtype=np.float64) + 0.5
        self.goal = (self._sample_goal() if self.random_goal
                     else np.array(self.goal_cell, dtype=np.float64) + 0.5)
        self.steps = 0
        self.trajectory = [tuple(self.position)]
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        move = self.action_scale * np.asarray(action, dtype=np.float64).reshape(2)
        if self.action_noise > 0:
            move = move + (self.np_random.random(2) - 0.5) * self.action_noise
        move = np.clip(move, -self.action_scale, self.action_scale)
        lava = off_map = False
        for _ in range(_SUBSTEPS):
            for axis in range(2):
                point = self.position.copy()
                point[axis] += move[axis] / _SUBSTEPS
                if self._off_map(point):
                    off_map = True
                    point = np.clip(point, 0.0, (self.height, self.width))
                elif self._in_lava(point):
                    lava = True
                self.position = point
                if lava or off_map:
                    break
            if lava or off_map:
                break
        self.steps += 1
        self.trajectory.append(tuple(self.position))
        fell = lava or off_map
        at_goal = not fell and self._at_goal()
        left = self.max_episode_steps - self.steps
        diagonal = float(np.hypot(self.height, self.width))
        reward = 30.0 if at_goal else -float(np.linalg.norm(self.position - self.goal)) / diagonal
        truncated = not (fell or at_goal) and left <= 0
        if at_goal:
            reward += self.early_term_bonus * left
        elif fell:
            reward -= self.fall_penalty * (left + 1)
        elif truncated:
            reward -= self.time_limit_penalty
        return self._obs(), reward, fell or at_goal, truncated, self._info(lava, off_map)

    def render(self) -> Any:
        if self.render_mode != "rgb_array":
            return None
        from safeguards.envs.spider.render import draw_map

        return draw_map([self.trajectory], goal=tuple(self.goal))
