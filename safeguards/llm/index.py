"""The token index: which tokens keep a compliant ending reachable, from every shield state.

The shield runs one deterministic automaton over the UTF-8 bytes of the completion, the
*combined automaton*: the labeler's detector DFA (:mod:`safeguards.llm.charfsm`) x the unit
buffer of the labeler's granularity (:mod:`safeguards.llm.events`) x a UTF-8 checker x the
safeguard.  Its state after a text holds exactly what the reward needs to judge any continuation
of that text; a state is *good* if the text may end there (the safeguard state reached after the
final unit is accepting: no rule violated and no obligation pending, finite semantics).  The
product is built over byte classes with numpy, restricted to reachable states and minimised
(Moore partition refinement), so equivalent states merge and every state that can no longer
reach a good one collapses into one *doomed* state.

:meth:`TokenIndex.build` then walks every token's bytes from every state at once (numpy, all
tokens in parallel per byte position, as outlines-core does for regexes) into ``next[state,
token]``.  ``distance[s]`` is the fewest text tokens from ``s`` to a good state (a backward
breadth-first search on the token graph, so a vocabulary that cannot spell the way out is taken
into account); ``s`` is *live* if that distance is finite.  Then

* a text token is allowed in ``s`` iff ``next[s, token]`` is live;
* an EOS token is allowed iff ``s`` is good (the completion may end here);
* special tokens other than EOS (and ids with no token) are never allowed.

Token texts: for byte-level BPE vocabularies (GPT-2, SmolLM2, Llama 3) a token's bytes come from
the byte decoder, so tokens holding part of a UTF-8 character are exact (the automaton reads
bytes).  For other vocabularies (``\u2581`` metaspace, ``<0x..>`` byte fallback) the bytes are
reconstructed; :meth:`TokenIndex.build` checks on random token sequences that
``tokenizer.decode`` equals the concatenated bytes and warns (:class:`IndexExactnessWarning`)
if not.  The combined automaton also checks UTF-8: a token that would make the bytes invalid
UTF-8 is never allowed and EOS is never allowed inside a character, so a completion the shield
lets end decodes to exactly the text it judged.

The index is cached as ``.npz`` under a key hashing the vocabulary, the EOS ids, the safeguard
(JSON) and the labeler's description.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from safeguards.automata.analysis import Verdict
from safeguards.automata.safeguard import Safeguard
from safeguards.errors import SafeguardsError
from safeguards.files import write_atomic
from safeguards.labels import LabelError
from safeguards.llm.charfsm import END
from safeguards.llm.events import BYTE_KIND, GRANULARITIES, TextLabeler
from safeguards.llm.rewards import check_labeler

__all__ = ["CombinedAutomaton", "TokenIndex", "IndexExactnessWarning", "TokenIndexError",
           "UNREACHABLE", "token_bytes", "FORMAT_VERSION"]

FORMAT_VERSION = 2
UNREACHABLE = np.iinfo(np.int32).max
_MAX_PRODUCT = 1 << 26
_MAX_RELEVANT_PROPS = 16


class TokenIndexError(SafeguardsError, ValueError):
    """The token index cannot be built or loaded (bad tokenizer, stale cache file, ...)."""


class IndexExactnessWarning(UserWarning):
    """``tokenizer.decode`` differs from the concatenated token bytes the index reads."""


@dataclass
class CombinedAutomaton:
    """The minimised combined automaton over byte classes (see the module docstring).

    ``classes[byte]`` (257 entries, ``END`` last) maps a byte to its class; ``trans[s, c]`` is the
    next state; ``good[s]``: the text may end in ``s``; ``initial``: the empty text's state.
    """

    trans: np.ndarray
    classes: np.ndarray
    good: np.ndarray
    initial: int

    @property
    def n_states(self) -> int:
        return int(self.trans.shape[0])

    def run(self, data: bytes, state: int | None = None) -> int:
        """The state after reading ``data`` from ``state`` (default: initial)."""
        s = self.initial if state is None else state
        for byte in data:
            s = int(self.trans[s, self.classes[byte]])
        return s

    @classmethod
    def build(cls, safeguard: Safeguard, labeler: TextLabeler) -> "CombinedAutomaton":
        """Build and minimise the product of the labeler's byte automaton, its unit buffer and
        the safeguard."""
        if labeler.classifiers:
            raise LabelError("a token shield needs character-level events only; the labeler has "
                             "classifier events (" + ", ".join(c.prop for c in labeler.classifiers)
                             + "), which a shield cannot foresee: use them in the reward only")
        check_labeler(safeguard, labeler)
        relevant = [labeler.props.index(p) for p in safeguard.props]
        if len(relevant) > _MAX_RELEVANT_PROPS:
            raise TokenIndexError(f"the spec reads {len(relevant)} text propositions; the index "
                                  f"supports at most {_MAX_RELEVANT_PROPS}")
        relevant_mask = sum(1 << i for i in relevant)
        dfa_next, dfa_events = labeler.dfa(relevant_mask).table()
        # Compact event masks: bit j <-> safeguard.props[j].
        compact = np.zeros(len(dfa_events), dtype=np.int64)
        for j, i in enumerate(relevant):
            compact |= ((dfa_events >> i) & 1) << j
        letter_of = np.asarray([safeguard.letter({p for j, p in enumerate(safeguard.props)
                                                   if m >> j & 1})
                                for m in range(1 << len(relevant))], dtype=np.int64)
        next_phase, new_unit = GRANULARITIES[labeler.granularity]
        return _product(dfa_next, compact, letter_of, safeguard, next_phase, new_unit)


def _utf8_validator() -> np.ndarray:
    """``[state, byte] -> state`` of a UTF-8 well-formedness checker (Unicode Table 3-7):
    0 = between characters, 1-8 = inside a character, 9 = invalid (a sink)."""
    table = np.full((10, 256), 9, dtype=np.int64)
    table[0, 0x00:0x80] = 0
    table[0, 0xC2:0xE0] = 1
    table[0, 0xE0], table[0, 0xED] = 2, 3
    table[0, 0xE1:0xED] = table[0, 0xEE:0xF0] = 4
    table[0, 0xF0], table[0, 0xF4] = 5, 7
    table[0, 0xF1:0xF4] = 6
    for state, lo, hi, then in [(1, 0x80, 0xC0, 0), (2, 0xA0, 0xC0, 1), (3, 0x80, 0xA0, 1),
                                (4, 0x80, 0xC0, 1), (5, 0x90, 0xC0, 8), (6, 0x80, 0xC0, 8),
                                (7, 0x80, 0x90, 8), (8, 0x80, 0xC0, 1)]:
        table[state, lo:hi] = then
    return table


UTF8 = _utf8_validator()
_INVALID = 9


def _byte_classes(dfa_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classes of the 256 bytes that move the DFA and the UTF-8 checker alike and have the same
    kind; END apart.  Returns ``(classes[257], representative symbol of each class)``."""
    signature = np.vstack([dfa_next[:, :256], UTF8, BYTE_KIND[None, :].astype(np.int64)])
    _, first, inverse = np.unique(signature.T, axis=0, return_index=True, return_inverse=True)
    classes = np.empty(257, dtype=np.int64)
    classes[:256] = inverse.ravel()
    classes[END] = len(first)
    return classes, np.append(first, END)


