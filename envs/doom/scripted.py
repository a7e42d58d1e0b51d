"""A scripted player for tests and pictures: walk through waypoints, wait, fight the boss.

It steers with the game variables in ``info`` (POSITION_X/Y, ANGLE), so it needs only
:class:`~safeguards.envs.doom.env.DoomEnv`'s compact action set.

>>> plan = [("go", (0, -64)), ("wait", 3), ("fight", 10)]
>>> player = ScriptedPlayer(plan)
>>> info = {"game_variables": {"POSITION_X": 0.0, "POSITION_Y": -576.0, "ANGLE": 90.0},
...         "in_crosshair": (), "boss_position": (224.0, 448.0)}
>>> player.action_name(info)
'forward'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from safeguards.envs.doom.env import COMPACT_ACTIONS
from safeguards.envs.doom.mapgen import BOSS_NAME

__all__ = ["ScriptedPlayer", "SUIT_THEN_BOSS", "SKIP_THE_GUN", "STRAIGHT_INTO_LAVA"]

_NAMES = [name for name, _ in COMPACT_ACTIONS]
_WAIT = "turn_left"   # stand still by turning on the spot (the compact set has no no-op)

#: Pick up the suit, cross the lava over the plasma gun and fight the boss from the lava.
SUIT_THEN_BOSS = (("go", (-192, -288)), ("go", (0, -200)), ("go", (0, -64)), ("fight", 80))
#: Pick up the suit, cross the lava around the plasma gun and walk into the boss area unarmed
#: (safeguard 1 and 2 violations).
SKIP_THE_GUN = (("go", (-192, -288)), ("go", (-200, -150)), ("go", (-150, 40)),
                ("go", (-30, 110)), ("go", (0, 140)), ("fight", 20))
#: Walk north from the start into the lava without the suit and stand there.
STRAIGHT_INTO_LAVA = (("go", (0, -150)), ("wait", 20))


class ScriptedPlayer:
    """Follow a plan of ``("go", (x, y))``, ``("wait", steps)`` and ``("fight", steps)`` items
    (fight: turn until the boss is in the crosshair, then fire); afterwards wait.

    Call it as ``player(obs, info) -> action index`` (compact action set); :meth:`reset` restarts
    the plan.
    """

    def __init__(self, plan: Sequence[tuple[str, Any]], *, reach: float = 24.0) -> None:
        for kind, _ in plan:
            if kind not in ("go", "wait", "fight"):
                raise ValueError(f"plan items are ('go', (x, y)), ('wait', n) or ('fight', n), "
                                 f"not {kind!r}")
        self.plan = list(plan)
        self.reach = reach
        self.reset()

    def reset(self) -> None:
        self._item = 0
        self._steps = 0

    def __call__(self, obs: Any, info: Mapping[str, Any]) -> int:
        return _NAMES.index(self.action_name(info))

    def action_name(self, info: Mapping[str, Any]) -> str:
        """The compact action's name for this step."""
        while self._item < len(self.plan):
            kind, arg = self.plan[self._item]
            if kind == "go":
                name = self._steer(info, arg)
                if name is not None:
                    return name
            elif self._steps < arg:
                self._steps += 1
                return self._fight(info) if kind == "fight" else _WAIT
            self._item += 1
            self._steps = 0
        return _WAIT

    @staticmethod
    def _fight(info: Mapping[str, Any]) -> str:
        if BOSS_NAME in info["in_crosshair"] or info["boss_position"] is None:
            return "attack"
        turn = _bearing(info, info["boss_position"])
        return "turn_left_attack" if turn > 0 else "turn_right_attack"

    def _steer(self, info: Mapping[str, Any], target: tuple[float, float]) -> str | None:
        variables = info["game_variables"]
        if math.hypot(target[0] - variables["POSITION_X"],
                      target[1] - variables["POSITION_Y"]) <= self.reach:
            return None
        turn = _bearing(info, target)
        if abs(turn) > 25.0:
            return "turn_left" if turn > 0 else "turn_right"
        if abs(turn) > 6.0:
            return "forward_left" if turn > 0 else "forward_right"
        return "forward"


def _bearing(info: Mapping[str, Any], target: tuple[float, float]) -> float:
    """Degrees to turn left (negative: right) to face ``target``."""
    variables = info["game_variables"]
    heading = math.degrees(math.atan2(target[1] - variables["POSITION_Y"],
                                      target[0] - variables["POSITION_X"]))
    return (heading - variables["ANGLE"] + 180.0) % 360.0 - 180.0
