"""Safety-bias transfer between safeguard stages: table slots, the paper's rule and ours.

A tabular learner keys its Q-table by ``(observation, slot, action)``.  A safeguard's *live*
states (all but the violation sink) take slots ``0 .. n_live - 1`` in state-id order (for the
shipped Minecraft machines these are the paper's automaton ids ``q0 .. q4``); the violation
state takes the last slot, shared by every stage, as the paper's ``-1`` key is
(:func:`slot_map`).

Four transfers decide what a stage inherits from the stages before it:

``none``
    the table is reset at every stage.
``warm``
    the table is kept; a product state ``(s, q)`` reuses whatever an earlier stage left under
    the same slot id.
``paper``
    Progressive Safeguards (Omi, Hasanbeig et al. 2024) as the authors' ``minecraft.py`` does it:
    the table is kept, and a product state first visited during stage ``k`` is initialised with
    the mean of ``Q[s, i]`` over the slot ids ``i < k`` already visited with ``s``.  (The code
    loops over *automaton-state ids* below the stage index, which coincides with "the previous
    safeguards" only by the numbering convention of their machines; we reproduce that.)
``semantic`` (ours)
    the table is kept, but at the start of stage ``k`` every live state ``q`` of the new
    safeguard is initialised from the earlier-stage states whose residual obligation is
    closest to ``q``'s, whatever their ids (:func:`semantic_sources`).

Residual obligation, made concrete (:func:`behaviour_distance`).  The *status* of a monitor
state is the pair (violated?, accepting?).  The common alphabet of a set of safeguards is the set
of their *joint letter classes*: valuations are equivalent when every safeguard puts them in
the same letter class, so the classes are exactly what any of the monitors can tell apart
(:func:`joint_alphabet`).  For two states ``a`` (of safeguard ``A``) and ``b`` (of ``B``) and a
word ``w`` over that alphabet, the two monitors *disagree* on ``w`` when ``A`` after ``w`` from
``a`` and ``B`` after ``w`` from ``b`` have different statuses.  The distance is the
disagreement probability averaged over the horizons ``h = 1 .. H``, each word of length ``h``
equally likely::

    d(a, b) = (1/H) * sum_{h=1..H} Pr_{w ~ Uniform(Sigma^h)} [ status_A(a.w) != status_B(b.w) ]

It is computed exactly by propagating the distribution over state pairs of the product of the
two monitors (no sampling).  ``d = 0`` means the two states accept and reject exactly the same
continuations up to ``H`` letters (for example ``q0`` of the paper's safeguard 0, "never touch
a hazard", and ``q1`` of safeguard 1, "wood seen, never touch a hazard").  A state of stage
``k`` inherits from all earlier-stage live states at minimal distance (ties within ``tol``), and
``Q[s, q]`` becomes the mean of their end-of-stage ``Q[s, p]`` over those visited with ``s``.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from safeguards.automata import Safeguard, Verdict

__all__ = ["slot_map", "n_slots_for", "joint_alphabet", "behaviour_distance",
           "distance_matrix", "semantic_sources", "apply_semantic", "paper_initial_row"]


def _violating(sg: Safeguard) -> np.ndarray:
    return np.array([v == Verdict.VIOLATED for v in sg.verdicts], dtype=bool)


def live_states(sg: Safeguard) -> list[int]:
    """The states of ``sg`` that are not violation states, in id order."""
    return [q for q in range(sg.n_states) if sg.verdicts[q] != Verdict.VIOLATED]


def n_slots_for(safeguards: Sequence[Safeguard]) -> int:
    """Slots a table needs for all of ``safeguards``: the most live states, plus the sink."""
    return max(len(live_states(sg)) for sg in safeguards) + 1


def slot_map(sg: Safeguard, n_slots: int) -> list[int]:
    """``slot[q]`` for every state of ``sg``: live states ``0, 1, ...`` in id order, violation
    states the last slot ``n_slots - 1``.

    >>> import safeguards
    >>> slot_map(safeguards.compile_ltl("G !lava"), 6)
    [0, 5]
    """
    live = live_states(sg)
    if len(live) > n_slots - 1:
        raise ValueError(f"{sg.name} has {len(live)} live states; the table has only "
                         f"{n_slots - 1} live slots")
    slot = [n_slots - 1] * sg.n_states
    for i, q in enumerate(live):
        slot[q] = i
    return slot


def joint_alphabet(safeguards: Sequence[Safeguard], max_props: int = 16) -> list[frozenset[str]]:
    """One representative valuation per joint letter class of ``safeguards``.

    With at most ``max_props`` propositions in all, every valuation is enumerated (fewest true
    propositions first, so each class is represented by its smallest valuation) and the classes
    are exact.  Beyond that, the union of the safeguards' own letter examples is used (each of
    their classes is represented, intersections of classes may be missed).

    >>> import safeguards
    >>> sorted(map(sorted, joint_alphabet([safeguards.compile_ltl("G !a"),
    ...                                    safeguards.compile_ltl("G !b")])))
    [[], ['a'], ['a', 'b'], ['b']]
    """
    props = sorted(set().union(*(sg.props for sg in safeguards)))
    prop_sets = [frozenset(sg.props) for sg in safeguards]

    def signature(valuation: frozenset[str]) -> tuple[int, ...]:
        return tuple(sg.letter(valuation & ps) for sg, ps in zip(safeguards, prop_sets))

    if len(props) <= max_props:
        candidates = (frozenset(c) for size in range(len(props) + 1)
                      for c in itertools.combinations(props, size))
    else:
        candidates = (sg.letter_example(letter) for sg in safeguards
                      for letter in range(sg.n_letters))
    seen: dict[tuple[int, ...], frozenset[str]] = {}
    for valuation in candidates:
        seen.setdefault(signature(valuation), valuation)
    return list(seen.values())


def _moves(sg: Safeguard, alphabet: Sequence[frozenset[str]]) -> np.ndarray:
    """``moves[q, c]``: the successor of ``q`` on the alphabet's class ``c``."""
    props = frozenset(sg.props)
    letters = np.array([sg.letter(v & props) for v in alphabet], dtype=np.int64)
    return sg.table[:, letters]