def _product(dfa_next: np.ndarray, events: np.ndarray, letter_of: np.ndarray,
             safeguard: Safeguard, next_phase: np.ndarray, new_unit: np.ndarray
             ) -> CombinedAutomaton:
    """The reachable part of (DFA state, unit buffer, phase, UTF-8 state, safeguard state),
    minimised.  The buffer is the event mask of the current unit, flushed to the safeguard when a
    new unit starts; a byte that breaks UTF-8 leads to a dead state (so EOS-ended completions are
    valid UTF-8 and decode to exactly the bytes the shield read)."""
    classes, reps = _byte_classes(dfa_next)
    dims = (dfa_next.shape[0], len(letter_of), next_phase.shape[0], UTF8.shape[0],
            safeguard.n_states)
    size = int(np.prod(dims))
    if size > _MAX_PRODUCT:
        raise TokenIndexError(f"the combined automaton would have {size} states before "
                              "minimisation; use fewer detectors or propositions")
    table = safeguard.table.astype(np.int64)
    accepting = safeguard.accepting
    byte_reps = reps[:-1]
    kinds = BYTE_KIND[byte_reps].astype(np.int64)
    violated = np.asarray([v == Verdict.VIOLATED for v in safeguard.verdicts])
    dead = np.ravel_multi_index((0, 0, 0, _INVALID, 0), dims)    # one sink for every dead end

    def successors(codes: np.ndarray) -> np.ndarray:
        """Codes after each byte class (columns) for the given state codes (rows); END apart."""
        d, b, p, v, q = (x[:, None] for x in np.unravel_index(codes, dims))
        d2 = dfa_next[d, byte_reps[None, :]]
        e2 = events[d2]
        flush = new_unit[p, kinds[None, :]]
        q2 = np.where(flush, table[q, letter_of[b]], q)
        b2 = np.where(flush, e2, b | e2)
        p2 = next_phase[p, kinds[None, :]]
        v2 = UTF8[v, byte_reps[None, :]]
        out = np.ravel_multi_index(np.broadcast_arrays(d2, b2, p2, v2, q2), dims)
        return np.where((v2 == _INVALID) | violated[q2], dead, out)

    def is_good(codes: np.ndarray) -> np.ndarray:
        """May the text end here?  The final unit (with the END events) is flushed first."""
        d, b, p, v, q = np.unravel_index(codes, dims)
        final = table[q, letter_of[b | events[dfa_next[d, END]]]]
        return (v == 0) & np.where(p == 0, accepting[q], accepting[final])

    start = np.ravel_multi_index((0, 0, 0, 0, safeguard.initial), dims)
    seen = np.zeros(size, dtype=bool)
    seen[start] = True
    order = [np.asarray([start])]
    frontier = order[0]
    while frontier.size:
        nxt = np.unique(successors(frontier))
        nxt = nxt[~seen[nxt]]
        seen[nxt] = True
        if nxt.size:
            order.append(nxt)
        frontier = nxt
    codes = np.sort(np.concatenate(order))
    codes = np.concatenate([[start], codes[codes != start]])    # the initial state first
    by_code = np.argsort(codes)
    trans = by_code[np.searchsorted(codes, successors(codes), sorter=by_code)]
    good = is_good(codes)
    block = _minimise(trans, good)
    n_blocks = int(block.max()) + 1
    representative = np.zeros(n_blocks, dtype=np.int64)
    representative[block[::-1]] = np.arange(codes.size)[::-1]
    min_trans = block[trans[representative]]
    # END column: unused by the shield (EOS is decided by `good`); keep it a self-loop.
    min_trans = np.hstack([min_trans, np.arange(n_blocks)[:, None]]).astype(np.int32)
    return CombinedAutomaton(trans=min_trans, classes=classes.astype(np.int32),
                             good=good[representative], initial=int(block[0]))


