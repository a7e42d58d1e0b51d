"""ViZDoom as a pixel-observation Gymnasium environment with the game state in ``info``.

Contract (kept stable for the training pipeline)
------------------------------------------------
``gym.make("safeguards/DoomSafeRL-v0", **kwargs)`` (registered by ``import safeguards.envs.doom``)
builds ``DoomEnv(config="safe_rl", **kwargs)``; ``gym.make("safeguards/Doom-v0", config=...)``
any other scenario. Constructor keywords (:class:`DoomEnv`):

* ``config``: ``"safe_rl"`` (our map, ``safe_rl.wad`` + ``safe_rl.cfg``), a shipped ViZDoom
  scenario by name (``"basic"``, ``"deadly_corridor"``) or Gymnasium id (``"VizdoomBasic-v1"``),
  or a path to a ``.cfg`` file.
* ``frame_skip=4``: game tics per step (the action is held for all of them).
* ``obs_shape=(60, 80)``: ``(height, width)`` of the observation; the screen (160x120 for
  ``safe_rl``) is averaged over blocks, so its size must be an integer multiple.
* ``actions=None``: ``"compact"`` (the 12 combos of :data:`COMPACT_ACTIONS`; default for
  ``safe_rl``), ``"paper"`` (the paper's 3x3x3x2 = 54 combos: turn x forward/back x strafe x
  attack), ``"buttons"`` (one action per button of the config; default for other scenarios), or
  a sequence of button-name tuples.
* ``shaping=None``: task-reward shaping weights (:class:`RewardShaping`); ``None`` picks
  :data:`PAPER_SHAPING` for ``safe_rl`` and no shaping (the scenario's own reward) otherwise.
* ``render_mode=None`` or ``"rgb_array"`` (the full-resolution screen); always headless.
* ``episode_timeout``, ``doom_skill``, ``screen_resolution`` and any other ViZDoom config key
  (lower-case, as in a .cfg file) override the config file.

Spaces: observation ``Box(0, 255, (H, W, 3), uint8)``, channel-last (SB3's ``CnnPolicy``
accepts it); action ``Discrete(n)`` with ``env.unwrapped.action_names[i]`` naming action ``i``.
Reward: the game's reward (living reward, death penalty -1 on ``safe_rl``) plus the shaping.

``info`` (after ``reset`` and every ``step``; it describes the state the step reached):

* ``game_variables``: ``{name: float}`` for :data:`INFO_VARIABLES` (HEALTH, ARMOR, DAMAGECOUNT,
  DAMAGE_TAKEN, SELECTED_WEAPON, SELECTED_WEAPON_AMMO, WEAPON6, AMMO6, POSITION_X/Y/Z, ANGLE,
  KILLCOUNT, ITEMCOUNT, DEAD), added to every scenario whatever its config lists;
* ``tic``: the episode tic; ``attack``: whether the action pressed ATTACK;
* ``health_lost``, ``damage_taken``, ``damage_dealt``, ``kills``: changes during this step;
* ``suit_tics_left``: tics of radiation-suit protection left (a suit is picked up when one of
  the map's ``RadSuit`` objects disappears; it protects for 2100 tics = 60 s, as in Doom);
* ``visible``: names of the objects on screen; ``in_crosshair``: those whose on-screen box spans
  the centre column (Doom aims vertically by itself); ``boss_position``: ``(x, y)`` of the
  scenario's boss (``None`` without one) and ``boss_distance``: map units from the player to it
  (``inf`` without one);
* ``reward_terms``: the parts of the reward (``game`` and the shaping terms).

After the last step of an episode (death or timeout) ViZDoom has no screen: the observation
repeats the last frame and ``game_variables`` are read from the finished game.

Labeler: :class:`safeguards.envs.doom.labels.DoomLabeler` (``safe_rl``: lava, damage,
has_suit, has_gun, gun_selected, boss_area, near_boss, attacking_boss, boss_dead, low_ammo,
dead); :class:`~safeguards.envs.doom.labels.DoomStateLabeler` for any scenario (the props that
do not need our map's geometry); ``labeler_for(env)`` picks one.

>>> env = DoomEnv("safe_rl", obs_shape=(30, 40))
>>> obs, info = env.reset(seed=0)
>>> obs.shape, env.action_space, info["game_variables"]["HEALTH"]
((30, 40, 3), Discrete(12), 100.0)
>>> env.close()
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from safeguards.envs.doom.mapgen import BOSS_NAME
from safeguards.errors import SafeguardsError, did_you_mean

__all__ = ["DoomEnv", "RewardShaping", "PAPER_SHAPING", "COMPACT_ACTIONS", "PAPER_ACTIONS",
           "INFO_VARIABLES", "SUIT_TICS", "SAFE_RL_CONFIG", "DoomConfigError",
           "scenario_config", "find_vizdoom_id", "downscale"]

SAFE_RL_CONFIG = Path(__file__).with_name("safe_rl.cfg")
#: Tics a radiation suit protects (Doom: 60 s at 35 tics/s).
SUIT_TICS = 60 * 35
#: Game variables every scenario reports in ``info["game_variables"]``.
INFO_VARIABLES = ("HEALTH", "ARMOR", "DAMAGECOUNT", "DAMAGE_TAKEN", "SELECTED_WEAPON",
                  "SELECTED_WEAPON_AMMO", "WEAPON6", "AMMO6", "POSITION_X", "POSITION_Y",
                  "POSITION_Z", "ANGLE", "KILLCOUNT", "ITEMCOUNT", "DEAD")

#: The default action set: (name, buttons held).
COMPACT_ACTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("forward", ("MOVE_FORWARD",)),
    ("backward", ("MOVE_BACKWARD",)),
    ("turn_left", ("TURN_LEFT",)),
    ("turn_right", ("TURN_RIGHT",)),
    ("forward_left", ("MOVE_FORWARD", "TURN_LEFT")),
    ("forward_right", ("MOVE_FORWARD", "TURN_RIGHT")),
    ("strafe_left", ("MOVE_LEFT",)),
    ("strafe_right", ("MOVE_RIGHT",)),
    ("attack", ("ATTACK",)),
    ("forward_attack", ("MOVE_FORWARD", "ATTACK")),
    ("turn_left_attack", ("TURN_LEFT", "ATTACK")),
    ("turn_right_attack", ("TURN_RIGHT", "ATTACK")),
)


def _paper_actions() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The paper's Tuple(Discrete(3), Discrete(3), Discrete(3), Discrete(2)) as one Discrete(54)."""
    turn = ((), ("TURN_LEFT",), ("TURN_RIGHT",))
    move = ((), ("MOVE_FORWARD",), ("MOVE_BACKWARD",))
    strafe = ((), ("MOVE_LEFT",), ("MOVE_RIGHT",))
    attack = ((), ("ATTACK",))
    combos = (sum(parts, ()) for parts in itertools.product(turn, move, strafe, attack))
    return tuple(("+".join(b.lower() for b in buttons) or "noop", buttons) for buttons in combos)


