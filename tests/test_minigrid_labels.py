"""MiniGridLabeler and predict_labels: hand-built scenes, and prediction vs stepping copies."""

from __future__ import annotations

import copy
import doctest

import numpy as np
import pytest

pytest.importorskip("minigrid")

import gymnasium as gym  # noqa: E402
from minigrid.core.actions import Actions  # noqa: E402
from minigrid.core.grid import Grid  # noqa: E402
from minigrid.core.mission import MissionSpace  # noqa: E402
from minigrid.core.world_object import Ball, Box, Door, Goal, Key, Lava, Wall  # noqa: E402
from minigrid.minigrid_env import MiniGridEnv  # noqa: E402

import safeguards.envs.gridworld.labels as labels_module  # noqa: E402
from safeguards.envs.gridworld import MINIGRID_PROPS, MiniGridLabeler, predict_labels  # noqa: E402

A = Actions


class Sandbox(MiniGridEnv):
    """A walled room.  ``layout`` maps ``(x, y)`` to an object factory; without one the room is
    filled at random with every kind of object (doors open/closed/locked, keys of the doors'
    colours, boxes holding keys, balls, lava, goals, walls)."""

    def __init__(self, size: int = 7, layout: dict | None = None,
                 agent: tuple[tuple[int, int], int] = ((1, 1), 0), carrying=None, **kwargs):
        self.layout = layout
        self.agent_start = agent
        self.carrying_start = carrying
        super().__init__(mission_space=MissionSpace(mission_func=lambda: "play"),
                         grid_size=size, max_steps=500, **kwargs)

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        if self.layout is not None:
            for (x, y), make in self.layout.items():
                self.grid.set(x, y, make())
            self.agent_pos, self.agent_dir = np.array(self.agent_start[0]), self.agent_start[1]
            return
        colours = ["red", "blue", "yellow"]
        objects = [Door("red", is_locked=True), Door("blue", is_open=True), Door("yellow"),
                   Key("red"), Key("yellow"), Box("blue", Key("blue")), Box("green"),
                   Ball("purple"), Lava(), Goal(), Wall(), Door(self._rand_elem(colours),
                                                                is_locked=True)]
        for obj in objects:
            self.place_obj(obj)
        self.place_agent()

    def reset(self, **kwargs):
        result = super().reset(**kwargs)
        self.carrying = self.carrying_start() if self.carrying_start else None
        return result


def _stepped(env: gym.Env, action: int) -> tuple[set[str], MiniGridEnv]:
    """The labels of the state ``action`` reaches, by stepping a deep copy (and the copy)."""
    base = env.unwrapped
    shared = (base.observation_space, base.action_space, base.spec)   # stepping keeps them
    clone = copy.deepcopy(base, {id(x): x for x in shared if x is not None})
    labeler = MiniGridLabeler(clone)
    labeler(None, {}, None)
    obs, _, _, _, info = clone.step(action)
    return labeler(obs, info, action), clone


def _stepped_labels(env: gym.Env, action: int) -> set[str]:
    return _stepped(env, action)[0]


def test_module_doctest() -> None:
    result = doctest.testmod(labels_module)
    assert result.attempted > 0 and result.failed == 0


def test_props_and_docs() -> None:
    labeler = MiniGridLabeler(Sandbox())
    assert labeler.props == MINIGRID_PROPS
    assert set(labeler.docs) == MINIGRID_PROPS and all(labeler.docs.values())


