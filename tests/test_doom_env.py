"""The ViZDoom environment (``safeguards.envs.doom``): our generated map loads and plays, its
labels follow scripted walks (into the lava, with the suit, to the gun and the boss), the
safeguard wrapper runs a few hundred frames on it, and the shipped WAD is what the generator
builds."""

from __future__ import annotations

import doctest
from importlib import resources

import numpy as np
import pytest

pytest.importorskip("vizdoom")

import gymnasium as gym  # noqa: E402

import safeguards  # noqa: E402
import safeguards.envs.doom  # noqa: E402,F401  (registers the ids)
from safeguards.automata import Verdict  # noqa: E402
from safeguards.envs.doom.env import (  # noqa: E402
    SUIT_TICS, DoomConfigError, DoomEnv, find_vizdoom_id, scenario_config)
from safeguards.envs.doom.labels import DoomLabeler, DoomStateLabeler, labeler_for  # noqa: E402
from safeguards.envs.doom.scripted import (  # noqa: E402
    STRAIGHT_INTO_LAVA, SUIT_THEN_BOSS, ScriptedPlayer)
from safeguards.gym import SafeguardWrapper  # noqa: E402


def _spec(name: str):
    return safeguards.compile(resources.files("safeguards.specs") / "doom" / f"{name}.sg")


@pytest.fixture(scope="module")
def env():
    made = DoomEnv("safe_rl", render_mode="rgb_array")
    yield made
    made.close()