#: The paper's action space (turn x forward/back x strafe x attack), flattened.
PAPER_ACTIONS = _paper_actions()


@dataclass(frozen=True)
class RewardShaping:
    """Task-reward shaping from game-variable changes (added to the game's own reward).

    The paper's ``REWARD_SHAPING_SAFERL``: +0.003 per point of damage dealt (DAMAGECOUNT),
    +0.01 per point of armor gained, +1 when the plasma gun (WEAPON6) is picked up. Ours adds
    ``kill`` per monster killed (KILLCOUNT), since our boss can be killed, and ``suit`` when a
    radiation suit is picked up: the paper's map signals its suit through ARMOR (its safeguards
    test ``ARMOR > 0``), so picking it up paid the armor term, while ours is Doom's real
    radiation suit, which gives no armor; ``suit = 1`` pays what a 100-point armor pickup pays
    under the paper's 0.01 per point.
    """

    damage_dealt: float = 0.003
    armor: float = 0.01
    plasma_gun: float = 1.0
    kill: float = 1.0
    suit: float = 1.0

    def terms(self, before: Mapping[str, float], after: Mapping[str, float], *,
              suit_picked: bool = False) -> dict[str, float]:
        """The shaping terms of one step, from the game variables before and after it and
        whether a radiation suit was picked up during it.

        >>> RewardShaping().terms({"DAMAGECOUNT": 0, "ARMOR": 0, "WEAPON6": 0, "KILLCOUNT": 0},
        ...                       {"DAMAGECOUNT": 100, "ARMOR": 0, "WEAPON6": 1, "KILLCOUNT": 0})
        {'damage_dealt': 0.3, 'armor': 0.0, 'plasma_gun': 1.0, 'kill': 0.0, 'suit': 0.0}
        """
        def gain(name: str) -> float:
            return max(0.0, after[name] - before[name])

        return {
            "damage_dealt": self.damage_dealt * gain("DAMAGECOUNT"),
            "armor": self.armor * gain("ARMOR"),
            "plasma_gun": self.plasma_gun * float(before["WEAPON6"] <= 0 < after["WEAPON6"]),
            "kill": self.kill * gain("KILLCOUNT"),
            "suit": self.suit * float(suit_picked),
        }