# (name, layout, agent (pos, dir), carrying, action, labels after the action)
SCENES = [
    ("turn on the goal keeps it", {(1, 1): Goal}, ((1, 1), 0), None, A.right, {"goal"}),
    ("turn to face a wall", {}, ((1, 1), 0), None, A.left, {"wall_ahead"}),
    ("turn away from a wall", {(2, 1): Wall}, ((1, 1), 0), None, A.right, set()),
    ("step towards lava", {(3, 1): Lava}, ((1, 1), 0), None, A.forward, set()),
    ("onto the lava", {(2, 1): Lava}, ((1, 1), 0), None, A.forward, {"lava"}),
    ("onto the goal", {(2, 1): Goal}, ((1, 1), 0), None, A.forward, {"goal"}),
    ("bump into a wall", {(2, 1): Wall}, ((1, 1), 0), None, A.forward, {"bump", "wall_ahead"}),
    ("bump into a closed door", {(2, 1): lambda: Door("red")}, ((1, 1), 0), None, A.forward,
     {"bump"}),
    ("through an open door", {(2, 1): lambda: Door("red", is_open=True)}, ((1, 1), 0), None,
     A.forward, set()),
    ("bump into a ball", {(2, 1): Ball}, ((1, 1), 0), None, A.forward, {"bump"}),
    ("open a door", {(2, 1): lambda: Door("red")}, ((1, 1), 0), None, A.toggle, {"door_open"}),
    ("close a door", {(2, 1): lambda: Door("red", is_open=True)}, ((1, 1), 0), None, A.toggle,
     set()),
    ("locked door, no key", {(2, 1): lambda: Door("red", is_locked=True)}, ((1, 1), 0), None,
     A.toggle, set()),
    ("locked door, wrong key", {(2, 1): lambda: Door("red", is_locked=True)}, ((1, 1), 0),
     lambda: Key("blue"), A.toggle, {"carrying_key"}),
    ("unlock with the key", {(2, 1): lambda: Door("red", is_locked=True)}, ((1, 1), 0),
     lambda: Key("red"), A.toggle, {"carrying_key", "door_open"}),
    ("pick up a key", {(2, 1): Key}, ((1, 1), 0), None, A.pickup, {"carrying_key"}),
    ("hands full", {(2, 1): Key}, ((1, 1), 0), Ball, A.pickup, set()),
    ("pick up a ball", {(2, 1): Ball}, ((1, 1), 0), None, A.pickup, set()),
    ("drop the key", {}, ((1, 1), 0), Key, A.drop, set()),
    ("drop onto a wall", {}, ((1, 1), 2), Key, A.drop, {"carrying_key", "wall_ahead"}),
    ("open a box with a key", {(2, 1): lambda: Box("red", Key("red"))}, ((1, 1), 0), None,
     A.toggle, set()),
    ("open a box holding a door", {(2, 1): lambda: Box("red", Door("red", is_open=True))},
     ((1, 1), 0), None, A.toggle, {"door_open"}),
    ("open an empty box", {(2, 1): lambda: Box("red")}, ((1, 1), 0), None, A.toggle, set()),
    ("done changes nothing", {(2, 1): lambda: Door("red", is_open=True)}, ((1, 1), 0), Key,
     A.done, {"door_open", "carrying_key"}),
    ("facing down at a wall", {}, ((1, 5), 1), None, A.forward, {"bump", "wall_ahead"}),
]


@pytest.mark.parametrize("name, layout, agent, carrying, action, expected", SCENES,
                         ids=[scene[0] for scene in SCENES])
def test_scenes(name, layout, agent, carrying, action, expected) -> None:
    env = Sandbox(layout=layout, agent=agent, carrying=carrying)
    env.reset(seed=0)
    before = env.hash()
    assert predict_labels(env, action) == expected
    assert env.hash() == before and (env.carrying is None) == (carrying is None)
    assert _stepped_labels(env, action) == expected


def test_bump_needs_the_previous_position_and_resets_on_none() -> None:
    env = Sandbox(layout={(2, 1): Wall}, agent=((1, 1), 0))
    labeler = MiniGridLabeler(env)
    obs, info = env.reset(seed=0)
    assert "bump" not in labeler(obs, info, None)
    obs, *_, info = env.step(A.forward)
    assert "bump" in labeler(obs, info, A.forward)
    obs, *_, info = env.step(A.left)
    assert "bump" not in labeler(obs, info, A.left)              # not a forward action
    assert "bump" not in labeler(obs, info, None)                # a reset forgets the position
    fresh = MiniGridLabeler(env)                                 # never saw a position
    assert "bump" not in fresh(obs, info, A.forward)
    obs, *_, info = env.step(A.right)
    env.agent_pos = np.array((1, 2))                             # moved: not a bump
    assert "bump" not in labeler(obs, info, A.forward)


def test_the_labeler_reads_the_unwrapped_env() -> None:
    env = gym.make("MiniGrid-LavaGapS5-v0")
    labeler = MiniGridLabeler(env)
    assert labeler.env is env.unwrapped
    obs, info = env.reset(seed=0)
    obs, *_, info = env.step(A.forward)
    assert labeler(obs, info, A.forward) == {"lava"}


def test_outside_the_grid_counts_as_a_wall() -> None:
    env = Sandbox(size=5, layout={}, agent=((1, 1), 0))
    env.reset(seed=0)
    env.grid.set(4, 1, None)                                     # no border wall there
    env.agent_pos = np.array((4, 1))
    assert MiniGridLabeler(env)(None, {}, None) == {"wall_ahead"}
    assert predict_labels(env, A.forward) == {"bump", "wall_ahead"}
    assert predict_labels(env, A.toggle) == {"wall_ahead"}


class Switch(Ball):
    """An object with its own toggle: it turns into a wall."""

    def toggle(self, env, pos):
        env.grid.set(pos[0], pos[1], Wall())
        return True


def test_an_object_with_its_own_toggle_is_toggled_on_a_copy() -> None:
    env = Sandbox(layout={(2, 1): Switch}, agent=((1, 1), 0))
    env.reset(seed=0)
    assert predict_labels(env, A.toggle) == {"wall_ahead"} == _stepped_labels(env, A.toggle)
    assert isinstance(env.grid.get(2, 1), Switch)


