"""Traces: JSON-lines files of the labels an episode visits, read lazily and monitored.

One line per step: a JSON list of the true propositions, or an object ``{prop: bool}``; blank
lines are skipped; a line holds at most :data:`MAX_LINE_BYTES`.  :func:`read_trace` parses a file
as it streams (constant memory), every malformed line a :class:`~safeguards.errors.TraceError` at
``file:line:column`` with a caret and a hint; :class:`TraceCheck` monitors the steps with a safeguard and sums the trace up
(``safeguards check`` prints what these two return).

>>> import io, safeguards
>>> sg = safeguards.compile_ltl("G !lava", props=["wood"])
>>> check = TraceCheck(sg)
>>> for line, labels in read_trace(io.StringIO('["wood"]\\n{"lava": true}\\n'), sg.props, "t"):
...     _ = check.step(line, labels)
>>> end = check.end()
>>> end.failed, end.first_violation, end.violated_rules
(True, (1, 2), ['formula'])
>>> list(read_trace(io.StringIO('["lavaa"]'), sg.props, "t.jsonl"))
Traceback (most recent call last):
...
safeguards.errors.TraceError: t.jsonl:1:2: error: unknown proposition `lavaa` (the spec has lava, wood)
    ["lavaa"]
     ^^^^^^^
hint: did you mean `lava`?
"""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Iterator, Sequence

from safeguards.automata import Safeguard, StepResult, Verdict
from safeguards.errors import TraceError, did_you_mean
from safeguards.files import open_regular

__all__ = ["read_trace", "open_trace", "TraceCheck", "TraceEnd", "MAX_LINE_BYTES"]

MAX_LINE_BYTES = 1 << 20
"""The longest trace line read (1 MiB): a longer one is an error, never a memory blow-up."""


_WS = re.compile(r"[ \t\r\n]*")
_STEP_HINT = 'a step is a JSON list of the true propositions, e.g. ["wood", "iron"], ' \
             'or an object such as {"wood": true, "lava": false}'


