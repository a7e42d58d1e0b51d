"""MinecraftEnv: the Progressive Safeguards gridworld (layouts, dynamics, seeding, rendering,
registration, the product with safeguard 3)."""

from __future__ import annotations

import doctest
import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("minigrid")

import gymnasium as gym  # noqa: E402
import safeguards  # noqa: E402
import safeguards.envs.gridworld.minecraft as minecraft  # noqa: E402
from safeguards.envs.gridworld.minecraft import (  # noqa: E402
    MINECRAFT_PROPS,
    MinecraftActions,
    MinecraftEnv,
    MinecraftLabeler,
    save_trajectory,
)
from safeguards.gym import SafeguardWrapper  # noqa: E402
from safeguards.labels import LabelError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
R, U, L, D, S = (int(a) for a in MinecraftActions)


def _binomial_ok(k: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(k - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


# Layout 1 as papers.md §1.5 lists it, with the jitter offset i (every cell not listed: safe).
def layout1_table(i: int) -> dict[tuple[int, int], str]:
    cells = {(0, 5): "basalt_lava", (1, 5): "basalt_lava", (2, 5): "basalt_lava",
             (2, 8): "basalt_lava", (2, 9): "basalt_lava",
             (0, 0): "creeper", (4 + i, 5): "creeper",
             (2, 2 + i): "wood", (7, 3 + i): "wood", (5 + i, 7): "wood",
             (0, 3 + i): "iron", (4 + i, 0): "iron", (9, 4 + i): "iron",
             (6 + i, 1): "work_bench", (6, 5 + i): "work_bench", (4 + i, 9): "work_bench",
             (2 + i, 4): "smith_table", (9, 0): "smith_table", (7, 7 + i): "smith_table",
             (0, 7): "diamond"}
    assert len(cells) == 20   # no two entries collide in layout 1
    return cells


def test_module_doctest() -> None:
    result = doctest.testmod(minecraft)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("i", [-1, 0, 1])
def test_layout1_labels(i: int) -> None:
    env = MinecraftEnv(layout=1)
    _, info = env.reset(seed=0, options={"jitter": i})
    assert info["jitter"] == i == env.jitter_offset
    table = layout1_table(i)
    for row in range(10):
        for col in range(10):
            assert env.label_at(row, col) == table.get((row, col), "safe"), (row, col)
    assert env.labels.shape == (10, 10)
    # the MiniGrid grid holds the same objects at (x, y) = (col + 1, row + 1)
    for (row, col), label in table.items():
        assert env.grid.get(col + 1, row + 1).type == label
    assert env.grid.get(0, 0).type == "wall" and env.grid.get(11, 11).type == "wall"


def test_layouts_2_and_3() -> None:
    env2 = MinecraftEnv(layout=2)
    env2.reset(seed=0, options={"jitter": 0})
    assert env2.text_map(agent=False).splitlines() == [
        "I..C...D..", "...L......", "..WLS.....", "..........", "C....I...B",
        ".......W..", ".B.L.B....", "...W...S..", "...L......", "S..LC....."]
    env3 = MinecraftEnv(layout=3)
    env3.reset(seed=0, options={"jitter": 0})
    assert env3.text_map(agent=False).splitlines() == [
        "C.LI..LD..", "..L...L...", "..W.S.L...", "..L...L...", "I....CL..B",
        "......LW..", ".B...B....", "...W...S..", "..........", "S...I....."]
    for layout in (1, 2, 3):
        env = MinecraftEnv(layout=layout)
        for i in (-1, 0, 1):
            _, info = env.reset(seed=1, options={"jitter": i})
            assert info["label"] == "safe"   # the start cell is safe everywhere
            assert set(env.labels.ravel()) == MINECRAFT_PROPS | {"safe"}


def test_start_cell_and_spaces() -> None:
    env = MinecraftEnv()
    obs, info = env.reset(seed=3)
    assert obs == 52 and info["cell"] == (5, 2) == env.cell and info["label"] == "safe"
    assert env.agent_pos == (3, 6)          # MiniGrid (x, y) = (col + 1, row + 1)
    assert env.observation_space == gym.spaces.Discrete(100)
    assert env.action_space == gym.spaces.Discrete(5)
    assert [a.name for a in MinecraftActions] == ["right", "up", "left", "down", "stay"]


def test_moves_and_clamping_without_slip() -> None:
    env = MinecraftEnv(slip=0.0)
    env.reset(seed=0)
    expected = [(R, (5, 3)), (U, (4, 3)), (L, (4, 2)), (D, (5, 2)), (S, (5, 2))]
    for action, cell in expected:
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["cell"] == cell and obs == cell[0] * 10 + cell[1]
        assert reward == 0.0 and not terminated and not truncated
        assert info["executed_action"] == action and info["slipped"] is False
        assert info["label"] == env.label_at(*cell)
    # clamping at each border
    for start, action, cell in [((0, 4), U, (0, 4)), ((9, 4), D, (9, 4)),
                                ((4, 0), L, (4, 0)), ((4, 9), R, (4, 9)),
                                ((0, 0), L, (0, 0)), ((9, 9), R, (9, 9))]:
        env.reset(seed=0, options={"start": start})
        assert env.step(action)[4]["cell"] == cell
    env.reset(seed=0, options={"start": (0, 1)})
    for _ in range(5):
        env.step(L)
    assert env.cell == (0, 0)
    with pytest.raises(ValueError):
        env.step(5)
    with pytest.raises(ValueError):
        env.step(1.5)


def test_slip_frequency() -> None:
    env = MinecraftEnv(slip=0.05)
    env.reset(seed=123)
    n, slipped, changed = 20000, 0, 0
    counts = np.zeros(5, int)
    for _ in range(n):
        *_, info = env.step(S)
        slipped += info["slipped"]
        changed += info["executed_action"] != S
        if info["slipped"]:
            counts[info["executed_action"]] += 1
    assert _binomial_ok(slipped, n, 0.05)
    assert _binomial_ok(changed, n, 0.05 * 4 / 5)   # a slip may redraw the chosen action
    assert counts.min() > 0                          # every action can be drawn
    # a non-slipping step executes the chosen action
    env0 = MinecraftEnv(slip=0.0)
    env0.reset(seed=0)
    assert all(not env0.step(U)[4]["slipped"] for _ in range(200))


def test_jitter_frequency() -> None:
    env = MinecraftEnv(jitter=0.05)
    env.reset(seed=7)
    n = 8000
    offsets = np.array([env.reset()[1]["jitter"] for _ in range(n)])
    assert _binomial_ok(int((offsets == 1).sum()), n, 0.05)
    assert _binomial_ok(int((offsets == -1).sum()), n, 0.05)
    assert set(offsets.tolist()) == {-1, 0, 1}
    # the drawn offset is the one applied: the creeper of layout 1 sits at (4 + i, 5)
    for _ in range(200):
        _, info = env.reset()
        assert env.label_at(4 + info["jitter"], 5) == "creeper"
    no_jitter = MinecraftEnv(jitter=0.0)
    assert {no_jitter.reset(seed=s)[1]["jitter"] for s in range(200)} == {0}


def _rollout(seed: int, n: int = 300) -> list:
    env = MinecraftEnv(slip=0.3, jitter=0.3)
    obs, info = env.reset(seed=seed)
    trace = [(obs, info["jitter"])]
    for k in range(n):
        obs, _, _, _, info = env.step(k % 5)
        trace.append((obs, info["executed_action"]))
    env.reset()
    trace.append(env.jitter_offset)
    return trace


def test_determinism_under_seed() -> None:
    assert _rollout(5) == _rollout(5)
    assert _rollout(5) != _rollout(6)


def test_truncation_at_max_steps() -> None:
    env = MinecraftEnv(max_steps=7)
    env.reset(seed=0)
    flags = [env.step(S)[3] for _ in range(7)]
    assert flags == [False] * 6 + [True]
    assert MinecraftEnv().max_steps == 1000
    env = gym.make("safeguards/Minecraft-v0", max_steps=3)
    env.reset(seed=0)
    assert [env.step(S)[3] for _ in range(3)] == [False, False, True]


@pytest.mark.parametrize("obs_mode", ["cell", "image"])
def test_check_env(obs_mode: str) -> None:
    from gymnasium.utils.env_checker import check_env, env_render_passive_checker

    env = gym.make("safeguards/Minecraft-v0", obs_mode=obs_mode, render_mode="rgb_array",
                   tile_size=8)   # small tiles: MiniGrid draws each new tile in pure Python
    # the render check would also open a "human" pygame window: check rgb_array by hand
    check_env(env.unwrapped, skip_render_check=True)
    env.unwrapped.reset(seed=0)
    env_render_passive_checker(env.unwrapped)


def test_image_observation() -> None:
    env = MinecraftEnv(obs_mode="image")
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and info["cell"] == (5, 2)
    assert obs["image"].shape == (7, 7, 3) and obs["direction"] == 0
    # facing right from (5, 2): the wood at (5, 7) is 5 cells ahead, in the middle column
    assert tuple(obs["image"][3, 1]) == (minecraft.MINECRAFT_OBJECT_TO_IDX["wood"], 4, 0)
    env = MinecraftEnv(obs_mode="image", slip=0.0)
    env.reset(seed=0)
    obs, _, _, _, info = env.step(U)          # the agent now faces up (MiniGrid direction 3)
    assert obs["direction"] == 3 and info["cell"] == (4, 2)
    obs, _, _, _, info = env.step(S)          # stay keeps the direction
    assert obs["direction"] == 3 and info["cell"] == (4, 2)


def test_rgb_rendering_and_trajectory_files(tmp_path: Path) -> None:
    env = MinecraftEnv(render_mode="rgb_array", tile_size=8)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (12 * 8, 12 * 8, 3) and frame.dtype == np.uint8
    assert MinecraftEnv().tile_size == 32      # MiniGrid's default: 384 x 384 frames
    # every kind of object renders differently
    tiles = {label: env.grid.render_tile(minecraft._OBJECTS[label](), tile_size=8).tobytes()
             for label in MINECRAFT_PROPS}
    assert len(set(tiles.values())) == len(MINECRAFT_PROPS)

    actions = [D, D, R, R, U, U, U]
    png = save_trajectory(env, actions, tmp_path / "run.png", seed=0, tile_size=8, columns=4)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gif = save_trajectory(env, actions, tmp_path / "run.gif", seed=0, tile_size=8)
    data = gif.read_bytes()
    assert data[:6] == b"GIF89a" and data[-1:] == b"\x3b"
    frames, infos = minecraft.record_trajectory(env, actions, seed=0, tile_size=8)
    assert len(frames) == len(infos) == len(actions) + 1
    pygame = pytest.importorskip("pygame")
    if pygame.image.get_extended():
        sheet = pygame.surfarray.array3d(pygame.image.load(str(png))).transpose(1, 0, 2)
        assert np.array_equal(sheet, minecraft._contact_sheet(frames, 4))
        first = pygame.surfarray.array3d(pygame.image.load(str(gif))).transpose(1, 0, 2)
        assert first.shape == frames[0].shape    # Pillow's palette or the built-in one:
        assert np.abs(first.astype(int) - frames[0]).mean() < 4   # close to the frame
    with pytest.raises(ValueError):
        save_trajectory(env, actions, tmp_path / "run.mp4")


def test_builtin_gif_encoder_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pygame = pytest.importorskip("pygame")
    if not pygame.image.get_extended():
        pytest.skip("pygame without SDL_image")
    # without Pillow, save_trajectory falls back to the built-in encoder (216-colour cube)
    monkeypatch.setitem(sys.modules, "PIL", None)
    env = MinecraftEnv()
    gif = save_trajectory(env, [D, R], tmp_path / "builtin.gif", seed=0, tile_size=8)
    frames, _ = minecraft.record_trajectory(env, [D, R], seed=0, tile_size=8)
    first = pygame.surfarray.array3d(pygame.image.load(str(gif))).transpose(1, 0, 2)
    assert np.array_equal(first, (np.rint(frames[0] / 51.0) * 51).astype(np.uint8))
    assert gif.read_bytes() == minecraft._gif_bytes(frames, 4)
    rng = np.random.default_rng(0)
    img = (rng.integers(0, 6, (37, 53, 3)) * 51).astype(np.uint8)   # > 253 pixels, odd sizes
    path = tmp_path / "noise.gif"
    path.write_bytes(minecraft._gif_bytes([img, img[::-1]], fps=2))
    loaded = pygame.surfarray.array3d(pygame.image.load(str(path))).transpose(1, 0, 2)
    assert np.array_equal(loaded, img)


def test_gym_make_registered_ids() -> None:
    for env_id, layout in [("safeguards/Minecraft-v0", 1), ("safeguards/Minecraft-L1-v0", 1),
                           ("safeguards/Minecraft-L2-v0", 2), ("safeguards/Minecraft-L3-v0", 3)]:
        env = gym.make(env_id)
        obs, info = env.reset(seed=0)
        assert env.unwrapped.layout == layout and obs == 52
        assert (env.unwrapped.slip, env.unwrapped.jitter, env.unwrapped.obs_mode) == \
            (0.05, 0.05, "cell")
        env.close()
    assert gym.make("safeguards/Minecraft-v0", layout=3).unwrapped.layout == 3
    minecraft.register_minecraft()   # idempotent
    with pytest.raises(ValueError):
        MinecraftEnv(layout=4)
    with pytest.raises(ValueError):
        MinecraftEnv(obs_mode="pixels")


def test_labeler() -> None:
    labeler = MinecraftLabeler()
    assert labeler.props == MINECRAFT_PROPS and set(labeler.docs) == MINECRAFT_PROPS
    for prop in MINECRAFT_PROPS:
        assert labeler(None, {"label": prop}, None) == {prop}
    assert labeler(None, {"label": "safe"}, None) == set()
    with pytest.raises(LabelError):
        labeler(None, {}, None)
    with pytest.raises(LabelError):
        labeler(None, {"label": "grass"}, None)


def test_product_with_safeguard3_runs_an_episode() -> None:
    sg = safeguards.compile(str(ROOT / "specs" / "minecraft" / "safeguard3.sg"))
    env = SafeguardWrapper(gym.make("safeguards/Minecraft-L1-v0"), sg, MinecraftLabeler(),
                           reward="paper", terminate_on_violation=True)
    obs, info = env.reset(seed=0)
    assert obs == {"obs": 52, "safeguard": sg.initial}
    rng = np.random.default_rng(0)
    rewards, terminated, truncated = [], False, False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(5)))
        rewards.append(reward)
    assert len(rewards) <= 1000
    if terminated:   # ended on a violation: -0.1 on that step, +0.1 before it
        assert info["violated_rules"] and rewards[-1] == pytest.approx(-0.1)
        assert info["labels"] and set(info["labels"]) <= {"creeper", "basalt_lava"}
    assert all(r == pytest.approx(0.1) for r in rewards[:-1])

    # a scripted walk without slip or jitter: (5,2) down, down, right -> wood at (7,3); right,
    # right, up -> work bench at (6,5) (safeguard state q2)
    env = SafeguardWrapper(MinecraftEnv(layout=1, slip=0.0, jitter=0.0), sg, MinecraftLabeler(),
                           reward="paper", terminate_on_violation=True)
    env.reset(seed=0)
    labels = [env.step(a)[4]["labels"] for a in (D, D, R)]
    assert labels == [[], [], ["wood"]]
    for a in (R, R, U):
        obs, reward, terminated, truncated, info = env.step(a)
    assert info["labels"] == ["work_bench"] and sg.state_names[obs["safeguard"]] == "q2"
    # q2: lava is allowed now, creepers are not: walk up column 5 through the creeper at (4, 5)
    obs, reward, terminated, truncated, info = env.step(U)    # (5, 5) safe
    obs, reward, terminated, truncated, info = env.step(U)    # (4, 5) creeper
    assert terminated and info["violated_rules"] == ["safeguard3"] and reward == pytest.approx(-0.1)


def test_vector_env_labels() -> None:
    envs = gym.make_vec("safeguards/Minecraft-L2-v0", num_envs=3, vectorization_mode="sync")
    obs, infos = envs.reset(seed=0)
    assert list(obs) == [52, 52, 52]
    obs, _, _, _, infos = envs.step(np.array([R, U, D]))
    labeler = MinecraftLabeler()
    for i in range(3):
        assert labeler(obs[i], {"label": infos["label"][i]}, None) <= MINECRAFT_PROPS
    envs.close()


def test_the_environment_brings_its_labeler_and_fast_path() -> None:
    from safeguards import envs
    from safeguards.envs.gridworld.stepper import MinecraftStepper
    from safeguards.learn.steppers import EnvStepper, make_stepper

    env = envs.make("safeguards/Minecraft-L1-v0")
    labeler = env.unwrapped.labeler
    assert type(labeler).__name__ == "MinecraftLabeler"
    assert type(make_stepper(env, labeler)) is MinecraftStepper
    assert type(make_stepper(env, labeler, fast=False)) is EnvStepper
    pixels = envs.make("safeguards/Minecraft-L1-v0", {"obs_mode": "image"})
    assert pixels.unwrapped.fast_stepper(pixels, labeler, None) is None
