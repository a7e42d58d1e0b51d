"""Potential-based shaping leaves the optimal policies of the product MDP unchanged.

A small random tabular MDP (seeded) with a labelling ``L(s)`` over two propositions is composed
with a safeguard into the product MDP ``(s, q)``, built explicitly: ``s' ~ P(s, a)``,
``q' = delta(q, L(s'))``, reward ``R(s, a, s')`` (optionally with the rule penalties), and an
episode terminates on a violation (or stays in the sink).  Value iteration solves it with and
without :class:`~safeguards.gym.PotentialShaping`; the greedy policies must agree (Ng et al.
1999) while the values differ by exactly ``phi(q)``.  A non-potential shaping (the paper's
+0.1/-0.1) can change the optimal policy, and the comparison notices.  The explicit model is
checked against :class:`~safeguards.gym.SafeguardWrapper` on sampled transitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

pytest.importorskip("gymnasium")

import gymnasium as gym
from gymnasium import spaces

import safeguards
from safeguards.automata import Safeguard, Verdict
from safeguards.gym import (
    PaperShaping, Penalty, PotentialShaping, SafeguardStep, SafeguardWrapper, potential,
    reward_mode,
)
from safeguards.labels import InfoLabeler

PROPS = ("a", "b")
Reward = Callable[[float, SafeguardStep], float]


@dataclass
class TabularMDP:
    P: np.ndarray                       # (S, A, S) transition probabilities
    R: np.ndarray                       # (S, A, S) rewards
    labels: list[frozenset[str]]        # L(s)
    s0: int = 0

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


def random_mdp(seed: int, n_states: int = 6, n_actions: int = 3) -> TabularMDP:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.full(n_states, 0.3), size=(n_states, n_actions))
    R = rng.normal(size=(n_states, n_actions, n_states))
    labels = [frozenset(p for p in PROPS if rng.random() < 0.4) for _ in range(n_states)]
    return TabularMDP(P, R, labels)


@dataclass
class Product:
    """The product MDP over the pairs ``(s, q)`` (q the live safeguard states, plus the sink
    when violations do not terminate)."""

    states: list[tuple[int, int]]
    expected_reward: np.ndarray         # (X, A)
    transitions: np.ndarray             # (X, A, X); mass missing = termination

    def q_values(self, gamma: float, tol: float = 1e-10, max_iter: int = 200_000) -> np.ndarray:
        n, n_actions = self.expected_reward.shape
        reward = self.expected_reward.ravel()
        transitions = self.transitions.reshape(n * n_actions, n)
        q = np.zeros(n * n_actions)
        for _ in range(max_iter):
            new = reward + gamma * (transitions @ q.reshape(n, n_actions).max(axis=1))
            if np.abs(new - q).max() < tol:
                return new.reshape(n, n_actions)
            q = new
        raise AssertionError("value iteration did not converge")


def product(mdp: TabularMDP, sg: Safeguard, reward: Reward, terminate: bool = True) -> Product:
    """``reward(task_reward, step)`` as the wrapper calls it."""
    keep = [q for q in range(sg.n_states)
            if terminate is False or sg.verdict(q) != Verdict.VIOLATED]
    states = [(s, q) for s in range(mdp.n_states) for q in keep]
    index = {x: i for i, x in enumerate(states)}
    er = np.zeros((len(states), mdp.n_actions))
    tr = np.zeros((len(states), mdp.n_actions, len(states)))
    for i, (s, q) in enumerate(states):
        for a in range(mdp.n_actions):
            for s2 in range(mdp.n_states):
                p = mdp.P[s, a, s2]
                violated = sg.step_violations(q, mdp.labels[s2])
                q2 = sg.step(q, mdp.labels[s2])
                ends = terminate and bool(violated)
                r = reward(float(mdp.R[s, a, s2]), SafeguardStep(sg, q, q2, violated, ends))
                er[i, a] += p * r
                if not ends:
                    tr[i, a, index[(s2, q2)]] += p
    return Product(states, er, tr)


def greedy_agrees(q_ref: np.ndarray, q_other: np.ndarray, gap: float = 1e-6) -> bool:
    """Do the greedy actions agree wherever the reference's best action is clear?"""
    for row_ref, row_other in zip(q_ref, q_other):
        order = np.sort(row_ref)
        if len(order) > 1 and order[-1] - order[-2] <= gap:
            continue
        if np.argmax(row_ref) != np.argmax(row_other):
            return False
    return True


