"""Labelers for ViZDoom: propositions read from the ``info`` of :class:`~safeguards.envs.doom.env.DoomEnv`.

Every proposition describes the state a step *reached* (or the initial state at ``reset``):
the game variables after the step's tics, and for "this step" props (``damage``,
``attacking_boss``) what happened during those ``frame_skip`` tics.

:class:`DoomStateLabeler` works on any scenario (DoomEnv adds the game variables it reads to
every config); :class:`DoomLabeler` adds the props that need the ``safe_rl`` map's geometry and
boss. ``labeler_for(env)`` picks the right one.

>>> labeler = DoomLabeler()
>>> info = {"game_variables": {"POSITION_X": 0.0, "POSITION_Y": -64.0, "HEALTH": 90.0,
...         "DEAD": 0.0, "WEAPON6": 0.0, "SELECTED_WEAPON": 2.0, "SELECTED_WEAPON_AMMO": 50.0,
...         "KILLCOUNT": 0.0}, "damage_taken": 10.0, "suit_tics_left": 0, "attack": False,
...         "in_crosshair": (), "boss_distance": 600.0}
>>> sorted(labeler(None, info, 0))
['damage', 'lava']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safeguards.envs.doom.mapgen import BOSS_AREA_MIN_Y, BOSS_NAME, LAVA
from safeguards.labels import PropositionLabeler, proposition

__all__ = ["DoomStateLabeler", "DoomLabeler", "labeler_for", "PLASMA_GUN_SLOT"]

#: Weapon slot of the plasma gun (WEAPON6, SELECTED_WEAPON == 6).
PLASMA_GUN_SLOT = 6


def _var(info: Mapping[str, Any], name: str) -> float:
    return info["game_variables"][name]


class DoomStateLabeler(PropositionLabeler):
    """Props of any ViZDoom scenario, from the game variables and what the step did.

    Args:
        low_ammo_below: ``low_ammo`` holds when the selected weapon has fewer rounds than this.
        suit_low_below: ``suit_low`` holds when the suit protects for fewer tics than this
            (default 350 tics = 10 s).
    """

    def __init__(self, low_ammo_below: int = 10, suit_low_below: int = 350) -> None:
        self.low_ammo_below = low_ammo_below
        self.suit_low_below = suit_low_below
        super().__init__()

    @proposition
    def damage(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the player took damage during this step (DAMAGE_TAKEN rose; lava, monsters, anything)"
        return info["damage_taken"] > 0

    @proposition
    def dead(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the player is dead (DEAD, or HEALTH <= 0)"
        return _var(info, "DEAD") > 0 or _var(info, "HEALTH") <= 0

    @proposition
    def has_suit(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "a radiation suit protects the player (picked up less than 60 s = 2100 tics ago)"
        return info["suit_tics_left"] > 0

    @proposition
    def suit_low(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "a radiation suit protects the player, for fewer than `suit_low_below` tics more"
        return 0 < info["suit_tics_left"] < self.suit_low_below

    @proposition
    def has_gun(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the player owns the plasma gun (WEAPON6 > 0)"
        return _var(info, "WEAPON6") > 0

    @proposition
    def gun_selected(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the plasma gun is the selected weapon (SELECTED_WEAPON == 6)"
        return _var(info, "SELECTED_WEAPON") == PLASMA_GUN_SLOT

    @proposition
    def low_ammo(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the selected weapon has fewer rounds than `low_ammo_below` (SELECTED_WEAPON_AMMO)"
        return _var(info, "SELECTED_WEAPON_AMMO") < self.low_ammo_below


class DoomLabeler(DoomStateLabeler):
    """Props of the ``safe_rl`` scenario: :class:`DoomStateLabeler`'s and the map's regions and
    boss (geometry from :mod:`safeguards.envs.doom.mapgen`).

    Args:
        near_boss_within: ``near_boss`` holds within this many map units of the living boss.
        low_ammo_below, suit_low_below: see :class:`DoomStateLabeler`.
    """

    def __init__(self, near_boss_within: float = 384.0, low_ammo_below: int = 10,
                 suit_low_below: int = 350) -> None:
        self.near_boss_within = near_boss_within
        super().__init__(low_ammo_below, suit_low_below)

    @proposition
    def lava(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the player stands on the damaging floor: -224 <= POSITION_Y <= 96 (the lava sector spans the map's width)"
        return LAVA.contains(_var(info, "POSITION_X"), _var(info, "POSITION_Y"))

    @proposition
    def boss_area(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the player is north of the lava, in the doorway or the boss room (POSITION_Y > 96, the paper's test)"
        return _var(info, "POSITION_Y") > BOSS_AREA_MIN_Y

    @proposition
    def boss_dead(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the boss, the map's only monster, has been killed (KILLCOUNT >= 1)"
        return _var(info, "KILLCOUNT") >= 1

    @proposition
    def near_boss(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "the boss is alive and within `near_boss_within` map units of the player"
        return not self.boss_dead(obs, info, action) and info["boss_distance"] <= self.near_boss_within

    @proposition
    def attacking_boss(self, obs: Any, info: Mapping[str, Any], action: Any) -> bool:
        "this step pressed ATTACK with the living boss on screen across the centre column"
        return (bool(info["attack"]) and BOSS_NAME in info["in_crosshair"]
                and not self.boss_dead(obs, info, action))


def labeler_for(env: Any) -> DoomStateLabeler:
    """:class:`DoomLabeler` for the ``safe_rl`` scenario, :class:`DoomStateLabeler` otherwise."""
    return DoomLabeler() if getattr(env.unwrapped, "is_safe_rl", False) else DoomStateLabeler()
