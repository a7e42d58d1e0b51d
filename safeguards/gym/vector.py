"""The product MDP of a *vector* environment and a safeguard: one safeguard state per sub-env.

:class:`SafeguardVectorWrapper` behaves exactly like a vector environment whose sub-environments
are each wrapped in a :class:`~safeguards.gym.SafeguardWrapper` with the same options —
observations, rewards, terminations, truncations and every ``info`` key agree step by step
(``tests/test_vector_wrapper.py`` checks this for all three autoreset modes) — but it steps all
the safeguards at once with one table lookup (``safeguard.table[states, letters]``) and needs
no change inside the sub-environments (so it works over ``AsyncVectorEnv`` too).

**How the labeler is called.**  For each sub-environment ``i`` the wrapper calls
``labeler(obs_i, info_i, action_i)`` on the state that sub-environment *reached*, as the single
wrapper does:

* ``obs_i`` is the ``i``-th observation of the batch (``gymnasium.vector.utils.iterate``), and
  ``action_i`` the ``i``-th action (``None`` at a reset);
* ``info_i`` is the ``i``-th sub-environment's info rebuilt from the vector info dict: every key
  whose ``_key`` mask is set for ``i`` (keys without a mask are taken as they are; nested dicts
  are rebuilt the same way).  Values are the array elements, so numbers are numpy scalars
  (``np.bool_`` comes back as ``bool``);
* with ``AutoresetMode.SAME_STEP`` the step that ended an episode is labelled with
  ``info["final_obs"][i]`` and ``info["final_info"]`` rebuilt for ``i``, then the reset
  observation and info with ``action=None``.

``labeler`` may also be a sequence of ``num_envs`` labelers, one per sub-environment — e.g. each
closing over ``envs.envs[i]`` of a ``SyncVectorEnv`` to read the simulator's state.  Such
labelers see the sub-environment *after* the vector env stepped it, so they are only correct
with ``NEXT_STEP`` and ``DISABLED`` autoreset: with ``SAME_STEP`` the sub-environment has already
been reset when its final step is labelled; put the facts into ``info`` there instead (a
``gymnasium.Wrapper`` on each sub-env and an :class:`~safeguards.labels.InfoLabeler`).  Labelers
should be pure: the order of calls across sub-environments differs from the single wrapper's.

**Autoreset** (``env.metadata["autoreset_mode"]``; missing means ``NEXT_STEP``, with a warning):

* ``NEXT_STEP``: the step after a sub-env's episode ended returns its reset observation, reward
  0 and no termination; its safeguard restarts in the initial state and reads no label (unless
  ``label_reset``) — exactly what ``SafeguardWrapper.reset`` does;
* ``SAME_STEP``: an ended step is reported in ``info["final_obs"]`` / ``info["final_info"]``
  (product observation, safeguard keys, ``pending_rules``, ``end_violation``) and the top-level
  observation and info are those of the reset;
* ``DISABLED``: the caller resets ended sub-envs with ``reset(options={"reset_mask": mask})``;
  stepping a sub-env whose episode ended is an error.

With ``terminate_on_violation`` the wrapper ends episodes that the vector env does not know are
over.  ``SAME_STEP``: it resets those sub-envs at once (``reset(options={"reset_mask": ...})``).
``NEXT_STEP`` over a ``SyncVectorEnv``: it marks them for the vector env's own autoreset, so the
next step resets them exactly as above.  ``NEXT_STEP`` over any other vector env
(``AsyncVectorEnv``): the next ``step`` still steps them once (the action is discarded) and
then resets them with a ``reset_mask``; the observations agree with the single wrapper's, but
an environment that draws random numbers in ``step`` starts its next episode from another
random state.  Put episode-tracking vector wrappers (``RecordEpisodeStatistics``) *on top of*
this wrapper, so that they see its terminations.

**Info keys** (the Gymnasium vector way: an array per key plus a ``_key`` boolean mask), as
the single wrapper reports them: ``labels`` (object array of sorted lists),
``safeguard_state`` (int64; the state the next step starts from, as in the observation),
``verdict`` (object array of str; the verdict of the state the step reached — after a violation
with ``after_violation="reset"`` it says ``violated`` while ``safeguard_state`` is already the
initial state), ``violated_rules`` (object array of sorted lists) and ``cost`` (float64) for
every sub-env on every step and reset; ``task_reward`` (float64) and ``env_terminated`` (bool)
for every sub-env that stepped; ``pending_rules`` / ``end_violation`` for the sub-envs whose
episode ended on this step.

>>> import gymnasium as gym
>>> import safeguards
>>> from safeguards.labels import labeler
>>> @labeler("left")
... def moved_left(obs, info, action):
...     return {"left"} if action == 0 else set()
>>> envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)
>>> envs = SafeguardVectorWrapper(envs, safeguards.compile_ltl("G !left"), moved_left,
...                               reward="penalty", terminate_on_violation=True)
>>> obs, info = envs.reset(seed=0)
>>> obs["safeguard"].tolist(), info["verdict"].tolist()
([0, 0], ['presumably_satisfied', 'presumably_satisfied'])
>>> obs, reward, terminated, truncated, info = envs.step(np.array([0, 1]))
>>> reward.tolist(), terminated.tolist(), info["violated_rules"].tolist()
([0.0, 1.0], [True, False], [['formula'], []])
>>> obs, reward, terminated, truncated, info = envs.step(np.array([1, 1]))  # env 0 restarts
>>> obs["safeguard"].tolist(), reward.tolist(), terminated.tolist()
([0, 0], [0.0, 1.0], [False, False])
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, Sequence

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space, iterate

from safeguards.automata import Safeguard, Verdict
from safeguards.gym.core import (
    EMPTY, checked_options, end_pending, info_entries, product_observation, spec_labels,
)
from safeguards.gym.rewards import RewardMode, SafeguardSteps, batch_rewards
from safeguards.gym.wrapper import Observe, product_observation_space
from safeguards.labels import FunctionLabeler, LabelError, Labeler

__all__ = ["SafeguardVectorWrapper"]

_FINAL_KEYS = frozenset({"final_obs", "final_info"})
_RESTARTING: tuple[frozenset[str], int, list[str]] = (EMPTY, 0, [])   # no label this step
_CACHE_LIMIT = 1 << 16


def env_info(infos: dict[str, Any], i: int, exclude: frozenset[str] = frozenset()
             ) -> dict[str, Any]:
    """The ``i``-th sub-environment's info rebuilt from a vector info dict (see the module
    docstring)."""
    out: dict[str, Any] = {}
    if not infos:
        return out
    for key, value in infos.items():
        if key in exclude or (key[:1] == "_" and key[1:] in infos):
            continue
        mask = infos.get("_" + key)
        if mask is not None and not mask[i]:
            continue
        if isinstance(value, dict):
            out[key] = env_info(value, i)
        else:
            item = value[i]
            out[key] = bool(item) if type(item) is np.bool_ else item
    return out


def _drop_env(infos: dict[str, Any], i: int) -> None:
    """Remove the ``i``-th sub-environment's entries from a vector info dict (in place)."""
    for key in [k for k in infos if not (k[:1] == "_" and k[1:] in infos)]:
        mask = infos.get("_" + key)
        if mask is None or not mask[i]:
            continue
        mask = infos["_" + key] = np.array(mask, dtype=bool)
        mask[i] = False
        value = infos[key]
        if isinstance(value, dict):
            _drop_env(value, i)
        elif isinstance(value, np.ndarray):
            value = infos[key] = value.copy()    # rebuilt infos may hold views of the old one
            value[i] = None if value.dtype == object else 0
        if not mask.any():
            del infos[key], infos["_" + key]