def shaped(base: Reward, shaping: Reward) -> Reward:
    """Apply ``shaping`` on top of ``base`` (both take the task reward and the step)."""
    return lambda r, step: shaping(base(r, step), step)


def task(r: float, step: SafeguardStep) -> float:
    return r


SPECS = {
    "response": "G(a -> X !b)",
    "reach-avoid": "F b & G !(a & b)",
    "strong-response": "G(a -> X[!] b)",
    "until": "!b U a",
    "two-rules": """spec two
props: a b
rule resp (penalty = 2): ltl G(a -> X !b)
rule reach: ltl F b
""",
}


def compile_spec(spec: str) -> Safeguard:
    return safeguards.compile(spec) if "\n" in spec else safeguards.compile_ltl(spec)


# -- policy invariance -------------------------------------------------------------------------
@pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
@pytest.mark.parametrize(("base_name", "terminate"), [("task", True), ("penalty", True),
                                                      ("penalty", False)])
def test_potential_shaping_keeps_the_optimal_policies(spec: str, seed: int, gamma: float,
                                                      base_name: str, terminate: bool) -> None:
    sg = compile_spec(spec)
    assert sg.props == PROPS and sg.violation_state is not None
    mdp = random_mdp(seed)
    base: Reward = task if base_name == "task" else Penalty(scale=3.0)
    q_plain = product(mdp, sg, base, terminate).q_values(gamma)
    prod = product(mdp, sg, shaped(base, reward_mode("potential", gamma)), terminate)
    q_shaped = prod.q_values(gamma)

    assert greedy_agrees(q_plain, q_shaped)
    # Ng et al.: Q*_shaped(x, a) = Q*(x, a) - phi(x); the shaping really does something.
    phi = potential(sg)
    offsets = np.array([phi[q] for _, q in prod.states])
    np.testing.assert_allclose(q_shaped, q_plain - offsets[:, None], atol=1e-6)
    assert np.max(np.abs(q_shaped.max(axis=1) - q_plain.max(axis=1))) > 0.1


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("weights", [(1.0, 0.0), (0.0, 1.0), (3.0, 0.5)])
def test_every_weighting_of_the_potential_keeps_the_policies(seed: int,
                                                             weights: tuple[float, float]) -> None:
    sg = compile_spec(SPECS["two-rules"])
    mdp = random_mdp(100 + seed)
    shaping = PotentialShaping(0.9, scale=2.0, acceptance_weight=weights[0],
                               safety_weight=weights[1])
    q_plain = product(mdp, sg, Penalty()).q_values(0.9)
    q_shaped = product(mdp, sg, shaped(Penalty(), shaping)).q_values(0.9)
    assert greedy_agrees(q_plain, q_shaped)


def test_the_random_mdps_have_policies_that_depend_on_the_safeguard() -> None:
    # Otherwise the invariance tests would be vacuous: at least one random product has states
    # (s, q), (s, q') with different optimal actions.
    sg = compile_spec(SPECS["two-rules"])
    differs = 0
    for seed in range(5):
        prod = product(random_mdp(seed), sg, Penalty(scale=3.0))
        best = prod.q_values(0.9).argmax(axis=1)
        by_s: dict[int, set[int]] = {}
        for (s, _), a in zip(prod.states, best):
            by_s.setdefault(s, set()).add(int(a))
        differs += any(len(v) > 1 for v in by_s.values())
    assert differs > 0


