"""Text events: detectors that turn a completion into a trace of proposition sets.

Contract of :func:`default_text_labeler` (spec files in ``specs/llm`` rely on these names):

==================  ================================================================================
``email``           an e-mail address (``name@domain.tld``; fires at the 2nd letter of the TLD)
``phone``           a phone-like number (10 digits, optional ``+CC``, ``(xxx)``, ``.-`` or spaces)
``pii``             ``email`` or ``phone``
``banned``          a word of :data:`BANNED_WORDS` (whole word, any case)
``disclaimer``      a phrase of :data:`DISCLAIMERS` (e.g. "not a doctor", "consult a doctor")
``medical``         medical advice: a dosage (``200 mg``, ``5ml``), a word of :data:`MEDICAL_WORDS`
``sentence_end``    a sentence just ended: ``.``, ``!`` or ``?`` followed by whitespace or the end
==================  ================================================================================

How a text becomes a trace
--------------------------
Character-level detectors (:class:`Keywords`, :class:`Regex`) are compiled together into one
deterministic automaton over the text's UTF-8 bytes (:mod:`safeguards.llm.charfsm`), so the events
of *any* token sequence are known exactly, even when a token cuts a word, an address or a character.
A detector *fires where a match ends*; whole-word keywords end at the non-word character that
follows the word (or at the end of the text), since only then is the word known to be whole.

The trace has one step per *unit* of text (the ``granularity``); a step's label is the set of
events that fired inside the unit:

* ``"sentence"`` (default): a sentence runs up to and including ``.``/``!``/``?`` and the
  whitespace after it; the next sentence starts at the next non-whitespace character.  Rules such
  as ``G(medical -> disclaimer)`` then read "every sentence giving medical advice carries a
  disclaimer", and ``X`` means "the next sentence".
* ``"word"``: a word and the whitespace after it (whitespace = ASCII space, tab, newlines).
* ``"char"``: one step per character.
* ``"completion"``: one step for the whole completion.

Leading whitespace belongs to the first unit; the empty text has the empty trace.  There is no
per-token granularity on purpose: a trace must not depend on where a tokenizer cuts the text.
The token shield (:mod:`safeguards.llm.shield`) uses exactly this definition, so the shield and
the reward agree on every text.

>>> labeler = default_text_labeler()
>>> [sorted(step) for step in labeler.trace("Take 400 mg of ibuprofen. I am not a doctor!")]
[['medical', 'sentence_end'], ['disclaimer', 'sentence_end']]
>>> [sorted(s) for s in default_text_labeler(granularity="word").trace("mail bob@example.com now")]
[[], ['email', 'pii'], []]
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from safeguards.labels import LabelError
from safeguards.llm.charfsm import END, ByteDFA, Nfa, compile_pattern

__all__ = [
    "Keywords", "Regex", "ClassifierEvent", "TextLabeler", "Unit", "default_text_labeler",
    "GRANULARITIES", "BANNED_WORDS", "DISCLAIMERS", "MEDICAL_WORDS", "EMAIL", "PHONE", "DOSAGE",
    "SENTENCE_END",
]

BANNED_WORDS = ("kill", "hate", "idiot", "stupid", "moron", "loser", "shut up", "damn")
DISCLAIMERS = ("not a doctor", "not medical advice", "consult a doctor", "consult your doctor",
               "talk to a doctor", "seek professional")
MEDICAL_WORDS = ("dose", "dosage", "prescription", "ibuprofen", "aspirin", "paracetamol",
                 "acetaminophen")
EMAIL = r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2}"
PHONE = r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}"
DOSAGE = r"(?i)\d+ ?(?:mg|mcg|ml)(?:\W|\Z)"
SENTENCE_END = r"[.!?](?:\s|\Z)"


def _props(prop: str | Sequence[str]) -> tuple[str, ...]:
    props = (prop,) if isinstance(prop, str) else tuple(prop)
    if not props or not all(isinstance(p, str) and p.isidentifier() for p in props):
        raise LabelError(f"a detector needs one or more identifier proposition names, got {prop!r}")
    return props


class Regex:
    """Fires ``prop`` (a name or several names) where a match of ``pattern`` ends.

    Python regex syntax with ASCII semantics (see :mod:`safeguards.llm.charfsm`); ``\\A`` and
    ``\\Z`` anchor at the start and end of the text.

    >>> TextLabeler([Regex("digits", r"\\d\\d")], granularity="char").trace("a123")
    [frozenset(), frozenset(), frozenset({'digits'}), frozenset({'digits'})]
    """

    def __init__(self, prop: str | Sequence[str], pattern: str) -> None:
        self.props = _props(prop)
        self.pattern = pattern
        compile_pattern(pattern, tag=1)  # fail early on unsupported syntax

    def describe(self) -> dict[str, Any]:
        return {"props": list(self.props), "pattern": self.pattern}

    def __repr__(self) -> str:
        return f"Regex({self.props!r}, {self.pattern!r})"


class Keywords(Regex):
    """Fires ``prop`` where one of ``words`` occurs; spaces inside a phrase match any run of
    whitespace.  ``whole_word``: the occurrence must be preceded by a non-word character (or the
    start) and followed by one (or the end); it fires on that following character.

    >>> TextLabeler([Keywords("bad", ["kill"])], granularity="word").trace("skill kill. KILL")
    [frozenset(), frozenset({'bad'}), frozenset({'bad'})]
    """

    def __init__(self, prop: str | Sequence[str], words: Iterable[str], *,
                 case_sensitive: bool = False, whole_word: bool = True) -> None:
        self.words = tuple(words)
        if not self.words or not all(isinstance(w, str) and w.strip() for w in self.words):
            raise LabelError(f"Keywords({prop!r}) needs non-empty words, got {self.words!r}")
        alternatives = "|".join(r"\s+".join(re.escape(part) for part in w.split())
                                for w in self.words)
        pattern = f"(?:{alternatives})"
        if whole_word:
            pattern = rf"(?:\A|\W){pattern}(?:\W|\Z)"
        super().__init__(prop, ("" if case_sensitive else "(?i)") + pattern)


class ClassifierEvent:
    """A semantic event from a ``transformers`` text-classification pipeline: ``prop`` holds in a
    unit of text when the pipeline's score for ``label`` is at least ``threshold``.

    Used by the reward only: a token shield cannot know ahead what a classifier will say, so
    :class:`~safeguards.llm.shield.SafeguardLogitsProcessor` refuses labelers with such events.
    Use it with ``granularity="sentence"`` or ``"completion"``.
    """

    def __init__(self, prop: str, pipeline: Callable[..., Any], label: str,
                 threshold: float = 0.5) -> None:
        (self.prop,) = _props(prop)
        self.props = (self.prop,)
        self.pipeline = pipeline
        self.label = label
        self.threshold = float(threshold)

    def fires(self, texts: Sequence[str]) -> list[bool]:
        """Whether the event holds for each text (one batched pipeline call)."""
        if not texts:
            return []
        outputs = self.pipeline(list(texts), top_k=None)
        fired = []
        for scores in outputs:
            scores = [scores] if isinstance(scores, dict) else scores
            fired.append(any(s["label"] == self.label and s["score"] >= self.threshold
                             for s in scores))
        return fired

    def describe(self) -> dict[str, Any]:
        return {"props": [self.prop], "classifier": self.label, "threshold": self.threshold}


# -- granularity: which byte starts a new unit --------------------------------------------------
# Byte kinds: OTHER, SPACE (ASCII whitespace), TERM (. ! ?), CONT (a UTF-8 continuation byte).
OTHER, SPACE, TERM, CONT = range(4)
_KIND = np.full(256, OTHER, dtype=np.int8)
_KIND[list(b" \t\n\r\f\v")] = SPACE
_KIND[list(b".!?")] = TERM
_KIND[0x80:0xC0] = CONT
BYTE_KIND = _KIND

# Phases (0 is always "nothing read yet"); per granularity: next_phase[phase, kind] and
# new_unit[phase, kind] (reading this byte closes the current unit and opens a new one).
_I, _L, _T, _M, _G = 0, 1, 2, 3, 4      # init, leading space, text, after terminator, gap
_SENTENCE_NEXT = [[_T, _L, _M, _T], [_T, _L, _M, _T], [_T, _T, _M, _T], [_T, _G, _M, _T],
                  [_T, _G, _M, _T]]
_SENTENCE_NEW = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 1]]
_WORD_NEXT = [[_T, _L, _T, _T], [_T, _L, _T, _T], [_T, _G, _T, _T], [_T, _G, _T, _T],
              [_T, _G, _T, _T]]
_WORD_NEW = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 1]]
_CHAR_NEXT = [[_T, _T, _T, _T], [_T, _T, _T, _T], [_T, _T, _T, _T]]
_CHAR_NEW = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0]]
_WHOLE_NEXT = [[_T, _T, _T, _T], [_T, _T, _T, _T], [_T, _T, _T, _T]]
_WHOLE_NEW = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
GRANULARITIES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    name: (np.asarray(nxt, dtype=np.int8), np.asarray(new, dtype=bool))
    for name, nxt, new in [("sentence", _SENTENCE_NEXT, _SENTENCE_NEW),
                           ("word", _WORD_NEXT, _WORD_NEW), ("char", _CHAR_NEXT, _CHAR_NEW),
                           ("completion", _WHOLE_NEXT, _WHOLE_NEW)]}


@dataclass(frozen=True)
class Unit:
    """One step of a trace: the unit's text and the propositions that hold in it."""

    text: str
    props: frozenset[str]


