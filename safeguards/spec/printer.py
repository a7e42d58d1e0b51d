"""Print formulas in Spot's syntax (fully parenthesised where precedence requires).

>>> from safeguards.spec.parser import parse_ltl
>>> to_spot(parse_ltl("G (a -> X[!] b) & c U d"))
'G(a -> X[!]b) & c U d'
"""

from __future__ import annotations

import re

from safeguards.spec import ast
from safeguards.spec.ast import Binary, Const, Formula, Prop, Unary
from safeguards.spec.depth import deep_recursion

__all__ = ["to_spot", "prop_to_spot", "regex_to_text"]

# Higher binds tighter; the numbers follow the grammar in grammars/ltl.lark.
_BINARY_PRECEDENCE = {"->": 1, "<->": 1, "|": 2, "xor": 3, "&": 4}
_TEMPORAL_PRECEDENCE = 5
_UNARY_PRECEDENCE = 6
_PLAIN_PROP = re.compile(r"[a-z_][a-z0-9_]*\Z")
_RESERVED = {"true", "false", "xor"}


def prop_to_spot(name: str) -> str:
    """A proposition as Spot reads it: bare when it can be, double-quoted otherwise."""
    if _PLAIN_PROP.match(name) and name not in _RESERVED:
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _precedence(formula: Formula) -> int:
    if isinstance(formula, Binary):
        return _BINARY_PRECEDENCE.get(formula.op, _TEMPORAL_PRECEDENCE)
    if isinstance(formula, Unary):
        return _UNARY_PRECEDENCE
    return 7


def _same_associative(parent: Binary, child: Formula) -> bool:
    """``a & (b & c)`` prints as ``a & b & c`` (same for ``|``): the grouping does not matter."""
    return parent.op in ("&", "|") and isinstance(child, Binary) and child.op == parent.op


def to_spot(formula: Formula) -> str:
    """Render ``formula`` so that both Spot and our parser read it back as the same tree."""
    with deep_recursion():
        return _to_spot(formula)


def _to_spot(formula: Formula) -> str:
    if isinstance(formula, Const):
        return "1" if formula.value else "0"
    if isinstance(formula, Prop):
        return prop_to_spot(formula.name)
    if isinstance(formula, Unary):
        inner = _to_spot(formula.arg)
        if _precedence(formula.arg) < _UNARY_PRECEDENCE:
            inner = f"({inner})"
        elif inner[0].isdigit():   # Spot reads `G0` as a proposition named G0
            return f"{formula.op} {inner}"
        return f"{formula.op}{inner}"
    assert isinstance(formula, Binary)
    mine = _precedence(formula)
    left, right = _to_spot(formula.left), _to_spot(formula.right)
    # Right-associative levels (-> <-> and temporal) need parentheses on an equal-level left
    # operand; left-associative ones on an equal-level right operand.  Always bracketing equal
    # levels keeps the output unambiguous for every reader.
    if _precedence(formula.left) <= mine and not _same_associative(formula, formula.left):
        left = f"({left})"
    if _precedence(formula.right) <= mine and not _same_associative(formula, formula.right):
        right = f"({right})"
    return f"{left} {formula.op} {right}"


_REGEX_PRECEDENCE = {ast.Union: 1, ast.Intersection: 2, ast.Concat: 3, ast.Repeat: 4, ast.Letter: 5}


def regex_to_text(regex: ast.Regex) -> str:
    """Render a regular expression in the spec syntax.

    >>> from safeguards.spec.parser import parse_regex
    >>> regex_to_text(parse_regex("{a ; b | c}[*2..3] ; !d"))
    '{a ; b | c}[*2..3] ; !d'
    """
    mine = _REGEX_PRECEDENCE[type(regex)]

    def sub(child: ast.Regex, strict: bool) -> str:
        text = regex_to_text(child)
        theirs = _REGEX_PRECEDENCE[type(child)]
        return f"{{{text}}}" if theirs < mine or (strict and theirs == mine) else text

    if isinstance(regex, ast.Letter):
        text = to_spot(regex.guard)
        return f"({text})" if isinstance(regex.guard, Binary) and regex.guard.op != "&" else text
    if isinstance(regex, ast.Repeat):
        if regex.high is None:
            suffix = "[*]" if regex.low == 0 else "[+]" if regex.low == 1 else f"[*{regex.low}..]"
        elif regex.low == regex.high:
            suffix = f"[*{regex.low}]"
        else:
            suffix = f"[*{regex.low}..{regex.high}]"
        return sub(regex.body, True) + suffix
    assert isinstance(regex, (ast.Union, ast.Intersection, ast.Concat))
    op = {ast.Union: "|", ast.Intersection: "&&", ast.Concat: ";"}[type(regex)]
    return f"{sub(regex.left, False)} {op} {sub(regex.right, True)}"