def test_memory_env_turns_pickup_into_toggle() -> None:
    env = gym.make("MiniGrid-MemoryS7-v0")
    env.reset(seed=0)
    base = env.unwrapped
    keys = [(x, y) for x in range(base.width) for y in range(base.height)
            if base.grid.get(x, y) is not None and base.grid.get(x, y).type == "key"]
    assert keys
    for x, y in keys:                                            # face each key from below/above
        for direction, (dx, dy) in [(3, (0, 1)), (1, (0, -1))]:
            if base.grid.get(x + dx, y + dy) is None:
                base.agent_pos, base.agent_dir = np.array((x + dx, y + dy)), direction
                assert predict_labels(env, A.pickup) == set() == _stepped_labels(env, A.pickup)
                assert base.carrying is None


def _check_every_action(env: gym.Env) -> tuple[set[str], set[str]]:
    """predict_labels vs stepping a copy, for every action from the current state; returns the
    labels seen and the kinds of event the actions caused."""
    base = env.unwrapped
    seen: set[str] = set()
    events: set[str] = set()
    for action in range(int(env.action_space.n)):
        predicted = predict_labels(env, action)
        stepped, clone = _stepped(env, action)
        assert predicted == stepped, (action, base.agent_pos, base.agent_dir, base.carrying)
        seen |= predicted
        front, after = base.grid.get(*base.front_pos), clone.grid.get(*base.front_pos)
        if isinstance(front, Door) and action == A.toggle:
            if front.is_locked and after.is_open:
                events.add("unlock")
            if not front.is_locked and after.is_open != front.is_open:
                events.add("open/close door")
        if isinstance(front, Box) and not isinstance(after, Box):
            events.add("open box")
        if base.carrying is not None and clone.carrying is None:
            events.add("drop")
        if base.carrying is None and clone.carrying is not None:
            events.add("pickup")
    return seen, events


@pytest.mark.parametrize("env_id, steps", [
    ("MiniGrid-LavaGapS5-v0", 50),
    ("MiniGrid-LavaCrossingS9N1-v0", 30),
    ("MiniGrid-DoorKey-5x5-v0", 50),
    ("MiniGrid-KeyCorridorS3R1-v0", 30),
    ("MiniGrid-ObstructedMaze-1Dlhb-v0", 20),
    ("MiniGrid-MemoryS7-v0", 20),
    ("MiniGrid-MultiRoom-N2-S4-v0", 20),
])
def test_prediction_matches_stepping_copies_on_shipped_envs(env_id: str, steps: int) -> None:
    """Along seeded random walks (new seeded episodes after each end)."""
    env = gym.make(env_id)
    rng = np.random.default_rng(1)
    env.reset(seed=1)
    for _ in range(steps):
        _check_every_action(env)
        _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            env.reset(seed=int(rng.integers(1 << 30)))


def _random_state(env: Sandbox, rng: np.random.Generator) -> None:
    """A random crowded room, the agent usually facing an object, carrying a random thing."""
    env.reset(seed=int(rng.integers(1 << 30)))
    grid = env.grid
    cells = [(x, y) for x in range(1, grid.width - 1) for y in range(1, grid.height - 1)]
    free = [c for c in cells if grid.get(*c) is None or grid.get(*c).can_overlap()]
    occupied = [c for c in cells if grid.get(*c) is not None]
    pose = None
    if rng.random() < 0.8:                                   # face an object from a free cell
        for index in rng.permutation(len(occupied)):
            x, y = occupied[index]
            options = [(d, (x - dx, y - dy)) for d, (dx, dy) in
                       enumerate([(1, 0), (0, 1), (-1, 0), (0, -1)]) if (x - dx, y - dy) in free]
            if options:
                pose = options[int(rng.integers(len(options)))]
                break
    if pose is None:
        pose = (int(rng.integers(4)), free[int(rng.integers(len(free)))])
    env.agent_dir, env.agent_pos = pose[0], np.array(pose[1])
    doors = [grid.get(*c) for c in occupied if isinstance(grid.get(*c), Door)]
    colours = [d.color for d in doors if d.is_locked] + ["green"]
    env.carrying = [None, None, Key(colours[int(rng.integers(len(colours)))]), Ball("red")][
        int(rng.integers(4))]


def test_prediction_matches_stepping_copies_from_random_states() -> None:
    """Random crowded rooms: every proposition and every kind of event happens."""
    rng = np.random.default_rng(7)
    env = Sandbox(size=6)
    seen: set[str] = set()
    events: set[str] = set()
    for _ in range(80):
        _random_state(env, rng)
        more_seen, more_events = _check_every_action(env)
        seen |= more_seen
        events |= more_events
    assert seen == MINIGRID_PROPS
    assert events == {"unlock", "open/close door", "open box", "drop", "pickup"}


@pytest.mark.parametrize("action", [7, -1, "forward", None, 2.5])
def test_unknown_actions_are_value_errors(action) -> None:
    env = Sandbox()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown MiniGrid action"):
        predict_labels(env, action)


@pytest.mark.parametrize("make", [lambda: gym.make("CartPole-v1"), lambda: object()])
def test_not_a_minigrid_env_is_a_type_error(make) -> None:
    with pytest.raises(TypeError, match="expected a MiniGrid environment"):
        MiniGridLabeler(make())
    with pytest.raises(TypeError, match="expected a MiniGrid environment"):
        predict_labels(make(), 0)