PAPER_SHAPING = RewardShaping()


class DoomConfigError(SafeguardsError, ValueError):
    """An unknown scenario, a bad action set or an observation size the screen does not fit."""


def find_vizdoom_id(scenario: str) -> str:
    """The Gymnasium id ViZDoom registers for a shipped scenario (``"basic"`` ->
    ``"VizdoomBasic-v1"``), looked up in the registry (ids changed across ViZDoom versions).

    >>> find_vizdoom_id("deadly_corridor")
    'VizdoomDeadlyCorridor-v1'
    """
    import vizdoom.gymnasium_wrapper  # noqa: F401  (registers the Vizdoom* ids)

    matches = sorted(
        (spec.version or 0, env_id) for env_id, spec in gym.registry.items()
        if env_id.startswith("Vizdoom") and "MultiBinary" not in env_id
        and _registered_config(spec) == f"{scenario}.cfg")
    if not matches:
        known = sorted({_registered_config(s)[:-4] for i, s in gym.registry.items()
                        if i.startswith("Vizdoom") and _registered_config(s)})
        hint = did_you_mean(scenario, known)
        raise DoomConfigError(f"no ViZDoom scenario `{scenario}` in the Gymnasium registry "
                              f"(known: {', '.join(known)})" + (f"; {hint}" if hint else ""))
    return matches[-1][1]


def _registered_config(spec: Any) -> str:
    kwargs = spec.kwargs or {}
    return kwargs.get("scenario_config_file") or kwargs.get("scenario_file") or ""


def scenario_config(config: str | Path) -> Path:
    """The ``.cfg`` file for ``"safe_rl"``, a shipped scenario name or id, or a path.

    >>> scenario_config("VizdoomBasic-v1").name, scenario_config("safe_rl").name
    ('basic.cfg', 'safe_rl.cfg')
    """
    import vizdoom
    import vizdoom.gymnasium_wrapper  # noqa: F401  (registers the Vizdoom* ids)

    text = str(config)
    if text == "safe_rl":
        return SAFE_RL_CONFIG
    if text.endswith(".cfg") or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise DoomConfigError(f"no ViZDoom config file {path}")
        return path
    env_id = text if text.startswith("Vizdoom") else find_vizdoom_id(text)
    if env_id not in gym.registry:
        hint = did_you_mean(env_id, [i for i in gym.registry if i.startswith("Vizdoom")])
        raise DoomConfigError(f"unknown ViZDoom env id `{env_id}`" + (f"; {hint}" if hint else ""))
    return Path(vizdoom.scenarios_path) / _registered_config(gym.registry[env_id])