def _items(text: str, start: int) -> Iterator[tuple[Any, int, int, Any, int, int]]:
    """The members of the JSON array or object at ``text[start]`` with their spans.

    Yields ``(key, key_start, key_end, value, value_start, value_end)``; for arrays the key is
    None.  ``text`` must be valid JSON (it was parsed before).
    """
    decoder = json.JSONDecoder()
    is_object = text[start] == "{"
    close = "}" if is_object else "]"
    i = _WS.match(text, start + 1).end()  # type: ignore[union-attr]
    if text[i] == close:
        return
    while True:
        key, key_start, key_end = None, i, i
        if is_object:
            key, key_end = decoder.raw_decode(text, i)
            i = _WS.match(text, key_end).end()  # type: ignore[union-attr]
            i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]  # past ':'
        value, end = decoder.raw_decode(text, i)
        yield key, key_start, key_end, value, i, end
        i = _WS.match(text, end).end()  # type: ignore[union-attr]
        if text[i] == close:
            return
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]  # past ','


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object as its list of (key, value) pairs, so repeated keys stay visible."""


_DECODER = json.JSONDecoder(object_pairs_hook=_Pairs)
_LONG_NUMBER = re.compile(r"\d{%d,}" % (sys.get_int_max_str_digits() or 4300))


def _parse_step(text: str, props: Sequence[str], known: frozenset[str] | set[str],
                error: Any) -> frozenset[str]:
    """The set of true propositions of one trace line; ``error(msg, col, width, hint)``."""
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON: {exc.msg}", exc.colno, 1, _STEP_HINT) from None
    except RecursionError:
        raise error("invalid JSON: nested too deeply", 1, 1, _STEP_HINT) from None
    except ValueError:  # an integer beyond Python's int-string limit
        digits = _LONG_NUMBER.search(text)
        column, width = (digits.start() + 1, digits.end() - digits.start()) if digits else (1, 1)
        raise error("invalid JSON: a number with too many digits", column, width,
                    _STEP_HINT) from None
    start = _WS.match(text).end()  # type: ignore[union-attr]
    if not isinstance(value, list):
        hint = _STEP_HINT
        if isinstance(value, str):
            hint = f"write a list: {json.dumps([value])}"
        raise error(f"a step must be a JSON list or object, not {_json_type(value)}", start + 1,
                    len(text.rstrip()) - start, hint)
    # fast path: a well-formed step; the slow path below locates the first problem
    if type(value) is list:
        if all(type(item) is str and item in known for item in value):
            return frozenset(value)
    elif all(type(k) is str and k in known and type(v) is bool for k, v in value):
        if len(value) == len({k for k, _ in value}):
            return frozenset(k for k, v in value if v)

    def check_name(name: str, col: int, width: int) -> None:
        if name not in known:
            listing = ", ".join(props[:12]) + (", …" if len(props) > 12 else "")
            listing = listing or "no propositions"
            raise error(f"unknown proposition `{name}` (the spec has {listing})", col, width,
                        did_you_mean(name, props))

    true: set[str] = set()
    seen: dict[str, int] = {}
    for key, key_start, key_end, item, item_start, item_end in _items(text, start):
        if not isinstance(value, _Pairs):
            if not isinstance(item, str):
                raise error(f"a proposition name must be a string, not {_json_type(item)}",
                            item_start + 1, item_end - item_start, _STEP_HINT)
            check_name(item, item_start + 1, item_end - item_start)
            true.add(item)
        else:
            assert isinstance(key, str)
            check_name(key, key_start + 1, key_end - key_start)
            if key in seen:
                raise error(f"proposition `{key}` is given twice in this step", key_start + 1,
                            key_end - key_start, f"it was first given at column {seen[key]}")
            seen[key] = key_start + 1
            if not isinstance(item, bool):
                hint = "write true or false (JSON booleans, lowercase, unquoted)"
                raise error(f"the value of `{key}` must be true or false, not {_json_type(item)}",
                            item_start + 1, item_end - item_start, hint)
            if item:
                true.add(key)
    return frozenset(true)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}" if isinstance(value, float) else f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    return "an object" if isinstance(value, (_Pairs, dict)) else "a list"


def read_trace(handle: IO[str] | IO[bytes], props: Sequence[str], name: str
               ) -> Iterator[tuple[int, frozenset[str]]]:
    """Parse a JSON-lines trace lazily: yields ``(line_number, true_propositions)``.

    Blank lines are skipped; a malformed line raises :class:`~safeguards.errors.TraceError`
    located at ``name:line:column``.  A binary handle (what :func:`open_trace` gives) is
    decoded line by line, so bytes that are not UTF-8 are located too.
    """
    known = frozenset(props)
    for lineno, raw in enumerate(_bounded_lines(handle, name), 1):
        text = _decoded(raw, lineno, name).rstrip("\r\n")
        if lineno == 1:
            text = text.lstrip("\ufeff")
        if not text.strip():
            continue

        def error(message: str, column: int, width: int, hint: str | None,
                  _line: int = lineno, _text: str = text) -> TraceError:
            # the source holds this line at its place: enough for the caret display
            return TraceError(message, source="\n" * (_line - 1) + _text, line=_line,
                              column=max(1, column), file=name, hint=hint, width=width)

        yield lineno, _parse_step(text, props, known, error)


def _bounded_lines(handle: IO[str] | IO[bytes], name: str) -> Iterator[str | bytes]:
    """The lines of ``handle``, each at most :data:`MAX_LINE_BYTES` long (else a TraceError)."""
    for lineno, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), ""), 1):
        if not raw:  # b"" at the end of a binary handle
            return
        if len(raw) > MAX_LINE_BYTES and raw[-1:] not in ("\n", b"\n"):
            raise TraceError(f"line {lineno} is longer than {MAX_LINE_BYTES:,} bytes", file=name,
                             line=lineno, column=1,
                             hint="a trace line is one step: a short JSON list or object")
        yield raw


def _decoded(raw: str | bytes, line: int, name: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"the trace is not UTF-8 text ({exc.reason})", file=name, line=line,
                         column=len(raw[:exc.start].decode("utf-8")) + 1) from None


@contextmanager
def open_trace(path: str) -> Iterator[tuple[IO[bytes] | IO[str], str]]:
    """``(handle, name)`` of a trace file, opened in binary (:func:`read_trace` decodes it
    line by line); ``-`` is standard input, named ``<stdin>``.  A missing or unreadable file,
    or one that is not a regular file (a FIFO, a device: pipe it to ``-`` instead), is a
    :class:`~safeguards.errors.TraceError`."""
    if path == "-":
        yield getattr(sys.stdin, "buffer", sys.stdin), "<stdin>"
        return
    try:
        handle = open_regular(path)
    except FileNotFoundError:
        raise TraceError(f"trace file `{path}` does not exist", file=path,
                         hint="a trace is a JSON-lines file; give - to read standard input"
                         ) from None
    except OSError as exc:
        raise TraceError(f"cannot read trace file `{path}`: {exc.strerror or exc}",
                         file=path, hint="to read a pipe or a device, redirect it: - < FILE"
                         if exc.strerror and "regular file" in exc.strerror else None) from None
    with handle:
        yield handle, path


@dataclass
class TraceEnd:
    """How a trace ends under a safeguard."""

    steps: int
    state: int
    verdict: Verdict
    accepting: bool
    first_violation: tuple[int, int] | None
    """``(step, line)`` of the first violating step, if any."""
    violated_rules: list[str]
    """The rules violated on the way (every rule, for an unsatisfiable spec)."""
    pending_rules: list[str]
    """Obligations still open at the end (when nothing was violated)."""

    @property
    def failed(self) -> bool:
        """Did the trace violate the spec (on the way, or by ending with open obligations)?"""
        return self.first_violation is not None or not self.accepting


@dataclass
class TraceCheck:
    """Monitor a trace step by step with ``safeguard``; :meth:`step` returns the monitor's
    result and the rules the step violates, :meth:`end` the summary."""

    safeguard: Safeguard
    steps: int = 0
    first_violation: tuple[int, int] | None = None
    violated: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._monitor = self.safeguard.monitor()
        self._all_rules = frozenset(r.name for r in self.safeguard.rules)

    def step(self, line: int, labels: frozenset[str]) -> tuple[StepResult, frozenset[str]]:
        """Feed the labels of one step (read from ``line``)."""
        result = self._monitor.step(labels)
        self.steps += 1
        rules = result.violated_rules
        if result.verdict == Verdict.VIOLATED and self.first_violation is None:
            self.first_violation = (result.step, line)
            if not rules:  # the spec is unsatisfiable: the initial state is the violation
                rules = self.safeguard.pending_rules(result.state) or self._all_rules
        self.violated |= rules
        return result, frozenset(rules)

    def end(self) -> TraceEnd:
        """The summary of the trace so far."""
        sg, state = self.safeguard, self._monitor.state
        verdict, accepting = sg.verdict(state), sg.is_accepting(state)
        violated = set(self.violated)
        if self.first_violation is None and verdict == Verdict.VIOLATED:  # unsatisfiable
            violated |= sg.pending_rules(state) or self._all_rules
        pending = sorted(sg.pending_rules(state)) \
            if verdict != Verdict.VIOLATED and not accepting else []
        return TraceEnd(self.steps, state, verdict, accepting, self.first_violation,
                        sorted(violated), pending)