def _minimise(trans: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Moore partition refinement: the block of each state in the minimal automaton.

    Each round renumbers states by their signature (own block, blocks of the successors), hashed
    to one 64-bit number per state for speed; the result is then verified exactly (every state
    of a block moves to the same blocks), so a hash collision cannot merge different states.
    """
    rng = np.random.default_rng(0)
    weights = rng.integers(1, 1 << 62, size=trans.shape[1] + 1, dtype=np.uint64) | np.uint64(1)
    block = good.astype(np.int64)
    n_blocks = len(np.unique(block))
    while True:
        with np.errstate(over="ignore"):
            signature = block.astype(np.uint64) * weights[0]
            signature += (block[trans].astype(np.uint64) * weights[1:]).sum(axis=1,
                                                                            dtype=np.uint64)
        _, block = np.unique(signature, return_inverse=True)
        block = block.ravel().astype(np.int64)
        count = int(block.max()) + 1
        if count == n_blocks:
            break
        n_blocks = count
    first = np.zeros(n_blocks, dtype=np.int64)
    first[block[::-1]] = np.arange(block.size)[::-1]
    consistent = (np.array_equal(block[trans], block[trans[first[block]]])
                  and np.array_equal(good, good[first[block]]))
    return block if consistent else _minimise_exact(trans, good)


def _minimise_exact(trans: np.ndarray, good: np.ndarray) -> np.ndarray:
    block = good.astype(np.int64)
    n_blocks = len(np.unique(block))
    while True:
        _, block = np.unique(np.hstack([block[:, None], block[trans]]), axis=0,
                             return_inverse=True)
        block = block.ravel().astype(np.int64)
        if int(block.max()) + 1 == n_blocks:
            return block
        n_blocks = int(block.max()) + 1


def token_bytes(tokenizer: Any) -> tuple[list[bytes | None], set[int]]:
    """The bytes of every token id below ``len(tokenizer)`` (None for missing ids) and the ids of
    special tokens (whose bytes are empty)."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    for tok_id, added in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items():
        if getattr(added, "special", False):
            special.add(int(tok_id))
    decoder = _decoder_kind(tokenizer)
    table = str.maketrans({ch: chr(b) for b, ch in _bytes_to_unicode().items()})
    out: list[bytes | None] = []
    for i, tok in enumerate(tokens):
        if tok is None or i in special:
            out.append(None if tok is None else b"")
        elif decoder == "bytelevel":
            try:
                out.append(tok.translate(table).encode("latin-1"))
            except UnicodeEncodeError:  # an added (non-special) token stored as plain text
                out.append(tok.encode("utf-8"))
        elif decoder == "metaspace" and re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", tok):
            out.append(bytes([int(tok[3:5], 16)]))
        elif decoder == "metaspace":
            out.append(tok.replace("\u2581", " ").encode("utf-8"))
        else:
            out.append(tokenizer.convert_tokens_to_string([tok]).encode("utf-8"))
    return out, special


def _decoder_kind(tokenizer: Any) -> str:
    decoder = repr(getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None))
    if "ByteLevel" in decoder:
        return "bytelevel"
    if "\u2581" in decoder or "Metaspace" in decoder or "ByteFallback" in decoder:
        return "metaspace"
    return "generic"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (as in ``tokenizers`` ByteLevel)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
                 + list(range(ord("\xae"), ord("\xff") + 1)))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, codes)}