class TextLabeler:
    """Turns a text into a trace of proposition sets, one per unit of ``granularity``.

    ``detectors``: :class:`Keywords`, :class:`Regex` and :class:`ClassifierEvent` objects.
    ``props`` lists every proposition they can emit.

    >>> lab = TextLabeler([Keywords("greeting", ["hello"])], granularity="word")
    >>> lab.props, lab.trace("oh hello there")
    (('greeting',), [frozenset(), frozenset({'greeting'}), frozenset()])
    """

    def __init__(self, detectors: Sequence[Regex | ClassifierEvent], *,
                 granularity: str = "sentence") -> None:
        if granularity not in GRANULARITIES:
            raise LabelError(f"unknown granularity {granularity!r} "
                             f"(choose one of {', '.join(GRANULARITIES)})")
        self.granularity = granularity
        self.detectors = tuple(detectors)
        self.char_detectors = tuple(d for d in self.detectors if isinstance(d, Regex))
        self.classifiers = tuple(d for d in self.detectors if isinstance(d, ClassifierEvent))
        props: dict[str, None] = {}
        for d in self.detectors:
            props.update(dict.fromkeys(d.props))
        self.props: tuple[str, ...] = tuple(props)

    def __repr__(self) -> str:
        return f"<TextLabeler {self.granularity}: {', '.join(self.props)}>"

    def describe(self) -> str:
        """A canonical description (JSON), used in index cache keys."""
        return json.dumps({"granularity": self.granularity, "props": list(self.props),
                           "detectors": [d.describe() for d in self.detectors]}, sort_keys=True)

    def mask_of(self, detector: Regex | ClassifierEvent) -> int:
        """The event bitmask (over ``props``) of a detector's propositions."""
        return sum(1 << self.props.index(p) for p in detector.props)

    def names(self, mask: int) -> frozenset[str]:
        """The propositions of an event bitmask."""
        return frozenset(p for i, p in enumerate(self.props) if mask >> i & 1)

    def dfa(self, relevant: int = -1) -> ByteDFA:
        """The byte automaton of the character-level detectors whose events meet ``relevant``
        (a bitmask over ``props``; default all), firing event bitmasks over ``props``."""
        return _byte_dfa(tuple((d.pattern, self.mask_of(d) & relevant)
                               for d in self.char_detectors if self.mask_of(d) & relevant))

    def unit_spans(self, data: bytes) -> list[tuple[int, int, int]]:
        """``(start, stop, events)`` of each unit of the UTF-8 text ``data`` (byte offsets;
        character-level events only)."""
        dfa = self.dfa()
        next_phase, new_unit = GRANULARITIES[self.granularity]
        next_phase, new_unit = next_phase.tolist(), new_unit.tolist()
        kinds = BYTE_KIND.tolist()
        step, events = dfa.step, dfa.events
        state, phase, buffer, start = dfa.start, 0, 0, 0
        spans = []
        for i, byte in enumerate(data):
            state = step(state, byte)
            kind = kinds[byte]
            if new_unit[phase][kind]:
                spans.append((start, i, buffer))
                buffer, start = 0, i
            buffer |= events[state]
            phase = next_phase[phase][kind]
        if phase != 0:
            spans.append((start, len(data), buffer | events[step(state, END)]))
        return spans

    def batch_units(self, texts: Sequence[str]) -> list[list[Unit]]:
        """The units of each text with their propositions (classifier events included, one
        batched pipeline call per classifier)."""
        data = [t.encode("utf-8") for t in texts]
        spans = [self.unit_spans(d) for d in data]
        unit_texts = [d[a:b].decode("utf-8") for d, ss in zip(data, spans) for a, b, _ in ss]
        masks = [m for ss in spans for _, _, m in ss]
        for classifier in self.classifiers:
            bit = self.mask_of(classifier)
            masks = [m | bit if hit else m for m, hit in zip(masks, classifier.fires(unit_texts))]
        units = [Unit(t, self.names(m)) for t, m in zip(unit_texts, masks)]
        out, i = [], 0
        for ss in spans:
            out.append(units[i:i + len(ss)])
            i += len(ss)
        return out

    def units(self, text: str) -> list[Unit]:
        """The units of ``text`` with their propositions (classifier events included)."""
        return self.batch_units([text])[0]

    def trace(self, text: str) -> list[frozenset[str]]:
        """The trace of ``text``: one set of true propositions per unit."""
        return self.traces([text])[0]

    def traces(self, texts: Sequence[str]) -> list[list[frozenset[str]]]:
        """Traces of many texts."""
        if self.classifiers:
            return [[u.props for u in units] for units in self.batch_units(texts)]
        return [[self.names(m) for _, _, m in self.unit_spans(t.encode("utf-8"))] for t in texts]