def _put(infos: dict[str, Any], key: str, values: np.ndarray, mask: np.ndarray) -> None:
    """Set ``infos[key]`` (and its ``_key`` mask) for the sub-envs in ``mask``, keeping what the
    vector env reported under the same key for the others."""
    old = infos.get(key)
    if old is None:
        infos[key] = values
        infos["_" + key] = mask
        return
    old_mask = infos.get("_" + key)
    if isinstance(old, np.ndarray) and old_mask is not None and len(old) == len(values):
        keep = np.asarray(old_mask, dtype=bool) & ~mask
        if keep.any():
            try:
                values[keep] = old[keep]
            except (TypeError, ValueError):
                values = values.astype(object)
                values[keep] = old[keep]
            mask = mask | keep
    infos[key] = values
    infos["_" + key] = mask


def _objects(items: Sequence[Any], n: int) -> np.ndarray:
    return np.fromiter(items, dtype=object, count=n)


class SafeguardVectorWrapper(VectorWrapper):
    """Compose a vector environment with a safeguard per sub-environment.

    Same options as :class:`~safeguards.gym.SafeguardWrapper` (``observe``, ``reward``,
    ``terminate_on_violation``, ``after_violation``, ``label_reset``, ``missing_props``,
    ``gamma``); ``labeler`` is one labeler or a sequence of ``num_envs`` labelers.  See the
    module docstring for how labelers are called, autoreset modes and the info keys.

    Attributes:
        states: ``int64`` array, the safeguard state of each sub-environment — the one the next
            step starts from and the observation shows.
    """

    def __init__(self, env: VectorEnv, safeguard: Safeguard,
                 labeler: Labeler | Sequence[Labeler], *,
                 observe: Observe = "dict",
                 reward: str | RewardMode | None = "task",
                 terminate_on_violation: bool = False,
                 after_violation: Literal["reset", "stay"] = "reset",
                 label_reset: bool = False,
                 missing_props: Literal["error", "warn"] = "error",
                 gamma: float = 0.99) -> None:
        if not isinstance(env, VectorEnv):  # gymnasium < 1.3 only asserts it
            raise TypeError(f"SafeguardVectorWrapper wraps a gymnasium.vector.VectorEnv, not a "
                            f"{type(env).__name__}; for one environment use SafeguardWrapper")
        super().__init__(env)
        n = self.num_envs
        if isinstance(labeler, (list, tuple)):
            if len(labeler) != n:
                raise ValueError(f"got {len(labeler)} labelers for {n} sub-environments; give "
                                 "one labeler, or one per sub-environment")
            labelers = list(labeler)
        else:
            labelers = [labeler] * n
        self.reward_fn = checked_options(safeguard, labelers, reward=reward,
                                         after_violation=after_violation,
                                         missing_props=missing_props, gamma=gamma)
        unique = {id(item): item for item in labelers}
        self.autoreset_mode = self._autoreset_mode(env)
        self.single_observation_space = product_observation_space(
            env.single_observation_space, safeguard.n_states, observe)
        self.observation_space = self._batched_space(env.observation_space, safeguard.n_states,
                                                     observe)
        self.safeguard = safeguard
        self.labeler = labeler
        self.labelers = labelers
        self.observe = observe
        self.terminate_on_violation = bool(terminate_on_violation)
        self.after_violation = after_violation
        self.label_reset = bool(label_reset)
        self._restart_after_violation = after_violation == "reset"

        self._spec_props = frozenset(safeguard.props)
        caches: dict[int, dict[frozenset[str], tuple[frozenset[str], int, list[str]]]] = {
            key: {} for key in unique}
        self._caches = [caches[id(item)] for item in labelers]
        # The hot loop calls a FunctionLabeler's function directly: its result is validated
        # (with the labeler's name in errors) the first time it is seen, by ``_entry``.
        self._calls = [item.fn if type(item) is FunctionLabeler else item for item in labelers]
        self._violation_cache: dict[tuple[int, frozenset[str]], frozenset[str]] = {}
        table = safeguard.table
        self._is_violation = np.array([v == Verdict.VIOLATED for v in safeguard.verdicts],
                                      dtype=bool)
        # table[states, letters] (Safeguard.step_batch) as a flat ``take``:
        # index = state * n_letters + letter.  ``enters``: the step enters the violation state.
        self._n_letters = safeguard.n_letters
        self._table_flat = np.ascontiguousarray(table, dtype=np.int64).ravel()
        self._enters_flat = (self._is_violation[table] & ~self._is_violation[:, None]).ravel()
        self._verdict_names = _objects([v.value for v in safeguard.verdicts], safeguard.n_states)
        array_spaces = (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)
        self._obs_arrays = type(env.observation_space) in array_spaces
        self._action_arrays = type(env.action_space) in array_spaces
        dtype = getattr(self.single_observation_space, "dtype", None) or np.float32
        self._eye = np.eye(safeguard.n_states, dtype=dtype)
        self._final_exclude = (_FINAL_KEYS if self.autoreset_mode == AutoresetMode.SAME_STEP
                               else frozenset())
        # Exact NEXT_STEP autoreset of the sub-envs this wrapper terminates: flag them in the
        # SyncVectorEnv, whose own autoreset then resets them on the next step.  Gymnasium has
        # no public way to do this (1.1-1.4 keep the flags in the private `_autoreset_envs`),
        # so it is used only when present as that array, and pyproject.toml bounds Gymnasium
        # to the tested range; without it, the AsyncVectorEnv path below applies.
        self._flag_autoreset = (isinstance(env.unwrapped, SyncVectorEnv) and isinstance(
            getattr(env.unwrapped, "_autoreset_envs", None), np.ndarray))

        self.states = np.zeros(n, dtype=np.int64)
        # Steps since reset, for error messages: self._t - self._reset_at[i].
        self._t = 0
        self._reset_at = np.zeros(n, dtype=np.int64)
        self._ended = np.zeros(n, dtype=bool)       # episode ended on the last step
        self._forced = np.zeros(n, dtype=bool)      # ended by us; the vector env does not know
        self._any_ended = self._any_forced = False

    # -- construction helpers ------------------------------------------------------------------
    @staticmethod
    def _autoreset_mode(env: VectorEnv) -> AutoresetMode:
        mode = env.metadata.get("autoreset_mode")
        if mode is None:
            warnings.warn(f"{env} has no `autoreset_mode` in its metadata; assuming "
                          "AutoresetMode.NEXT_STEP", stacklevel=3)
            return AutoresetMode.NEXT_STEP
        if not isinstance(mode, AutoresetMode):
            raise TypeError(f"expected env.metadata['autoreset_mode'] to be a "
                            f"gymnasium.vector.AutoresetMode, got {mode!r}")
        return mode

    def _batched_space(self, space: spaces.Space, n_states: int, observe: Observe
                       ) -> spaces.Space:
        if observe == "dict":
            return spaces.Dict({"obs": space, "safeguard": batch_space(spaces.Discrete(n_states),
                                                                       self.num_envs)})
        if observe == "onehot":
            assert isinstance(space, spaces.Box)  # checked for the single space
            dtype = space.dtype if np.issubdtype(space.dtype, np.floating) else np.float32
            shape = (space.shape[0], n_states)
            low = np.concatenate([space.low.astype(dtype), np.zeros(shape, dtype)], axis=1)
            high = np.concatenate([space.high.astype(dtype), np.ones(shape, dtype)], axis=1)
            return spaces.Box(low, high, dtype=dtype)
        return space

    # -- observations and labels ---------------------------------------------------------------
    def _observation(self, obs: Any) -> Any:
        if self.observe == "dict":
            return {"obs": obs, "safeguard": self.states.copy()}
        if self.observe == "onehot":
            return np.concatenate([np.asarray(obs, dtype=self._eye.dtype),
                                   self._eye[self.states]], axis=1)
        return obs

    def _label(self, i: int, obs: Any, info: dict[str, Any], action: Any, step: int
               ) -> tuple[frozenset[str], int, list[str]]:
        """Call labeler ``i``; returns its labels, their letter and the sorted label list."""
        try:
            raw = self.labelers[i](obs, info, action)
        except LabelError as error:
            raise LabelError(f"{error} (at step {step})") from None
        return self._entry(i, raw, step)

    def _entry(self, i: int, raw: Any, step: int) -> tuple[frozenset[str], int, list[str]]:
        """Labels, letter and sorted label list of what labeler ``i`` returned (cached)."""
        cache = self._caches[i]
        kind = type(raw)
        key = raw if kind is frozenset else frozenset(raw) if kind is set else None
        if key is not None:
            entry = cache.get(key)
            if entry is not None:
                return entry
        labels = spec_labels(self.labelers[i], raw, self._spec_props, step)
        entry = (labels, self.safeguard.letter(labels), sorted(labels))
        if key is not None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = entry
        return entry

    def _fresh_entry(self, i: int, raw: Any) -> tuple[frozenset[str], int, list[str]]:
        """``_entry`` of a result the hot loop got, which called ``_calls[i]``: when that was a
        :class:`FunctionLabeler`'s bare function, first check the result as the labeler does."""
        step = self._step_of(i)
        labeler = self.labelers[i]
        if self._calls[i] is not labeler:
            try:
                raw = labeler.as_labels(raw)
            except LabelError as error:
                raise LabelError(f"{error} (at step {step})") from None
        return self._entry(i, raw, step)

    def _step_of(self, i: int) -> int:
        """Steps since sub-env ``i`` was reset (what the single wrapper's ``steps`` says)."""
        return self._t - int(self._reset_at[i])

    def _violations(self, state: int, labels: frozenset[str]) -> frozenset[str]:
        """``safeguard.step_violations(state, labels)``, cached (a pure function)."""
        key = (state, labels)
        rules = self._violation_cache.get(key)
        if rules is None:
            if len(self._violation_cache) >= _CACHE_LIMIT:
                self._violation_cache.clear()
            rules = self._violation_cache[key] = self.safeguard.step_violations(state, labels)
        return rules

    def _restart(self, index: Sequence[int], obs_list: Sequence[Any], infos: dict[str, Any],
                 col: _Columns) -> None:
        """Restart the safeguards of the sub-envs in ``index`` on their reset observation, as
        ``SafeguardWrapper.reset`` does."""
        sg = self.safeguard
        for i in index:
            info = env_info(infos, i, self._final_exclude)
            labels, _, names = self._label(i, obs_list[i], info, None, 0)
            state = sg.initial
            violated = EMPTY
            if self.label_reset:
                violated = self._violations(state, labels)
                state = sg.step(state, labels)
            col.reached[i] = state
            if violated and self._restart_after_violation:
                state = sg.initial
            self.states[i] = state
            self._reset_at[i] = self._t
            col.labels[i] = names.copy()
            col.violated[i] = sorted(violated)
            col.cost[i] = float(len(violated))

    def _annotate(self, infos: dict[str, Any], mask: np.ndarray | None, col: _Columns) -> None:
        """Add the safeguard keys for the sub-envs in ``mask`` (``None``: all of them)."""
        n = self.num_envs
        states = self.states.copy()
        verdicts = self._verdict_names[col.reached]
        if mask is None:
            masks = np.ones((5, n), dtype=bool)      # one buffer, a row per key
        else:
            states[~mask] = 0
            verdicts[~mask] = None
            masks = np.repeat(mask[None, :], 5, axis=0)
        _put(infos, "labels", _objects(col.labels, n), masks[0])
        _put(infos, "safeguard_state", states, masks[1])
        _put(infos, "verdict", verdicts, masks[2])
        _put(infos, "violated_rules", _objects(col.violated, n), masks[3])
        _put(infos, "cost", col.cost, masks[4])

    # -- gymnasium vector API ------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset all sub-environments, or those in ``options["reset_mask"]``, and their
        safeguards."""
        reset_mask = None if options is None else options.get("reset_mask")
        obs, infos = self.env.reset(seed=seed, options=options)
        n = self.num_envs
        mask = (np.ones(n, dtype=bool) if reset_mask is None
                else np.array(reset_mask, dtype=bool))
        self._ended = self._ended & ~mask
        self._forced = self._forced & ~mask
        self._any_ended, self._any_forced = bool(self._ended.any()), bool(self._forced.any())
        obs_list = obs if self._obs_arrays else list(iterate(self.env.observation_space, obs))
        col = _Columns(n, self.states.copy())
        col.violated = [None] * n                  # filled for the sub-envs reset
        self._restart(np.flatnonzero(mask).tolist(), obs_list, infos, col)
        self._annotate(infos, None if reset_mask is None else mask, col)
        return self._observation(obs), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment and its safeguard (see the module docstring)."""
        mode = self.autoreset_mode
        if self._any_ended and mode == AutoresetMode.DISABLED:
            raise RuntimeError(
                f"sub-environments {np.flatnonzero(self._ended).tolist()} ended their episode; "
                "with AutoresetMode.DISABLED reset them first: "
                "reset(options={'reset_mask': mask})")
        obs, task, env_term, trunc, infos = self.env.step(actions)
        n = self.num_envs
        sg = self.safeguard
        env_term = np.asarray(env_term, dtype=bool)
        trunc = np.asarray(trunc, dtype=bool)
        task = np.asarray(task, dtype=np.float64)
        # NEXT_STEP: the sub-envs whose episode ended on the last step return a reset now.
        restarting = self._ended if self._any_ended else None
        if self._any_forced:
            # We ended these episodes and the vector env (not a SyncVectorEnv) did not know: it
            # stepped them once more; reset them now.
            forced = self._forced
            obs, infos = self._reset_now(forced, infos)
            task, env_term, trunc = task.copy(), env_term.copy(), trunc.copy()
            task[forced] = 0.0
            env_term[forced] = False
            trunc[forced] = False
            self._forced = np.zeros(n, dtype=bool)
            self._any_forced = False

        obs_list = obs if self._obs_arrays else list(iterate(self.env.observation_space, obs))
        actions_list = (actions if self._action_arrays and isinstance(actions, (np.ndarray, list))
                        else list(iterate(self.env.action_space, actions)))
        final = None                                # SAME_STEP: ended in the vector env
        if mode == AutoresetMode.SAME_STEP:
            final = env_term | trunc
            if not final.any():
                final = None

        # -- labels and letters of the stepping sub-envs (the hot loop) --
        self._t += 1
        if final is None and restarting is None and not infos:
            entries: list[Any] = []
            append = entries.append
            for call, cache, o, a in zip(self._calls, self._caches, obs_list, actions_list):
                try:
                    raw = call(o, {}, a)
                except LabelError as error:
                    raise LabelError(f"{error} (at step {self._step_of(len(entries))})") from None
                kind = type(raw)
                entry = (cache.get(raw) if kind is frozenset else
                         cache.get(frozenset(raw)) if kind is set else None)
                if entry is None:
                    entry = self._fresh_entry(len(entries), raw)
                append(entry)
        else:
            entries = [_RESTARTING] * n
            exclude = self._final_exclude
            final_obs = infos.get("final_obs") if final is not None else None
            final_info = infos.get("final_info", {}) if final is not None else {}
            for i in (range(n) if restarting is None else np.flatnonzero(~restarting).tolist()):
                if final is not None and final[i]:
                    o, info = final_obs[i], env_info(final_info, i)
                else:
                    o, info = obs_list[i], (env_info(infos, i, exclude) if infos else {})
                entries[i] = self._label(i, o, info, actions_list[i], self._step_of(i))

        # -- all safeguards at once --
        before = self.states
        index = before * self._n_letters
        index += np.array([entry[1] for entry in entries], dtype=np.int64)
        reached = self._table_flat.take(index)
        entered = self._enters_flat.take(index)
        if restarting is not None:
            entered &= ~restarting
        violated: dict[int, frozenset[str]] = {}
        if entered.any():
            for i in np.flatnonzero(entered).tolist():
                rules = self._violations(int(before[i]), entries[i][0])
                if rules:
                    violated[i] = rules
        terminated = env_term
        if violated and self.terminate_on_violation:
            terminated = env_term.copy()
            terminated[list(violated)] = True
        done = terminated | trunc                  # never a restarting sub-env
        any_done = bool(done.any())
        pending: dict[int, frozenset[str]] = {}
        if any_done:
            for i in np.flatnonzero(done).tolist():
                rules = end_pending(sg, int(reached[i]))
                if rules:
                    pending[i] = rules
        after = reached
        if violated and self._restart_after_violation:
            after = reached.copy()
            for i in violated:
                if not done[i]:
                    after[i] = sg.initial
        reward = batch_rewards(self.reward_fn, task, SafeguardSteps(
            sg, before, after, violated, terminated, pending,
            None if restarting is None else ~restarting))
        col = _Columns(n, reached, [entry[2].copy() for entry in entries])
        for i, rules in violated.items():
            col.violated[i] = sorted(rules)
            col.cost[i] = len(rules)
        for i, rules in pending.items():
            col.cost[i] += len(rules)
        # restarting sub-envs: set by _restart (which also writes col.reached: no aliasing)
        self.states = after if after is not reached else reached.copy()

        stepped = None if restarting is None else ~restarting
        if mode == AutoresetMode.SAME_STEP:
            if any_done:
                obs, obs_list = self._same_step_final(done, env_term | trunc, obs, obs_list,
                                                      infos, entries, col, task, env_term,
                                                      violated, pending)
                restarting, stepped = done, ~done
        else:
            if any_done:
                _put(infos, "pending_rules", _objects(
                    [sorted(pending.get(i, EMPTY)) if done[i] else None for i in range(n)], n),
                    done.copy())
                _put(infos, "end_violation", np.array([i in pending for i in range(n)]),
                     done.copy())
            self._ended, self._any_ended = done, any_done
            if any_done and mode == AutoresetMode.NEXT_STEP:
                forced = done & ~(env_term | trunc)
                if forced.any():
                    if self._flag_autoreset:
                        self.env.unwrapped._autoreset_envs[forced] = True
                    else:
                        self._forced, self._any_forced = forced, True
        if stepped is None:
            masks = np.ones((2, n), dtype=bool)
            _put(infos, "task_reward", task.copy(), masks[0])
            _put(infos, "env_terminated", env_term.copy(), masks[1])
        elif stepped.any():
            _put(infos, "task_reward", np.where(stepped, task, 0.0), stepped)
            _put(infos, "env_terminated", env_term & stepped, stepped.copy())
        if restarting is not None:
            self._restart(np.flatnonzero(restarting).tolist(), obs_list, infos, col)
        self._annotate(infos, None, col)
        return self._observation(obs), reward, terminated, trunc, infos

    # -- step helpers --------------------------------------------------------------------------
    def _reset_now(self, mask: np.ndarray, infos: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Reset the sub-envs in ``mask`` now; their info entries become the reset's."""
        obs, reset_infos = self.env.reset(options={"reset_mask": mask.copy()})
        for i in np.flatnonzero(mask).tolist():
            _drop_env(infos, i)
            infos = self._add_info(infos, env_info(reset_infos, i), i)
        return obs, infos

    def _same_step_final(self, done: np.ndarray, final: np.ndarray, obs: Any,
                         obs_list: Any, infos: dict[str, Any], entries: list[Any],
                         col: _Columns, task: np.ndarray, env_term: np.ndarray,
                         violated: dict[int, frozenset[str]],
                         pending: dict[int, frozenset[str]]) -> tuple[Any, Any]:
        """SAME_STEP: report the ended steps in ``final_obs`` / ``final_info``; reset the
        sub-envs that only we ended."""
        sg = self.safeguard
        raw_final_obs = infos.get("final_obs")
        raw_final_info = infos.get("final_info", {})
        finals: dict[int, tuple[Any, dict[str, Any]]] = {}
        for i in np.flatnonzero(done).tolist():
            if final[i]:
                step_obs, step_info = raw_final_obs[i], env_info(raw_final_info, i)
            else:
                step_obs, step_info = obs_list[i], env_info(infos, i, self._final_exclude)
            state = int(self.states[i])
            step_info.update(info_entries(
                sg, entries[i][0], int(col.reached[i]), violated.get(i, EMPTY), col.cost[i],
                state=state, task_reward=task[i], env_terminated=env_term[i],
                pending=pending.get(i, EMPTY)))
            finals[i] = (product_observation(step_obs, state, self.observe, self._eye),
                         step_info)
        forced = done & ~final
        if forced.any():
            obs, _ = self._reset_now(forced, infos)  # updates infos in place
            obs_list = obs if self._obs_arrays else list(iterate(self.env.observation_space,
                                                                 obs))
        for i, (product_obs, step_info) in finals.items():
            self._add_info(infos, {"final_obs": product_obs, "final_info": step_info}, i)
        return obs, obs_list


class _Columns:
    """Per-sub-env values of the safeguard info keys, filled in during a step or reset."""

    __slots__ = ("labels", "violated", "cost", "reached")

    def __init__(self, n: int, reached: np.ndarray, labels: list[Any] | None = None) -> None:
        self.labels: list[Any] = labels if labels is not None else [None] * n
        self.violated: list[Any] = [[] for _ in range(n)]
        self.cost = np.zeros(n, dtype=np.float64)
        self.reached = reached                 # the state whose verdict is reported
