"""Tabular Q-learning, progressive-safeguard transfers, baselines, run directories, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("gymnasium")

import gymnasium as gym
from gymnasium import spaces

from safeguards.labels import PropositionLabeler, proposition
from safeguards import load_safeguard
from safeguards.learn import (
    CurriculumConfig, MonitorTable, QLearningConfig, QTable, Stage, evaluate, greedy_episode,
    run_curriculum, run_episode,
)
from safeguards.learn.tabular import _begin_stage, _plan
from safeguards.learn.qlearning import FearModel
from safeguards.envs.gridworld.stepper import MinecraftStepper
from safeguards.learn.steppers import EnvStepper, make_stepper
from safeguards.learn.transfer import (
    apply_semantic, behaviour_distance, joint_alphabet, n_slots_for, paper_initial_row,
    semantic_sources, slot_map,
)
from safeguards.runs import METRIC_FIELDS, RunDir, read_metrics

LEFT, RIGHT, STAY = 0, 1, 2


class CorridorLabeler(PropositionLabeler):
    """Reads ``info["label"]``."""

    @proposition
    def lava(self, obs, info, action) -> bool:
        return info["label"] == "lava"

    @proposition
    def wood(self, obs, info, action) -> bool:
        return info["label"] == "wood"

    @proposition
    def goal(self, obs, info, action) -> bool:
        return info["label"] == "goal"


class Corridor(gym.Env):
    """Cells ``0 .. n-1`` in a row; actions left / right / stay (clamped at the ends).  With
    probability ``slip`` the action is replaced by a uniformly random one.  Reaching the ``goal``
    cell (if any) pays ``goal_reward`` and ends the episode."""

    labeler = CorridorLabeler

    def __init__(self, labels=("lava", "", "", "wood", "", ""), start=2, goal=None,
                 goal_reward=1.0, slip=0.0):
        self.labels = list(labels)
        self.start, self.goal, self.goal_reward, self.slip = start, goal, goal_reward, slip
        self.observation_space = spaces.Discrete(len(self.labels))
        self.action_space = spaces.Discrete(3)
        self.pos = start
        self.executed: list[int] = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.start
        return self.pos, {"label": self.labels[self.pos]}

    def step(self, action):
        action = int(action)
        if self.slip and self.np_random.random() < self.slip:
            action = int(self.np_random.integers(3))
        self.executed.append(action)
        self.pos = min(max(self.pos + (-1, 1, 0)[action], 0), len(self.labels) - 1)
        done = self.pos == self.goal
        reward = self.goal_reward if done else 0.0
        return self.pos, reward, done, False, {"label": self.labels[self.pos]}


if "test_learn/Corridor-v0" not in gym.registry:
    gym.register("test_learn/Corridor-v0", entry_point=Corridor)

WOOD_MEMORY = """
spec wood_memory "Never lava; remember wood."
props:
    lava
    wood
    goal
rule no_lava: machine {
    initial q0
    violation bad
    q0 -> bad : lava
    q0 -> q1  : wood & !lava
    q0 -> q0  : else
    q1 -> bad : lava
    q1 -> q1  : else
}
"""

# after wood, lava is allowed (like the paper's safeguard 2 after the work bench)
WOOD_FREES_LAVA = """
spec wood_frees_lava "Lava only after wood."
props:
    lava
    wood
    goal
rule lava_after_wood: machine {
    initial q0
    violation bad
    q0 -> bad : lava
    q0 -> q1  : wood & !lava
    q0 -> q0  : else
    q1 -> q1  : true
}
"""


def corridor_stepper(**kwargs) -> tuple[Corridor, EnvStepper]:
    env = Corridor(**kwargs)
    return env, EnvStepper(env, CorridorLabeler())


def monitors(spec: str, n_slots: int, final: str | None = None):
    train = MonitorTable(load_safeguard(spec), n_slots)
    return train, MonitorTable(load_safeguard(final or spec), n_slots)


def value_iteration(env: Corridor, gamma: float) -> np.ndarray:
    """Q* of the corridor under ``G !lava`` with the paper's shaping (+0.1 safe, -0.1 lava)."""
    n = len(env.labels)
    q = np.zeros((n, 3))
    for _ in range(2000):
        new = np.zeros_like(q)
        for s in range(n):
            for a in range(3):
                s2 = min(max(s + (-1, 1, 0)[a], 0), n - 1)
                if env.labels[s2] == "lava":
                    new[s, a] = -0.1
                elif s2 == env.goal:
                    new[s, a] = env.goal_reward + 0.1
                else:
                    new[s, a] = 0.1 + gamma * q[s2].max()
        q = new
    return q


