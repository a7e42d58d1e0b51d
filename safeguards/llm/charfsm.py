"""Regular expressions over text, compiled to one deterministic automaton over UTF-8 bytes.

Why bytes: a language model emits tokens, and a token of a byte-level BPE vocabulary may hold
half a character.  Running the detectors over the UTF-8 bytes of the text makes the events of any
token sequence exact, whatever the tokens cut through (a word, an e-mail address, a character).

Semantics (exactly Python's :mod:`re` with the ``re.ASCII`` flag, on the patterns accepted):

* A pattern is parsed by Python's own regex parser; its *language* is compiled, so greedy and lazy
  repeats are the same.  ``\\d \\w \\s`` and case folding are ASCII-only (as with ``re.ASCII``);
  ``.``, ``\\D \\W \\S`` and negated classes also match every non-ASCII character.
* A detector **fires at the byte where some match of its pattern ends** (overlapping matches
  included): with a DFA for ``.*pattern`` this is exact.  For a text that means: it fires on the
  character at ``i`` iff some ``text[j:i+1]`` matches the whole pattern.
* Two anchors are supported: ``\\A`` (the match starts at the start of the text) and ``\\Z`` (the
  match runs to the end of the text: it consumes a virtual *end* symbol, so such a match fires when
  the text ends).  ``^ $ \\b``, lookarounds and back-references are rejected with a hint.
* Patterns that match the empty string are rejected (they would fire everywhere).

>>> dfa = ByteDFA([compile_pattern(r"\\d+ ?mg", tag=1)])
>>> [i for i, e in enumerate(dfa.events_of_bytes("take 20 mg or 5mg".encode())) if e]
[9, 16]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from safeguards.errors import SafeguardsError

# CPython's own regex parser, private since 3.11 (``sre_parse`` before): the Python versions it is
# known to work on, and the output shape read here, are pinned by tests/test_llm_charfsm.py.
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

__all__ = ["PatternError", "Nfa", "compile_pattern", "ByteDFA", "END", "N_SYMBOLS"]

END = 256                      # the virtual end-of-text symbol
N_SYMBOLS = 257                # 256 byte values + END
_MAX_REPEAT = 200              # bounded repeats are unrolled; refuse absurd counts
_ASCII_ALL = (1 << 128) - 1
_SPACE = frozenset(b" \t\n\r\f\v")
_DIGIT = frozenset(range(0x30, 0x3A))
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class PatternError(SafeguardsError, ValueError):
    """A detector pattern uses a feature the automaton compiler does not support."""


def _mask(codes: Iterable[int]) -> int:
    out = 0
    for c in codes:
        out |= 1 << c
    return out


_CATEGORIES = {
    sre_c.CATEGORY_DIGIT: (_mask(_DIGIT), False),
    sre_c.CATEGORY_NOT_DIGIT: (_ASCII_ALL & ~_mask(_DIGIT), True),
    sre_c.CATEGORY_SPACE: (_mask(_SPACE), False),
    sre_c.CATEGORY_NOT_SPACE: (_ASCII_ALL & ~_mask(_SPACE), True),
    sre_c.CATEGORY_WORD: (_mask(_WORD), False),
    sre_c.CATEGORY_NOT_WORD: (_ASCII_ALL & ~_mask(_WORD), True),
}


@dataclass
class Nfa:
    """A Thompson NFA over bytes (+ the end symbol).  ``edges[s]`` holds ``(symbol mask, target)``
    pairs (bit ``b`` of the mask set = symbol ``b`` moves); ``eps[s]`` the epsilon targets;
    ``start_only[s]`` epsilon targets usable only at the start of the text (``\\A``).
    ``tags[s]`` is the event bitmask a match ending in ``s`` fires."""

    edges: list[list[tuple[int, int]]] = field(default_factory=list)
    eps: list[list[int]] = field(default_factory=list)
    start_only: list[list[int]] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)

    def add_state(self) -> int:
        self.edges.append([])
        self.eps.append([])
        self.start_only.append([])
        self.tags.append(0)
        return len(self.edges) - 1

    def chain(self, source: int, masks: Sequence[int]) -> int:
        """Add a path reading one symbol of each mask in turn; return its last state."""
        state = source
        for m in masks:
            nxt = self.add_state()
            self.edges[state].append((m, nxt))
            state = nxt
        return state

    def closure(self, states: Iterable[int], at_start: bool) -> frozenset[int]:
        seen = set(states)
        todo = list(seen)
        while todo:
            s = todo.pop()
            targets = self.eps[s] + self.start_only[s] if at_start else self.eps[s]
            for t in targets:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return frozenset(seen)


class _Compiler:
    """Turns a parsed Python regex into NFA fragments ``(entry, exit)``."""

    def __init__(self, nfa: Nfa, pattern: str) -> None:
        self.nfa = nfa
        self.pattern = pattern

    def error(self, what: str, hint: str | None = None) -> PatternError:
        text = f"pattern {self.pattern!r}: {what} is not supported"
        return PatternError(text + (f" ({hint})" if hint else ""))

    def sequence(self, items: Iterable[tuple], flags: int) -> tuple[int, int]:
        entry = exit_ = self.nfa.add_state()
        for op, av in items:
            a, b = self.item(op, av, flags)
            self.nfa.eps[exit_].append(a)
            exit_ = b
        return entry, exit_

    def item(self, op: object, av: object, flags: int) -> tuple[int, int]:
        nfa = self.nfa
        if op is sre_c.LITERAL:
            return self.charset({av}, flags, negate=False)
        if op is sre_c.NOT_LITERAL:
            return self.charset({av}, flags, negate=True)
        if op is sre_c.ANY:
            dotall = bool(flags & re.DOTALL)
            return self.char_fragment(_ASCII_ALL if dotall else _ASCII_ALL & ~(1 << 10), True, ())
        if op is sre_c.IN:
            return self.char_class(av, flags)  # type: ignore[arg-type]
        if op is sre_c.BRANCH:
            entry, exit_ = nfa.add_state(), nfa.add_state()
            for alternative in av[1]:  # type: ignore[index]
                a, b = self.sequence(alternative, flags)
                nfa.eps[entry].append(a)
                nfa.eps[b].append(exit_)
            return entry, exit_
        if op is sre_c.SUBPATTERN:
            _group, add, remove, sub = av  # type: ignore[misc]
            return self.sequence(sub, (flags | add) & ~remove)
        if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            return self.repeat(*av, flags)  # type: ignore[misc]
        if op is sre_c.AT:
            return self.anchor(av)
        names = {sre_c.GROUPREF: "a back-reference", sre_c.ASSERT: "a lookaround",
                 sre_c.ASSERT_NOT: "a lookaround"}
        raise self.error(names.get(op, str(op).lower()))  # type: ignore[call-overload]

    def anchor(self, code: object) -> tuple[int, int]:
        nfa = self.nfa
        entry, exit_ = nfa.add_state(), nfa.add_state()
        if code is sre_c.AT_BEGINNING_STRING:
            nfa.start_only[entry].append(exit_)
        elif code is sre_c.AT_END_STRING:
            nfa.edges[entry].append((1 << END, exit_))
        elif code in (sre_c.AT_BOUNDARY, sre_c.AT_NON_BOUNDARY):
            raise self.error("\\b / \\B", "use Keywords(whole_word=True) or (?:\\W|\\Z)")
        else:
            raise self.error("^ / $", "use \\A for the start and \\Z for the end of the text")
        return entry, exit_

    def repeat(self, low: int, high: int, sub: list, flags: int) -> tuple[int, int]:
        unbounded = high is sre_c.MAXREPEAT or high == sre_c.MAXREPEAT
        if low > _MAX_REPEAT or (not unbounded and high > _MAX_REPEAT):
            raise self.error(f"a repeat count above {_MAX_REPEAT}")
        nfa = self.nfa
        entry = exit_ = nfa.add_state()
        for _ in range(low):
            a, b = self.sequence(sub, flags)
            nfa.eps[exit_].append(a)
            exit_ = b
        if unbounded:
            a, b = self.sequence(sub, flags)
            nfa.eps[exit_].append(a)
            nfa.eps[b].append(a)
            end = nfa.add_state()
            nfa.eps[exit_].append(end)
            nfa.eps[b].append(end)
            return entry, end
        end = nfa.add_state()
        for _ in range(high - low):
            nfa.eps[exit_].append(end)
            a, b = self.sequence(sub, flags)
            nfa.eps[exit_].append(a)
            exit_ = b
        nfa.eps[exit_].append(end)
        return entry, end

    def char_class(self, items: list, flags: int) -> tuple[int, int]:
        negate = bool(items) and items[0][0] is sre_c.NEGATE
        codes: set[int] = set()
        ascii_mask, non_ascii = 0, False
        for op, av in items[1:] if negate else items:
            if op is sre_c.LITERAL:
                codes.add(av)
            elif op is sre_c.RANGE:
                lo, hi = av
                if hi > 127:
                    raise self.error("a character range beyond ASCII")
                codes.update(range(lo, hi + 1))
            elif op is sre_c.CATEGORY:
                m, wide = _CATEGORIES[av]
                ascii_mask |= m
                non_ascii |= wide
            else:
                raise self.error(str(op).lower())
        return self.charset(codes, flags, negate=negate, extra=(ascii_mask, non_ascii))

    def charset(self, codes: set[int], flags: int, *, negate: bool,
                extra: tuple[int, bool] = (0, False)) -> tuple[int, int]:
        ascii_mask, non_ascii = extra
        wide_chars = sorted(c for c in codes if c > 127)
        for c in codes:
            if c <= 127:
                ascii_mask |= 1 << c
                if flags & re.IGNORECASE and chr(c).isalpha():
                    ascii_mask |= 1 << ord(chr(c).swapcase())
        if negate:
            if wide_chars:
                raise self.error("a negated class with non-ASCII characters")
            ascii_mask, non_ascii = _ASCII_ALL & ~ascii_mask, not non_ascii
        return self.char_fragment(ascii_mask, non_ascii, wide_chars)

    def char_fragment(self, ascii_mask: int, non_ascii: bool,
                      wide_chars: Sequence[int]) -> tuple[int, int]:
        """One character: an ASCII byte in ``ascii_mask``, any multi-byte UTF-8 character if
        ``non_ascii``, or one of the listed non-ASCII characters."""
        nfa = self.nfa
        entry, exit_ = nfa.add_state(), nfa.add_state()
        if ascii_mask:
            nfa.edges[entry].append((ascii_mask, exit_))
        sequences: list[list[int]] = []
        if non_ascii:
            cont = _mask(range(0x80, 0xC0))
            sequences += [[_mask(range(0xC2, 0xE0)), cont], [_mask(range(0xE0, 0xF0)), cont, cont],
                          [_mask(range(0xF0, 0xF5)), cont, cont, cont]]
        sequences += [[1 << b for b in chr(c).encode("utf-8")] for c in wide_chars]
        for masks in sequences:
            last = nfa.chain(entry, masks[:-1])
            nfa.edges[last].append((masks[-1], exit_))
        return entry, exit_


def compile_pattern(pattern: str, tag: int, nfa: Nfa | None = None) -> Nfa:
    """Add ``pattern`` (Python regex syntax, ASCII semantics) to ``nfa`` (a new one by default),
    with accepting states that fire the event bitmask ``tag``.

    >>> compile_pattern("a|b", tag=1).starts
    [0]
    >>> compile_pattern("x*", tag=1)
    Traceback (most recent call last):
    safeguards.llm.charfsm.PatternError: pattern 'x*' matches the empty string
    """
    nfa = Nfa() if nfa is None else nfa
    try:
        parsed = sre_parse.parse(pattern, re.ASCII)
    except re.error as exc:
        raise PatternError(f"pattern {pattern!r}: {exc}") from None
    compiler = _Compiler(nfa, pattern)
    entry, exit_ = compiler.sequence(parsed, parsed.state.flags)
    if exit_ in nfa.closure([entry], at_start=True):
        raise PatternError(f"pattern {pattern!r} matches the empty string")
    nfa.tags[exit_] |= tag
    nfa.starts.append(entry)
    return nfa


class ByteDFA:
    """The lazily determinised search automaton of several NFAs (union, ``.*``-prefixed).

    A DFA state is the set of NFA states alive after the bytes read so far; ``events[d]`` is the
    bitmask of tags fired on *entering* ``d``.  Transitions are computed on first use and memoised;
    :meth:`table` explores every reachable state over all 257 symbols.
    """

    def __init__(self, nfas: Sequence[Nfa]) -> None:
        self.nfa = Nfa()
        for part in nfas:
            offset = len(self.nfa.edges)
            self.nfa.edges += [[(m, t + offset) for m, t in e] for e in part.edges]
            self.nfa.eps += [[t + offset for t in e] for e in part.eps]
            self.nfa.start_only += [[t + offset for t in e] for e in part.start_only]
            self.nfa.tags += part.tags
            self.nfa.starts += [s + offset for s in part.starts]
        self._moves: dict[tuple[int, int], frozenset[int]] = {}
        self._table: tuple[np.ndarray, np.ndarray] | None = None
        self._restart = self._important(self.nfa.closure(self.nfa.starts, at_start=False))
        self._ids: dict[frozenset[int], int] = {}
        self._sets: list[frozenset[int]] = []
        self.events: list[int] = []
        self._next: list[dict[int, int]] = []
        self.start = self._intern(self._important(self.nfa.closure(self.nfa.starts,
                                                                   at_start=True)))

    def _intern(self, states: frozenset[int]) -> int:
        found = self._ids.get(states)
        if found is None:
            found = self._ids[states] = len(self._sets)
            self._sets.append(states)
            tags = 0
            for s in states:
                tags |= self.nfa.tags[s]
            self.events.append(tags)
            self._next.append({})
        return found

    @property
    def n_states(self) -> int:
        return len(self._sets)

    def step(self, state: int, symbol: int) -> int:
        """The state after reading ``symbol`` (a byte value or :data:`END`)."""
        found = self._next[state].get(symbol)
        if found is None:
            move = self._move
            after = move(-1, symbol).union(*[move(s, symbol) for s in self._sets[state]
                                             if s not in self._restart])
            found = self._next[state][symbol] = self._intern(
                after if symbol == END else after | self._restart)
        return found

    def _move(self, state: int, symbol: int) -> frozenset[int]:
        """The (important states of the) epsilon closure of the targets of ``state`` on
        ``symbol``; ``state = -1`` stands for the whole restart set.  Memoised."""
        key = (state, symbol)
        found = self._moves.get(key)
        if found is None:
            edges = self.nfa.edges
            sources = self._restart if state < 0 else (state,)
            moved = [t for s in sources for m, t in edges[s] if m >> symbol & 1]
            found = self._moves[key] = self._important(self.nfa.closure(moved, at_start=False))
        return found

    def _important(self, states: frozenset[int]) -> frozenset[int]:
        """Only states that read a symbol or fire an event matter to the future."""
        return frozenset(s for s in states if self.nfa.edges[s] or self.nfa.tags[s])

    def events_of_bytes(self, data: bytes) -> list[int]:
        """The event bitmask fired at each byte of ``data`` (no end symbol)."""
        state, out = self.start, []
        for byte in data:
            state = self.step(state, byte)
            out.append(self.events[state])
        return out

    def symbol_classes(self) -> np.ndarray:
        """``classes[symbol]``: symbols with equal class move every state alike (the alphabet
        partition induced by the NFA's edge masks; END is always a class of its own)."""
        masks = sorted({m for edges in self.nfa.edges for m, _ in edges})
        signatures: dict[tuple[int, ...], int] = {}
        classes = np.empty(N_SYMBOLS, dtype=np.int32)
        for symbol in range(N_SYMBOLS):
            key = (symbol == END,) + tuple(m >> symbol & 1 for m in masks)
            classes[symbol] = signatures.setdefault(key, len(signatures))
        return classes

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(next, events)``: ``next[d, symbol]`` over every state reachable by bytes and all 257
        symbols (states reached by END are terminal; their rows are unused), ``events[d]``."""
        if self._table is not None:
            return self._table
        classes = self.symbol_classes()
        representatives = {int(c): s for s, c in reversed(list(enumerate(classes)))}
        todo, seen = [self.start], {self.start}
        rows: dict[int, dict[int, int]] = {}
        while todo:
            d = todo.pop()
            rows[d] = {c: self.step(d, s) for c, s in representatives.items()}
            for c, e in rows[d].items():
                if representatives[c] != END and e not in seen:
                    seen.add(e)
                    todo.append(e)
        nxt = np.zeros((self.n_states, N_SYMBOLS), dtype=np.int32)
        for d, row in rows.items():
            by_class = np.asarray([row[c] for c in range(len(representatives))], dtype=np.int32)
            nxt[d] = by_class[classes]
        self._table = (nxt, np.asarray(self.events, dtype=np.int64))
        return self._table
