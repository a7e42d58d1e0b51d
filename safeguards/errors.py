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

__all__ = ["SafeguardsError", "SpecError", "TraceError", "BackendUnavailable", "did_you_mean"]


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
        out = [f"{where}: {self.severity}: {self.message}"]
        text = self.source_line
        if text is not None:
            out.append("    " + text.expandtabs(1))
            out.append("    " + " " * ((self.column or 1) - 1) + "^" * min(self.width, 40))
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


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