# -- Q-learning --------------------------------------------------------------------------------

def test_q_learning_converges_to_optimal_values():
    env, stepper = corridor_stepper(labels=("lava", "", "", "", "goal"), start=2, goal=4)
    train, final = monitors("G !lava", 2)
    table = QTable(5, 2, 3)
    config = QLearningConfig(alpha=0.9, gamma=0.9, epsilon=0.5)
    rng = np.random.default_rng(0)
    for _ in range(400):
        run_episode(stepper, table, train, final, rng, config, max_steps=30)
    expected = value_iteration(env, 0.9)
    for s in (1, 2, 3):  # the non-terminal cells
        np.testing.assert_allclose(table.Q[s, 0], expected[s], atol=1e-9)
    assert table.Q[2, 0].argmax() == RIGHT
    np.testing.assert_allclose(expected[1, LEFT], -0.1)


def test_paper_update_touches_the_greedy_action():
    """Exploring: the standard update changes the executed action's entry, the paper's the
    greedy action's."""
    for seed in range(50):
        results = {}
        for update in ("standard", "paper"):
            env, stepper = corridor_stepper(labels=("", "", "", "", ""), start=2)
            train, final = monitors("G !lava", 2)
            table = QTable(5, 2, 3)
            q = table.Q
            q[2, 0] = [0.0, 0.0, 0.5]          # greedy: stay
            table.set_arrays(Q=q)
            run_episode(stepper, table, train, final, np.random.default_rng(seed),
                        QLearningConfig(epsilon=1.0, update=update), max_steps=1)
            changed = np.flatnonzero(table.Q[2, 0] != q[2, 0])
            results[update] = (env.executed[0], changed.tolist())
        executed = results["standard"][0]
        if executed == STAY:
            continue
        assert results["standard"][1] == [executed]
        assert results["paper"][0] == executed      # same random numbers, same action
        assert results["paper"][1] == [STAY]
        return
    pytest.fail("no exploratory action differed from the greedy one")


def test_paper_update_bootstraps_from_the_violation_entry():
    """On a violation the standard target is r; the paper's is r + gamma * max Q[s', sink]."""
    values = {}
    for update in ("standard", "paper"):
        _, stepper = corridor_stepper(start=1)
        train, final = monitors("G !lava", 2)
        table = QTable(6, 2, 3)
        q = table.Q
        q[1, 0] = [0.2, 0.0, 0.0]          # greedy: left, into the lava
        q[0, 1] = [0.5, 0.5, 0.5]          # the sink entry of the lava cell
        table.set_arrays(Q=q)
        stats = run_episode(stepper, table, train, final, np.random.default_rng(0),
                            QLearningConfig(epsilon=0.0, update=update), max_steps=10)
        assert stats.violated and stats.violation_step == 1 and stats.length == 1
        assert stats.violated_rules == ["formula"] and stats.ret == pytest.approx(-0.1)
        values[update] = table.Q[1, 0, LEFT]
    assert values["standard"] == pytest.approx(0.1 * 0.2 + 0.9 * -0.1)
    assert values["paper"] == pytest.approx(0.1 * 0.2 + 0.9 * (-0.1 + 0.9 * 0.5))


def test_pessimistic_table_uses_a_min_backup():
    _, stepper = corridor_stepper(labels=("", "", "", "", ""), start=2)
    train, final = monitors("G !lava", 2)
    table = QTable(5, 2, 3)
    u = table.U
    u[3, 0] = [0.4, -0.3, 0.2]
    q = table.Q
    q[2, 0, RIGHT] = 1.0
    table.set_arrays(Q=q, U=u)
    run_episode(stepper, table, train, final, np.random.default_rng(0),
                QLearningConfig(epsilon=0.0), max_steps=1)
    assert table.U[2, 0, RIGHT] == pytest.approx(0.9 * (0.1 + 0.9 * -0.3))


