"""Abstract syntax of the spec language: formulas, regular expressions, machines, spec files.

Every node is an immutable, hashable dataclass.  Source positions travel in a ``pos`` field that
takes no part in equality or hashing, so two formulas written in different places compare equal.

>>> from safeguards.spec.ast import Prop, Unary
>>> Unary("G", Prop("lava")) == Unary("G", Prop("lava"))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

__all__ = [
    "Pos", "Formula", "Const", "Prop", "Unary", "Binary",
    "UNARY_OPS", "BINARY_OPS", "FUTURE_OPS", "PAST_OPS", "BOOLEAN_OPS",
    "Regex", "Letter", "Concat", "Union", "Intersection", "Repeat",
    "Edge", "Machine", "Rule", "Spec", "RuleKind", "Semantics",
    "props_of", "walk", "is_boolean", "is_pure_past",
]


@dataclass(frozen=True)
class Pos:
    """A place in a source text: 1-based line and column, and the file it came from."""

    line: int
    column: int
    file: str | None = None
    end_line: int | None = None
    end_column: int | None = None


def _pos() -> Pos | None:
    return field(default=None, compare=False, repr=False)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# LTL and Boolean formulas


UNARY_OPS = ("!", "X", "X[!]", "F", "G", "Y", "Z", "O", "H")
BINARY_OPS = ("&", "|", "->", "<->", "xor", "U", "R", "W", "M", "S")
BOOLEAN_OPS = frozenset({"!", "&", "|", "->", "<->", "xor"})
PAST_OPS = frozenset({"Y", "Z", "O", "H", "S"})
FUTURE_OPS = frozenset({"X", "X[!]", "F", "G", "U", "R", "W", "M"})


class Formula:
    """Base class of LTL formulas (Boolean formulas are LTL formulas without temporal operators)."""

    __slots__ = ()

    def __str__(self) -> str:
        from safeguards.spec.printer import to_spot

        return to_spot(self)


@dataclass(frozen=True)
class Const(Formula):
    """``true`` or ``false``."""

    value: bool
    pos: Pos | None = _pos()


@dataclass(frozen=True)
class Prop(Formula):
    """An atomic proposition, e.g. ``lava``."""

    name: str
    pos: Pos | None = _pos()


@dataclass(frozen=True)
class Unary(Formula):
    """``op arg`` for ``op`` in :data:`UNARY_OPS` (``X`` is weak next, ``X[!]`` strong next,
    ``Y`` strong yesterday, ``Z`` weak yesterday, ``O`` once, ``H`` historically)."""

    op: str
    arg: Formula
    pos: Pos | None = _pos()


@dataclass(frozen=True)
class Binary(Formula):
    """``left op right`` for ``op`` in :data:`BINARY_OPS` (``S`` is since)."""

    op: str
    left: Formula
    right: Formula
    pos: Pos | None = _pos()


def walk(formula: Formula) -> Iterator[Formula]:
    """Yield ``formula`` and all its subformulas, parents before children.

    >>> [str(f) for f in walk(Unary("!", Prop("a")))]
    ['!a', 'a']
    """
    stack = [formula]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Unary):
            stack.append(node.arg)
        elif isinstance(node, Binary):
            stack.extend((node.right, node.left))


def props_of(formula: Formula) -> set[str]:
    """The propositions a formula mentions.

    >>> sorted(props_of(Binary("U", Prop("a"), Prop("b"))))
    ['a', 'b']
    """
    return {node.name for node in walk(formula) if isinstance(node, Prop)}


def is_boolean(formula: Formula) -> bool:
    """True if ``formula`` has no temporal operator."""
    return all(
        node.op in BOOLEAN_OPS for node in walk(formula) if isinstance(node, (Unary, Binary))
    )


def is_pure_past(formula: Formula) -> bool:
    """True if ``formula`` has no future temporal operator."""
    return all(
        node.op not in FUTURE_OPS for node in walk(formula) if isinstance(node, (Unary, Binary))
    )


# --------------------------------------------------------------------------------------------
# Regular expressions over events


class Regex:
    """Base class of regular expressions whose letters are Boolean formulas."""

    __slots__ = ()


@dataclass(frozen=True)
class Letter(Regex):
    """One step at which the Boolean ``guard`` holds."""

    guard: Formula
    pos: Pos | None = _pos()


@dataclass(frozen=True)
class Concat(Regex):
    """``left ; right``."""

    left: Regex
    right: Regex
    pos: Pos | None = _pos()


@dataclass(frozen=True)
class Union(Regex):
    """``left | right``."""

    left: Regex
    right: Regex
    pos: Pos | None = _pos()


@dataclass(frozen=True)
class Intersection(Regex):
    """``left && right``."""

    left: Regex
    right: Regex
    pos: Pos | None = _pos()


@dataclass(frozen=True)
class Repeat(Regex):
    """``body[*low..high]``; ``high=None`` means unbounded (``[*]`` is ``low=0, high=None``)."""

    body: Regex
    low: int
    high: int | None
    pos: Pos | None = _pos()


# --------------------------------------------------------------------------------------------
# Explicit state machines


@dataclass(frozen=True)
class Edge:
    """``source -> target : guard``; ``guard=None`` is the ``else`` edge."""

    source: str
    target: str
    guard: Formula | None
    pos: Pos | None = _pos()


@dataclass(frozen=True)
class Machine:
    """A hand-written safeguard: states, an initial state, guarded edges and violation states.

    ``accepting`` lists the states in which a finished trace is accepted; ``None`` means every
    state that is not a violation state (the convention of the Progressive Safeguards paper).
    """

    initial: str
    edges: tuple[Edge, ...]
    violations: tuple[str, ...] = ()
    accepting: tuple[str, ...] | None = None
    pos: Pos | None = _pos()

    @property
    def states(self) -> tuple[str, ...]:
        """All state names, the initial one first, then in order of first mention."""
        names = [self.initial]
        for edge in self.edges:
            names += [edge.source, edge.target]
        names += list(self.violations) + list(self.accepting or ())
        return tuple(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------
# Spec files

RuleKind = Literal["ltl", "never", "match", "machine"]
Semantics = Literal["finite", "infinite"]


@dataclass(frozen=True)
class Rule:
    """One rule of a spec.  All rules of a spec are conjoined."""

    name: str
    kind: RuleKind
    body: Formula | Regex | Machine
    penalty: float = 1.0
    semantics: Semantics = "finite"
    pos: Pos | None = _pos()
    text: str = field(default="", compare=False, repr=False)   # the body as written


@dataclass(frozen=True)
class Spec:
    """A loaded spec: declared propositions (name -> doc string) and conjoined rules."""

    name: str
    props: dict[str, str]
    rules: tuple[Rule, ...]
    description: str = ""
    path: str | None = None
    notes: tuple[Any, ...] = ()   # SpecError objects with severity "note": legal but suspicious
    source: str = ""              # the text of the top-level spec file

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.props), self.rules))
