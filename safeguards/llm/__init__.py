"""LLM side of safeguards: text events, a TRL reward function, and a token-level shield.

* :mod:`safeguards.llm.events` -- text labelers (keywords, regexes, classifier events) that turn a
  completion into a trace; :func:`default_text_labeler` emits ``email phone pii banned disclaimer
  medical sentence_end``.
* :mod:`safeguards.llm.rewards` -- :func:`make_reward_func` for TRL's GRPO/RLOO trainers.
* :mod:`safeguards.llm.index` / :mod:`safeguards.llm.shield` -- the token index and
  :class:`SafeguardLogitsProcessor`, which masks tokens that would make a violation unavoidable.

The reward and the shield need ``torch``/``transformers`` only when the shield is imported.
"""

from safeguards.llm.charfsm import PatternError
from safeguards.llm.events import (ClassifierEvent, Keywords, Regex, TextLabeler, Unit,
                                   default_text_labeler)
from safeguards.llm.index import (CombinedAutomaton, IndexExactnessWarning, TokenIndex,
                                  TokenIndexError)
from safeguards.llm.rewards import completion_text, make_reward_func, violated_rules

__all__ = [
    "PatternError", "ClassifierEvent", "Keywords", "Regex", "TextLabeler", "Unit",
    "default_text_labeler", "CombinedAutomaton", "IndexExactnessWarning", "TokenIndex",
    "TokenIndexError", "completion_text", "make_reward_func", "violated_rules",
    "SafeguardLogitsProcessor", "ShieldWarning", "ShieldError",
]

_SHIELD_NAMES = ("SafeguardLogitsProcessor", "ShieldWarning", "ShieldError")


def __getattr__(name: str) -> object:
    """Import the shield (which needs torch and transformers) on first use."""
    if name in _SHIELD_NAMES:
        from safeguards.llm import shield

        return getattr(shield, name)
    raise AttributeError(f"module 'safeguards.llm' has no attribute {name!r}")
