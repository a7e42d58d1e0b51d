"""Reward modes of the product MDP: what a safeguard adds to (or makes of) the task reward.

Each mode is a callable ``mode(task_reward, step) -> float`` where ``step`` is a
:class:`SafeguardStep`; the built-ins also take a whole batch of steps at once,
``mode.batch(task_rewards, steps) -> array`` with :class:`SafeguardSteps` (one step per
sub-environment of a vector environment), giving the same numbers as calling them step by step.
:func:`batch_rewards` applies any mode to a batch (calling a plain callable step by step).
Built-ins:

* :class:`Penalty` — the task reward minus each violated rule's ``penalty`` weight (times a scale).
* :class:`PaperShaping` — the Progressive Safeguards shaping (Omi, Hasanbeig et al. 2024, as
  their Minecraft code does it): +0.1 when the reached safeguard state accepts, -0.1 on
  violation, 0 otherwise, added to the task reward (which is 0 in their gridworld).
* :class:`PotentialShaping` — potential-based shaping ``r + gamma * phi(q') - phi(q)`` (Ng et al.
  1999) with ``phi`` from the automaton's distances to acceptance and to violation; it leaves
  the optimal policies of the product MDP unchanged.
* any callable with the same signature.

>>> import safeguards
>>> sg = safeguards.compile_ltl("G !lava")
>>> step = SafeguardStep(sg, 0, 1, frozenset({"formula"}), terminated=True)
>>> Penalty()(1.0, step), PaperShaping()(0.0, step)
(0.0, -0.1)
>>> steps = SafeguardSteps(sg, np.array([0, 0]), np.array([1, 0]), {0: frozenset({"formula"})},
...                        np.array([True, False]))
>>> batch_rewards(PaperShaping(), np.zeros(2), steps).tolist()
[-0.1, 0.1]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Literal, Mapping

import numpy as np

from safeguards.automata import Safeguard, Verdict

__all__ = ["SafeguardStep", "SafeguardSteps", "RewardMode", "Penalty", "PaperShaping",
           "PotentialShaping", "TaskReward", "reward_mode", "batch_rewards", "potential"]


@dataclass(frozen=True)
class SafeguardStep:
    """One step of the safeguard: ``state -> next_state``, the rules this step violated, and the
    rules still pending when the episode ended on this step (finite semantics).

    When the safeguard restarts after a violation (``after_violation="reset"``), ``next_state``
    is the initial state the next step starts from, so potentials telescope.
    """

    safeguard: Safeguard
    state: int
    next_state: int
    violated_rules: frozenset[str] = frozenset()
    terminated: bool = False
    pending_rules: frozenset[str] = field(default=frozenset())

    @property
    def violated(self) -> bool:
        return bool(self.violated_rules)


@dataclass(frozen=True)
class SafeguardSteps:
    """A batch of :class:`SafeguardStep`, one per sub-environment: ``state``, ``next_state``
    (``int64`` arrays) and ``terminated`` (``bool`` array), the rules violated and pending as
    ``{sub-env: rules}`` for the sub-envs that have any, and ``active``, the sub-envs that
    stepped (``None``: all; the others keep their task reward)."""

    safeguard: Safeguard
    state: np.ndarray
    next_state: np.ndarray
    violated_rules: Mapping[int, frozenset[str]]
    terminated: np.ndarray
    pending_rules: Mapping[int, frozenset[str]] = field(default_factory=dict)
    active: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.state)

    def __getitem__(self, i: int) -> SafeguardStep:
        return SafeguardStep(self.safeguard, int(self.state[i]), int(self.next_state[i]),
                             self.violated_rules.get(i, frozenset()), bool(self.terminated[i]),
                             self.pending_rules.get(i, frozenset()))

    def indices(self) -> list[int]:
        """The sub-envs that stepped."""
        return list(range(len(self))) if self.active is None else \
            np.flatnonzero(self.active).tolist()


RewardMode = Callable[[float, SafeguardStep], float]


def batch_rewards(mode: RewardMode, task: np.ndarray, steps: SafeguardSteps) -> np.ndarray:
    """``mode`` applied to every step of a batch (``float64``): its ``batch`` method if it has
    one, else step by step; sub-envs that did not step keep their task reward."""
    batch = getattr(mode, "batch", None)
    if batch is None:
        shaped = np.array(task, dtype=np.float64)
        for i in steps.indices():
            shaped[i] = mode(float(task[i]), steps[i])
        return shaped
    shaped = batch(np.asarray(task, dtype=np.float64), steps)
    if steps.active is not None:
        shaped[~steps.active] = task[~steps.active]
    return shaped


@lru_cache(maxsize=64)
def _verdict_arrays(safeguard: Safeguard) -> tuple[np.ndarray, np.ndarray]:
    """``(accepting, violation)`` of every state, as bool arrays."""
    violation = np.array([v == Verdict.VIOLATED for v in safeguard.verdicts], dtype=bool)
    return np.asarray(safeguard.accepting, dtype=bool), violation


class TaskReward:
    """The task reward, unchanged (``reward="task"``)."""

    def __call__(self, task_reward: float, step: SafeguardStep) -> float:
        return float(task_reward)

    def batch(self, task: np.ndarray, steps: SafeguardSteps) -> np.ndarray:
        return task.copy()


def _weights(safeguard: Safeguard) -> dict[str, float]:
    return {rule.name: rule.penalty for rule in safeguard.rules}


@dataclass(frozen=True)
class Penalty:
    """``task_reward - scale * sum(penalty of each violated rule)``; pending rules at the end of
    an episode cost ``terminal_scale`` times their penalty."""

    scale: float = 1.0
    terminal_scale: float = 0.0

    def __call__(self, task_reward: float, step: SafeguardStep) -> float:
        weights = _weights(step.safeguard)
        cost = self.scale * sum(weights[r] for r in step.violated_rules)
        cost += self.terminal_scale * sum(weights[r] for r in step.pending_rules)
        return float(task_reward) - cost

    def batch(self, task: np.ndarray, steps: SafeguardSteps) -> np.ndarray:
        shaped = task.copy()
        for i in sorted(set(steps.violated_rules) | set(steps.pending_rules)):
            shaped[i] = self(float(task[i]), steps[i])
        return shaped


@dataclass(frozen=True)
class PaperShaping:
    """+``bonus`` if the reached state accepts, -``bonus`` on violation, else 0 (plus the task
    reward); the paper uses 0.1."""

    bonus: float = 0.1

    def __call__(self, task_reward: float, step: SafeguardStep) -> float:
        if step.violated or step.safeguard.verdict(step.next_state) == Verdict.VIOLATED:
            flag = -1.0
        else:
            flag = 1.0 if step.safeguard.is_accepting(step.next_state) else 0.0
        return float(task_reward) + self.bonus * flag

    def batch(self, task: np.ndarray, steps: SafeguardSteps) -> np.ndarray:
        accepting, violation = _verdict_arrays(steps.safeguard)
        flag = np.where(accepting[steps.next_state], 1.0, 0.0)
        flag[violation[steps.next_state]] = -1.0
        if steps.violated_rules:
            flag[list(steps.violated_rules)] = -1.0
        return task + self.bonus * flag


def potential(safeguard: Safeguard, acceptance_weight: float = 1.0,
              safety_weight: float = 1.0) -> np.ndarray:
    """``phi[q]`` in ``[0, acceptance_weight + safety_weight]``: higher when fewer steps separate
    ``q`` from acceptance and more separate it from violation; 0 in the violation state.

    >>> import safeguards
    >>> potential(safeguards.compile_ltl("X[!] a & G !b")).round(2).tolist()
    [0.83, 1.17, 1.5, 0.0]
    """
    n = safeguard.n_states
    to_accept = [safeguard.distance_to_acceptance(q) for q in range(n)]
    to_violate = [safeguard.distance_to_violation(q) for q in range(n)]
    longest_accept = max([d for d in to_accept if d is not None], default=0) + 1
    finite_violate = [d for d in to_violate if d is not None]
    horizon = max(finite_violate, default=0) + 1
    phi = np.zeros(n)
    for q in range(n):
        if safeguard.verdict(q) == Verdict.VIOLATED:
            continue
        if to_accept[q] is not None:
            phi[q] += acceptance_weight * (1 - to_accept[q] / longest_accept)
        phi[q] += safety_weight * (min(to_violate[q], horizon) / horizon
                                   if to_violate[q] is not None else 1.0)
    return phi


class PotentialShaping:
    """``task_reward + scale * (gamma * phi(q') - phi(q))``, with ``phi(q') = 0`` when the episode
    terminates (so that shaping cannot change which policies are optimal)."""

    def __init__(self, gamma: float = 0.99, scale: float = 1.0, acceptance_weight: float = 1.0,
                 safety_weight: float = 1.0) -> None:
        self.gamma = gamma
        self.scale = scale
        self.acceptance_weight = acceptance_weight
        self.safety_weight = safety_weight
        self._cache: dict[Safeguard, np.ndarray] = {}

    def phi(self, safeguard: Safeguard) -> np.ndarray:
        if safeguard not in self._cache:
            self._cache[safeguard] = potential(safeguard, self.acceptance_weight,
                                               self.safety_weight)
        return self._cache[safeguard]

    def __call__(self, task_reward: float, step: SafeguardStep) -> float:
        phi = self.phi(step.safeguard)
        after = 0.0 if step.terminated else self.gamma * phi[step.next_state]
        return float(task_reward) + self.scale * (after - phi[step.state])

    def batch(self, task: np.ndarray, steps: SafeguardSteps) -> np.ndarray:
        phi = self.phi(steps.safeguard)
        ahead = np.where(steps.terminated, 0.0, self.gamma * phi[steps.next_state])
        return task + self.scale * (ahead - phi[steps.state])


def reward_mode(mode: Literal["task", "penalty", "paper", "potential"] | RewardMode | None,
                gamma: float = 0.99) -> RewardMode:
    """Resolve a reward mode given by name (``task`` leaves the reward unchanged)."""
    if callable(mode):
        return mode
    if mode in (None, "task"):
        return TASK
    if mode == "penalty":
        return Penalty()
    if mode == "paper":
        return PaperShaping()
    if mode == "potential":
        return PotentialShaping(gamma)
    raise ValueError(f"unknown reward mode {mode!r}; use 'task', 'penalty', 'paper', "
                     "'potential' or a callable (task_reward, step) -> float")


#: ``reward="task"``.
TASK = TaskReward()