# -- a shaping that is not potential-based can change the policy -------------------------------
def hazard_mdp() -> TabularMDP:
    """s0: action 0 -> s1 (a safe loop, reward 0), action 1 -> s2 (a hazard, reward 0.5)."""
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[0, 1, 2] = 1.0
    P[1, :, 1] = 1.0
    P[2, :, 2] = 1.0
    R = np.zeros((3, 2, 3))
    R[0, 1, 2] = 0.5
    return TabularMDP(P, R, [frozenset(), frozenset(), frozenset({"a"})])


def test_paper_shaping_can_change_the_optimal_policy() -> None:
    sg = compile_spec("G !a")
    mdp = hazard_mdp()
    x0 = product(mdp, sg, task).states.index((0, sg.initial))
    q_plain = product(mdp, sg, task).q_values(0.9)
    q_paper = product(mdp, sg, shaped(task, PaperShaping())).q_values(0.9)
    q_bonus = product(mdp, sg, shaped(task, lambda r, step: PaperShaping()(r, step) + 0.2)
                      ).q_values(0.9)
    q_potential = product(mdp, sg, shaped(task, PotentialShaping(0.9))).q_values(0.9)
    assert q_plain[x0].tolist() == pytest.approx([0.0, 0.5])        # take the hazard
    assert q_paper[x0].tolist() == pytest.approx([1.0, 0.4])        # 0.1 / (1 - 0.9) vs 0.5 - 0.1
    assert not greedy_agrees(q_plain, q_paper)
    assert not greedy_agrees(q_plain, q_bonus)
    assert greedy_agrees(q_plain, q_potential)


# -- the explicit product agrees with the wrapper ----------------------------------------------
class TabularEnv(gym.Env):
    """The random MDP as a Gymnasium env; ``info`` carries the labels of the reached state."""

    def __init__(self, mdp: TabularMDP) -> None:
        self.mdp = mdp
        self.observation_space = spaces.Discrete(mdp.n_states)
        self.action_space = spaces.Discrete(mdp.n_actions)
        self.s = mdp.s0

    def _info(self) -> dict[str, Any]:
        return {p: p in self.mdp.labels[self.s] for p in PROPS}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.s = self.mdp.s0
        return self.s, self._info()

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        s = self.s
        self.s = int(self.np_random.choice(self.mdp.n_states, p=self.mdp.P[s, action]))
        return self.s, float(self.mdp.R[s, action, self.s]), False, False, self._info()


@pytest.mark.parametrize("spec", list(SPECS.values()), ids=list(SPECS))
@pytest.mark.parametrize(("base_name", "terminate"), [("task", True), ("penalty", True),
                                                      ("penalty", False)])
def test_the_explicit_product_is_the_wrapper(spec: str, base_name: str, terminate: bool) -> None:
    gamma = 0.9
    sg = compile_spec(spec)
    mdp = random_mdp(7)
    base: Reward = task if base_name == "task" else Penalty(scale=3.0)
    mode = reward_mode("potential", gamma) if base_name == "task" else \
        shaped(base, PotentialShaping(gamma))
    env = SafeguardWrapper(TabularEnv(mdp), sg, InfoLabeler(PROPS), reward=mode,
                           terminate_on_violation=terminate,
                           after_violation="reset" if terminate else "stay")
    rng = np.random.default_rng(0)
    checked = 0
    obs, _ = env.reset(seed=0)
    for _ in range(300):
        action = int(rng.integers(mdp.n_actions))
        s, q = obs["obs"], obs["safeguard"]
        obs, reward, terminated, truncated, info = env.step(action)
        s2, q2 = obs["obs"], obs["safeguard"]
        assert q2 == sg.step(q, mdp.labels[s2])
        violated = sg.step_violations(q, mdp.labels[s2])
        assert terminated == (terminate and bool(violated))
        expected = mode(float(mdp.R[s, action, s2]), SafeguardStep(sg, q, q2, violated,
                                                                    terminated))
        assert reward == pytest.approx(expected, abs=1e-12)
        checked += 1
        if terminated or truncated:
            obs, _ = env.reset()
    assert checked == 300
