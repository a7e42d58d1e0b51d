"""Parse LTL formulas, regular expressions, Boolean guards and spec files with lark.

The grammars live in ``grammars/*.lark`` (shipped as ``safeguards.grammars``).  Syntax errors
become :class:`~safeguards.errors.SpecError` with ``file:line:col``, the line, a caret and, when a
common mistake is recognisable, a hint.

>>> parse_ltl("G(a -> X[!] b)")
Unary(op='G', arg=Binary(op='->', left=Prop(name='a'), right=Unary(op='X[!]', arg=Prop(name='b'))))
"""

from __future__ import annotations

import functools
import re
import textwrap
from importlib import resources
from typing import Any

from lark import Lark, Token, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from safeguards.errors import SpecError
from safeguards.spec import ast
from safeguards.spec.depth import MAX_NESTING, measure, nesting_error

__all__ = ["parse_ltl", "parse_regex", "parse_boolean", "parse_spec_text", "grammar_text"]

_GRAMMAR_FILES = ("boolean.lark", "ltl.lark", "regex.lark", "spec.lark")
_OP_ALIASES = {"=>": "->", "<=>": "<->", "^": "xor", "\\/": "|", "/\\": "&", "~": "!", "V": "R"}
_STARTS = ["ltl_formula", "regex", "bool_formula", "spec_file"]


def grammar_text() -> str:
    """The whole spec grammar: the four files of ``grammars/`` joined in dependency order."""
    folder = resources.files("safeguards.grammars")
    return "\n".join(folder.joinpath(name).read_text(encoding="utf-8") for name in _GRAMMAR_FILES)


@functools.cache
def _parser() -> Lark:
    return Lark(grammar_text(), start=_STARTS, parser="lalr", propagate_positions=True,
                maybe_placeholders=False)


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _pos_of(meta_or_token: Any, file: str | None) -> ast.Pos | None:
    line = getattr(meta_or_token, "line", None)
    if line is None:
        return None
    return ast.Pos(line, meta_or_token.column, file,
                   getattr(meta_or_token, "end_line", None), getattr(meta_or_token, "end_column", None))


def _body_text(text: str) -> str:
    """A rule body as written, without comments; continuation lines dedented."""
    lines = [line.rstrip() for line in re.sub(r"#[^\n]*", "", text).splitlines() if line.strip()]
    if not lines:
        return ""
    rest = textwrap.dedent("\n".join(lines[1:]))
    return lines[0].strip() + ("\n" + rest if rest else "")


