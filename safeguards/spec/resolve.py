"""One rule for turning "something spec-like" into a spec: the resolver every entry point uses.

A spec may be given as

* a path of a ``.sg`` file (relative to ``base``, default the current folder; ``~`` expands),
* the name of a spec shipped with the package (``minecraft/safeguard3``, ``.sg`` optional),
* spec-file text (several lines, or one line that starts with a spec-file keyword:
  ``spec``, ``props:``, ``include``, ``let``, ``rule``),
* an LTL formula (anything else, e.g. ``G !lava``) — unless ``formulas=False``.

An existing file wins over a shipped name, and a shipped name over a formula.  A value that
looks like a path (ends in ``.sg``, or is a bare path with a ``/``) but names no file is an
error with a "did you mean" hint, never silently read as a formula.

>>> resolve_spec("minecraft/safeguard3").kind
'shipped'
>>> resolve_spec("G !lava").kind, resolve_spec("spec s props: a rule r: ltl G a").kind
('formula', 'text')
>>> try:
...     resolve_spec("minecraft/safegaurd3")
... except SpecError as error:
...     print(error)
minecraft/safegaurd3: error: spec file `minecraft/safegaurd3` does not exist
hint: did you mean `minecraft/safeguard3`?
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from safeguards.errors import SpecError, did_you_mean
from safeguards.files import file_kind
from safeguards.spec import ast
from safeguards.spec.shipped import shipped_spec, shipped_specs

__all__ = ["SpecSource", "resolve_spec", "SpecKind"]

SpecKind = Literal["path", "shipped", "text", "formula"]

_SPEC_TEXT_START = re.compile(r"\s*(spec\s+\S|props\s*:|include\s+[\"']|let\s+\w+\s*=|"
                              r"rule\b[^:]*:|#)")
_PATHLIKE = re.compile(r"[\w.\-/\\~]+")


@dataclass(frozen=True)
class SpecSource:
    """A resolved spec: its ``kind`` and ``value`` — an absolute path, a shipped name, spec
    text or an LTL formula.  ``value`` is what a run's configuration records."""

    kind: SpecKind
    value: str

    def load(self, *, include_path: Sequence[str | os.PathLike[str]] = ()) -> ast.Spec:
        """The loaded spec (a formula becomes a one-rule spec over the propositions it reads);
        ``include_path``: folders includes may come from besides the spec's own folder tree.

        >>> resolve_spec("a U b").load().props
        {'a': '', 'b': ''}
        """
        from safeguards.spec.loader import load_spec, load_spec_text, spec_from_formula
        from safeguards.spec.parser import parse_ltl
        from safeguards.spec.shipped import load_shipped_spec

        if self.kind == "path":
            return load_spec(self.value, include_path=include_path)
        if self.kind == "shipped":
            spec = load_shipped_spec(self.value)
            assert spec is not None  # resolve_spec checked it exists
            return spec
        if self.kind == "text":
            return load_spec_text(self.value, include_path=include_path)
        return spec_from_formula(parse_ltl(self.value))


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for names the OS refuses (too long, NUL bytes); a FIFO, device
    there is an error (reading it could block, or never end)."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return False
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return stat.S_ISREG(mode)
    raise SpecError(f"`{path}` is {file_kind(mode)}, not a spec file", file=os.fspath(path),
                    hint="give the path of a .sg file (standard input is not read for specs)")


def resolve_spec(source: str | os.PathLike[str], *, base: str | os.PathLike[str] | None = None,
                 formulas: bool = True) -> SpecSource:
    """Decide what ``source`` is (see the module docstring); raises
    :class:`~safeguards.errors.SpecError` for a path that names no file (or, with
    ``formulas=False``, for anything that is not a file, a shipped spec or spec text).

    >>> try:
    ...     resolve_spec("specs/minecraft/safeguard3.sg", base="/nowhere")
    ... except SpecError as error:
    ...     print(error.message, "|", error.hint)
    spec file `specs/minecraft/safeguard3.sg` does not exist | did you mean `minecraft/safeguard3`?
    """
    if isinstance(source, os.PathLike):
        text = os.fspath(source)
        path = _absolute(text, base)
        if not _is_file(path):
            raise _missing(text, base, formulas)
        return SpecSource("path", os.fspath(path))
    text = str(source)
    if "\n" in text:
        return SpecSource("text", text)
    path = _absolute(text, base)
    if text.strip() and _is_file(path):
        return SpecSource("path", os.fspath(path))
    if shipped_spec(text) is not None:
        return SpecSource("shipped", text)
    if _SPEC_TEXT_START.match(text):
        return SpecSource("text", text)
    if not formulas or text.endswith(".sg") or (
            _PATHLIKE.fullmatch(text) and ("/" in text or "\\" in text)):
        raise _missing(text, base, formulas)
    return SpecSource("formula", text)


def _absolute(text: str, base: str | os.PathLike[str] | None) -> Path:
    try:
        path = Path(os.path.expanduser(text))
    except (RuntimeError, ValueError):  # "~nosuchuser"
        path = Path(text)
    if not path.is_absolute():
        path = Path(base if base is not None else os.getcwd()) / path
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # a loop of links, a NUL byte
        return path


def _missing(text: str, base: str | os.PathLike[str] | None, formulas: bool) -> SpecError:
    shipped = shipped_specs()
    hint = did_you_mean(text.removesuffix(".sg").replace("\\", "/").split("specs/")[-1], shipped)
    if hint is None:
        where = f" relative to {os.fspath(base)}" if base is not None else ""
        hint = (f"give the path of a .sg file{where}"
                + ("; shipped specs: " + ", ".join(shipped) if shipped else "")
                + ("; or an LTL formula" if formulas else ""))
    return SpecError(f"spec file `{text}` does not exist", file=text, hint=hint)