def downscale(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Average ``frame`` (H, W, C) over blocks down to ``shape`` (h, w); H, W multiples of h, w.

    >>> downscale(np.arange(16, dtype=np.uint8).reshape(4, 4, 1), (2, 2))[..., 0]
    array([[ 2,  4],
           [10, 12]], dtype=uint8)
    """
    height, width = shape
    fy, fx = frame.shape[0] // height, frame.shape[1] // width
    if (fy, fx) == (1, 1):
        return frame
    total = np.zeros((height, width, frame.shape[2]), dtype=np.uint16)
    for dy in range(fy):       # strided adds: far faster than a reduce over a 5-D reshape
        for dx in range(fx):
            total += frame[dy::fy, dx::fx]
    return (total // (fy * fx)).astype(np.uint8)


def _check_game_options(options: Mapping[str, Any]) -> None:
    """Each override must be a ViZDoom config key with a valid value (ViZDoom itself only
    prints a warning and ignores it)."""
    import vizdoom as vzd

    probe = vzd.DoomGame()
    for key, value in options.items():
        if not probe.set_config({key: value}):
            raise DoomConfigError(f"ViZDoom rejects the option {key}={value!r}: not a config key "
                                  "(lower-case, as in a .cfg file, e.g. episode_timeout) or not a "
                                  "valid value for it")


class DoomEnv(gym.Env):
    """A ViZDoom scenario with image observations, a ``Discrete`` action set and the game state
    in ``info`` (see the module docstring for the full contract)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 35}

    def __init__(self, config: str | Path = "safe_rl", *, frame_skip: int = 4,
                 obs_shape: tuple[int, int] = (60, 80),
                 actions: str | Sequence[Sequence[str]] | None = None,
                 shaping: RewardShaping | Mapping[str, float] | None = None,
                 render_mode: str | None = None, **game_options: Any) -> None:
        from vizdoom.gymnasium_wrapper.base_gymnasium_env import VizdoomEnv

        if render_mode not in (None, "rgb_array"):
            raise DoomConfigError(f"render_mode must be None or 'rgb_array', not {render_mode!r}")
        if frame_skip < 1:
            raise DoomConfigError(f"frame_skip must be >= 1, not {frame_skip}")
        self.config_path = scenario_config(config)
        self.is_safe_rl = self.config_path.resolve() == SAFE_RL_CONFIG.resolve()
        self.render_mode = render_mode
        self.frame_skip = frame_skip
        self.boss = BOSS_NAME if self.is_safe_rl else None
        if shaping is None and self.is_safe_rl:
            shaping = PAPER_SHAPING
        self.shaping = RewardShaping(**shaping) if isinstance(shaping, Mapping) else shaping
        # ViZDoom resolves the paths in a config relative to the working directory, not to
        # the config file: give it ours explicitly.
        if self.is_safe_rl:
            game_options.setdefault("doom_scenario_path", str(SAFE_RL_CONFIG.with_name("safe_rl.wad")))
        _check_game_options(game_options)
        self.vizdoom = VizdoomEnv(config_file=str(self.config_path), frame_skip=frame_skip,
                                  max_buttons_pressed=0, **game_options)
        self.game = self.vizdoom.game
        self._enable_state_reporting()
        self.action_names, self._button_vectors = self._action_table(actions)
        self.action_space = spaces.Discrete(len(self.action_names))
        self._attack = self._button_index("ATTACK")
        screen = (self.game.get_screen_height(), self.game.get_screen_width())
        if screen[0] % obs_shape[0] or screen[1] % obs_shape[1]:
            raise DoomConfigError(f"obs_shape {tuple(obs_shape)} must divide the screen size "
                                  f"{screen} (height, width); e.g. {(screen[0] // 2, screen[1] // 2)}")
        self.obs_shape = (int(obs_shape[0]), int(obs_shape[1]))
        self.observation_space = spaces.Box(0, 255, (*self.obs_shape, 3), dtype=np.uint8)
        self._frame = np.zeros((*screen, 3), dtype=np.uint8)
        self._variables: dict[str, float] = {}
        self._suits = 0
        self._suit_until = 0

    def _enable_state_reporting(self) -> None:
        import vizdoom as vzd

        self.game.set_available_game_variables([vzd.GameVariable.__members__[name]
                                                for name in INFO_VARIABLES])
        self.game.set_labels_buffer_enabled(True)
        self.game.set_objects_info_enabled(True)
        self.game.set_screen_format(vzd.ScreenFormat.RGB24)

    def _buttons(self) -> list[str]:
        """All buttons, in the order ``make_action`` takes them (ViZDoom's wrapper puts delta
        buttons first; our actions never press those)."""
        return [b.name for b in self.game.get_available_buttons()]

    def _action_table(self, actions: str | Sequence[Sequence[str]] | None
                      ) -> tuple[list[str], np.ndarray]:
        buttons = self._buttons()
        pressable = buttons[self.vizdoom.num_delta_buttons:]
        if actions is None:
            actions = "compact" if self.is_safe_rl else "buttons"
        if actions == "compact":
            table = list(COMPACT_ACTIONS)
        elif actions == "paper":
            table = list(PAPER_ACTIONS)
        elif actions == "buttons":
            table = [(b.lower(), (b,)) for b in pressable]
        elif isinstance(actions, str):
            raise DoomConfigError(f"actions must be 'compact', 'paper', 'buttons' or a list of "
                                  f"button tuples, not {actions!r}")
        else:
            table = [("+".join(b.lower() for b in combo) or "noop", tuple(combo))
                     for combo in actions]
        vectors = np.zeros((len(table), len(buttons)), dtype=np.int8)
        for row, (name, combo) in enumerate(table):
            for button in combo:
                if button not in pressable:
                    hint = did_you_mean(button, pressable)
                    raise DoomConfigError(
                        f"action `{name}` presses {button}, which {self.config_path.name} does "
                        f"not make available as a binary button (it has {', '.join(pressable)})"
                        + (f"; {hint}" if hint else ""))
                vectors[row, buttons.index(button)] = 1
        return [name for name, _ in table], vectors

    def _button_index(self, name: str) -> int | None:
        buttons = self._buttons()
        return buttons.index(name) if name in buttons else None

    # -- stepping -------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.vizdoom.reset(seed=seed)
        self._variables = self._read_variables()
        self._suits = self._count(self.vizdoom.state, "RadSuit")
        self._suit_until = 0
        info = self._info(self._variables, self._variables, attack=False)
        return self._observe(), info

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise DoomConfigError(f"action {action!r} is not in {self.action_space}")
        buttons = self._button_vectors[int(action)]
        game_reward = self.game.make_action(buttons.tolist(), self.frame_skip)
        self.vizdoom.state = state = self.game.get_state()
        timeout = self.game.is_episode_timeout_reached()
        finished = self.game.is_episode_finished()
        before, after = self._variables, self._read_variables()
        self._variables = after
        suits = self._count(state, "RadSuit") if state is not None else self._suits
        suit_picked = suits < self._suits
        if suit_picked:
            self._suit_until = self.game.get_episode_time() + SUIT_TICS
        self._suits = suits
        info = self._info(before, after, attack=bool(self._attack is not None and buttons[self._attack]))
        terms = {"game": float(game_reward)}
        if self.shaping is not None:
            terms |= self.shaping.terms(before, after, suit_picked=suit_picked)
        info["reward_terms"] = terms
        return self._observe(), sum(terms.values()), finished and not timeout, timeout, info

    def _read_variables(self) -> dict[str, float]:
        state = self.vizdoom.state
        if state is not None:
            return dict(zip(INFO_VARIABLES, state.game_variables.tolist()))
        import vizdoom as vzd

        return {name: float(self.game.get_game_variable(vzd.GameVariable.__members__[name]))
                for name in INFO_VARIABLES}

    @staticmethod
    def _count(state: Any, name: str) -> int:
        return sum(1 for obj in state.objects if obj.name == name) if state is not None else 0

    def _observe(self) -> np.ndarray:
        state = self.vizdoom.state
        if state is not None:
            self._frame = state.screen_buffer
        return downscale(self._frame, self.obs_shape)

    def _info(self, before: Mapping[str, float], after: Mapping[str, float], *,
              attack: bool) -> dict[str, Any]:
        tic = self.game.get_episode_time()
        info: dict[str, Any] = {
            "game_variables": dict(after),
            "tic": tic,
            "attack": attack,
            "health_lost": max(0.0, before["HEALTH"] - after["HEALTH"]),
            "damage_taken": max(0.0, after["DAMAGE_TAKEN"] - before["DAMAGE_TAKEN"]),
            "damage_dealt": max(0.0, after["DAMAGECOUNT"] - before["DAMAGECOUNT"]),
            "kills": max(0.0, after["KILLCOUNT"] - before["KILLCOUNT"]),
            "suit_tics_left": max(0, self._suit_until - tic),
        }
        info |= self._sight(after)
        return info

    def _sight(self, variables: Mapping[str, float]) -> dict[str, Any]:
        """What is on screen and where the boss is (nothing after the episode's last step)."""
        state = self.vizdoom.state
        sight: dict[str, Any] = {"visible": (), "in_crosshair": (), "boss_distance": math.inf,
                                 "boss_position": None}
        if state is None:
            return sight
        centre = self.game.get_screen_width() / 2
        labels = [label for label in state.labels if label.object_name != "DoomPlayer"]
        sight["visible"] = tuple(sorted({label.object_name for label in labels}))
        sight["in_crosshair"] = tuple(sorted({label.object_name for label in labels
                                              if label.x <= centre < label.x + label.width}))
        boss = next((obj for obj in state.objects if obj.name == self.boss), None)
        if boss is not None:
            sight["boss_position"] = (boss.position_x, boss.position_y)
            sight["boss_distance"] = math.hypot(boss.position_x - variables["POSITION_X"],
                                                boss.position_y - variables["POSITION_Y"])
        return sight

    def render(self) -> np.ndarray | None:
        """The last full-resolution screen (``render_mode="rgb_array"``)."""
        return self._frame.copy() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        self.vizdoom.close()