class _Builder(Transformer_NonRecursive):
    """Turns lark parse trees into :mod:`safeguards.spec.ast` nodes (without recursion)."""

    def __init__(self, file: str | None, source: str) -> None:
        super().__init__()
        self.file = file
        self.source = source

    def _pos(self, item: Any) -> ast.Pos | None:
        return _pos_of(item, self.file)

    def _error(self, message: str, item: Any, hint: str | None = None) -> SpecError:
        pos = self._pos(item)
        width = 1
        if pos and pos.end_line == pos.line and pos.end_column:
            width = pos.end_column - pos.column
        return SpecError(message, source=self.source, line=pos.line if pos else None,
                         column=pos.column if pos else None, file=self.file, hint=hint, width=width)

    # -- formulas ----------------------------------------------------------------------------
    def prop(self, items: list[Token]) -> ast.Prop:
        return ast.Prop(str(items[0]), pos=self._pos(items[0]))

    def quoted_prop(self, items: list[Token]) -> ast.Prop:
        return ast.Prop(_unquote(items[0]), pos=self._pos(items[0]))

    def true(self, items: list[Token]) -> ast.Const:
        return ast.Const(True, pos=self._pos(items[0]))

    def false(self, items: list[Token]) -> ast.Const:
        return ast.Const(False, pos=self._pos(items[0]))

    @v_args(meta=True)
    def unary(self, meta: Any, items: list[Any]) -> ast.Unary:
        op = _OP_ALIASES.get(str(items[0]), str(items[0]))
        return ast.Unary(op, items[1], pos=self._pos(meta))

    @v_args(meta=True)
    def binary(self, meta: Any, items: list[Any]) -> ast.Binary:
        op = _OP_ALIASES.get(str(items[1]), str(items[1]))
        return ast.Binary(op, items[0], items[2], pos=self._pos(meta))

    @v_args(meta=True)
    def binary_and(self, meta: Any, items: list[Any]) -> ast.Binary:
        return ast.Binary("&", items[0], items[2], pos=self._pos(meta))

    # -- regular expressions -------------------------------------------------------------------
    @v_args(meta=True)
    def letter(self, meta: Any, items: list[Any]) -> ast.Letter:
        return ast.Letter(items[0], pos=self._pos(meta))

    @v_args(meta=True)
    def re_union(self, meta: Any, items: list[Any]) -> ast.Union:
        return ast.Union(items[0], items[2], pos=self._pos(meta))

    @v_args(meta=True)
    def re_inter(self, meta: Any, items: list[Any]) -> ast.Intersection:
        return ast.Intersection(items[0], items[2], pos=self._pos(meta))

    @v_args(meta=True)
    def re_concat(self, meta: Any, items: list[Any]) -> ast.Concat:
        return ast.Concat(items[0], items[1], pos=self._pos(meta))

    @v_args(meta=True)
    def re_repeat(self, meta: Any, items: list[Any]) -> ast.Repeat:
        body, (low, high, where) = items
        if high is not None and high < low:
            raise self._error(f"repetition [*{low}..{high}] has its upper bound below its lower "
                              "bound", where, hint=f"write [*{high}..{low}]")
        return ast.Repeat(body, low, high, pos=self._pos(meta))

    def star(self, items: list[Any]) -> tuple[int, None, Any]:
        return 0, None, None

    def plus(self, items: list[Any]) -> tuple[int, None, Any]:
        return 1, None, None

    def exactly(self, items: list[Token]) -> tuple[int, int, Token]:
        n = int(items[0])
        return n, n, items[0]

    def between(self, items: list[Token]) -> tuple[int, int | None, Token]:
        return int(items[0]), (int(items[1]) if len(items) > 1 else None), items[0]

    # -- spec files ----------------------------------------------------------------------------
    def spec_file(self, items: list[Any]) -> list[Any]:
        return items

    def header(self, items: list[Token]) -> tuple[str, str, str, Token]:
        name = items[0]
        text = _unquote(name) if name.type == "STRING" else str(name)
        description = _unquote(items[1]) if len(items) > 1 else ""
        return "header", text, description, name

    def prop_name(self, items: list[Token]) -> tuple[str, Token]:
        return str(items[0]), items[0]

    def quoted_prop_name(self, items: list[Token]) -> tuple[str, Token]:
        return _unquote(items[0]), items[0]

    def prop_decl(self, items: list[Any]) -> tuple[str, str, Token]:
        (name, token), doc = items[0], (_unquote(items[1]) if len(items) > 1 else "")
        return name, doc, token

    def props_block(self, items: list[Any]) -> tuple[str, list[Any]]:
        return "props", items

    def include(self, items: list[Token]) -> tuple[str, str, Token]:
        return "include", _unquote(items[0]), items[0]

    def let_def(self, items: list[Any]) -> tuple[str, str, ast.Formula, Token]:
        return "let", str(items[0]), items[1], items[0]

    def option(self, items: list[Token]) -> tuple[str, Token]:
        return str(items[0]), items[1]

    def options(self, items: list[Any]) -> list[tuple[str, Token]]:
        return [item for item in items if item is not None]

    def ltl_body(self, items: list[Any]) -> tuple[str, Any]:
        return "ltl", items[0]

    def never_body(self, items: list[Any]) -> tuple[str, Any]:
        return "never", items[0]

    def match_body(self, items: list[Any]) -> tuple[str, Any]:
        return "match", items[0]

    @v_args(meta=True)
    def rule(self, meta: Any, items: list[Any]) -> tuple[str, dict[str, Any]]:
        name_token = items[0] if isinstance(items[0], Token) else None
        rest = items[1:] if name_token is not None else items
        options = rest[0] if len(rest) == 2 else []
        kind, body = rest[-1]
        text = self.source[meta.start_pos:meta.end_pos] if not meta.empty else ""
        body_text = _body_text(text.split(":", 1)[1] if ":" in text else text)
        return "rule", {"name": name_token, "options": options, "kind": kind, "body": body,
                        "pos": self._pos(meta), "text": body_text}

    # -- machines ------------------------------------------------------------------------------
    def m_initial(self, items: list[Token]) -> tuple[str, Token]:
        return "initial", items[0]

    def m_violation(self, items: list[Token]) -> tuple[str, list[Token]]:
        return "violation", items

    def m_accepting(self, items: list[Token]) -> tuple[str, list[Token]]:
        return "accepting", items

    def else_guard(self, items: list[Token]) -> None:
        return None

    @v_args(meta=True)
    def m_edge(self, meta: Any, items: list[Any]) -> tuple[str, ast.Edge]:
        source, arrow, target, guard = items
        if str(arrow) != "->":
            raise self._error(f"a machine edge is written `source -> target : guard`, not with "
                              f"`{arrow}`", arrow, hint="write `->` between the two state names")
        return "edge", ast.Edge(str(source), str(target), guard, pos=self._pos(meta))

    @v_args(meta=True)
    def machine(self, meta: Any, items: list[Any]) -> tuple[str, ast.Machine]:
        initial: Token | None = None
        violations: list[str] = []
        accepting: list[str] | None = None
        edges: list[ast.Edge] = []
        for kind, value in items:
            if kind == "initial":
                if initial is not None:
                    raise self._error("a machine has exactly one initial state", value,
                                      hint=f"`initial {initial}` was already given")
                initial = value
            elif kind == "violation":
                violations += [str(v) for v in value]
            elif kind == "accepting":
                accepting = (accepting or []) + [str(v) for v in value]
            else:
                edges.append(value)
        if initial is None:
            raise self._error("this machine has no initial state", meta,
                              hint="add a line `initial <state>` inside the braces")
        machine = ast.Machine(str(initial), tuple(edges), tuple(violations),
                              tuple(accepting) if accepting is not None else None,
                              pos=self._pos(meta))
        return "machine", machine