def test_final_spec_violations_are_counted_alongside():
    """Training under "lava only after wood" while monitoring "never lava"."""
    _, stepper = corridor_stepper(labels=("", "wood", "lava", "", ""), start=0)
    train = MonitorTable(load_safeguard(WOOD_FREES_LAVA), 3)
    final = MonitorTable(load_safeguard("G !lava"), 3)
    table = QTable(5, 3, 3)
    q = table.Q
    q[:, :, RIGHT] = 1.0
    table.set_arrays(Q=q)
    stats = run_episode(stepper, table, train, final, np.random.default_rng(0),
                        QLearningConfig(epsilon=0.0), max_steps=4)
    assert not stats.violated and stats.length == 4
    assert stats.violated_final and stats.violation_step_final == 2


# -- transfers ---------------------------------------------------------------------------------

def test_slots_put_the_violation_state_last():
    sgs = [load_safeguard(f"minecraft/safeguard{i}") for i in range(4)]
    assert n_slots_for(sgs) == 6
    assert slot_map(sgs[0], 6) == [0, 5]
    assert slot_map(sgs[3], 6) == [0, 1, 2, 3, 4, 5]


def test_paper_initial_row_averages_lower_slot_ids():
    table = QTable(4, 4, 3)
    q = table.Q
    q[2, 0] = [1.0, 2.0, 3.0]
    q[2, 1] = [3.0, 4.0, 5.0]
    q[2, 2] = [9.0, 9.0, 9.0]
    known = table.known
    known[2, :3] = True
    table.set_arrays(Q=q, known=known)
    args = (table.q_rows, table.known_rows, 2, 4)
    assert paper_initial_row(*args, stage=2, n_actions=3) == [2.0, 3.0, 4.0]
    assert paper_initial_row(*args, stage=1, n_actions=3) == [1.0, 2.0, 3.0]
    assert paper_initial_row(*args, stage=3, n_actions=3) == [13 / 3, 5.0, 17 / 3]
    assert paper_initial_row(*args, stage=0, n_actions=3) is None
    assert paper_initial_row(table.q_rows, table.known_rows, 1, 4, 2, 3) is None


def _transfer_episode(transfer: str) -> QTable:
    """Stage 1 (wood memory) after stage 0 ("never lava"): one greedy step right onto the wood
    cell enters the new product state (cell 3, q1)."""
    sgs = [load_safeguard("G !lava"), load_safeguard(WOOD_MEMORY)]
    n_slots = n_slots_for(sgs)
    table = QTable(6, n_slots, 3)
    q, known = table.Q, table.known
    q[3, 0] = [0.3, 0.5, 0.7]
    q[3, 1] = [-1.0, -1.0, -1.0]          # left over under slot 1, e.g. by the stage-0 sink
    q[2, 0] = [0.0, 0.01, 0.0]            # greedy: right
    known[2:4, 0] = True
    table.set_arrays(Q=q, known=known)
    config = CurriculumConfig(stages=[Stage("test_learn/Corridor-v0", {}, "G !lava", 1),
                                      Stage("test_learn/Corridor-v0", {}, WOOD_MEMORY, 1)],
                              transfer=transfer)
    plan = _plan(config)
    slots = [slot_map(sg, n_slots) for sg in sgs]
    snapshots = [(table.Q, table.known)]
    _begin_stage(plan, table, None, 1, sgs, slots, snapshots, config)
    _, stepper = corridor_stepper()
    train, final = MonitorTable(sgs[1], n_slots), MonitorTable(sgs[1], n_slots)
    run_episode(stepper, table, train, final, np.random.default_rng(0),
                QLearningConfig(epsilon=0.0), max_steps=1,
                paper_stage=1 if transfer == "paper" else None)
    return table


def test_transfer_initialisation_per_strategy():
    paper = _transfer_episode("paper")
    np.testing.assert_allclose(paper.Q[3, 1], [0.3, 0.5, 0.7])     # mean over slot 0
    assert paper.Q[2, 0, RIGHT] == pytest.approx(0.1 * 0.01 + 0.9 * (0.1 + 0.9 * 0.7))
    assert paper.known[3, 1]

    warm = _transfer_episode("warm")                                 # stays as it was
    np.testing.assert_allclose(warm.Q[3, 1], [-1.0, -1.0, -1.0])
    assert warm.Q[2, 0, RIGHT] == pytest.approx(0.1 * 0.01 + 0.9 * (0.1 + 0.9 * -1.0))

    none = _transfer_episode("none")             # reset at the stage: one entry learnt since
    assert np.count_nonzero(none.Q) == 1 and none.Q[2, 0].max() == pytest.approx(0.9 * 0.1)

    # semantic: q1 of the wood machine ("wood seen, never lava") has the same residual
    # obligation as q0 of "never lava", so it inherits slot 0's row, where it was visited
    semantic = _transfer_episode("semantic")
    np.testing.assert_allclose(semantic.Q[3, 1], [0.3, 0.5, 0.7])
    assert semantic.known[3, 1] and semantic.known[2, 1] and not semantic.known[1, 1]
    np.testing.assert_allclose(semantic.Q[1, 1], 0.0)


