"""User-facing errors: one message ``file:line:col: message``, the source line, a caret, a hint.

>>> err = SpecError("unknown proposition `lva`", source="G !lva", line=1, column=4,
...                 file="a.sg", hint="did you mean `lava`?")
>>> print(err)
a.sg:1:4: error: unknown proposition `lva`
    G !lva
       ^
hint: did you mean `lava`?
"""

from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["SafeguardsError", "SpecError", "TraceError", "BackendUnavailable", "did_you_mean",
           "excerpt", "shorten"]


class SafeguardsError(Exception):
    """Base class of every error this package raises on purpose."""


class SpecError(SafeguardsError, ValueError):
    """A malformed spec, formula, automaton file or trace, located in its source text."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        file: str | None = None,
        hint: str | None = None,
        width: int = 1,
        severity: str = "error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.file = file
        self.hint = hint
        self.width = max(1, width)
        self.severity = severity

    @property
    def source_line(self) -> str | None:
        """The offending line of the source text, if known."""
        if self.source is None or self.line is None:
            return None
        lines = self.source.splitlines()
        return lines[self.line - 1] if 0 < self.line <= len(lines) else ""

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        out = [f"{where}: {self.severity}: {shorten(self.message)}"]
        text = self.source_line
        if text is not None:
            shown, caret = excerpt(text.expandtabs(1), self.column or 1)
            out.append("    " + shown)
            out.append("    " + " " * (caret - 1) + "^" * min(self.width, 40))
        if self.hint:
            out.append(f"hint: {shorten(self.hint)}")
        return "\n".join(out)


SHOWN_LINE = 100
"""The most characters of a source line an error shows (around the column)."""


def shorten(text: str, most: int = 20 * SHOWN_LINE) -> str:
    """``text`` with its middle elided if longer than ``most`` (a message naming a 10 MB name).

    >>> shorten("unknown proposition `" + "x" * 1000 + "`", most=60)
    'unknown proposition `xxxxxx ... xxxxxxxxxxxxxxxxxxxxxxxxxx`'
    """
    if len(text) <= most:
        return text
    keep = (most - 5) // 2
    return text[:keep] + " ... " + text[len(text) - keep:]


def excerpt(line: str, column: int) -> tuple[str, int]:
    """The part of ``line`` to show around ``column``, and the column of the caret in it:
    a long line (a minified file, a 10 MB name) is never printed whole.

    >>> shown, caret = excerpt("x" * 300 + "!" + "y" * 300, 301)
    >>> len(shown), shown[caret - 1], shown[:5], shown[-5:]
    (106, '!', '...xx', 'yy...')
    """
    if len(line) <= SHOWN_LINE:
        return line, column
    start = max(0, min(column - 1 - SHOWN_LINE // 3, len(line) - SHOWN_LINE))
    head, tail = ("..." if start else ""), ("..." if start + SHOWN_LINE < len(line) else "")
    return head + line[start:start + SHOWN_LINE] + tail, column - start + len(head)


class TraceError(SpecError):
    """A malformed trace line (a JSON list of true propositions or a ``{prop: bool}`` map)."""


class BackendUnavailable(SafeguardsError, RuntimeError):
    """A backend (or the exact construction a formula needs) is not installed."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None.

    >>> did_you_mean("lva", ["lava", "wood"])
    'did you mean `lava`?'
    """
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