_LOWERCASE_OPERATORS = {"x", "f", "g", "u", "r", "w", "m"}


def _previous_word(source: str, offset: int) -> str:
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", source[:offset])
    return words[-1] if words else ""


def _hint_for(error: UnexpectedInput, source: str) -> str | None:
    """Recognise the common mistakes of spec authors."""
    token = getattr(error, "token", None)
    text = str(token) if token is not None else source[error.pos_in_stream or 0:][:1]
    if token is not None and token.type == "NAME":
        for word in (text, _previous_word(source, token.start_pos or 0)):
            if word in _LOWERCASE_OPERATORS:
                return f"temporal operators are uppercase: did you mean `{word.upper()}`?"
    if text in {"&&", "||"}:
        return f"write `{text[0]}`: `&&` is the intersection of regular expressions"
    if text == "=":
        return "`==` and `=` are not operators; use `<->` for equivalence"
    if token is not None and token.type == "NAME" and getattr(error, "expected", None):
        return "two propositions in a row: join them with `&` or `|`, or put the second on a new rule"
    if text[:1].isupper():
        return ("propositions are lowercase (`[a-z_][a-z0-9_]*`) or double-quoted; "
                "uppercase letters are operators (X F G U R W M Y Z O H S)")
    if text == "[":
        return "repetition is written after a regex atom: a[*], a[+], a[*3], a[*2..5]"
    return None


# Tokens that can only follow a whole formula inside a spec file.
_SPEC_ONLY = {"INCLUDE", "LET", "RULE", "SPEC", "PROPS", "RBRACE", "NAME_EDGE"}