def test_semantic_sources_of_the_minecraft_safeguards():
    sgs = [load_safeguard(f"minecraft/safeguard{i}") for i in range(4)]
    alphabet = joint_alphabet(sgs)
    assert behaviour_distance(sgs[0], 0, sgs[1], 1, alphabet) == 0.0
    assert behaviour_distance(sgs[3], 2, sgs[2], 2, alphabet) == 0.0
    assert behaviour_distance(sgs[3], 5, sgs[0], 1, alphabet) == 0.0
    assert semantic_sources(sgs, 1) == {0: [(0, 0)], 1: [(0, 0)]}
    sources = semantic_sources(sgs, 3)
    # q2 "only creepers are fatal" matches safeguard 2's q2 exactly, whatever the ids
    assert sources[2] == [(2, 2)]
    assert sources[0] == [(2, 0)] and sources[1] == [(2, 1)]
    # q4 "only lava is fatal" is closer to "avoid both" than to "only creepers"
    assert (2, 2) not in sources[4] and (0, 0) in sources[4]


def test_apply_semantic_means_over_matches():
    q = np.zeros((2, 4, 2))
    known = np.zeros((2, 4), bool)
    snap0 = (np.full((2, 4, 2), 1.0), np.array([[True] * 4, [False] * 4]))
    snap1 = (np.full((2, 4, 2), 3.0), np.array([[True] * 4, [True] * 4]))
    apply_semantic(q, known, [snap0, snap1], [[0, 3], [0, 1, 3], [0, 1, 3]],
                   {0: [(0, 0), (1, 1)], 1: [(0, 0)]}, 2)
    np.testing.assert_allclose(q[:, 0], [[2.0, 2.0], [3.0, 3.0]])
    np.testing.assert_allclose(q[:, 1], [[1.0, 1.0], [0.0, 0.0]])
    assert known[:, 0].tolist() == [True, True] and known[:, 1].tolist() == [True, False]


# -- test episodes -----------------------------------------------------------------------------

def test_meta_learning_queries_and_fallback():
    _, stepper = corridor_stepper()                     # wood at cell 3, start at 2
    spec = MonitorTable(load_safeguard(WOOD_MEMORY), 3)
    table = QTable(6, 3, 3)
    q, known = table.Q, table.known
    q[:, 0, RIGHT] = 1.0
    known[:, 0] = True
    table.set_arrays(Q=q, known=known)
    stats = greedy_episode(stepper, table, spec, np.random.default_rng(0), max_steps=5)
    # (2, q0) is known; then (3, q1), (4, q1), (5, q1), (5, q1) are not: 4 queries, each
    # answered by Q[s, 0] (right)
    assert stats.meta_queries == 4 and not stats.violated and stats.length == 5
    assert stepper.env.executed == [RIGHT] * 5
    # no fallback row either: the paper's test takes action 0 (left)
    known[3, 0] = False
    table.set_arrays(known=known)
    stepper.env.executed.clear()
    stats = greedy_episode(stepper, table, spec, np.random.default_rng(0), max_steps=3)
    assert stepper.env.executed == [RIGHT, LEFT, RIGHT] and stats.meta_queries == 2


def test_evaluate_counts_success_and_violations(tmp_path):
    table = QTable(6, 2, 3)
    q = table.Q
    q[:, 0, LEFT] = 1.0                                 # walks into the lava at cell 0
    table.set_arrays(Q=q, known=np.ones((6, 2), bool))
    result = evaluate(table, env_id="test_learn/Corridor-v0", spec="G !lava", episodes=3,
                      max_steps=10)
    assert (result.violations, result.successes, result.mean_length) == (3, 0, 2.0)
    q[:, 0] = [0.0, 0.0, 1.0]                           # stays put
    table.set_arrays(Q=q)
    result = evaluate(table, env_id="test_learn/Corridor-v0", spec="G !lava", episodes=3,
                      max_steps=10)
    assert result.success_rate == 1.0 and result.violation_rate == 0.0
    assert result.meta_learning_queries == 0


# -- curricula, baselines, run directories ------------------------------------------------------

