"""Tabular Q-learning on the product MDP of an environment and a safeguard.

The agent's state is the pair (environment observation ``s``, safeguard state ``q``); the table
``Q[s, slot(q), a]`` keys the safeguard state by its *slot* (:func:`~safeguards.learn.transfer.
slot_map`: live states in id order, the violation sink last), so that tables can be shared
across a sequence of safeguards as the Progressive Safeguards paper does.

One step, exactly as :class:`~safeguards.gym.SafeguardWrapper` with ``reward="paper"`` and
``terminate_on_violation=True`` defines it::

    a      = epsilon-greedy on Q[s, q]            (ties between maximal actions broken uniformly)
    s'     = env.step(a);  q' = delta(q, L(s'))   (the label of the state *reached*)
    r      = task reward + 0.1 if q' accepts, -0.1 if q' is the violation state, else 0
    done   = q' is the violation state, or the environment ends the episode
    Q[s, q, a] <- (1 - alpha) Q[s, q, a] + alpha (r + gamma * max_a' Q[s', q', a'])

``update="standard"`` (default) is textbook Q-learning: the executed action is updated and a
terminal transition (violation, environment termination) does not bootstrap.  Truncation at
``max_steps`` bootstraps (the state is not terminal).  ``update="paper"`` does what the authors'
``minecraft.py`` does: the update is applied to the *greedy* action ``argmax_a Q[s, q, a]`` even
when an exploratory action was executed, and the target always bootstraps from the table, also
from the violation state's entry ``Q[s', sink]``, which is never updated itself (it keeps the
value it was initialised with: 0, or the paper's transfer average).

A pessimistic twin table ``U`` is learnt alongside with a min-backup
(``r + gamma * min_a' U[s', q', a']``; the paper plots ``min_a U[s0, q0, a]``); it never
influences the policy.  In ``update="paper"`` it updates its own argmin action, as the code does;
otherwise the executed action.

Speed: the tables live as Python lists of rows while an episode runs (``Q[s, slot]`` is row
``s * n_slots + slot``); numpy copies are made on demand (:attr:`QTable.Q`).  Random numbers for
a whole episode are drawn from the ``numpy.random.Generator`` at its start, so the generator's
state at episode boundaries fully determines the rest of a run (checkpoints rely on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Hashable, Protocol, Sequence

import numpy as np
from pydantic.dataclasses import dataclass as pydantic_dataclass

from safeguards.automata import Safeguard, Verdict
from safeguards.config import SCHEMA, one_of
from safeguards.gym.rewards import SafeguardStep, reward_mode
from safeguards.learn.config import LearningRate, Probability, Update
from safeguards.learn.transfer import paper_initial_row, slot_map

__all__ = ["QLearningConfig", "QTable", "MonitorTable", "FearModel", "EpisodeStats", "Stepper",
           "run_episode", "greedy_episode"]


@pydantic_dataclass(config=SCHEMA)
class QLearningConfig:
    """Hyperparameters of tabular Q-learning (defaults: the paper's Minecraft values)."""

    alpha: LearningRate = 0.9
    """Learning rate, constant (the paper disables decay)."""
    gamma: Probability = 0.9
    """Discount factor."""
    epsilon: Probability = 0.1
    """Probability of a uniformly random action (which may coincide with the greedy one)."""
    update: Annotated[Update, one_of(Update)] = "standard"
    """``standard``: update the executed action, no bootstrap from terminal states.  ``paper``:
    update the greedy action and always bootstrap, as the authors' code does."""
    q_init: float = 0.0
    """Initial value of every table entry (the paper: 0)."""


class QTable:
    """``Q[obs, slot, action]``, its pessimistic twin ``U`` and ``known[obs, slot]`` (the product
    state has been visited, or initialised by a transfer: the paper's "key exists in Q").

    >>> table = QTable(n_obs=3, n_slots=2, n_actions=4)
    >>> table.Q.shape, table.known.shape
    ((3, 2, 4), (3, 2))
    """

    def __init__(self, n_obs: int, n_slots: int, n_actions: int, q_init: float = 0.0) -> None:
        self.n_obs, self.n_slots, self.n_actions = int(n_obs), int(n_slots), int(n_actions)
        self.q_init = float(q_init)
        self.reset()

    def reset(self) -> None:
        """Every entry back to ``q_init`` (U to 0) and nothing known."""
        rows = self.n_obs * self.n_slots
        self.q_rows: list[list[float]] = [[self.q_init] * self.n_actions for _ in range(rows)]
        self.u_rows: list[list[float]] = [[0.0] * self.n_actions for _ in range(rows)]
        self.known_rows = bytearray(rows)

    def row(self, obs: int, slot: int) -> int:
        """Index of the row ``(obs, slot)`` in :attr:`q_rows`."""
        return obs * self.n_slots + slot

    # numpy views (copies) of the tables
    @property
    def Q(self) -> np.ndarray:  # noqa: N802 - the conventional name
        return np.array(self.q_rows, dtype=np.float64).reshape(self.n_obs, self.n_slots,
                                                               self.n_actions)

    @property
    def U(self) -> np.ndarray:  # noqa: N802
        return np.array(self.u_rows, dtype=np.float64).reshape(self.n_obs, self.n_slots,
                                                               self.n_actions)

    @property
    def known(self) -> np.ndarray:
        return np.frombuffer(bytes(self.known_rows), dtype=np.uint8).astype(bool).reshape(
            self.n_obs, self.n_slots)

    def set_arrays(self, Q: np.ndarray | None = None, U: np.ndarray | None = None,  # noqa: N803
                   known: np.ndarray | None = None) -> None:
        """Replace tables from numpy arrays of the shapes of :attr:`Q`, :attr:`U`, :attr:`known`."""
        shape = (self.n_obs, self.n_slots, self.n_actions)
        if Q is not None:
            self.q_rows = np.asarray(Q, dtype=np.float64).reshape(-1, self.n_actions).tolist()
            _check_shape("Q", Q, shape)
        if U is not None:
            self.u_rows = np.asarray(U, dtype=np.float64).reshape(-1, self.n_actions).tolist()
            _check_shape("U", U, shape)
        if known is not None:
            _check_shape("known", known, shape[:2])
            self.known_rows = bytearray(np.asarray(known, dtype=np.uint8).reshape(-1).tobytes())

    def value(self, obs: int, slot: int) -> float:
        """``max_a Q[obs, slot, a]``."""
        return max(self.q_rows[obs * self.n_slots + slot])


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if np.shape(array) != shape:
        raise ValueError(f"{name} has shape {np.shape(array)}, expected {shape}")


class MonitorTable:
    """A compiled safeguard flattened for the learning loop: transition rows, the reward of
    every ``(state, letter)`` under a reward mode, which states are violations, table slots
    (``observed=False``: the agent does not see the safeguard, every state is slot 0).

    ``reward`` is a :func:`~safeguards.gym.rewards.reward_mode` name or callable; the shaping it
    adds on a step from ``q`` on letter ``l`` is ``mode(0.0, SafeguardStep(q, q', violated
    rules, terminated=violated))``, added to the task reward (so modes must be additive in the
    task reward and must not depend on end-of-episode pending rules: ``paper``, ``penalty``,
    ``task`` are).

    >>> from safeguards import load_safeguard
    >>> table = MonitorTable(load_safeguard("minecraft/safeguard0"), n_slots=6)
    >>> table.slot, table.violation, table.reward
    ([0, 5], [False, True], [[0.1, -0.1], [0.0, 0.0]])
    """

    def __init__(self, sg: Safeguard, n_slots: int, reward: Any = "paper", *,
                 observed: bool = True) -> None:
        if reward == "potential":
            raise ValueError("reward='potential' depends on how the episode ends; the tabular "
                             "learner supports 'paper', 'penalty' and 'task'")
        self.sg = sg
        self.props = frozenset(sg.props)
        self.initial = sg.initial
        self.n_states = sg.n_states
        self.rows: list[list[int]] = sg.table.tolist()
        self.violation: list[bool] = [v == Verdict.VIOLATED for v in sg.verdicts]
        #: ``slot[q]``: the table slot of state ``q`` (all 0 when the agent does not observe
        #: the safeguard: ``observed=False``).
        self.slot: list[int] = slot_map(sg, n_slots) if observed else [0] * sg.n_states
        mode = reward_mode(reward)
        self.reward: list[list[float]] = []
        for q in range(sg.n_states):
            rewards = []
            for letter in range(sg.n_letters):
                target = self.rows[q][letter]
                if self.violation[q]:
                    rewards.append(0.0)  # never stepped from: episodes end on violation
                    continue
                rules = sg.step_violations(q, sg.letter_example(letter))
                step = SafeguardStep(sg, q, target, rules, terminated=bool(rules))
                rewards.append(float(mode(0.0, step)))
            self.reward.append(rewards)
        #: ``moves[q][letter] = (next state, shaping reward)``: what the learning loop reads.
        self.moves: list[list[tuple[int, float]]] = [
            list(zip(targets, rewards)) for targets, rewards in zip(self.rows, self.reward)]

    def letter(self, valuation: frozenset[str]) -> int:
        """The letter of a valuation (propositions the spec does not declare are ignored, as in
        the wrapper)."""
        return self.sg.letter(valuation & self.props)


class FearModel:
    """Tabular intrinsic fear (Lipton et al. 2016, "Combating reinforcement learning's Sisyphean
    curse with intrinsic fear").

    Lipton et al. train a classifier ``F(s)``: the probability that a catastrophe follows
    within ``k_r`` steps, on a *danger* buffer (states at most ``k_r`` steps before a
    catastrophe) and a *safe* buffer (the other states), and learn from ``r - lambda * F(s')``.
    The tabular version counts: after every episode the states the agent acted from within
    ``radius`` steps before a violation get ``danger += 1``, every other state of the episode
    ``safe += 1`` (in an episode without violation, the last ``radius`` states are left out:
    their future is unknown), and ``F(x) = danger / (danger + safe)`` (0 before any count).
    Subsequent updates into ``x`` use the reward ``r - penalty * F(x)``.
    """

    def __init__(self, n_rows: int, radius: int = 5, penalty: float = 0.1) -> None:
        if radius < 1:
            raise ValueError(f"fear radius must be at least 1, not {radius}")
        self.radius, self.penalty = int(radius), float(penalty)
        self.danger = [0] * n_rows
        self.safe = [0] * n_rows
        self.fear = [0.0] * n_rows

    def record(self, trajectory: Sequence[int], violated: bool) -> None:
        """Count one episode: ``trajectory`` = the rows acted from, in order."""
        n = len(trajectory)
        cut = max(0, n - self.radius)
        for i, row in enumerate(trajectory):
            if i >= cut:
                if not violated:
                    continue
                self.danger[row] += 1
            else:
                self.safe[row] += 1
            self.fear[row] = self.danger[row] / (self.danger[row] + self.safe[row])

    def arrays(self) -> dict[str, np.ndarray]:
        return {"fear_danger": np.array(self.danger, dtype=np.int64),
                "fear_safe": np.array(self.safe, dtype=np.int64)}

    def load(self, danger: np.ndarray, safe: np.ndarray) -> None:
        self.danger = [int(v) for v in danger]
        self.safe = [int(v) for v in safe]
        self.fear = [d / (d + s) if d + s else 0.0 for d, s in zip(self.danger, self.safe)]


class Stepper(Protocol):
    """What the learning loop needs from an environment (see :mod:`safeguards.learn.steppers`).

    ``step`` returns ``(obs, key, task_reward, terminated, truncated)``: ``obs`` an int in
    ``0 .. n_obs - 1`` and ``key`` a hashable that determines the labels of the state reached
    (:meth:`valuation` turns it into the set of true propositions; the loop caches it).
    """

    n_obs: int
    n_actions: int

    def reset(self) -> int: ...

    def step(self, action: int) -> tuple[int, Hashable, float, bool, bool]: ...

    def valuation(self, key: Hashable) -> frozenset[str]: ...


@dataclass
class EpisodeStats:
    """What one episode did."""

    ret: float = 0.0
    """Sum of the rewards (task + shaping; not the fear penalty)."""
    length: int = 0
    """Steps taken."""
    violated: bool = False
    """The training safeguard reached its violation state."""
    violation_step: int | None = None
    """1-based step of that violation."""
    violated_rules: list[str] = field(default_factory=list)
    """Rules of the training safeguard the violating step broke."""
    violated_final: bool = False
    """The final (evaluation) safeguard, monitored alongside, was violated."""
    violation_step_final: int | None = None
    """1-based step of the first violation of the final safeguard."""
    value_s0: float = 0.0
    """``max_a Q[s0, q0, a]`` at the start of the episode."""
    pessimistic_s0: float = 0.0
    """``min_a U[s0, q0, a]`` at the start of the episode."""
    meta_queries: int = 0
    """Greedy episodes: decisions at never-visited product states."""


class LetterCache(dict):
    """``key -> (letter of the training safeguard, letter of the final safeguard)``."""

    def __init__(self, stepper: Stepper, train: MonitorTable, final: MonitorTable) -> None:
        super().__init__()
        self.stepper, self.train, self.final = stepper, train, final

    def __missing__(self, key: Hashable) -> tuple[int, int]:
        valuation = self.stepper.valuation(key)
        pair = (self.train.letter(valuation), self.final.letter(valuation))
        self[key] = pair
        return pair


def _init_row(table: QTable, x: int, paper_stage: int | None) -> None:
    """First visit of row ``x``: the paper's transfer average (if any), then mark it known."""
    if paper_stage is not None and paper_stage > 0:
        values = paper_initial_row(table.q_rows, table.known_rows, x // table.n_slots,
                                   table.n_slots, paper_stage, table.n_actions)
        if values is not None:
            table.q_rows[x] = values
    table.known_rows[x] = 1


def run_episode(stepper: Stepper, table: QTable, train: MonitorTable, final: MonitorTable,
                rng: np.random.Generator, config: QLearningConfig, *, max_steps: int,
                letters: LetterCache | None = None, paper_stage: int | None = None,
                fear: FearModel | None = None) -> EpisodeStats:
    """One training episode of epsilon-greedy Q-learning on the product MDP (module docstring).

    Args:
        stepper: the environment.
        table: the tables, updated in place.
        train: the safeguard the agent is trained under (state, shaping, termination); with
            ``observed=False`` the agent sees only the observation (slot 0).
        final: a safeguard monitored alongside, only to count its violations.
        rng: draws ``4 * max_steps`` numbers at the start of the episode, nothing else.
        config: hyperparameters.
        max_steps: the episode is truncated after this many steps.
        letters: a :class:`LetterCache` for ``(stepper, train, final)`` kept across episodes.
        paper_stage: the stage index for the paper's transfer (first visits of a product state
            are initialised from slots ``i < paper_stage``), or None for no initialisation.
        fear: an intrinsic-fear model, or None.
    """
    alpha, gamma, epsilon = config.alpha, config.gamma, config.epsilon
    keep = 1.0 - alpha
    paper = config.update == "paper"
    n_actions, n_slots = table.n_actions, table.n_slots
    Q, U, known = table.q_rows, table.u_rows, table.known_rows  # noqa: N806
    slot = train.slot
    moves, t_violation = train.moves, train.violation
    f_rows, f_violation = final.rows, final.violation
    if letters is None:
        letters = LetterCache(stepper, train, final)
    fear_of = fear.fear if fear is not None else None
    fear_penalty = fear.penalty if fear is not None else 0.0
    trajectory: list[int] = []

    # every random number of the episode, drawn now
    explore = (rng.random(max_steps) < epsilon).tolist()
    random_action = rng.integers(n_actions, size=max_steps).tolist()
    tie = rng.random(max_steps).tolist()
    tie_u = rng.random(max_steps).tolist()
    actions = range(n_actions)

    s = stepper.reset()
    q, qf = train.initial, final.initial
    x = s * n_slots + slot[q]
    if not known[x]:
        _init_row(table, x, paper_stage)
    stats = EpisodeStats(value_s0=max(Q[x]), pessimistic_s0=min(U[x]))
    final_alive = not f_violation[qf]
    ret = 0.0
    step = stepper.step
    length = 0
    for t in range(max_steps):
        # epsilon-greedy action (the greedy one is needed anyway by the paper's update)
        row = Q[x]
        exploring = explore[t]
        if paper or not exploring:
            best = max(row)
            n_best = row.count(best)
            if n_best == 1:
                greedy = row.index(best)
            elif n_best == n_actions:  # all tied: the uniform choice among all actions
                greedy = int(tie[t] * n_actions)
            else:
                ties = [i for i in actions if row[i] == best]
                greedy = ties[int(tie[t] * n_best)]
        a = random_action[t] if exploring else greedy

        # the environment and the safeguards
        s2, key, task_reward, terminated, truncated = step(a)
        lt, lf = letters[key]
        q2, shaping = moves[q][lt]
        r = task_reward + shaping
        ret += r
        if final_alive:
            qf = f_rows[qf][lf]
            if f_violation[qf]:
                final_alive = False
                stats.violated_final, stats.violation_step_final = True, t + 1
        if t_violation[q2]:
            stats.violated, stats.violation_step = True, t + 1
            stats.violated_rules = sorted(train.sg.step_violations(q, stepper.valuation(key)))
            terminated = True
        x2 = s2 * n_slots + slot[q2]
        if not known[x2]:
            _init_row(table, x2, paper_stage)
        if fear_of is not None:
            r -= fear_penalty * fear_of[x2]
            trajectory.append(x)

        # Q and U updates
        u_row = U[x]
        if paper:
            row[greedy] = keep * row[greedy] + alpha * (r + gamma * max(Q[x2]))
            worst = min(u_row)
            n_worst = u_row.count(worst)
            if n_worst == 1:
                au = u_row.index(worst)
            elif n_worst == n_actions:
                au = int(tie_u[t] * n_actions)
            else:
                ties = [i for i in actions if u_row[i] == worst]
                au = ties[int(tie_u[t] * n_worst)]
            u_row[au] = keep * u_row[au] + alpha * (r + gamma * min(U[x2]))
        elif terminated:
            row[a] = keep * row[a] + alpha * r
            u_row[a] = keep * u_row[a] + alpha * r
        else:
            row[a] = keep * row[a] + alpha * (r + gamma * max(Q[x2]))
            u_row[a] = keep * u_row[a] + alpha * (r + gamma * min(U[x2]))

        x, q = x2, q2
        if terminated or truncated:
            length = t + 1
            break
    else:
        length = max_steps
    stats.ret, stats.length = ret, length
    if fear is not None:
        fear.record(trajectory, stats.violated)
    return stats


def greedy_episode(stepper: Stepper, table: QTable, spec: MonitorTable,
                   rng: np.random.Generator, *, max_steps: int, fallback: str = "paper",
                   letters: LetterCache | None = None) -> EpisodeStats:
    """One greedy test episode under ``spec`` (no learning, no exploration).

    A decision at a product state never visited in training is a *meta-learning query*
    (counted).  ``fallback="paper"`` then acts on ``Q[s, slot 0]`` when that was visited, else
    takes action 0 — what the authors' test loop does (its ``Qs = [0]``); ``fallback="none"``
    acts on the (unvisited) row itself.  Ties are broken uniformly.
    """
    n_actions, n_slots = table.n_actions, table.n_slots
    Q, known = table.q_rows, table.known_rows  # noqa: N806
    slot = spec.slot
    rows, violation = spec.rows, spec.violation
    if letters is None:
        letters = LetterCache(stepper, spec, spec)
    tie = rng.random(max_steps).tolist()
    actions = range(n_actions)
    s = stepper.reset()
    q = spec.initial
    stats = EpisodeStats()
    x = s * n_slots + slot[q]
    stats.value_s0 = max(Q[x])
    t = 0
    while t < max_steps:
        row = Q[x]
        if not known[x]:
            stats.meta_queries += 1
            if fallback == "paper":
                base = x - x % n_slots
                row = Q[base] if known[base] else [0.0]
        best = max(row)
        if row.count(best) == 1:
            a = row.index(best)
        else:
            ties = [i for i in actions if row[i] == best]
            a = ties[int(tie[t] * len(ties))]
        s2, key, task_reward, terminated, truncated = stepper.step(a)
        lt = letters[key][0]
        q2 = rows[q][lt]
        stats.ret += task_reward
        t += 1
        if violation[q2]:
            stats.violated, stats.violation_step = True, t
            stats.violated_rules = sorted(spec.sg.step_violations(q, stepper.valuation(key)))
            stats.violated_final, stats.violation_step_final = True, t
            terminated = True
        x, q = s2 * n_slots + slot[q2], q2
        if terminated or truncated:
            break
    stats.length = t
    return stats