def _describe_expected(expected: set[str], start: str) -> str:
    if start != "spec_file":
        expected = {e for e in expected if e not in _SPEC_ONLY}
    names = {
        "NAME": "a proposition", "STRING": "a quoted name", "LPAR": "`(`", "RPAR": "`)`",
        "NOT_OP": "`!`", "UNARY_TEMPORAL_OP": "a temporal operator", "TRUE": "`true`",
        "FALSE": "`false`", "COLON": "`:`", "RBRACE": "`}`", "LBRACE": "`{`",
        "IMPL_OP": "`->`", "AND_OP": "`&`", "OR_OP": "`|`", "$END": "the end of the input",
        "XOR": "`xor`", "CARET": "`^`", "TEMPORAL_OP": "a binary temporal operator (U R W M S)",
        "INTER_OP": "`&&`", "SEMICOLON": "`;`", "ONE": "`1`", "ZERO": "`0`", "INT": "a number",
    }
    shown = sorted({names.get(e, e.lower().replace("_", " ")) for e in expected})
    if len(shown) > 6:
        shown = shown[:6] + ["…"]
    return ", ".join(shown)


def _parse(text: str, start: str, file: str | None) -> Any:
    try:
        tree = _parser().parse(text, start=start)
    except UnexpectedInput as error:
        line, column = error.line, error.column
        if isinstance(error, UnexpectedEOF) or (isinstance(error, UnexpectedToken)
                                                and error.token.type == "$END"):
            lines = text.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
            message = "unexpected end of input"
            expected = getattr(error, "expected", None)
            if expected:
                message += f"; expected {_describe_expected(set(expected), start)}"
        elif isinstance(error, UnexpectedCharacters):
            message = f"unexpected character {text[error.pos_in_stream or 0]!r}"
        else:
            assert isinstance(error, UnexpectedToken)
            message = f"unexpected `{error.token}`"
            if error.expected:
                message += f"; expected {_describe_expected(set(error.expected), start)}"
        raise SpecError(message, source=text, line=line if line and line > 0 else 1,
                        column=column if column and column > 0 else 1, file=file,
                        hint=_hint_for(error, text)) from None
    _check_nesting(tree, text, file)
    try:
        return _Builder(file, text).transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, SpecError):
            raise error.orig_exc from None
        raise


# Parse-tree nodes that become an operator of a formula or a regular expression.
_OPERATORS = frozenset({"unary", "binary", "binary_and", "re_union", "re_inter", "re_concat",
                        "re_repeat"})


def _tree_children(node: Tree) -> list[Tree]:
    return [child for child in node.children if isinstance(child, Tree)]


def _is_operator(node: Tree) -> bool:
    return node.data in _OPERATORS


def _check_nesting(tree: Tree, text: str, file: str | None) -> None:
    """A :func:`~safeguards.spec.depth.nesting_error` at the first operator nested too deep."""
    depth, _, culprit = measure(tree, _tree_children, _is_operator)
    if depth > MAX_NESTING:
        meta = culprit.meta if culprit is not None and not culprit.meta.empty else None
        raise nesting_error(depth, _pos_of(meta, file), text, file)


def parse_ltl(text: str, *, file: str | None = None) -> ast.Formula:
    """Parse an LTL formula in Spot's syntax (plus past operators ``Y Z O H S``).

    >>> str(parse_ltl("GFa"))
    'GFa'
    """
    return _parse(text, "ltl_formula", file)


def parse_regex(text: str, *, file: str | None = None) -> ast.Regex:
    """Parse a regular expression over events, e.g. ``{door_open ; !door_closed[*]} ; lava``.

    >>> parse_regex("a ; b[*]")
    Concat(left=Letter(guard=Prop(name='a')), right=Repeat(body=Letter(guard=Prop(name='b')), low=0, high=None))
    """
    return _parse(text, "regex", file)


def parse_boolean(text: str, *, file: str | None = None) -> ast.Formula:
    """Parse a Boolean formula over propositions (no temporal operators).

    >>> str(parse_boolean("wood & !(lava | creeper)"))
    'wood & !(lava | creeper)'
    """
    return _parse(text, "bool_formula", file)


def parse_spec_text(text: str, *, file: str | None = None) -> list[Any]:
    """Parse a spec file into a list of statements (used by :mod:`safeguards.spec.loader`)."""
    return _parse(text, "spec_file", file)
