"""Load spec files (``*.sg``): includes, declared propositions, ``let`` macros, rule options.

>>> spec = load_spec_text('''
... spec demo "Stay off lava."
... props:
...     lava "the agent stands on lava"
... rule no_lava (penalty = 2): ltl G !lava
... ''')
>>> spec.name, list(spec.props), spec.rules[0].penalty
('demo', ['lava'], 2.0)
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from lark import Token

from safeguards.errors import SpecError, did_you_mean
from safeguards.files import read_regular
from safeguards.spec import ast
from safeguards.spec.depth import MAX_NESTING, MAX_SIZE, deep_recursion, measure, nesting_error
from safeguards.spec.parser import parse_spec_text

__all__ = ["load_spec", "load_spec_text", "decode_spec", "spec_from_formula", "precedence_notes",
           "MAX_SPEC_BYTES"]

_OPTIONS = {"penalty", "semantics", "name"}
MAX_SPEC_BYTES = 4 * 1024 * 1024
"""The largest spec file read (an included one too)."""


class _Loader:
    def __init__(self, roots: tuple[Path, ...], search: tuple[Path, ...]) -> None:
        self.roots, self.search = roots, search
        self.loaded: set[str] = set()
        self.props: dict[str, str] = {}
        self.prop_tokens: dict[str, tuple[Token, str, str | None]] = {}
        self.lets: dict[str, ast.Formula] = {}
        self.rules: list[ast.Rule] = []
        self.rule_sources: dict[str, tuple[Token | ast.Pos | None, str, str | None]] = {}
        self.name: str | None = None
        self.description = ""
        self.stack: list[str] = []
        self.notes: list[SpecError] = []

    def error(self, message: str, where: Any, source: str, file: str | None,
              hint: str | None = None) -> SpecError:
        line = getattr(where, "line", None)
        column = getattr(where, "column", None)
        width = len(str(where)) if isinstance(where, Token) else 1
        return SpecError(message, source=source, line=line, column=column, file=file, hint=hint,
                         width=width)

    def load(self, text: str, file: str | None, top: bool) -> None:
        statements = parse_spec_text(text, file=file)
        for kind, *rest in statements:
            if kind == "header":
                name, description, token = rest
                if top:
                    if self.name is not None:
                        raise self.error("a spec file has one `spec` header", token, text, file)
                    self.name, self.description = name, description
            elif kind == "props":
                for prop, doc, token in rest[0]:
                    self.declare(prop, doc, token, text, file)
            elif kind == "include":
                self.include(rest[0], rest[1], text, file)
            elif kind == "let":
                name, formula, token = rest
                if name in self.lets:
                    raise self.error(f"`{name}` is defined twice", token, text, file)
                if name in self.props:
                    raise self.error(f"`{name}` is already a declared proposition", token, text,
                                     file, hint="pick another name for the macro")
                self.lets[name] = self.expand(formula, text, file)
            else:
                self.add_rule(rest[0], text, file)

    def declare(self, prop: str, doc: str, token: Token, text: str, file: str | None) -> None:
        if prop in self.props:
            earlier = self.prop_tokens[prop]
            if earlier[2] == file:
                raise self.error(f"proposition `{prop}` is declared twice", token, text, file,
                                 hint=f"first declared at line {earlier[0].line}")
            if doc and self.props[prop] and doc != self.props[prop]:
                raise self.error(f"proposition `{prop}` is declared again with another doc string",
                                 token, text, file,
                                 hint=f"{earlier[2]}:{earlier[0].line} says \"{self.props[prop]}\"")
            self.props[prop] = self.props[prop] or doc
            return
        self.props[prop] = doc
        self.prop_tokens[prop] = (token, text, file)

    def include(self, relative: str, token: Token, text: str, file: str | None) -> None:
        """Load an included file once (a diamond is no error, a bomb stays linear), from inside
        the allowed folders only, and only if it is a regular ``.sg`` file of bounded size."""
        target = self.find_include(relative, Path(file).parent if file else Path.cwd(), token,
                                   text, file)
        if str(target) in self.stack:
            chain = " -> ".join(os.path.basename(p) for p in self.stack + [str(target)])
            raise self.error(f"include cycle: {chain}", token, text, file,
                             hint="remove one of the includes in the cycle")
        if str(target) in self.loaded:
            return
        if target.suffix != ".sg":
            raise self.error(f"`{relative}` is not a spec file", token, text, file,
                             hint="only `.sg` files can be included")
        try:
            included = decode_spec(read_regular(target, MAX_SPEC_BYTES), str(target))
        except OSError as error:
            raise self.error(f"cannot read included file `{relative}`: {error.strerror}", token,
                             text, file) from None
        self.stack.append(str(target))
        self.loaded.add(str(target))
        self.load(included, str(target), top=False)
        self.stack.pop()

    def find_include(self, relative: str, base: Path, token: Token, text: str,
                     file: str | None) -> Path:
        """The first existing file ``relative`` names, relative to ``base`` then to each folder
        of the include path, that lies inside an allowed folder (links resolved)."""
        outside = None
        for folder in (base, *self.search):
            try:
                candidate = (folder / relative).resolve()
            except (OSError, RuntimeError, ValueError):
                continue
            if not any(candidate.is_relative_to(root) for root in self.roots):
                outside = outside or candidate
            elif candidate.exists():
                return candidate
        if outside is not None:
            raise self.error(f"included file `{relative}` is outside the spec's folder", token,
                             text, file,
                             hint=f"includes stay inside {self.roots[0]}; allow another folder "
                                  "with --include-path DIR (API: include_path=[DIR])")
        looked = base / relative
        raise self.error(f"included file `{relative}` does not exist", token, text, file,
                         hint=f"paths are relative to the including file: looked for {looked}"
                              + (" and in the include path" if self.search else ""))

    def expand(self, formula: ast.Formula, text: str, file: str | None) -> ast.Formula:
        """Replace macro names by their definitions and check every proposition is declared."""
        def visit(node: ast.Formula) -> ast.Formula:
            if isinstance(node, ast.Prop):
                if node.name in self.lets:
                    return self.lets[node.name]
                if node.name not in self.props:
                    raise self.undeclared(node, text, file)
                return node
            if isinstance(node, ast.Unary):
                return replace(node, arg=visit(node.arg))
            if isinstance(node, ast.Binary):
                return replace(node, left=visit(node.left), right=visit(node.right))
            return node
        return visit(formula)

    def undeclared(self, node: ast.Prop, text: str, file: str | None) -> SpecError:
        hint = did_you_mean(node.name, list(self.props) + list(self.lets))
        if hint is None:
            hint = f"declare it in a `props:` block, e.g.  props: {node.name} \"what it means\""
        width = len(node.name)
        pos = node.pos
        return SpecError(f"unknown proposition `{node.name}`", source=text,
                         line=pos.line if pos else None, column=pos.column if pos else None,
                         file=file, hint=hint, width=width)

    def expand_regex(self, regex: ast.Regex, text: str, file: str | None) -> ast.Regex:
        if isinstance(regex, ast.Letter):
            guard = self.expand(regex.guard, text, file)
            if not ast.is_boolean(guard):
                raise SpecError("a letter of a regular expression must be a Boolean formula; "
                                "a macro used here contains a temporal operator", source=text,
                                line=regex.pos.line if regex.pos else None,
                                column=regex.pos.column if regex.pos else None, file=file)
            return replace(regex, guard=guard)
        if isinstance(regex, ast.Repeat):
            return replace(regex, body=self.expand_regex(regex.body, text, file))
        assert isinstance(regex, (ast.Concat, ast.Union, ast.Intersection))
        return replace(regex, left=self.expand_regex(regex.left, text, file),
                       right=self.expand_regex(regex.right, text, file))

    def add_rule(self, raw: dict[str, Any], text: str, file: str | None) -> None:
        name_token = raw["name"]
        name = str(name_token) if name_token is not None else f"rule{len(self.rules) + 1}"
        penalty, semantics = 1.0, "finite"
        for key, value in raw["options"]:
            if key not in _OPTIONS:
                raise self.error(f"unknown rule option `{key}`", value, text, file,
                                 hint=did_you_mean(key, _OPTIONS) or
                                 "rule options are penalty = <number> and semantics = finite|infinite")
            if key == "penalty":
                try:
                    penalty = float(value)
                except ValueError:
                    raise self.error(f"penalty must be a number, not `{value}`", value, text, file,
                                     hint="e.g. (penalty = 0.5)") from None
                if not math.isfinite(penalty) or penalty < 0:
                    raise self.error("penalty must be a finite number >= 0", value, text, file)
            elif key == "semantics":
                if str(value) not in ("finite", "infinite"):
                    raise self.error(f"semantics is `finite` or `infinite`, not `{value}`", value,
                                     text, file, hint=did_you_mean(str(value), ["finite", "infinite"]))
                semantics = str(value)
            else:
                name = str(value).strip('"')
        if name in self.rule_sources:
            where, _, earlier_file = self.rule_sources[name]
            raise self.error(f"rule `{name}` is defined twice", name_token or raw["pos"], text, file,
                             hint=f"first defined at {earlier_file or '<input>'}:"
                                  f"{getattr(where, 'line', '?')}; rule names must be unique")
        kind, body = raw["kind"], raw["body"]
        pos = raw["pos"]
        if kind == "ltl":
            self.notes += precedence_notes(body, text, file)
            body = self.expand(body, text, file)
        elif kind in ("never", "match"):
            body = self.expand_regex(body, text, file)
            if semantics == "infinite":
                raise self.error(f"`{kind}` rules speak of finite traces; `semantics = infinite` "
                                 "does not apply", name_token or pos, text, file,
                                 hint="drop the semantics option")
        else:
            body = self.check_machine(body, text, file)
        if kind != "machine":
            _check_expanded(body, pos, text, file)
        self.rule_sources[name] = (name_token or pos, text, file)
        self.rules.append(ast.Rule(name, kind, body, penalty, semantics,  # type: ignore[arg-type]
                                   pos=replace(pos, file=file) if pos else None,
                                   text=raw["text"]))

    def check_machine(self, machine: ast.Machine, text: str, file: str | None) -> ast.Machine:
        edges = []
        for edge in machine.edges:
            guard = self.expand(edge.guard, text, file) if edge.guard is not None else None
            if guard is not None and not ast.is_boolean(guard):
                raise SpecError("an edge guard must be a Boolean formula", source=text,
                                line=edge.pos.line if edge.pos else None,
                                column=edge.pos.column if edge.pos else None, file=file)
            edges.append(replace(edge, guard=guard, pos=replace(edge.pos, file=file) if edge.pos
                                 else None))
        states = set(machine.states)
        for listed in (machine.violations, machine.accepting or ()):
            for state in listed:
                if state not in {e.source for e in edges} | {e.target for e in edges} | {machine.initial}:
                    raise SpecError(f"state `{state}` is listed but no edge mentions it",
                                    source=text, line=machine.pos.line if machine.pos else None,
                                    column=machine.pos.column if machine.pos else None, file=file,
                                    hint=did_you_mean(state, states - {state}))
        return replace(machine, edges=tuple(edges),
                       pos=replace(machine.pos, file=file) if machine.pos else None)


def _operands(node: Any) -> tuple[Any, ...]:
    if isinstance(node, ast.Unary):
        return (node.arg,)
    if isinstance(node, ast.Letter):
        return (node.guard,)
    if isinstance(node, ast.Repeat):
        return (node.body,)
    if isinstance(node, (ast.Binary, ast.Concat, ast.Union, ast.Intersection)):
        return (node.left, node.right)
    return ()


def _is_operator(node: Any) -> bool:
    return isinstance(node, (ast.Unary, ast.Binary, ast.Concat, ast.Union, ast.Intersection,
                             ast.Repeat))


def _check_expanded(body: Any, pos: ast.Pos | None, text: str, file: str | None) -> None:
    """``let`` macros may nest a rule deeper, or make it larger, than written."""
    depth, size, _ = measure(body, _operands, _is_operator)
    if depth > MAX_NESTING:
        raise nesting_error(depth, pos, text, file)
    if size > MAX_SIZE:
        raise SpecError(f"with its macros expanded this rule has {size:,} operators; at most "
                        f"{MAX_SIZE:,} are supported", source=text,
                        line=pos.line if pos else None, column=pos.column if pos else None,
                        file=file, hint="split the rule into several rules (they are conjoined)")


def load_spec_text(text: str, *, file: str | None = None,
                   include_path: Sequence[str | os.PathLike[str]] = ()) -> ast.Spec:
    """Load a spec from its text; ``file`` names it in errors and anchors relative includes.

    Includes must stay inside the folder of ``file`` (the current folder for text without a
    file) or a folder of ``include_path``, which is also searched for names not found beside
    the including file.
    """
    search = tuple(Path(folder).resolve() for folder in include_path)
    home = Path(file).resolve().parent if file is not None else Path.cwd().resolve()
    loader = _Loader((home, *search), search)
    if file is not None:
        loader.stack.append(str(Path(file).resolve()))
        loader.loaded.add(loader.stack[0])
    with deep_recursion():
        loader.load(text, file, top=True)
    if not loader.rules:
        raise SpecError("this spec has no rules", source=text, line=1, column=1, file=file,
                        hint="add one, e.g.  rule no_lava: ltl G !lava")
    name = loader.name or (Path(file).stem if file else "spec")
    return ast.Spec(name, loader.props, tuple(loader.rules), loader.description, file,
                    tuple(loader.notes), text)


def load_spec(path: str | os.PathLike[str], *,
              include_path: Sequence[str | os.PathLike[str]] = ()) -> ast.Spec:
    """Load a spec file (a regular file of at most :data:`MAX_SPEC_BYTES`, UTF-8).

    >>> from importlib import resources
    >>> spec = load_spec(resources.files("safeguards.specs") / "minecraft" / "safeguard0.sg")
    >>> spec.rules[0].kind
    'machine'
    """
    path = Path(path)
    try:
        data = read_regular(path, MAX_SPEC_BYTES)
    except FileNotFoundError:
        raise SpecError(f"spec file `{path}` does not exist", file=str(path)) from None
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or error
        raise SpecError(f"cannot read spec file `{path}`: {reason}", file=str(path)) from None
    return load_spec_text(decode_spec(data, str(path)), file=str(path), include_path=include_path)


def decode_spec(data: bytes, file: str) -> str:
    """The text of a spec file's bytes; invalid UTF-8 is a located error.

    >>> try:
    ...     decode_spec(b"props: a\\nrule r: ltl G \\xff", "a.sg")
    ... except SpecError as error:
    ...     print(error.message, error.line, error.column)
    the file is not valid UTF-8 (byte 0xff) 2 15
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        column = len(data[start:error.start].decode("utf-8", "replace")) + 1
        raise SpecError(f"the file is not valid UTF-8 (byte 0x{data[error.start]:02x})",
                        source=data.decode("utf-8", "replace"), line=line, column=column,
                        file=file, hint="save the spec as UTF-8") from None


