"""The product MDP: a Gymnasium environment in lockstep with a safeguard.

Which label drives the safeguard: after ``env.step(action)`` the labeler is called on what that
step returned, ``labeler(obs, info, action)`` — the label of the state *reached* — and the
safeguard reads it (as in the Progressive Safeguards paper, ``q' = delta(q, L(s'))``).  At
``reset`` the safeguard starts in its initial state; the initial observation's label is
computed and reported in ``info["labels"]`` but only fed to the safeguard when
``label_reset=True`` (then it counts as the first step of the trace).
"""

from __future__ import annotations

from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from safeguards.automata import Safeguard, Verdict
from safeguards.gym import core
from safeguards.gym.rewards import RewardMode, SafeguardStep
from safeguards.labels import LabelError, Labeler

__all__ = ["SafeguardWrapper", "product_observation_space", "Observe"]

Observe = Literal["dict", "onehot", "none"]


def product_observation_space(space: spaces.Space, n_states: int, observe: Observe) -> spaces.Space:
    """The observation space of the product MDP.

    ``dict``: ``Dict(obs=space, safeguard=Discrete(n))``; ``onehot``: a 1-D ``Box`` with the
    safeguard state appended as a one-hot vector; ``none``: unchanged.
    """
    if observe == "dict":
        return spaces.Dict({"obs": space, "safeguard": spaces.Discrete(n_states)})
    if observe == "onehot":
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"observe='onehot' needs a 1-D Box observation space, not {space}; "
                             "use observe='dict', or flatten first (gymnasium.wrappers."
                             "FlattenObservation)")
        dtype = space.dtype if np.issubdtype(space.dtype, np.floating) else np.float32
        low = np.concatenate([space.low.astype(dtype), np.zeros(n_states, dtype)])
        high = np.concatenate([space.high.astype(dtype), np.ones(n_states, dtype)])
        return spaces.Box(low, high, dtype=dtype)
    if observe == "none":
        return space
    raise ValueError(f"observe must be 'dict', 'onehot' or 'none', not {observe!r}")


class SafeguardWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Compose an environment with a safeguard: product observation, shaped reward, cost.

    ``info`` gains ``labels`` (sorted list), ``safeguard_state`` (the state the next step starts
    from, as in the observation), ``verdict`` (of the state this step reached),
    ``violated_rules`` (rules this step violated), ``task_reward`` and ``env_terminated`` (the
    environment's own, for :meth:`counterfactuals`), ``cost`` (Safety-Gymnasium's key: the number
    of violated rules, plus pending rules at the end of an episode) and, when an episode ends,
    ``pending_rules`` — finite-semantics obligations still unmet, reported as an end-of-episode
    violation (``end_violation``).

    Args:
        env: the environment.
        safeguard: a compiled :class:`~safeguards.Safeguard`.
        labeler: ``labeler(obs, info, action) -> set of props`` with a ``props`` attribute.
        observe: ``"dict"``, ``"onehot"`` (1-D Box observations) or ``"none"``.
        reward: ``"task"`` (unchanged), ``"penalty"``, ``"paper"``, ``"potential"`` or a callable
            ``(task_reward, step: SafeguardStep) -> float``.
        terminate_on_violation: end the episode on the step that violates the spec.
        after_violation: when the episode goes on, ``"reset"`` restarts the safeguard (each later
            violation counts again) and ``"stay"`` keeps it in the violation state.
        label_reset: feed the initial observation's label to the safeguard at reset.
        missing_props: ``"error"`` if the spec uses a proposition the labeler never emits, or
            ``"warn"`` (it is then always false).
        gamma: discount of the ``potential`` reward mode.

    Example:
        >>> import gymnasium as gym
        >>> import safeguards
        >>> from safeguards.labels import labeler
        >>> @labeler("left")
        ... def moved_left(obs, info, action):
        ...     return {"left"} if action == 0 else set()
        >>> env = SafeguardWrapper(gym.make("CartPole-v1"), safeguards.compile_ltl("G !left"),
        ...                        moved_left, reward="penalty", terminate_on_violation=True)
        >>> obs, info = env.reset(seed=0)
        >>> sorted(obs), info["verdict"]
        (['obs', 'safeguard'], 'presumably_satisfied')
        >>> obs, reward, terminated, truncated, info = env.step(0)
        >>> reward, terminated, info["violated_rules"], info["cost"]
        (0.0, True, ['formula'], 1.0)

    Change logs:
        v0.1.0 - Initially added.
    """

    def __init__(self, env: gym.Env, safeguard: Safeguard, labeler: Labeler, *,
                 observe: Observe = "dict",
                 reward: str | RewardMode | None = "task",
                 terminate_on_violation: bool = False,
                 after_violation: Literal["reset", "stay"] = "reset",
                 label_reset: bool = False,
                 missing_props: Literal["error", "warn"] = "error",
                 gamma: float = 0.99) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, safeguard=safeguard, labeler=labeler, observe=observe, reward=reward,
            terminate_on_violation=terminate_on_violation, after_violation=after_violation,
            label_reset=label_reset, missing_props=missing_props, gamma=gamma)
        gym.Wrapper.__init__(self, env)
        self.reward_fn = core.checked_options(safeguard, [labeler], reward=reward,
                                              after_violation=after_violation,
                                              missing_props=missing_props, gamma=gamma)
        self.safeguard = safeguard
        self.labeler = labeler
        self.observe = observe
        self.terminate_on_violation = terminate_on_violation
        self.after_violation = after_violation
        self.label_reset = label_reset
        self.observation_space = product_observation_space(env.observation_space,
                                                           safeguard.n_states, observe)
        self._spec_props = frozenset(safeguard.props)
        self._eye = np.eye(safeguard.n_states, dtype=getattr(self.observation_space, "dtype",
                                                             np.float32))
        self.state = safeguard.initial
        self.steps = 0

    # -- helpers -------------------------------------------------------------------------------
    def _labels(self, obs: Any, info: dict[str, Any], action: Any) -> frozenset[str]:
        try:
            raw = self.labeler(obs, info, action)
        except LabelError as error:
            raise LabelError(f"{error} (at step {self.steps})") from None
        return core.spec_labels(self.labeler, raw, self._spec_props, self.steps)

    def observation(self, obs: Any, state: int | None = None) -> Any:
        """The product observation for the environment's ``obs`` and a safeguard state."""
        return core.product_observation(obs, self.state if state is None else state,
                                        self.observe, self._eye)

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.steps = 0
        self.state = self.safeguard.initial
        labels = self._labels(obs, info, None)
        violated: frozenset[str] = frozenset()
        if self.label_reset:
            violated = self.safeguard.step_violations(self.state, labels)
            self.state = self.safeguard.step(self.state, labels)
        reached = self.state
        if violated and self.after_violation == "reset":
            self.state = self.safeguard.initial
        info.update(core.info_entries(self.safeguard, labels, reached, violated,
                                      float(len(violated)), state=self.state))
        return self.observation(obs), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, task_reward, env_terminated, truncated, info = self.env.step(action)
        self.steps += 1
        labels = self._labels(obs, info, action)
        step, reached = self._transition(self.state, labels, bool(env_terminated),
                                         bool(truncated))
        reward = self.reward_fn(float(task_reward), step)
        ended = step.terminated or bool(truncated)
        # After a violation with after_violation="reset" the observation already shows the
        # restarted safeguard (the state the next step starts from); `verdict` says violated.
        info.update(core.info_entries(
            self.safeguard, labels, reached, step.violated_rules,
            float(len(step.violated_rules) + len(step.pending_rules)), state=step.next_state,
            task_reward=float(task_reward), env_terminated=bool(env_terminated),
            pending=step.pending_rules if ended else None))
        self.state = step.next_state
        return self.observation(obs), reward, step.terminated, bool(truncated), info

    def _transition(self, state: int, labels: frozenset[str], env_terminated: bool,
                    truncated: bool) -> tuple[SafeguardStep, int]:
        """The safeguard's side of one step from ``state``: violations, termination, obligations
        pending at the end, the state the next step starts from, and the state reached."""
        sg = self.safeguard
        reached = sg.step(state, labels)
        violated = (sg.step_violations(state, labels)
                    if sg.verdicts[reached] == Verdict.VIOLATED else core.EMPTY)
        terminated = env_terminated or (bool(violated) and self.terminate_on_violation)
        pending = core.end_pending(sg, reached) if terminated or truncated else core.EMPTY
        after = reached
        if violated and self.after_violation == "reset" and not (terminated or truncated):
            after = sg.initial
        return SafeguardStep(sg, state, after, violated, terminated, pending), reached

    # -- counterfactual experience -------------------------------------------------------------
    def counterfactuals(self, obs: Any, action: Any, task_reward: float, next_obs: Any,
                        labels: set[str], env_terminated: bool, truncated: bool
                        ) -> list[tuple[Any, Any, float, Any, bool, bool]]:
        """The transition for every safeguard state, given one real environment transition.

        ``obs``/``next_obs`` are the environment's (not the product's) observations; ``labels``,
        ``task_reward`` and ``env_terminated`` are what the wrapper reported in ``info``
        (``labels``, ``task_reward``, ``env_terminated``).  Returns product transitions
        ``(obs, action, reward, next_obs, terminated, truncated)`` — one per non-violated
        safeguard state, as Reward Machines' counterfactual experience (CRM) does.
        """
        result = []
        for q in range(self.safeguard.n_states):
            if self.safeguard.verdict(q) == Verdict.VIOLATED:
                continue
            step, _ = self._transition(q, frozenset(labels), env_terminated, truncated)
            result.append((self.observation(obs, q), action, self.reward_fn(task_reward, step),
                           self.observation(next_obs, step.next_state), step.terminated,
                           truncated))
        return result