@dataclass
class TokenIndex:
    """Allowed tokens and successor states for every state of the combined automaton.

    ``next[s, t]``: the state after token ``t`` (EOS and special tokens: ``s``);
    ``allowed[s, t]``: whether ``t`` keeps a compliant ending reachable (see the module
    docstring); ``good[s]``: EOS allowed; ``live[s]``: some compliant ending is reachable;
    ``distance[s]``: fewest text tokens to a state where EOS is allowed (:data:`UNREACHABLE` if
    none).
    """

    key: str
    initial: int
    next: np.ndarray
    allowed: np.ndarray
    good: np.ndarray
    live: np.ndarray
    distance: np.ndarray
    eos_ids: tuple[int, ...]
    automaton: CombinedAutomaton

    @property
    def n_states(self) -> int:
        return int(self.next.shape[0])

    @property
    def vocab_size(self) -> int:
        return int(self.next.shape[1])

    @staticmethod
    def cache_key(safeguard: Safeguard, labeler: TextLabeler, vocab: Sequence[bytes | None],
                  eos_ids: Sequence[int]) -> str:
        """A hash of everything the index depends on."""
        digest = hashlib.sha256()
        digest.update(f"v{FORMAT_VERSION}|{sorted(eos_ids)}|".encode())
        for tok in vocab:
            digest.update(b"\x00" if tok is None
                          else b"\x01" + len(tok).to_bytes(4, "little") + tok)
        digest.update(safeguard.to_json().encode())
        digest.update(labeler.describe().encode())
        return digest.hexdigest()[:32]

    @classmethod
    def build(cls, safeguard: Safeguard, labeler: TextLabeler, tokenizer: Any, *,
              eos_token_id: int | Sequence[int] | None = None,
              cache_dir: str | Path | None = None, check_decode: bool = True) -> "TokenIndex":
        """Build (or load from ``cache_dir``) the index for a safeguard, a labeler and a
        ``transformers`` tokenizer; ``eos_token_id`` defaults to the tokenizer's."""
        vocab, special = token_bytes(tokenizer)
        eos_ids = _eos_ids(tokenizer, eos_token_id)
        key = cls.cache_key(safeguard, labeler, vocab, eos_ids)
        path = Path(cache_dir) / f"token-index-{key}.npz" if cache_dir is not None else None
        if path is not None and path.exists():
            return cls.load(path, expected_key=key)
        if check_decode:
            _check_decode(tokenizer, vocab, special)
        index = cls.from_vocabulary(safeguard, labeler, vocab, eos_ids, special=special)
        if path is not None:
            index.save(path)
        return index

    @classmethod
    def from_vocabulary(cls, safeguard: Safeguard, labeler: TextLabeler,
                        vocab: Sequence[bytes | None], eos_ids: Sequence[int], *,
                        special: Sequence[int] = ()) -> "TokenIndex":
        """Build the index from the bytes of each token id (None: no such id); ``special`` ids
        (other than EOS) are never allowed.

        >>> import safeguards
        >>> from safeguards.llm import default_text_labeler
        >>> sg = safeguards.compile_ltl("G !banned")
        >>> index = TokenIndex.from_vocabulary(sg, default_text_labeler(),
        ...                                    [b"<eos>", b"you", b" kill", b"er", b"!"], [0])
        >>> s = index.next[index.next[index.initial, 1], 2]     # after "you kill"
        >>> index.allowed[s].tolist()                            # "!" and EOS would finish "kill"
        [False, True, False, True, False]
        """
        eos = set(int(e) for e in eos_ids)
        special_ids = (set(special) | eos)
        automaton = CombinedAutomaton.build(safeguard, labeler)
        text = np.asarray([tok is not None and i not in special_ids
                           for i, tok in enumerate(vocab)], dtype=bool)
        nxt, sources, targets = _walk_tokens(automaton, vocab, text)
        distance = _distances(automaton.good, sources, targets)
        live = distance < UNREACHABLE
        allowed = live[nxt] & text[None, :]
        for e in eos:
            allowed[:, e] = automaton.good
        key = cls.cache_key(safeguard, labeler, vocab, sorted(eos))
        return cls(key=key, initial=automaton.initial, next=nxt, allowed=allowed,
                   good=automaton.good.copy(), live=live, distance=distance,
                   eos_ids=tuple(int(e) for e in eos_ids),
                   automaton=automaton)

    def save(self, path: str | Path) -> None:
        """Write the index as ``.npz`` (atomically; missing folders are created)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        a = self.automaton
        np.savez_compressed(buffer, key=np.asarray(self.key), initial=self.initial, next=self.next,
                            allowed=np.packbits(self.allowed, axis=1), good=self.good,
                            live=self.live, distance=self.distance,
                            eos_ids=np.asarray(self.eos_ids, dtype=np.int64),
                            trans=a.trans, classes=a.classes, automaton_initial=a.initial,
                            version=FORMAT_VERSION)
        write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path, *, expected_key: str | None = None) -> "TokenIndex":
        """Read an index written by :meth:`save`; ``expected_key`` guards against stale files."""
        try:
            with np.load(path) as data:
                fields = {name: data[name] for name in data.files}
        except (OSError, ValueError) as exc:
            raise TokenIndexError(f"cannot read token index {path}: {exc}") from None
        if int(fields.get("version", -1)) != FORMAT_VERSION:
            raise TokenIndexError(f"{path}: token index format {fields.get('version')} "
                              f"(expected {FORMAT_VERSION}); delete it to rebuild")
        key = str(fields["key"])
        if expected_key is not None and key != expected_key:
            raise TokenIndexError(f"{path}: index built for another safeguard, labeler or "
                                  "tokenizer")
        n_vocab = fields["next"].shape[1]
        automaton = CombinedAutomaton(trans=fields["trans"], classes=fields["classes"],
                                      good=fields["good"], initial=int(fields["automaton_initial"]))
        return cls(key=key, initial=int(fields["initial"]), next=fields["next"],
                   allowed=np.unpackbits(fields["allowed"], axis=1, count=n_vocab).astype(bool),
                   good=fields["good"], live=fields["live"], distance=fields["distance"],
                   eos_ids=tuple(int(e) for e in fields["eos_ids"]), automaton=automaton)


def _eos_ids(tokenizer: Any, eos_token_id: int | Sequence[int] | None) -> tuple[int, ...]:
    if eos_token_id is None:
        eos_token_id = getattr(tokenizer, "eos_token_id", None)
    if eos_token_id is None:
        raise TokenIndexError("the tokenizer has no EOS token; pass eos_token_id=")
    ids = (eos_token_id,) if isinstance(eos_token_id, int) else tuple(eos_token_id)
    for e in ids:
        if not 0 <= int(e) < len(tokenizer):
            raise TokenIndexError(f"EOS id {e} is outside the tokenizer's {len(tokenizer)} ids")
    return tuple(int(e) for e in ids)


def _walk_tokens(automaton: CombinedAutomaton, vocab: Sequence[bytes | None],
                 text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``next[s, t]`` for every state and token (non-text tokens: ``s``), and the edges
    ``(source, target)`` of the token graph over text tokens."""
    n_states, n_vocab = automaton.n_states, len(vocab)
    state_dtype = np.int16 if n_states < (1 << 15) else np.int32
    ids = np.asarray([i for i in np.flatnonzero(text) if vocab[i]], dtype=np.int64)
    # Columns of `walked`: the text tokens (in walking order), then one identity column.
    walked = np.empty((n_states, ids.size + 1), dtype=state_dtype)
    walked[:, -1] = np.arange(n_states)
    edges: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
    if ids.size:
        ids = _walk_groups(automaton, [vocab[i] for i in ids], ids, walked, edges)
    column = np.full(n_vocab, ids.size, dtype=np.int64)
    column[ids] = np.arange(ids.size)
    sources, targets = zip(*edges)
    return np.take(walked, column, axis=1), np.concatenate(sources), np.concatenate(targets)