def _status(sg: Safeguard) -> np.ndarray:
    """``status[q]`` = 2 * violated + accepting, a small integer per state."""
    return 2 * _violating(sg).astype(np.int64) + sg.accepting.astype(np.int64)


def behaviour_distance(a: Safeguard, qa: int, b: Safeguard, qb: int,
                       alphabet: Sequence[frozenset[str]], horizon: int = 4) -> float:
    """The bounded-horizon disagreement of state ``qa`` of ``a`` and ``qb`` of ``b`` (see the
    module docstring): 0 when they judge every continuation of up to ``horizon`` letters alike,
    1 when they disagree on all of them.

    >>> import safeguards
    >>> sg0 = safeguards.compile_ltl("G !lava")
    >>> sg1 = safeguards.compile_ltl("G(key -> G !lava)", props=["lava"])
    >>> alphabet = joint_alphabet([sg0, sg1])
    >>> behaviour_distance(sg0, 0, sg1, sg1.step(0, {"key"}), alphabet)
    0.0
    >>> round(behaviour_distance(sg0, 0, sg1, 0, alphabet), 3)
    0.203
    """
    return float(distance_matrix(a, b, alphabet, horizon)[qa, qb])


def distance_matrix(a: Safeguard, b: Safeguard, alphabet: Sequence[frozenset[str]],
                    horizon: int = 4) -> np.ndarray:
    """``d[qa, qb]`` of :func:`behaviour_distance` for every pair of states at once."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, not {horizon}")
    move_a, move_b = _moves(a, alphabet), _moves(b, alphabet)
    differ = (_status(a)[:, None] != _status(b)[None, :]).astype(np.float64)
    na, nb, n_classes = a.n_states, b.n_states, len(alphabet)
    # dist[(qa, qb)] is a distribution over state pairs; start from every pair at once.
    pairs = na * nb
    dist = np.eye(pairs)  # row: start pair, column: current pair
    step = np.zeros((pairs, pairs))
    for x in range(na):
        for y in range(nb):
            for c in range(n_classes):
                step[x * nb + y, move_a[x, c] * nb + move_b[y, c]] += 1.0 / n_classes
    total = np.zeros(pairs)
    for _ in range(horizon):
        dist = dist @ step
        total += dist @ differ.reshape(pairs)
    return (total / horizon).reshape(na, nb)


def semantic_sources(stages: Sequence[Safeguard], k: int, *, horizon: int = 4,
                     tol: float = 1e-9, alphabet: Sequence[frozenset[str]] | None = None
                     ) -> dict[int, list[tuple[int, int]]]:
    """For each live state ``q`` of ``stages[k]``: the earlier-stage states ``(j, p)`` (``j < k``,
    ``p`` live in ``stages[j]``) at minimal :func:`behaviour_distance` from it.

    >>> from safeguards import load_safeguard
    >>> sg0 = load_safeguard("minecraft/safeguard0")
    >>> sg1 = load_safeguard("minecraft/safeguard1")
    >>> semantic_sources([sg0, sg1], 1)
    {0: [(0, 0)], 1: [(0, 0)]}
    """
    if k <= 0:
        return {}
    alphabet = list(alphabet) if alphabet is not None else joint_alphabet(stages[:k + 1])
    target = stages[k]
    per_stage = [distance_matrix(target, stages[j], alphabet, horizon) for j in range(k)]
    sources: dict[int, list[tuple[int, int]]] = {}
    for q in live_states(target):
        candidates = [(float(per_stage[j][q, p]), j, p) for j in range(k)
                      for p in live_states(stages[j])]
        best = min(d for d, _, _ in candidates)
        sources[q] = [(j, p) for d, j, p in candidates if d <= best + tol]
    return sources


def apply_semantic(q_table: np.ndarray, known: np.ndarray, snapshots: Sequence[tuple[np.ndarray,
                   np.ndarray]], stage_slots: Sequence[Sequence[int]],
                   sources: dict[int, list[tuple[int, int]]], k: int,
                   q_init: float = 0.0) -> None:
    """Initialise, in place, the live slots of stage ``k`` from ``sources`` (see
    :func:`semantic_sources`).  ``snapshots[j] = (Q, known)`` at the end of stage ``j``;
    ``stage_slots[j]`` is stage ``j``'s slot map.  Where no source was visited with an
    observation, the entry is reset to ``q_init`` and marked unvisited.
    """
    for q, matches in sources.items():
        slot = stage_slots[k][q]
        total = np.zeros(q_table.shape[::2])  # (n_obs, n_actions)
        count = np.zeros(q_table.shape[0])
        for j, p in matches:
            snap_q, snap_known = snapshots[j]
            source = stage_slots[j][p]
            seen = snap_known[:, source]
            total[seen] += snap_q[seen, source]
            count += seen
        have = count > 0
        q_table[:, slot] = q_init
        q_table[have, slot] = total[have] / count[have, None]
        known[:, slot] = have


def paper_initial_row(q_rows: list[list[float]], known: list[bool] | bytearray, obs: int,
                      n_slots: int, stage: int, n_actions: int) -> list[float] | None:
    """The paper's initial values for a product state first visited with ``obs`` in stage
    ``stage``: the mean of the rows ``(obs, i)`` for slot ids ``i < stage`` already visited, or
    None when there is none.  (Rows are ``obs * n_slots + slot``.)"""
    base = obs * n_slots
    rows = [q_rows[base + i] for i in range(min(stage, n_slots)) if known[base + i]]
    if not rows:
        return None
    return [sum(row[a] for row in rows) / len(rows) for a in range(n_actions)]
