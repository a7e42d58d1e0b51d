"""A token-level shield: a ``transformers`` logits processor that keeps completions compliant.

:class:`SafeguardLogitsProcessor` masks (sets to ``-inf``) exactly the tokens whose appending
would make a violation unavoidable, using a precomputed :class:`~safeguards.llm.index.TokenIndex`
(see that module for the combined automaton and what "unavoidable" means):

* a text token is allowed iff, after it, some continuation still ends compliantly (the safeguard
  accepts the final trace, under finite semantics: no rule violated, no obligation pending);
* EOS is allowed iff ending right now is compliant;
* special tokens other than EOS and ids beyond the tokenizer (logits wider than the vocabulary)
  are never allowed.

Hence every completion that the shield lets end with EOS satisfies the spec, and the reward of
:func:`~safeguards.llm.rewards.make_reward_func` (same labeler) agrees: on any text, "ending
here is compliant" for the shield's state is "no rule violated" for the reward.

Length limit.  Without a budget, a completion cut by ``max_new_tokens`` is not covered: a
compliant ending was still reachable, but e.g. a sentence awaiting its disclaimer may be cut.
Give the shield the same ``max_new_tokens`` as ``generate`` and it also keeps a compliant ending
reachable *in time*: a token is allowed only if, after it, the fewest tokens to a state where EOS
is allowed (``index.distance``), plus the EOS, still fit in the budget.  Then every completion
ends with EOS within the budget and complies (unless the budget is too small from the start:
the fallback applies).

Only character-level events (keywords, regexes) can be shielded: classifier events cannot be
foreseen token by token, so a labeler with :class:`~safeguards.llm.events.ClassifierEvent` is
refused.

State tracking.  The first call after :meth:`reset` (or of a new ``generate``) takes the whole
``input_ids`` as the prompt; the completion, and the shield's state, start after it.  Each later
call reads the new tokens.  If the rows were reordered (beam search) the states are replayed from
the prompt; if the prompt changed, a new generation starts.  Rows that produced EOS are finished
and left alone.

No allowed token.  This happens only when no compliant ending is reachable any more (an
unsatisfiable spec for this vocabulary, a budget too small for it, or a disallowed token forced
by someone else).  The shield
then warns (:class:`ShieldWarning`), counts it in ``stats["fallbacks"]`` and applies ``fallback``:
``"eos"`` (default) forces EOS, ending the completion (the reward will score the violation);
``"unshielded"`` leaves that row's logits unmasked; ``"raise"`` raises :class:`ShieldError`.

Order with the other processors.  ``generate`` (``GenerationMixin._get_logits_processor``) runs
its built-in processors (repetition penalty, ``min_new_tokens``, ``suppress_tokens``,
``bad_words_ids``, forced BOS/EOS, ...) first, then the ``logits_processor=`` list in its order,
then, when sampling, the warpers (temperature, top-k, top-p, min-p, typical, epsilon/eta) and
``renormalize_logits`` last.  So the shield masks *before* top-k/top-p, and its mask holds after
them: the warpers only rescale logits or set more of them to ``-inf``, so a masked token stays at
``-inf`` (probability 0), and top-k/top-p choose among the allowed tokens (they keep at least the
most likely one).  Only what runs before the shield can conflict with it: if a built-in processor
or one listed before the shield in ``logits_processor=`` already set every allowed token to
``-inf`` (e.g. ``min_new_tokens`` hides EOS when only EOS is allowed), the shield gives the
allowed tokens equal scores (warned once, counted in ``stats["warper_conflicts"]``, a key named
before this was understood).  Hence list the shield last in ``logits_processor=``.

>>> import safeguards, torch
>>> from safeguards.llm import TokenIndex, default_text_labeler
>>> sg = safeguards.compile_ltl("G !banned")
>>> vocab = [b"<eos>", b"you", b" kill", b"er", b"!"]          # token id -> bytes
>>> shield = SafeguardLogitsProcessor(sg, index=TokenIndex.from_vocabulary(
...     sg, default_text_labeler(), vocab, eos_ids=[0]))
>>> shield(torch.tensor([[1]]), torch.zeros(1, 6))            # the prompt; id 5 is no token
tensor([[0., 0., 0., 0., 0., -inf]])
>>> shield(torch.tensor([[1, 1, 2]]), torch.zeros(1, 6))      # generated "you kill" so far
tensor([[-inf, 0., -inf, 0., -inf, -inf]])
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import LogitsProcessor

from safeguards.automata.safeguard import Safeguard
from safeguards.errors import SafeguardsError
from safeguards.llm.events import TextLabeler, default_text_labeler
from safeguards.llm.index import TokenIndex
from safeguards.compiler import load_safeguard

__all__ = ["SafeguardLogitsProcessor", "ShieldWarning", "ShieldError", "FALLBACKS"]

FALLBACKS = ("eos", "unshielded", "raise")


class ShieldWarning(UserWarning):
    """The shield found no allowed token for a row (see ``fallback``), or a processor that ran
    before it had removed every allowed token."""


class ShieldError(SafeguardsError, RuntimeError):
    """No token can keep the completion compliant and ``fallback="raise"``."""


class SafeguardLogitsProcessor(LogitsProcessor):
    """Masks the tokens that would make a violation of ``safeguard`` unavoidable (see the module
    docstring).

    ``safeguard``: a compiled safeguard or a spec to compile.  ``labeler``: the text labeler
    (default :func:`~safeguards.llm.events.default_text_labeler`, as the reward's).
    ``tokenizer``: needed unless ``index`` is given.  ``eos_token_id``: one id or several
    (default: the tokenizer's).  ``cache_dir``: where to cache the index.  ``fallback``: what to
    do when no token is allowed (``"eos"``, ``"unshielded"`` or ``"raise"``).
    ``max_new_tokens``: the completion length budget (see "Length limit" in the module docstring).
    """

    supports_continuous_batching = False

    def __init__(self, safeguard: Safeguard | str | os.PathLike[str],
                 labeler: TextLabeler | None = None, tokenizer: Any = None, *,
                 index: TokenIndex | None = None, eos_token_id: int | Sequence[int] | None = None,
                 cache_dir: str | Path | None = None, fallback: str = "eos",
                 max_new_tokens: int | None = None) -> None:
        if fallback not in FALLBACKS:
            raise ShieldError(f"unknown fallback {fallback!r} (choose one of "
                              f"{', '.join(FALLBACKS)})")
        self.safeguard = load_safeguard(safeguard)
        self.labeler = labeler or default_text_labeler()
        if index is None:
            if tokenizer is None:
                raise ShieldError("pass a tokenizer (or a prebuilt index=)")
            index = TokenIndex.build(self.safeguard, self.labeler, tokenizer,
                                     eos_token_id=eos_token_id, cache_dir=cache_dir)
        self.index = index
        self.fallback = fallback
        self.max_new_tokens = max_new_tokens
        finite = index.distance[index.live]
        self._max_distance = int(finite.max()) if finite.size else 0
        self.stats = {"steps": 0, "fallbacks": 0, "warper_conflicts": 0}
        self._tables: dict[tuple[str, int], torch.Tensor] = {}
        self._has_allowed = index.allowed.any(axis=1)
        self._eos = np.asarray(index.eos_ids, dtype=np.int64)
        self.reset()

    # -- state tracking ----------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the current generation (the next call starts a new one)."""
        self._prompt: torch.Tensor | None = None
        self._ids: torch.Tensor | None = None
        self.generated = 0
        self.states = np.zeros(0, dtype=np.int64)
        self.finished = np.zeros(0, dtype=bool)

    def _start(self, batch: int) -> None:
        self.states = np.full(batch, self.index.initial, dtype=np.int64)
        self.finished = np.zeros(batch, dtype=bool)

    def _feed(self, tokens: np.ndarray) -> None:
        """Advance every unfinished row by one token."""
        active = ~self.finished
        is_eos = np.isin(tokens, self._eos)
        self.finished |= active & is_eos
        moving = active & ~is_eos & (tokens < self.index.vocab_size)
        self.states[moving] = self.index.next[self.states[moving], tokens[moving]]

    def observe(self, input_ids: torch.Tensor) -> None:
        """Advance the tracked states to ``input_ids`` (``__call__`` does this first; call it
        after ``generate`` to account for the last generated token)."""
        ids = input_ids.detach()
        batch, length = ids.shape
        previous = self._ids
        if (previous is not None and previous.shape[0] == batch and length > previous.shape[1]
                and torch.equal(ids[:, :previous.shape[1]], previous)):
            new = ids[:, previous.shape[1]:]
        elif (self._prompt is not None and self._prompt.shape[0] == batch
              and length > self._prompt.shape[1]
              and torch.equal(ids[:, :self._prompt.shape[1]], self._prompt)):
            self._start(batch)            # rows reordered (beam search): replay the completions
            new = ids[:, self._prompt.shape[1]:]
        else:
            self._prompt = ids.clone()    # a new generation: everything so far is the prompt
            self._start(batch)
            new = ids[:, length:]
        for column in new.T.cpu().numpy():
            self._feed(column.astype(np.int64))
        self._ids = ids.clone()
        self.generated = length - self._prompt.shape[1]

    # -- masking -----------------------------------------------------------------------------
    def _blocked(self, width: int, device: torch.device) -> torch.Tensor:
        """``[state, token]``: blocked tokens, as wide as the logits (ids beyond the tokenizer are
        blocked); one extra last row blocks nothing (for finished rows)."""
        key = (str(device), width)
        table = self._tables.get(key)
        if table is None:
            allowed = self.index.allowed[:, :width]
            blocked = np.ones((allowed.shape[0] + 1, width), dtype=bool)
            blocked[:-1, :allowed.shape[1]] = ~allowed
            blocked[-1] = False
            table = self._tables[key] = torch.from_numpy(blocked).to(device)
        return table

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.observe(input_ids)
        self.stats["steps"] += 1
        table = self._blocked(scores.shape[-1], scores.device)
        rows = np.where(self.finished, table.shape[0] - 1, self.states)
        blocked = table[torch.from_numpy(rows).to(scores.device)]
        stuck = ~self.finished & ~self._has_allowed[self.states]
        if self.max_new_tokens is not None:
            stuck |= self._apply_budget(blocked)
        if stuck.any():
            blocked = self._fall_back(torch.from_numpy(stuck).to(scores.device), blocked)
        masked = scores.masked_fill(blocked, float("-inf"))
        emptied = torch.isneginf(masked.amax(dim=1))
        emptied &= torch.from_numpy(~self.finished).to(scores.device)
        if bool(emptied.any()):
            self._warn_emptied_before_shield(int(emptied.sum()))
            masked[emptied] = torch.where(blocked[emptied], float("-inf"), 0.0).to(masked.dtype)
        return masked

    def _apply_budget(self, blocked: torch.Tensor) -> np.ndarray:
        """Block the tokens after which a compliant ending no longer fits in the remaining budget
        (in place); return the rows left without any token."""
        slack = self.max_new_tokens - self.generated - 2   # tokens between this one and EOS
        stuck = np.zeros_like(self.finished)
        if slack >= self._max_distance:
            return stuck
        index = self.index
        for row in np.flatnonzero(~self.finished):
            state = self.states[row]
            late = index.distance[index.next[state]] > slack
            late[list(index.eos_ids)] = False
            width = min(late.size, blocked.shape[1])
            blocked[row, :width] |= torch.from_numpy(late[:width]).to(blocked.device)
            stuck[row] = bool(blocked[row].all())
        return stuck

    def _fall_back(self, stuck: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        count = int(stuck.sum())
        self.stats["fallbacks"] += count
        message = (f"SafeguardLogitsProcessor: no token keeps {count} completion(s) compliant "
                   f"(spec {self.safeguard.name!r}); fallback={self.fallback!r}")
        if self.fallback == "raise":
            raise ShieldError(message)
        warnings.warn(message, ShieldWarning, stacklevel=3)
        if self.fallback == "eos":
            blocked[stuck] = True
            blocked[stuck, int(self._eos[0])] = False
        else:
            blocked[stuck] = False
        return blocked

    def _warn_emptied_before_shield(self, count: int) -> None:
        if self.stats["warper_conflicts"] == 0:
            warnings.warn("SafeguardLogitsProcessor: a logits processor that ran before the "
                          "shield (a generate option such as min_new_tokens, suppress_tokens or "
                          "bad_words_ids, or one listed before the shield in logits_processor=) "
                          "removed every allowed token; the allowed tokens get equal scores. "
                          "List the shield last and drop the conflicting option (see the module "
                          "docstring).", ShieldWarning, stacklevel=3)
        self.stats["warper_conflicts"] += count

    # -- inspection --------------------------------------------------------------------------
    def can_end(self) -> np.ndarray:
        """For each row: would ending the completion here comply with the spec?"""
        return self.index.good[self.states].copy()