def _walk_groups(automaton: CombinedAutomaton, tokens: Sequence[bytes], ids: np.ndarray,
                 walked: np.ndarray, edges: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Fill ``walked[:, :len(ids)]`` and ``edges``; return ``ids`` in the walking order.

    Tokens are grouped by the class of their first byte ``c``: after that byte only the states in
    the image of ``trans[:, c]`` remain (a few dozen, not all of them), and the rest of every token
    of the group is walked from those states only -- all tokens of the group in parallel, byte
    position by byte position.
    """
    trans = automaton.trans.astype(np.int32)
    lengths = np.asarray([len(t) for t in tokens], dtype=np.int64)
    flat = automaton.classes[np.frombuffer(b"".join(tokens), dtype=np.uint8)]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    first = flat[offsets]
    order = np.lexsort((-lengths, first))
    ids, lengths, offsets, first = ids[order], lengths[order], offsets[order], first[order]
    cols = np.arange(int(lengths.max()))
    padded = flat[np.minimum(offsets[:, None] + cols[None, :], flat.size - 1)]
    bounds = np.flatnonzero(np.diff(first)) + 1
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [ids.size]])):
        image, where = np.unique(trans[:, first[lo]], return_inverse=True)
        where = where.ravel()
        walk = np.repeat(image[:, None], hi - lo, axis=1)
        rest = lengths[lo:hi] - 1
        for pos in range(int(rest[0])):
            n_active = int(np.searchsorted(-rest, -pos, side="left"))
            walk[:, :n_active] = trans[walk[:, :n_active], padded[None, lo:lo + n_active, pos + 1]]
        walked[:, lo:hi] = walk.astype(walked.dtype)[where]
        for k in range(image.size):
            reached = np.unique(walk[k])
            origins = np.flatnonzero(where == k)
            edges.append((np.repeat(origins, reached.size), np.tile(reached, origins.size)))
    return ids


def _distances(good: np.ndarray, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Fewest edges from each state to a good one (backward breadth-first search)."""
    distance = np.where(good, 0, UNREACHABLE).astype(np.int32)
    step = 0
    while True:
        reached = sources[(distance[targets] == step) & (distance[sources] == UNREACHABLE)]
        if reached.size == 0:
            return distance
        step += 1
        distance[reached] = step


def _check_decode(tokenizer: Any, vocab: Sequence[bytes | None], special: set[int],
                  samples: int = 64, seed: int = 0) -> None:
    """Warn if ``tokenizer.decode`` of random token sequences differs from their bytes."""
    ids = [i for i, tok in enumerate(vocab) if tok and i not in special]
    rng = random.Random(seed)
    for _ in range(samples if ids else 0):
        seq = [rng.choice(ids) for _ in range(rng.randint(1, 6))]
        expected = b"".join(vocab[i] or b"" for i in seq).decode("utf-8", errors="replace")
        decoded = tokenizer.decode(seq, skip_special_tokens=True)
        if decoded != expected and "\ufffd" not in expected:
            warnings.warn(f"tokenizer.decode({seq}) = {decoded!r} but the token bytes read "
                          f"{expected!r}: the shield and the reward may disagree on such text",
                          IndexExactnessWarning, stacklevel=3)
            return