def spec_from_formula(formula: ast.Formula, *, semantics: ast.Semantics = "finite",
                      name: str = "formula", props: list[str] | None = None) -> ast.Spec:
    """A one-rule spec whose propositions are those the formula mentions (sorted) plus ``props``.

    >>> from safeguards.spec.parser import parse_ltl
    >>> list(spec_from_formula(parse_ltl("G(b -> X a)")).props)
    ['a', 'b']
    """
    names = sorted(ast.props_of(formula) | set(props or ()))
    return ast.Spec(name, {p: "" for p in names}, (ast.Rule(name, "ltl", formula, 1.0, semantics),))


def precedence_notes(formula: ast.Formula, text: str, file: str | None) -> list[SpecError]:
    """Notes for ``G a -> b`` written without parentheses: it reads ``(G a) -> b``.

    >>> from safeguards.spec.parser import parse_ltl
    >>> print(precedence_notes(parse_ltl("G lava -> dead"), "G lava -> dead", "a.sg")[0])
    a.sg:1:1: note: `G lava -> dead` reads as `(G lava) -> dead`
        G lava -> dead
        ^^^^^^^^^^^^^^
    hint: for "always, lava implies dead" write `G(lava -> dead)`
    """
    notes = []
    for node in ast.walk(formula):
        if (isinstance(node, ast.Binary) and node.op in ("->", "<->")
                and isinstance(node.left, ast.Unary) and node.left.op in ("G", "F", "X", "X[!]")
                and node.pos and node.left.pos and node.pos.line == node.left.pos.line
                and node.pos.column == node.left.pos.column):
            op = node.left.op
            inner, right = str(node.left.arg), str(node.right)
            written = f"{op} {inner} {node.op} {right}"
            width = (node.pos.end_column or node.pos.column + 1) - node.pos.column \
                if node.pos.end_line == node.pos.line else 1
            meaning = {"G": "always", "F": "eventually", "X": "next", "X[!]": "next"}[op]
            notes.append(SpecError(
                f"`{written}` reads as `({op} {inner}) {node.op} {right}`", source=text,
                line=node.pos.line, column=node.pos.column, file=file, width=width,
                severity="note",
                hint=f"for \"{meaning}, {inner} implies {right}\" write `{op}({inner} {node.op} "
                     f"{right})`" if node.op == "->" else
                f"write `{op}({inner} {node.op} {right})` if the {op} should cover both sides"))
    return notes

