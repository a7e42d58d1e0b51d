"""Reward modes: a batch of steps gives exactly the numbers of the steps one by one."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gymnasium")

import safeguards  # noqa: E402
from safeguards.gym.rewards import (  # noqa: E402
    TASK, PaperShaping, Penalty, PotentialShaping, SafeguardStep, SafeguardSteps, batch_rewards,
    reward_mode,
)

SPEC = '''spec s
props: a b c
rule never_a (penalty = 2): ltl G !a
rule b_then_c (penalty = 0.5): ltl G (b -> X c)
rule eventually_c: ltl F c
'''


def random_batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, SafeguardSteps]:
    sg = safeguards.compile(SPEC)
    state = rng.integers(sg.n_states, size=n)
    letters = [frozenset(p for p in sg.props if rng.random() < 0.4) for _ in range(n)]
    violated, pending, after = {}, {}, np.empty(n, dtype=np.int64)
    terminated = rng.random(n) < 0.3
    for i in range(n):
        after[i] = sg.step(int(state[i]), letters[i])
        rules = sg.step_violations(int(state[i]), letters[i])
        if rules:
            violated[i] = rules
        if terminated[i] and sg.pending_rules(int(after[i])):
            pending[i] = sg.pending_rules(int(after[i]))
    active = rng.random(n) < 0.8
    task = rng.normal(size=n)
    return task, SafeguardSteps(sg, state, after, violated, terminated, pending, active)


@pytest.mark.parametrize("mode", [
    TASK, Penalty(), Penalty(scale=0.5, terminal_scale=1.0), PaperShaping(),
    PaperShaping(bonus=0.3), PotentialShaping(0.9), PotentialShaping(0.99, scale=2.0),
    lambda task, step: task - 3.0 * step.violated + step.next_state,
], ids=lambda mode: type(mode).__name__)
def test_batch_equals_one_by_one(mode) -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        task, steps = random_batch(rng, 64)
        batch = batch_rewards(mode, task, steps)
        for i in range(len(steps)):
            expected = mode(float(task[i]), steps[i]) if steps.active[i] else task[i]
            assert batch[i] == expected  # the same floating-point operations


def test_steps_of_a_batch_are_safeguard_steps() -> None:
    task, steps = random_batch(np.random.default_rng(0), 8)
    step = steps[3]
    assert isinstance(step, SafeguardStep) and step.state == steps.state[3]
    assert steps.indices() == np.flatnonzero(steps.active).tolist()


def test_reward_modes_by_name() -> None:
    assert reward_mode("task") is TASK and reward_mode(None) is TASK
    assert isinstance(reward_mode("potential", 0.5), PotentialShaping)
    with pytest.raises(ValueError, match="unknown reward mode"):
        reward_mode("bonus")