@functools.lru_cache(maxsize=64)
def _byte_dfa(patterns: tuple[tuple[str, int], ...]) -> ByteDFA:
    """One (lazily determinised, shared) automaton per set of ``(pattern, event mask)``."""
    nfa = Nfa()
    for pattern, tag in patterns:
        compile_pattern(pattern, tag, nfa)
    return ByteDFA([nfa])


def default_text_labeler(granularity: str = "sentence") -> TextLabeler:
    """The labeler behind ``specs/llm``: ``email phone pii banned disclaimer medical
    sentence_end`` (see the module docstring for what each means).

    >>> default_text_labeler().props
    ('email', 'pii', 'phone', 'banned', 'disclaimer', 'medical', 'sentence_end')
    >>> [sorted(step) for step in default_text_labeler().trace("Call +1 (555) 123-4567, idiot")]
    [['banned', 'phone', 'pii']]
    """
    return TextLabeler([
        Regex(("email", "pii"), EMAIL),
        Regex(("phone", "pii"), PHONE),
        Keywords("banned", BANNED_WORDS),
        Keywords("disclaimer", DISCLAIMERS),
        Regex("medical", DOSAGE),
        Keywords("medical", MEDICAL_WORDS),
        Regex("sentence_end", SENTENCE_END),
    ], granularity=granularity)