def _play(env, plan, steps, seed=0):
    """Run a scripted plan; return the (labels, info, reward) of every step (reset first)."""
    labeler = DoomLabeler()
    player = ScriptedPlayer(plan)
    obs, info = env.reset(seed=seed)
    out = [(labeler(obs, info, None), info, 0.0)]
    for _ in range(steps):
        action = player(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((labeler(obs, info, action), info, float(reward)))
        if terminated or truncated:
            break
    return out


def test_spaces_and_the_env_checker(env):
    from gymnasium.utils.env_checker import check_env

    assert env.observation_space == gym.spaces.Box(0, 255, (60, 80, 3), np.uint8)
    assert env.action_space == gym.spaces.Discrete(12)
    assert env.action_names[0] == "forward"
    check_env(env, skip_render_check=True)
    assert env.render().shape == (120, 160, 3)


def test_registered_id_makes_the_scenario_with_kwargs():
    made = gym.make("safeguards/DoomSafeRL-v0", obs_shape=(30, 40), actions="paper",
                    episode_timeout=40)
    try:
        assert made.observation_space.shape == (30, 40, 3)
        assert made.action_space == gym.spaces.Discrete(54)
        made.reset(seed=0)
        steps, truncated, terminated = 0, False, False
        while not (terminated or truncated):
            _, _, terminated, truncated, info = made.step(0)
            steps += 1
        # the timeout is a truncation, not a termination (ViZDoom's wrapper reports both)
        assert truncated and not terminated and steps == 40 // 4
        assert info["game_variables"]["HEALTH"] == 100.0
    finally:
        made.close()


def test_walking_into_the_lava_without_the_suit(env):
    trace = _play(env, STRAIGHT_INTO_LAVA, 60)
    lava_steps = [i for i, (labels, _, _) in enumerate(trace) if "lava" in labels]
    assert lava_steps, "the scripted walk reaches the lava"
    first = lava_steps[0]
    assert all(not {"lava", "damage"} & labels for labels, _, _ in trace[:first])
    # the floor hurts every 32 tics = 8 steps: damage within 8 steps of standing in it
    damaged = [i for i, (labels, _, _) in enumerate(trace) if "damage" in labels]
    assert damaged and damaged[0] - first <= 8 and all("lava" in trace[i][0] for i in damaged)
    assert trace[damaged[0]][1]["health_lost"] == 10.0
    assert all(-224 <= info["game_variables"]["POSITION_Y"] <= 96
               for labels, info, _ in trace if "lava" in labels)
    # safeguard 0 is violated at the first lava step, not before
    sg = _spec("safeguard0")
    q = sg.initial
    for i, (labels, _, _) in enumerate(trace[1:], start=1):
        q = sg.step(q, labels & set(sg.props))
        assert (sg.verdict(q) == Verdict.VIOLATED) == (i >= first)


def test_suit_protects_in_the_lava_and_the_gun_and_boss_fight_register(env):
    trace = _play(env, SUIT_THEN_BOSS, 160)
    labels = [step[0] for step in trace]
    suit_at = next(i for i, props in enumerate(labels) if "has_suit" in props)
    assert trace[suit_at][1]["suit_tics_left"] > SUIT_TICS - env.frame_skip
    # the suit pays its pickup once (the paper's armor term, see RewardShaping)
    assert trace[suit_at][1]["reward_terms"]["suit"] == 1.0
    assert sum(step[1].get("reward_terms", {}).get("suit", 0.0) for step in trace) == 1.0
    # in the lava with the suit on: no damage from the floor (the boss may still hit)
    protected = [i for i, props in enumerate(labels) if {"lava", "has_suit"} <= props]
    assert len(protected) >= 10
    before_fight = [i for i in protected if "gun_selected" not in labels[i]]
    assert before_fight and all("damage" not in labels[i] for i in before_fight)
    # the plasma gun: +1 once, then it is selected
    gun_at = next(i for i, props in enumerate(labels) if "has_gun" in props)
    assert trace[gun_at][1]["reward_terms"]["plasma_gun"] == 1.0
    assert sum(step[1].get("reward_terms", {}).get("plasma_gun", 0.0) for step in trace) == 1.0
    assert any("gun_selected" in props for props in labels[gun_at:])
    # the fight: attacking the boss, damage dealt rewarded, and (seed 0) the boss dies
    assert any("attacking_boss" in props for props in labels)
    assert sum(step[1].get("reward_terms", {}).get("damage_dealt", 0.0) for step in trace) > 0
    assert "boss_dead" in labels[-1] and trace[-1][1]["game_variables"]["KILLCOUNT"] == 1.0
    # suit time counts down by frame_skip tics per step
    left = [step[1]["suit_tics_left"] for step in trace[suit_at:suit_at + 5]]
    assert np.diff(left).tolist() == [-env.frame_skip] * 4


def test_reset_with_a_seed_is_deterministic(env):
    def run(seed):
        obs, _ = env.reset(seed=seed)
        frames = [obs]
        rng = np.random.default_rng(1)
        for _ in range(25):
            obs, *_ = env.step(int(rng.integers(env.action_space.n)))
            frames.append(obs)
        return np.stack(frames)

    assert np.array_equal(run(3), run(3))


def test_safeguard_wrapper_smoke_run_of_400_frames(env):
    sg = _spec("safeguard2")
    wrapped = SafeguardWrapper(env, sg, labeler_for(env), observe="dict", reward="penalty",
                               terminate_on_violation=True)
    obs, info = wrapped.reset(seed=0)
    rng = np.random.default_rng(0)
    frames = 0
    while frames < 400:
        obs, reward, terminated, truncated, info = wrapped.step(int(rng.integers(12)))
        frames += env.frame_skip
        assert wrapped.observation_space.contains(obs)
        assert {"labels", "verdict", "violated_rules", "cost", "game_variables"} <= info.keys()
        if terminated or truncated:
            obs, info = wrapped.reset()
    assert frames >= 400


def test_shipped_scenarios_resolve_and_label():
    assert find_vizdoom_id("basic") == "VizdoomBasic-v1"
    assert scenario_config("basic").name == "basic.cfg"
    with pytest.raises(DoomConfigError, match="did you mean `basic`"):
        find_vizdoom_id("basik")
    basic = gym.make("safeguards/Doom-v0", config="VizdoomBasic-v1", obs_shape=(60, 80))
    try:
        assert basic.unwrapped.action_names == ["move_left", "move_right", "attack"]
        labeler = labeler_for(basic)
        assert type(labeler) is DoomStateLabeler
        obs, info = basic.reset(seed=0)
        assert labeler(obs, info, None) == set()
        for _ in range(2):
            obs, _, _, _, info = basic.step(2)
        assert info["attack"] and info["game_variables"]["SELECTED_WEAPON_AMMO"] < 50
    finally:
        basic.close()


def test_bad_settings_give_clear_errors():
    with pytest.raises(DoomConfigError, match="must divide the screen size"):
        DoomEnv("safe_rl", obs_shape=(50, 80))
    with pytest.raises(DoomConfigError, match="does not make available"):
        DoomEnv("basic", actions="compact")
    with pytest.raises(DoomConfigError, match="no ViZDoom config file"):
        DoomEnv("missing.cfg")
    with pytest.raises(DoomConfigError, match="rejects the option episode_timout=40"):
        DoomEnv("safe_rl", episode_timout=40)


def test_shipped_wad_is_what_the_generator_builds():
    pytest.importorskip("omg")
    from safeguards.envs.doom import mapgen

    shipped = resources.files("safeguards.envs.doom").joinpath("safe_rl.wad").read_bytes()
    assert shipped == mapgen.build_wad()


def test_map_uses_only_freedoom2_names():
    omg = pytest.importorskip("omg")
    import vizdoom
    from omg.txdef import Textures

    from safeguards.envs.doom import mapgen

    iwad = omg.WAD(str(resources.files(vizdoom) / "freedoom2.wad"))
    textures = Textures(iwad.txdefs)
    assert all(name in textures for name in mapgen.TEXTURES.values())
    assert all(name in iwad.flats for name in mapgen.FLATS.values())


@pytest.mark.parametrize("module", ["env", "labels", "scripted", "mapgen"])
def test_module_doctests(module):
    import importlib

    result = doctest.testmod(importlib.import_module(f"safeguards.envs.doom.{module}"))
    assert result.attempted > 0 and result.failed == 0


def test_episode_pictures_show_the_safeguard_state(env, tmp_path):
    from PIL import Image

    from safeguards.envs.doom.render import record_episode, save_episode_gif, save_frame_strip

    sg = _spec("safeguard0")
    forward = env.action_names.index("forward")
    frames = record_episode(env, [forward] * 30, sg, DoomLabeler(), seed=0,
                            steps_after_violation=2)
    states = [f.state for f in frames]
    assert states[0] == "q0" and states[-1] == "violated"
    first_bad = states.index("violated")
    assert "lava" in frames[first_bad].labels and frames[first_bad].violated_rules == ("safeguard0",)
    assert len(frames) == first_bad + 3          # stops two steps after the violation
    gif = tmp_path / "episode.gif"
    save_episode_gif(env, [forward] * 30, gif, sg, DoomLabeler(), steps_after_violation=2)
    with Image.open(gif) as image:
        assert image.n_frames >= len(frames) // 2
        width, height = image.size
    assert (width, height) == (2 * 160 + 8, 2 * 120 + 8 + 64)
    strip = save_frame_strip(frames, tmp_path / "strip.png", "safeguard0", count=4, columns=2)
    with Image.open(strip) as image:
        assert image.size[0] > 2 * width
