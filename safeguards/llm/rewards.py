"""Safeguard reward functions for TRL's ``GRPOTrainer`` and ``RLOOTrainer``.

:func:`make_reward_func` returns a plain, named function with the signature TRL calls reward
functions with: ``reward(prompts, completions, completion_ids, **kwargs) -> list[float]``.
Each completion is turned into a trace by a text labeler (:mod:`safeguards.llm.events`) and
judged by the compiled safeguard under finite-trace semantics:

* the rules *violated* by the trace are those named by
  :meth:`~safeguards.Safeguard.step_violations` along the run, plus, if the run does not end
  in the violation state, the rules still *pending* at the end
  (:meth:`~safeguards.Safeguard.pending_rules`: e.g. ``F disclaimer`` never met);
* reward = ``-(sum of the penalties of the violated rules)`` (each rule's ``penalty`` from the
  spec, or ``violation_penalty`` for every rule if given), or ``satisfied_bonus`` when no rule is
  violated.

The function never returns ``None`` (TRL reads ``None`` as "this reward does not apply"): every
completion is judged.  Conversational completions (lists of messages) are judged on the content of
their last assistant message.  When the trainer passes ``log_metric`` (TRL >= 1.0 does), the
function logs ``<name>/violation_rate`` and ``<name>/violated/<rule>`` (fractions of the batch);
with ``log_extra`` it adds a ``<name>/violated_rules`` column to the completions table.

>>> import safeguards
>>> reward = make_reward_func(safeguards.compile_ltl("G !pii"))
>>> reward.__name__, reward(prompts=["Hi"] * 2, completions=["Mail me at a@b.io", "Sure!"],
...                          completion_ids=[[], []])
('safeguard_formula', [-1.0, 0.0])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from safeguards.automata.analysis import Verdict
from safeguards.automata.safeguard import Safeguard
from safeguards.compiler import load_safeguard
from safeguards.errors import did_you_mean
from safeguards.labels import LabelError
from safeguards.llm.events import TextLabeler, default_text_labeler

__all__ = ["make_reward_func", "violated_rules", "completion_text", "check_labeler"]

RewardFunc = Callable[..., list[float]]


def check_labeler(safeguard: Safeguard, labeler: TextLabeler) -> None:
    """Raise :class:`~safeguards.labels.LabelError` if ``labeler`` cannot emit a proposition the
    safeguard reads."""
    for prop in safeguard.props:
        if prop not in labeler.props:
            hint = did_you_mean(prop, labeler.props)
            raise LabelError(f"the spec reads `{prop}` but the text labeler emits only "
                             f"{', '.join(labeler.props)}" + (f" ({hint})" if hint else ""))


def violated_rules(safeguard: Safeguard, trace: Iterable[Iterable[str]]) -> frozenset[str]:
    """The rules a finite trace violates: broken on the way, or pending at its end.

    Propositions the safeguard does not read are ignored.

    >>> import safeguards
    >>> sg = safeguards.compile_ltl("F disclaimer")
    >>> violated_rules(sg, [{"medical"}]), violated_rules(sg, [{"disclaimer"}])
    (frozenset({'formula'}), frozenset())
    """
    known = frozenset(safeguard.props)
    state, broken = safeguard.initial, set()
    for props in trace:
        step = frozenset(props) & known
        broken |= safeguard.step_violations(state, step)
        state = safeguard.step(state, step)
    if safeguard.verdict(state) != Verdict.VIOLATED:
        broken |= safeguard.pending_rules(state)
    return frozenset(broken)


def completion_text(completion: str | Sequence[dict[str, Any]]) -> str:
    """The text to judge: a plain completion, or the content of the last assistant message of a
    conversational one (text parts of multi-part content are joined).

    >>> completion_text([{"role": "assistant", "content": "Hello"}])
    'Hello'
    """
    if isinstance(completion, str):
        return completion
    messages = list(completion)
    if not messages:
        return ""
    assistant = [m for m in messages if m.get("role") == "assistant"]
    content = (assistant or messages)[-1].get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content
                   if isinstance(part, dict) and part.get("type", "text") == "text")


def make_reward_func(spec: Safeguard | str | os.PathLike[str],
                     labeler: TextLabeler | None = None, *,
                     violation_penalty: float | None = None, satisfied_bonus: float = 0.0,
                     name: str | None = None) -> RewardFunc:
    """A TRL reward function scoring completions against a safeguard (see the module docstring).

    ``spec``: a compiled :class:`~safeguards.Safeguard`, or a spec file path, shipped spec name or
    spec text to compile.  ``labeler``: the text labeler (default :func:`default_text_labeler`).
    ``violation_penalty``: one penalty for every rule instead of the spec's per-rule penalties.
    ``satisfied_bonus``: the reward of a completion that violates nothing.  ``name``: the
    function's ``__name__`` (TRL logs ``rewards/<name>``), default ``safeguard_<spec name>``.
    The returned function also carries ``.safeguard`` and ``.labeler``.
    """
    safeguard = load_safeguard(spec)
    labeler = labeler or default_text_labeler()
    check_labeler(safeguard, labeler)
    penalties = {rule.name: float(rule.penalty if violation_penalty is None else violation_penalty)
                 for rule in safeguard.rules}
    func_name = name or f"safeguard_{safeguard.name}"
    if not func_name.isidentifier():
        func_name = "safeguard_" + "".join(c if c.isalnum() else "_" for c in func_name)

    def reward(prompts: list[Any] | None = None, completions: list[Any] | None = None,
               completion_ids: list[list[int]] | None = None, **kwargs: Any) -> list[float]:
        texts = [completion_text(c) for c in completions or []]
        judged = [violated_rules(safeguard, trace) for trace in labeler.traces(texts)]
        rewards = [-sum(penalties[r] for r in broken) if broken else satisfied_bonus
                   for broken in judged]
        log_metric, log_extra = kwargs.get("log_metric"), kwargs.get("log_extra")
        if log_metric is not None and judged:
            log_metric(f"{func_name}/violation_rate", sum(map(bool, judged)) / len(judged))
            for rule in penalties:
                log_metric(f"{func_name}/violated/{rule}",
                           sum(rule in broken for broken in judged) / len(judged))
        if log_extra is not None:
            log_extra(f"{func_name}/violated_rules", [", ".join(sorted(b)) for b in judged])
        return rewards

    reward.__name__ = reward.__qualname__ = func_name
    reward.__doc__ = (f"Safeguard reward for spec {safeguard.name!r}: -(sum of penalties of the "
                      f"violated rules {sorted(penalties)}), or {satisfied_bonus} if none is "
                      f"violated.  Signature as TRL's GRPOTrainer/RLOOTrainer call it.")
    reward.safeguard = safeguard  # type: ignore[attr-defined]
    reward.labeler = labeler  # type: ignore[attr-defined]
    return reward
