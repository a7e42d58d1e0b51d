"""Pure helpers shared by the product-MDP wrappers (:class:`~safeguards.gym.SafeguardWrapper` and
:class:`~safeguards.gym.vector.SafeguardVectorWrapper`): what one step of the safeguard reports.

Both wrappers must agree exactly, so the pieces that decide *what* is reported live here once:

* :func:`spec_labels` — validate what a labeler returned and keep the spec's propositions;
* :func:`end_pending` — the finite-semantics obligations still open when an episode ends;
* :func:`info_entries` — the ``info`` keys a monitored step adds;
* :func:`product_observation` — one product observation (``dict`` / ``onehot`` / ``none``);
* :func:`checked_options` — the options both wrappers take, checked once.

>>> import safeguards
>>> from safeguards.labels import InfoLabeler
>>> sg = safeguards.compile_ltl("F goal")
>>> labels = spec_labels(InfoLabeler(["goal", "lava"]), {"lava"}, frozenset(sg.props))
>>> labels, sorted(end_pending(sg, sg.step(sg.initial, labels)))
(frozenset(), ['formula'])
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np

from safeguards.automata import Safeguard, Verdict
from safeguards.gym.rewards import RewardMode, reward_mode
from safeguards.labels import Labeler, check_coverage, checked_labels

__all__ = ["spec_labels", "end_pending", "info_entries", "product_observation",
           "checked_options", "EMPTY"]

EMPTY: frozenset[str] = frozenset()
_SETS = (set, frozenset)


def spec_labels(labeler: Labeler, raw: Any, spec_props: frozenset[str],
                step: int | None = None) -> frozenset[str]:
    """What ``labeler`` returned (``raw``), validated, restricted to the spec's propositions.

    Same checks and errors as :func:`safeguards.labels.checked_labels`; a ``set``/``frozenset`` of
    declared propositions (the usual case) takes a fast path.  The result is a ``frozenset``,
    which is also the key of :meth:`Safeguard.letter`'s cache.
    """
    declared = labeler.props
    if type(raw) in _SETS and isinstance(declared, _SETS) and raw <= declared:
        return spec_props.intersection(raw)
    return spec_props.intersection(checked_labels(labeler, raw, step))


def end_pending(safeguard: Safeguard, state: int) -> frozenset[str]:
    """Rules still pending when an episode ends in ``state`` (finite semantics): none if
    ``state`` accepts or is a violation state."""
    if safeguard.accepting[state] or safeguard.verdicts[state] == Verdict.VIOLATED:
        return EMPTY
    return safeguard.pending_rules(state)


def info_entries(safeguard: Safeguard, labels: frozenset[str] | set[str], reached: int,
                 violated: frozenset[str], cost: float, *, state: int | None = None,
                 task_reward: float | None = None, env_terminated: bool | None = None,
                 pending: frozenset[str] | None = None) -> dict[str, Any]:
    """The ``info`` keys of one monitored step or reset.

    ``labels`` (sorted), ``safeguard_state`` (``state``, the state the next step starts from;
    default ``reached``), ``verdict`` (of ``reached``, the state this step reached),
    ``violated_rules`` (sorted) and ``cost``; on a step also ``task_reward`` and
    ``env_terminated`` (the environment's own), and when the episode ended on this step
    (``pending`` given) ``pending_rules`` and ``end_violation``.
    """
    entries: dict[str, Any] = {
        "labels": sorted(labels), "safeguard_state": int(reached if state is None else state),
        "verdict": safeguard.verdicts[reached].value, "violated_rules": sorted(violated),
        "cost": float(cost),
    }
    if task_reward is not None:
        entries["task_reward"] = float(task_reward)
        entries["env_terminated"] = bool(env_terminated)
    if pending is not None:
        entries["pending_rules"] = sorted(pending)
        entries["end_violation"] = bool(pending)
    return entries


def product_observation(obs: Any, state: int, observe: Literal["dict", "onehot", "none"],
                        eye: np.ndarray) -> Any:
    """The product observation of one environment observation and a safeguard state
    (``eye``: the identity matrix of the ``onehot`` mode, in the observation dtype)."""
    if observe == "dict":
        return {"obs": obs, "safeguard": int(state)}
    if observe == "onehot":
        return np.concatenate([np.asarray(obs, dtype=eye.dtype), eye[state]])
    return obs


def checked_options(safeguard: Safeguard, labelers: Sequence[Labeler], *,
                    reward: str | RewardMode | None, after_violation: str, missing_props: str,
                    gamma: float) -> RewardMode:
    """Check the options of a product-MDP wrapper (every labeler covers the spec's
    propositions, or ``missing_props="warn"``); returns its reward mode."""
    if after_violation not in ("reset", "stay"):
        raise ValueError(f"after_violation must be 'reset' or 'stay', not {after_violation!r}")
    for labeler in {id(item): item for item in labelers}.values():
        check_coverage(safeguard.props, labeler, missing=missing_props, stacklevel=4)
    return reward_mode(reward, gamma)  # type: ignore[arg-type]