def corridor_config(**overrides) -> CurriculumConfig:
    env_kwargs = {"labels": ["lava", "", "", "wood", "", "lava", ""], "start": 2, "slip": 0.2}
    stages = [Stage("test_learn/Corridor-v0", env_kwargs, "G !lava", 12),
              Stage("test_learn/Corridor-v0", env_kwargs, WOOD_MEMORY, 12),
              Stage("test_learn/Corridor-v0", env_kwargs, WOOD_FREES_LAVA, 12)]
    values = dict(stages=stages, transfer="paper", seed=3, max_steps=40, epsilon=0.3,
                  test_episodes=5, checkpoint_every=5)
    values.update(overrides)
    return CurriculumConfig(**values)


def test_metrics_files_have_the_fields(tmp_path):
    result = run_curriculum(corridor_config(), tmp_path / "run", progress=False)
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 36 == result.episodes
    assert all(tuple(r) == METRIC_FIELDS for r in rows)
    assert [r["episode"] for r in rows] == list(range(36))
    assert [r["stage"] for r in rows] == [0] * 12 + [1] * 12 + [2] * 12
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert header.split(",") == list(METRIC_FIELDS)
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == 37
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["method"] == "paper" and config["alpha"] == 0.9
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["test"]["episodes"] == 5 and saved["episodes"] == 36
    assert result.stage_violations == [sum(r["violated"] for r in rows if r["stage"] == k)
                                       for k in range(3)]
    assert result.value_s0.tolist() == [r["value_s0"] for r in rows]
    meta = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert meta["episode"] == 36 and meta["stage"] == 3
    with pytest.raises(FileExistsError):
        run_curriculum(corridor_config(), tmp_path / "run", progress=False)


class Kill(KeyboardInterrupt):
    pass


@pytest.mark.parametrize("overrides, kill_after", [
    ({}, 18),                                        # mid-stage, 3 episodes after a checkpoint
    ({}, 24),                                        # exactly at a stage end
    ({"transfer": "semantic", "update": "paper"}, 13),
    ({"baseline": "intrinsic_fear"}, 22),
])
def test_resume_gives_the_uninterrupted_run(tmp_path, overrides, kill_after):
    config = corridor_config(**overrides)
    full = run_curriculum(config, tmp_path / "full", progress=False)

    def kill(record):
        if record["episode"] + 1 == kill_after:
            raise Kill

    with pytest.raises(Kill):
        run_curriculum(config, tmp_path / "killed", progress=False, on_episode=kill)
    logged = read_metrics(tmp_path / "killed")
    assert len(logged) == kill_after
    resumed = run_curriculum(config, tmp_path / "killed", resume=True, progress=False)
    np.testing.assert_array_equal(resumed.table.Q, full.table.Q)
    np.testing.assert_array_equal(resumed.table.U, full.table.U)
    np.testing.assert_array_equal(resumed.table.known, full.table.known)
    for name in ("metrics.jsonl", "metrics.csv"):
        assert (tmp_path / "killed" / name).read_text() == (tmp_path / "full" / name).read_text()
    assert resumed.test == full.test
    assert resumed.stage_violations == full.stage_violations


