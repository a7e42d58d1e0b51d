"""Shielding: mask, or replace, the actions whose next step would violate the safeguard.

A :class:`ShieldWrapper` sits on a :class:`~safeguards.gym.SafeguardWrapper` (directly or with
wrappers in between that keep the actions as they are).  Before every step it predicts, for each
action of a ``Discrete`` action space, the labels of the state that action would reach, and from
them the safeguard state it would lead to (``safeguard.step(state, labels)``, from the inner
wrapper's current ``state``).  An action is *safe* when that successor is not violated — or, with
``margin=k``, when it is more than ``k`` automaton steps from violation.

How the successor's labels are predicted:

* ``predict=hook`` — ``hook(env, action) -> set of propositions``, given the *unwrapped* base
  environment; it must not change the environment.  For MiniGrid,
  :func:`safeguards.envs.gridworld.predict_labels` is exact and costs microseconds.
* no hook: save/restore — for each action, ``copy.deepcopy`` the unwrapped base environment
  together with the labeler (in one copy, so a labeler that holds the environment, or state such
  as the previous position, reads the copy), step the copy and label what it returns.  Costs one
  deep copy and one step per action, at every step and reset (on ``MiniGrid-LavaGapS5-v0``, 7
  actions: about 6.5 ms per step, against 0.15 ms with ``predict_labels``).  Exact when the
  environment is deterministic given its copied state (its own ``np_random`` is copied too, so
  randomness drawn only from it is reproduced); not for environments driven by outside
  randomness or outside simulators.  The labeler sees the base environment's observation and
  info, not what wrappers between it and the :class:`SafeguardWrapper` make of them — give a
  hook if the labeler needs those.  Environments that cannot be deep-copied need a hook.

``info["action_mask"]`` (a numpy bool array, True = safe) is set after ``reset`` and after every
step; :meth:`ShieldWrapper.action_masks` returns it too (the method ``sb3_contrib``'s
``MaskablePPO`` looks for).  With ``enforce=True`` an unsafe action is replaced by a safe one
(the lowest-index safe action, or ``choose(mask, action)``), and ``info`` records ``shielded``,
``original_action`` and ``executed_action``.

When no action is safe the shield neither lets the action through silently nor blocks
everything: it takes the action whose predicted successor is farthest from violation
(:meth:`~safeguards.Safeguard.distance_to_violation`, None = unreachable = farthest; ties go to
the lowest index; if every action violates immediately, the requested action), records
``info["shield_fallback"] = True`` and warns (:class:`ShieldFallbackWarning`) once per episode.
Without ``enforce``, an all-False ``action_mask`` is warned about in the same way (a masking
learner such as ``MaskablePPO`` cannot sample from it: give the spec a way out, or enforce).

The mask of the state an episode ends in is computed too (by stepping past the end, which
MiniGrid allows; an environment that refuses needs a hook).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Callable, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from safeguards.gym.wrapper import SafeguardWrapper
from safeguards.labels import LabelError, checked_labels

__all__ = ["ShieldWrapper", "ShieldFallbackWarning", "PredictHook", "ChooseHook"]

PredictHook = Callable[[Any, Any], "set[str] | frozenset[str] | list[str] | tuple[str, ...]"]
ChooseHook = Callable[[np.ndarray, Any], Any]


class ShieldFallbackWarning(UserWarning):
    """No action was predicted safe; the shield fell back to the least bad one."""


def _find_safeguard_wrapper(env: gym.Env) -> SafeguardWrapper:
    current: Any = env
    while current is not None:
        if isinstance(current, SafeguardWrapper):
            return current
        current = getattr(current, "env", None) if isinstance(current, gym.Wrapper) else None
    raise TypeError(f"ShieldWrapper needs a SafeguardWrapper underneath (it reads its safeguard, "
                    f"labeler and state); {env} has none")


class ShieldWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Mask (and with ``enforce`` replace) actions predicted to violate the safeguard.

    See the module docstring for how prediction works, its cost and when it is exact.

    Args:
        env: a :class:`~safeguards.gym.SafeguardWrapper`, or a wrapper stack containing one that
            does not change the actions; its action space must be ``Discrete``.
        predict: ``predict(env, action) -> set of propositions``: the labels of the state
            ``action`` would reach, from the unwrapped base environment, which it must not
            change.  None: save/restore with ``copy.deepcopy`` (needs a deep-copyable
            environment).
        enforce: replace unsafe actions (else only report ``info["action_mask"]``).
        choose: ``choose(mask, action) -> action``: the safe action to take instead of an
            unsafe ``action`` (default: the lowest-index safe one).  It must return an action
            the mask marks safe.
        margin: an action is safe when its predicted successor is more than ``margin`` steps
            from violation in the automaton (0: not violated).

    Attributes:
        safeguard_wrapper: the :class:`~safeguards.gym.SafeguardWrapper` underneath.
        predicted_states: for each action, the safeguard state it is predicted to lead to (as
            of the last reset or step).

    Raises:
        TypeError: no SafeguardWrapper underneath, a non-Discrete action space, a hook that is
            not callable, a non-integer margin, or (without ``predict``) an environment that
            cannot be deep-copied.
        ValueError: a negative margin, or (without ``predict``) a base environment whose action
            space differs from the wrapper's.

    Example:
        >>> import gymnasium as gym
        >>> import safeguards
        >>> from safeguards.gym import SafeguardWrapper
        >>> from safeguards.envs.gridworld import MiniGridLabeler, predict_labels
        >>> base = gym.make("MiniGrid-LavaGapS5-v0")
        >>> env = ShieldWrapper(SafeguardWrapper(base, safeguards.compile_ltl("G !lava"),
        ...                                      MiniGridLabeler(base)),
        ...                     predict=predict_labels, enforce=True)
        >>> obs, info = env.reset(seed=0)              # the lava is right in front
        >>> info["action_mask"]                        # left right forward pickup drop toggle done
        array([ True,  True, False,  True,  True,  True,  True])
        >>> obs, reward, terminated, truncated, info = env.step(2)       # forward: shielded
        >>> info["shielded"], info["original_action"], info["executed_action"], info["labels"]
        (True, 2, 0, [])

        Without a hook the shield predicts by stepping deep copies (slower, same masks here):

        >>> slow = ShieldWrapper(SafeguardWrapper(base, safeguards.compile_ltl("G !lava"),
        ...                                       MiniGridLabeler(base)))
        >>> slow.reset(seed=0)[1]["action_mask"].tolist() == [True, True, False] + [True] * 4
        True

    Change logs:
        v0.1.0 - Initially added.
    """

    def __init__(self, env: gym.Env, *, predict: PredictHook | None = None,
                 enforce: bool = True, choose: ChooseHook | None = None,
                 margin: int = 0) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, predict=predict, enforce=enforce,
                                                 choose=choose, margin=margin)
        gym.Wrapper.__init__(self, env)
        self.safeguard_wrapper = _find_safeguard_wrapper(env)
        if not isinstance(self.action_space, spaces.Discrete):
            raise TypeError(f"ShieldWrapper needs a Discrete action space, not {self.action_space}")
        if predict is not None and not callable(predict):
            raise TypeError(f"predict must be callable (env, action) -> set of propositions, "
                            f"not {predict!r}")
        if choose is not None and not callable(choose):
            raise TypeError(f"choose must be callable (mask, action) -> action, not {choose!r}")
        if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)):
            raise TypeError(f"margin must be an int, not {type(margin).__name__}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, not {margin}")
        self.predict = predict
        self.enforce = bool(enforce)
        self.choose = choose
        self.margin = int(margin)
        self.n_actions = int(self.action_space.n)
        self.action_start = int(self.action_space.start)
        if predict is None:
            self._check_copyable()
        self._mask = np.ones(self.n_actions, dtype=bool)
        self._distances: list[int | None] = [None] * self.n_actions
        self.predicted_states = np.zeros(self.n_actions, dtype=np.int64)
        self._warned = False

    # -- the inner wrapper's pieces ------------------------------------------------------------
    @property
    def safeguard(self) -> Any:
        return self.safeguard_wrapper.safeguard

    @property
    def labeler(self) -> Any:
        return self.safeguard_wrapper.labeler

    def _check_copyable(self) -> None:
        base = self.safeguard_wrapper.unwrapped
        if base.action_space != self.action_space:
            raise ValueError(f"without predict=, the shield steps copies of the base environment "
                             f"with its own actions, but the base action space "
                             f"{base.action_space} differs from {self.action_space}; give a "
                             f"predict hook")
        try:
            self._copies()
        except Exception as error:  # noqa: BLE001 - any failure means "not copyable"
            raise TypeError(f"{type(base).__name__} cannot be deep-copied "
                            f"({type(error).__name__}: {error}); give ShieldWrapper a "
                            f"predict=(env, action) -> labels hook") from error

    def _copies(self) -> tuple[Any, Any]:
        """Deep copies of the base environment and the labeler, sharing one memo (so a labeler
        that refers to the environment refers to the copy).  The safeguard and the spaces are
        shared, not copied: stepping does not change them."""
        base = self.safeguard_wrapper.unwrapped
        memo: dict[int, Any] = {}
        for shared in (self.safeguard, base.action_space, base.observation_space, base.spec):
            if shared is not None:
                memo[id(shared)] = shared
        return copy.deepcopy(base, memo), copy.deepcopy(self.labeler, memo)

    # -- prediction ----------------------------------------------------------------------------
    def _predicted_labels(self, action: int) -> set[str]:
        if self.predict is not None:
            labels = self.predict(self.safeguard_wrapper.unwrapped, action)
            return self._checked_hook_labels(labels, action)
        env_copy, labeler_copy = self._copies()
        obs, _reward, _terminated, _truncated, info = env_copy.step(action)
        return checked_labels(labeler_copy, labeler_copy(obs, info, action))

    def _checked_hook_labels(self, labels: Any, action: int) -> set[str]:
        name = getattr(self.predict, "__name__", type(self.predict).__name__)
        if isinstance(labels, (str, bytes)) or not isinstance(labels, (set, frozenset, list,
                                                                       tuple)):
            raise LabelError(f"predict hook {name} returned {type(labels).__name__} {labels!r} "
                             f"for action {action}; expected a set of proposition names")
        known = self.labeler.props | frozenset(self.safeguard.props)
        for prop in labels:
            if not isinstance(prop, str) or prop not in known:
                raise LabelError(f"predict hook {name} returned {prop!r} for action {action}, "
                                 f"which is neither a proposition of the safeguard nor one the "
                                 f"labeler emits ({', '.join(sorted(known))})")
        return set(labels)

    def _update_mask(self) -> np.ndarray:
        sg = self.safeguard
        state = self.safeguard_wrapper.state
        spec_props = frozenset(sg.props)
        for i in range(self.n_actions):
            labels = self._predicted_labels(self.action_start + i) & spec_props
            successor = sg.step(state, labels)
            distance = sg.distance_to_violation(successor)
            self.predicted_states[i] = successor
            self._distances[i] = distance
            self._mask[i] = distance is None or distance > self.margin
        return self._mask.copy()

    def action_masks(self) -> np.ndarray:
        """The current mask (True = safe), as ``info["action_mask"]`` last reported it."""
        return self._mask.copy()

    # -- choosing ------------------------------------------------------------------------------
    def _index(self, action: Any) -> int:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in the action space {self.action_space}")
        return int(action) - self.action_start

    def _replacement(self, action: Any) -> int:
        if self.choose is None:
            return int(np.flatnonzero(self._mask)[0])
        chosen = self.choose(self._mask.copy(), action)
        try:
            chosen_index = int(chosen) - self.action_start
        except (TypeError, ValueError):
            chosen_index = -1
        if not 0 <= chosen_index < self.n_actions or not self._mask[chosen_index]:
            raise ValueError(f"choose returned {chosen!r} for action {action!r}, which is not a "
                             f"safe action (safe: "
                             f"{(np.flatnonzero(self._mask) + self.action_start).tolist()})")
        return chosen_index

    def _fallback(self, index: int) -> int:
        far = [float("inf") if d is None else d for d in self._distances]
        best = max(far)
        if best <= 0:
            return index
        return far.index(best)

    def _warn(self, message: str, stacklevel: int) -> None:
        """Warn once per episode; ``stacklevel`` counts from the caller of ``_warn``."""
        if not self._warned:
            self._warned = True
            warnings.warn(message + " (warned once per episode)", ShieldFallbackWarning,
                          stacklevel=stacklevel + 1)

    def _where(self) -> str:
        state = self.safeguard_wrapper.state
        return (f"safeguard {self.safeguard.name!r} from state {state} "
                f"({self.safeguard.state_names[state]}) at step {self.safeguard_wrapper.steps}")

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._warned = False
        info["action_mask"] = self._update_mask()
        self._warn_if_blocked()
        return obs, info

    def _warn_if_blocked(self) -> None:
        if not self.enforce and not self._mask.any():
            self._warn(f"ShieldWrapper: no action is predicted safe in {self._where()}; "
                       f"action_mask is all False", stacklevel=3)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        executed = action
        shielded = fallback = False
        if self.enforce:
            index = self._index(action)
            if not self._mask[index]:
                if self._mask.any():
                    taken = self._replacement(action)
                else:
                    fallback = True
                    taken = self._fallback(index)
                    self._warn(f"ShieldWrapper: every action is predicted to violate "
                               f"{self._where()}; taking action {self.action_start + taken} "
                               f"(the one farthest from violation, or the requested one if all "
                               f"violate at once)", stacklevel=2)
                if taken != index:
                    shielded = True
                    executed = self.action_start + taken
        obs, reward, terminated, truncated, info = self.env.step(executed)
        if self.enforce:
            info["shielded"] = shielded
            info["shield_fallback"] = fallback
            info["original_action"] = action
            info["executed_action"] = executed
        info["action_mask"] = self._update_mask()
        self._warn_if_blocked()
        return obs, reward, terminated, truncated, info