def test_resume_rejects_another_configuration(tmp_path):
    run_curriculum(corridor_config(test_episodes=0), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        run_curriculum(corridor_config(test_episodes=0, seed=4), tmp_path / "run",
                       resume=True, progress=False)


def test_baselines_run(tmp_path):
    results = {}
    for baseline in ("no_safeguard", "scratch", "intrinsic_fear"):
        results[baseline] = run_curriculum(corridor_config(baseline=baseline),
                                           tmp_path / baseline, progress=False)
        rows = read_metrics(tmp_path / baseline)
        assert len(rows) == 36 and {r["stage"] for r in rows} == {0}
        assert {r["method"] for r in rows} == {baseline}
        assert results[baseline].test.episodes == 5
    # no safeguard: the table has no safeguard dimension, the task reward is all it learns
    assert results["no_safeguard"].table.n_slots == 1
    assert np.all(results["no_safeguard"].table.Q == 0.0)
    rows = read_metrics(tmp_path / "no_safeguard")
    assert all(r["violated"] == r["violated_final"] for r in rows)
    assert any(r["violated_final"] for r in rows)
    # scratch and intrinsic fear train on the final spec (3 safeguard states -> 2 live slots)
    assert results["scratch"].table.n_slots == 3
    assert not np.array_equal(results["scratch"].table.Q, results["intrinsic_fear"].table.Q)


def test_fear_model_counts_danger_before_violations():
    fear = FearModel(10, radius=2, penalty=0.5)
    fear.record([1, 2, 3, 4], violated=True)
    assert fear.danger[3] == fear.danger[4] == 1 and fear.safe[1] == fear.safe[2] == 1
    fear.record([3, 4, 5], violated=False)             # 4 and 5 are within the radius
    assert fear.fear[3] == 0.5 and fear.fear[4] == 1.0 and fear.fear[5] == 0.0


def test_run_dir_truncates_metrics_on_restart(tmp_path):
    run = RunDir(tmp_path)
    run.start_metrics()
    for i in range(5):
        run.log({"episode": i, "return": float(i), "violated_rules": []})
    run.close()
    run.start_metrics(keep=3)
    run.log({"episode": 3, "return": 30.0, "violated_rules": ["x"]})
    run.close()
    assert [r["return"] for r in read_metrics(tmp_path)] == [0.0, 1.0, 2.0, 30.0]
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 5


# -- the Minecraft gridworld --------------------------------------------------------------------

minecraft = pytest.importorskip("safeguards.envs.gridworld.minecraft")


def test_minecraft_fast_path_moves_like_the_environment():
    env = gym.make("safeguards/Minecraft-L1-v0", slip=0.0)
    stepper = make_stepper(env, minecraft.MinecraftLabeler())
    assert isinstance(stepper, MinecraftStepper)
    assert not MinecraftStepper.applies(env, CorridorLabeler())
    raw = env.unwrapped
    rng = np.random.default_rng(0)
    stepper.seed(0)
    for _ in range(5):
        obs = stepper.reset()
        assert stepper._labels == raw.labels.ravel().tolist()
        for _ in range(60):
            action = int(rng.integers(5))
            cell = stepper._cell
            row, col = divmod(cell, 10)
            raw.agent_pos = (col + 1, row + 1)
            expected, _, _, _, info = raw.step(action)
            obs, key, reward, terminated, truncated = stepper.step(action)
            assert obs == expected and key == info["label"] and reward == 0.0
            assert stepper.valuation(key) == frozenset(minecraft.MinecraftLabeler()(
                obs, info, action))
    # slipping: the drawn replacement action is executed
    slippery = make_stepper(gym.make("safeguards/Minecraft-L1-v0", slip=1.0),
                            minecraft.MinecraftLabeler(), max_steps=3)
    slippery.seed(1)
    start = slippery.reset()
    cell = slippery.step(0)[0]
    assert cell == slippery.next_cell[start * 5 + slippery._slip_action[0]]
    assert slippery.step(0)[4] is False and slippery.step(0)[4] is True   # truncation


def test_minecraft_curriculum_resumes(tmp_path):
    config = CurriculumConfig.paper(episodes=40, switch_every=10, max_steps=60,
                                    test_episodes=3, checkpoint_every=7, seed=1)
    full = run_curriculum(config, tmp_path / "full", progress=False)

    def kill(record):
        if record["episode"] == 24:
            raise Kill

    with pytest.raises(Kill):
        run_curriculum(config, tmp_path / "killed", progress=False, on_episode=kill)
    resumed = run_curriculum(config, tmp_path / "killed", resume=True, progress=False)
    np.testing.assert_array_equal(resumed.table.Q, full.table.Q)
    assert (tmp_path / "killed" / "metrics.jsonl").read_text() == \
        (tmp_path / "full" / "metrics.jsonl").read_text()
    assert resumed.test == full.test
    assert full.table.Q.shape == (100, 6, 5)


@pytest.mark.slow
def test_bench_curriculum_quick(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_curriculum.py"
    subprocess.run([sys.executable, str(script), "--quick", "--methods", "paper",
                    "--out-dir", str(tmp_path)], check=True, timeout=300, capture_output=True)
    data = json.loads((tmp_path / "curriculum_quick.json").read_text())
    assert data["benchmark"] == "curriculum" and data["quick"] is True
    (entry,) = data["results"]
    assert entry["method"] == "paper" and entry["episodes"] == 400 and entry["steps"] > 0
    assert {"wall_s", "cpu_s", "cpu_us_per_step", "met_cpu", "test"} <= entry.keys()
    assert (tmp_path / "curriculum_quick.md").read_text().startswith("# Curriculum benchmark")
    assert not list(tmp_path.glob(".*.tmp"))
