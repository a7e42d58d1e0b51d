"""Exchange safeguards with other tools in the Hanoi Omega-Automata format (HOA v1).

:func:`to_hoa` writes the monitor as a complete deterministic automaton with state-based
acceptance (``Acceptance: 1 Inf(0)``): read over finite words, a trace is accepted when its run
ends in an accepting state, which is Spot's convention for finite-word automata (``to_finite``).
The spec name goes in ``name:``, state names after the state numbers (``State: 0 "q0" {0}``).
Tool-specific headers (lowercase, so other tools ignore them) keep what HOA cannot say::

    safeguards-semantics: "finite"                       # the safeguard's semantics
    safeguards-verdicts: "presumably_satisfied" "violated" ...   # verdict of each state
    safeguards-description: "..."

:func:`from_hoa` reads deterministic automata as Spot writes them: labels on transitions (explicit
or implicit) or on states, acceptance ``t``, ``f`` or a positive Boolean combination of ``Inf(i)``
(e.g. Büchi ``Inf(0)``), marks on states or on transitions, possibly incomplete (missing letters
go to a rejecting sink).  Finite-word reading:

* marks only on states: a trace is accepted when it ends in an accepting state;
* marks on transitions: a trace is accepted when its last transition is accepting (a state mark
  then stands for marks on all of its outgoing transitions, as in HOA; the empty trace is
  rejected);
* ``Acceptance: 0 t`` (Spot's monitors): every state accepts, only missing letters reject.

Imports go through :func:`safeguards.automata.explicit.from_edges` (which minimises; merged states get
joined names), except that consistent ``safeguards-verdicts`` under infinite or mixed semantics
are kept state for state.

>>> import safeguards
>>> sg = safeguards.compile_ltl("a U b")
>>> text = to_hoa(sg)
>>> print(text.split("--BODY--")[0].splitlines()[5])
AP: 2 "a" "b"
>>> back = from_hoa(text)
>>> back.accepts([{"a"}, {"b"}]), back.accepts([{"a"}])
(True, False)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from safeguards.automata.analysis import Verdict, finite_verdicts
from safeguards.automata.build import RuleInfo
from safeguards.automata.explicit import from_edges
from safeguards.automata.guards import bdd_to_formula, guard_to_bdd
from safeguards.automata.mtbdd import MTBDD
from safeguards.automata.safeguard import Safeguard
from safeguards.errors import SpecError
from safeguards.spec import ast
from safeguards.spec.depth import deep_recursion

__all__ = ["to_hoa", "from_hoa", "guard_to_hoa"]

_SEMANTICS = ("finite", "infinite", "mixed")


# -- writing -------------------------------------------------------------------------------------
def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def guard_to_hoa(formula: ast.Formula, index: dict[str, int]) -> str:
    """A Boolean formula as a HOA label expression (propositions replaced by AP numbers).

    >>> from safeguards.spec.parser import parse_boolean
    >>> guard_to_hoa(parse_boolean("a & !(b | c)"), {"a": 0, "b": 1, "c": 2})
    '0&!(1|2)'
    """
    if isinstance(formula, ast.Const):
        return "t" if formula.value else "f"
    if isinstance(formula, ast.Prop):
        return str(index[formula.name])
    if isinstance(formula, ast.Unary):
        if formula.op != "!":
            raise ValueError(f"temporal operator {formula.op} in a guard")
        inner = guard_to_hoa(formula.arg, index)
        return f"!{inner}" if isinstance(formula.arg, (ast.Const, ast.Prop, ast.Unary)) \
            else f"!({inner})"
    assert isinstance(formula, ast.Binary)
    if formula.op not in ("&", "|"):
        names = sorted(index, key=index.__getitem__)
        m = MTBDD(len(names))
        return guard_to_hoa(bdd_to_formula(m, guard_to_bdd(m, formula, index), names), index)
    parts = []
    for side in (formula.left, formula.right):
        text = guard_to_hoa(side, index)
        if isinstance(side, ast.Binary) and side.op != formula.op:
            text = f"({text})"
        parts.append(text)
    return formula.op.join(parts)


@deep_recursion()
def to_hoa(sg: Safeguard) -> str:
    """The safeguard as HOA v1 text (see the module docstring); Spot reads it with
    ``spot.automaton(text)``."""
    index = {p: i for i, p in enumerate(sg.props)}
    lines = [
        "HOA: v1",
        f"name: {_quote(sg.name)}",
        'tool: "safeguards"',
        f"States: {sg.n_states}",
        f"Start: {sg.initial}",
        f"AP: {len(sg.props)}" + "".join(" " + _quote(p) for p in sg.props),
        "acc-name: Buchi",
        "Acceptance: 1 Inf(0)",
        "properties: trans-labels explicit-labels state-acc deterministic complete",
        f"safeguards-semantics: {_quote(sg.semantics)}",
        "safeguards-verdicts:" + "".join(" " + _quote(v.value) for v in sg.verdicts),
    ]
    if sg.description:
        lines.append(f"safeguards-description: {_quote(sg.description)}")
    lines.append("--BODY--")
    for q, guards in enumerate(sg.edge_guards(q) for q in range(sg.n_states)):
        lines.append(f"State: {q} {_quote(sg.state_names[q])}"
                     + (" {0}" if sg.is_accepting(q) else ""))
        for target, guard in guards:
            lines.append(f"[{guard_to_hoa(guard, index)}] {target}")
    lines.append("--END--")
    return "\n".join(lines) + "\n"


# -- lexing --------------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>/\*)
  | (?P<marker>--BODY--|--END--|--ABORT--)
  | (?P<header>[A-Za-z_][A-Za-z0-9_-]*:)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.-]*)
  | (?P<alias>@[A-Za-z0-9_-]+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<int>[0-9]+)
  | (?P<punct>[!&|()\[\]{}])
""", re.VERBOSE | re.DOTALL)


@dataclass
class _Tok:
    kind: str    # header ident alias string int punct marker eof
    text: str
    line: int
    column: int

    @property
    def value(self) -> str:
        if self.kind == "string":
            return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1),
                          self.text[1:-1], flags=re.DOTALL)
        return self.text


class _Lexer:
    def __init__(self, text: str, file: str | None) -> None:
        self.text = text
        self.file = file
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(self, pos: int) -> tuple[int, int]:
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, pos - self.line_starts[lo] + 1

    def error(self, message: str, pos: int, hint: str | None = None) -> SpecError:
        line, column = self.where(pos)
        return SpecError(message, source=self.text, line=line, column=column, file=self.file,
                         hint=hint)

    def tokens(self) -> list[_Tok]:
        text, pos, out = self.text, 0, []
        line, line_start = 1, 0   # tracked incrementally (``where`` is for errors)
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None:
                if text[pos] == '"':
                    raise self.error("unterminated string", pos)
                raise self.error(f"unexpected character {text[pos]!r}", pos)
            kind = match.lastgroup
            assert kind is not None
            end = self._skip_comment(pos) if kind == "comment" else match.end()
            if kind not in ("space", "comment"):
                out.append(_Tok(kind, match.group(), line, pos - line_start + 1))
            newlines = text.count("\n", pos, end)
            if newlines:
                line += newlines
                line_start = text.rfind("\n", pos, end) + 1
            pos = end
        line, column = self.where(len(text))
        out.append(_Tok("eof", "", line, column))
        return out

    def _skip_comment(self, start: int) -> int:
        depth, pos = 0, start
        while pos < len(self.text):
            if self.text.startswith("/*", pos):
                depth += 1
                pos += 2
            elif self.text.startswith("*/", pos):
                depth -= 1
                pos += 2
                if depth == 0:
                    return pos
            else:
                pos += 1
        raise self.error("unterminated comment", start)


# -- parsing -------------------------------------------------------------------------------------
@dataclass
class _Edge:
    guard: ast.Formula | None     # None: implicit label, filled in later
    target: int
    marks: frozenset[int] | None  # None: no acceptance signature
    tok: _Tok


@dataclass
class _State:
    number: int
    label: ast.Formula | None
    marks: frozenset[int] | None
    tok: _Tok
    name: str | None = None
    edges: list[_Edge] = field(default_factory=list)


@dataclass
class _Hoa:
    name: str | None = None
    n_states: int | None = None
    start: int | None = None
    start_tok: _Tok | None = None
    aps: list[str] = field(default_factory=list)
    n_sets: int = 0
    acceptance: Any = None       # ("t",) ("f",) ("Inf", i) ("Fin", i) ("&"|"|", a, b)
    acceptance_tok: _Tok | None = None
    verdicts: list[Verdict] | None = None
    verdicts_tok: _Tok | None = None
    semantics: str | None = None
    description: str = ""
    states: dict[int, _State] = field(default_factory=dict)


class _Parser:
    def __init__(self, text: str, file: str | None) -> None:
        self.lexer = _Lexer(text, file)
        self.toks = self.lexer.tokens()
        self.i = 0
        self.text = text
        self.file = file
        self.aliases: dict[str, ast.Formula] = {}
        self.hoa = _Hoa()

    # helpers
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def error(self, message: str, tok: _Tok | None = None, hint: str | None = None) -> SpecError:
        tok = tok or self.tok
        return SpecError(message, source=self.text, line=tok.line, column=tok.column,
                         file=self.file, hint=hint, width=max(1, len(tok.text)))

    def describe(self, tok: _Tok) -> str:
        return "end of input" if tok.kind == "eof" else f"`{tok.text}`"

    def expect(self, kind: str, what: str, text: str | None = None) -> _Tok:
        tok = self.tok
        if tok.kind != kind or (text is not None and tok.text != text):
            raise self.error(f"expected {what}, found {self.describe(tok)}")
        return self.next()

    def integer(self, what: str) -> int:
        return int(self.expect("int", what).text)

    # automaton
    def parse(self) -> _Hoa:
        if self.tok.kind == "eof":
            raise self.error("empty input: expected a HOA automaton (`HOA: v1`)")
        self.expect("header", "`HOA: v1` at the start", "HOA:")
        version = self.expect("ident", "a format version such as `v1`")
        if not re.fullmatch(r"v1(\.[0-9]+)?", version.text):
            raise self.error(f"unsupported HOA version `{version.text}`", version,
                             hint="safeguards reads HOA v1")
        self.header()
        self.expect("marker", "`--BODY--`", "--BODY--")
        self.body()
        end = self.tok
        if end.kind == "marker" and end.text == "--ABORT--":
            raise self.error("the automaton was aborted by its producer (`--ABORT--`)")
        self.expect("marker", "`State:` or `--END--`", "--END--")
        if self.tok.kind != "eof":
            raise self.error("only one automaton per input is supported; found more text "
                             "after `--END--`")
        return self.hoa

    def header(self) -> None:
        hoa = self.hoa
        seen: set[str] = set()
        while self.tok.kind == "header":
            tok = self.next()
            name = tok.text[:-1]
            if name in ("States", "Start", "AP", "Acceptance", "name", "acc-name", "tool",
                        "safeguards-verdicts", "safeguards-semantics",
                        "safeguards-description") and name in seen:
                if name == "Start":
                    raise self.error("several `Start:` headers: the automaton is not "
                                     "deterministic", tok)
                raise self.error(f"duplicate `{tok.text}` header", tok)
            seen.add(name)
            if name == "State":
                raise self.error("`State:` before `--BODY--`", tok,
                                 hint="the header ends with a `--BODY--` line")
            if name == "States":
                hoa.n_states = self.integer("the number of states")
            elif name == "Start":
                hoa.start_tok = self.tok
                hoa.start = self.integer("the initial state")
                if self.tok.text == "&":
                    raise self.error("conjunctive initial states (alternating automata) are not "
                                     "supported")
            elif name == "AP":
                count_tok = self.tok
                count = self.integer("the number of atomic propositions")
                while self.tok.kind == "string":
                    ap = self.next()
                    if ap.value in hoa.aps:
                        raise self.error(f"duplicate atomic proposition {ap.text}", ap)
                    hoa.aps.append(ap.value)
                if len(hoa.aps) != count:
                    raise self.error(f"`AP:` announces {count} propositions but lists "
                                     f"{len(hoa.aps)}", count_tok)
            elif name == "Alias":
                alias = self.expect("alias", "an alias name such as `@a`")
                self.aliases[alias.text] = self.label_expr()
            elif name == "Acceptance":
                hoa.n_sets = self.integer("the number of acceptance sets")
                hoa.acceptance_tok = self.tok
                hoa.acceptance = self.acc_or()
            elif name == "name":
                hoa.name = self.expect("string", "a quoted name").value
            elif name == "properties":
                while self.tok.kind == "ident":
                    prop = self.next()
                    if prop.text in ("univ-branch",):
                        raise self.error("alternating automata (universal branching) are not "
                                         "supported", prop)
            elif name == "safeguards-verdicts":
                hoa.verdicts_tok = tok
                hoa.verdicts = []
                while self.tok.kind == "string":
                    value = self.next()
                    try:
                        hoa.verdicts.append(Verdict(value.value))
                    except ValueError:
                        raise self.error(f"unknown verdict {value.text}", value,
                                         hint="use " + ", ".join(v.value for v in Verdict)) \
                            from None
            elif name == "safeguards-semantics":
                value = self.expect("string", "a quoted semantics")
                if value.value not in _SEMANTICS:
                    raise self.error(f"unknown semantics {value.text}", value,
                                     hint="use " + ", ".join(_SEMANTICS))
                hoa.semantics = value.value
            elif name == "safeguards-description":
                hoa.description = self.expect("string", "a quoted description").value
            else:
                # Other headers (tool, acc-name, controllable-AP, ...): skip their values.
                while self.tok.kind in ("ident", "int", "string", "alias", "punct"):
                    self.next()
        if self.tok.kind != "marker" or self.tok.text != "--BODY--":
            raise self.error(f"expected a header item or `--BODY--`, found "
                             f"{self.describe(self.tok)}")
        if hoa.acceptance is None:
            raise self.error("missing `Acceptance:` header",
                             hint="e.g. `Acceptance: 1 Inf(0)` (Büchi) or `Acceptance: 0 t`")
        if hoa.start is None:
            raise self.error("missing `Start:` header (no initial state)")

    # acceptance condition: or > and > atom
    def acc_or(self) -> Any:
        left = self.acc_and()
        while self.tok.text == "|":
            self.next()
            left = ("|", left, self.acc_and())
        return left

    def acc_and(self) -> Any:
        left = self.acc_atom()
        while self.tok.text == "&":
            self.next()
            left = ("&", left, self.acc_atom())
        return left

    def acc_atom(self) -> Any:
        tok = self.tok
        if tok.kind == "ident" and tok.text in ("t", "f"):
            self.next()
            return (tok.text,)
        if tok.text == "(":
            self.next()
            inner = self.acc_or()
            self.expect("punct", "`)`", ")")
            return inner
        if tok.kind == "ident" and tok.text in ("Inf", "Fin"):
            self.next()
            self.expect("punct", "`(`", "(")
            negated = self.tok.text == "!"
            if negated:
                self.next()
            number_tok = self.tok
            number = self.integer("an acceptance set number")
            if number >= self.hoa.n_sets:
                raise self.error(f"acceptance set {number} out of range (the automaton "
                                 f"declares {self.hoa.n_sets})", number_tok)
            self.expect("punct", "`)`", ")")
            return (tok.text + ("!" if negated else ""), number)
        raise self.error(f"expected an acceptance condition (`t`, `f`, `Inf(i)`, `Fin(i)`), "
                         f"found {self.describe(tok)}")

    # label expressions: or > and > not > atom
    def label_expr(self) -> ast.Formula:
        left = self.label_and()
        while self.tok.text == "|":
            self.next()
            left = ast.Binary("|", left, self.label_and())
        return left

    def label_and(self) -> ast.Formula:
        left = self.label_not()
        while self.tok.text == "&":
            self.next()
            left = ast.Binary("&", left, self.label_not())
        return left

    def label_not(self) -> ast.Formula:
        if self.tok.text == "!":
            self.next()
            return ast.Unary("!", self.label_not())
        return self.label_atom()

    def label_atom(self) -> ast.Formula:
        tok = self.tok
        if tok.kind == "ident" and tok.text in ("t", "f"):
            self.next()
            return ast.Const(tok.text == "t")
        if tok.kind == "int":
            self.next()
            number = int(tok.text)
            if number >= len(self.hoa.aps):
                raise self.error(f"atomic proposition {number} out of range (the automaton "
                                 f"declares {len(self.hoa.aps)}: AP numbers are "
                                 f"0..{len(self.hoa.aps) - 1})" if self.hoa.aps else
                                 f"atomic proposition {number} used but `AP:` declares none",
                                 tok)
            return ast.Prop(self.hoa.aps[number])
        if tok.kind == "alias":
            self.next()
            if tok.text not in self.aliases:
                raise self.error(f"undefined alias `{tok.text}`", tok,
                                 hint="declare it first with `Alias: " + tok.text + " ...`")
            return self.aliases[tok.text]
        if tok.text == "(":
            self.next()
            inner = self.label_expr()
            self.expect("punct", "`)`", ")")
            return inner
        raise self.error(f"expected a label expression (`t`, `f`, a proposition number, `!`, "
                         f"`(`), found {self.describe(tok)}")

    def label(self) -> ast.Formula | None:
        if self.tok.text != "[":
            return None
        self.next()
        formula = self.label_expr()
        self.expect("punct", "`]`", "]")
        return formula

    def acc_sig(self) -> frozenset[int] | None:
        if self.tok.text != "{":
            return None
        self.next()
        marks = set()
        while self.tok.kind == "int":
            tok = self.next()
            number = int(tok.text)
            if number >= self.hoa.n_sets:
                raise self.error(f"acceptance set {number} out of range (`Acceptance:` declares "
                                 f"{self.hoa.n_sets})", tok)
            marks.add(number)
        self.expect("punct", "`}` or an acceptance set number", "}")
        return frozenset(marks)

    def state_number(self, what: str) -> tuple[int, _Tok]:
        tok = self.tok
        number = self.integer(what)
        if self.hoa.n_states is not None and number >= self.hoa.n_states:
            raise self.error(f"state {number} out of range (`States: {self.hoa.n_states}`)", tok)
        return number, tok

    def body(self) -> None:
        hoa = self.hoa
        if hoa.start is not None and hoa.n_states is not None and hoa.start >= hoa.n_states:
            raise self.error(f"initial state {hoa.start} out of range "
                             f"(`States: {hoa.n_states}`)", hoa.start_tok)
        while self.tok.kind == "header" and self.tok.text == "State:":
            head = self.next()
            label = self.label()
            number, tok = self.state_number("a state number")
            if number in hoa.states:
                raise self.error(f"state {number} is defined twice", tok)
            name = self.next().value if self.tok.kind == "string" else None
            state = _State(number, label, self.acc_sig(), head, name)
            hoa.states[number] = state
            while self.tok.text == "[" or self.tok.kind == "int":
                start = self.tok
                guard = self.label()
                target, target_tok = self.state_number("a destination state")
                if self.tok.text == "&":
                    raise self.error("universal branching (alternating automata) is not "
                                     "supported", self.tok)
                if guard is not None and label is not None:
                    raise self.error("a state with a label cannot have labelled edges", start)
                state.edges.append(_Edge(guard, target, self.acc_sig(), start))
        if self.tok.kind == "header":
            raise self.error(f"unexpected `{self.tok.text}` in the body (expected `State:` "
                             "or `--END--`)")


# -- building ------------------------------------------------------------------------------------
def _accepts(cond: Any, marks: frozenset[int]) -> bool:
    op = cond[0]
    if op == "t":
        return True
    if op == "f":
        return False
    if op == "Inf":
        return cond[1] in marks
    if op == "&":
        return _accepts(cond[1], marks) and _accepts(cond[2], marks)
    assert op == "|"
    return _accepts(cond[1], marks) or _accepts(cond[2], marks)


def _uses_fin(cond: Any) -> bool:
    if cond[0] in ("&", "|"):
        return _uses_fin(cond[1]) or _uses_fin(cond[2])
    return cond[0] in ("Fin", "Fin!", "Inf!")


def _valuation_text(cube: dict[int, bool], aps: Sequence[str]) -> str:
    true = [aps[v] for v, value in sorted(cube.items()) if value]
    false = [aps[v] for v, value in sorted(cube.items()) if not value]
    parts = [", ".join(true) + " true" if true else "", ", ".join(false) + " false" if false
             else ""]
    return "; ".join(p for p in parts if p) or "every valuation"


def _consistent(succ: list[list[int]], accepting: list[bool], verdicts: list[Verdict],
                semantics: str) -> bool:
    """Can ``verdicts`` be the verdicts of this automaton under ``semantics``?"""
    if semantics == "finite":
        return verdicts == finite_verdicts(succ, accepting)
    for q, v in enumerate(verdicts):
        if v == Verdict.VIOLATED:
            ok = not accepting[q] and all(verdicts[t] == Verdict.VIOLATED for t in succ[q])
        elif v == Verdict.SATISFIED:
            ok = accepting[q] and all(verdicts[t] == Verdict.SATISFIED for t in succ[q])
        elif v == Verdict.INCONCLUSIVE:
            ok = semantics == "infinite" and accepting[q]
        else:
            ok = semantics == "mixed" and accepting[q] == (v == Verdict.PRESUMABLY_SATISFIED)
        if not ok:
            return False
    return True


def from_hoa(text: str, *, semantics: str | None = None, file: str | None = None) -> Safeguard:
    """Import a deterministic automaton written in HOA (by Spot or by :func:`to_hoa`).

    ``semantics`` is ``"finite"``, ``"infinite"`` or ``"mixed"``; ``None`` takes it from our
    ``safeguards-semantics`` header, else ``"finite"``.  The ``safeguards-verdicts`` header, when
    present and consistent with the automaton, gives the verdicts (it matters for infinite and
    mixed semantics; finite verdicts follow from the automaton).  Malformed or non-deterministic
    input raises :class:`~safeguards.errors.SpecError` pointing into ``text``.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    parser = _Parser(text, file)
    try:
        hoa = parser.parse()
    except RecursionError:
        raise parser.error("label or acceptance condition nested too deeply") from None
    return _safeguard_of(hoa, parser, semantics, file)


@deep_recursion()
def _safeguard_of(hoa: _Hoa, parser: _Parser, semantics: str | None,
                  file: str | None) -> Safeguard:
    """The safeguard of a parsed HOA automaton (diagram operations recurse once per AP)."""
    if semantics is None:
        semantics = hoa.semantics or "finite"
    if semantics not in _SEMANTICS:
        raise SpecError(f"unknown semantics `{semantics}`", hint="use " + ", ".join(_SEMANTICS))
    if _uses_fin(hoa.acceptance):
        raise parser.error("unsupported acceptance condition: only `t`, `f` and combinations of "
                           "`Inf(i)` (e.g. Büchi `Inf(0)`) have a finite-word reading",
                           hoa.acceptance_tok)
    aps = hoa.aps
    m = MTBDD(len(aps))
    index = {p: i for i, p in enumerate(aps)}
    assert hoa.start is not None
    n = max([hoa.start, *hoa.states, *(e.target for s in hoa.states.values() for e in s.edges)]) + 1
    if hoa.n_states is not None:
        n = max(n, hoa.n_states)

    # Labels: explicit, from the state, or implicit (the i-th edge reads valuation number i).
    guards: dict[int, list[tuple[int, int, frozenset[int] | None, _Edge]]] = {}
    for number, state in hoa.states.items():
        unlabelled = [e for e in state.edges if e.guard is None]
        implicit = state.label is None and bool(unlabelled)
        if implicit and len(unlabelled) != len(state.edges):
            raise parser.error(f"state {number} mixes labelled and unlabelled edges",
                               unlabelled[0].tok)
        if implicit and len(state.edges) != 1 << len(aps):
            raise parser.error(f"state {number} has {len(state.edges)} edges with implicit "
                               f"labels; {1 << len(aps)} expected (one per valuation of the "
                               f"{len(aps)} propositions)", state.tok)
        out: list[tuple[int, int, frozenset[int] | None, _Edge]] = []
        union = m.false
        for k, edge in enumerate(state.edges):
            if implicit:
                bits = [m.var(v) if k >> v & 1 else m.bool_not(m.var(v)) for v in range(len(aps))]
                bdd = m.true
                for b in bits:
                    bdd = m.bool_and(bdd, b)
            else:
                formula = edge.guard if edge.guard is not None else state.label
                assert formula is not None
                bdd = guard_to_bdd(m, formula, index)
            overlap = m.bool_and(union, bdd)
            if overlap != m.false and bdd != m.false:
                for _, other_bdd, _, other in out:
                    both = m.bool_and(other_bdd, bdd)
                    if both != m.false:
                        cube = m.example(both, True) or {}
                        raise parser.error(
                            f"the automaton is not deterministic: state {number} has two edges "
                            f"(to {other.target}, line {other.tok.line}, and to {edge.target}) "
                            f"whose labels overlap ({_valuation_text(cube, aps)})", edge.tok,
                            hint="determinise it first, e.g. with Spot: "
                                 "autfilt --deterministic")
            union = m.bool_or(union, bdd)
            # HOA: a mark on a state stands for the mark on each of its outgoing edges.
            marks = edge.marks
            if state.marks is not None:
                marks = (marks or frozenset()) | state.marks
            out.append((edge.target, bdd, marks, edge))
        guards[number] = out

    cond = hoa.acceptance
    transition_based = cond[0] not in ("t", "f") and any(
        e.marks is not None for s in hoa.states.values() for e in s.edges)
    names = list(aps)
    edges: list[list[tuple[ast.Formula, int]]] = []
    bdd_edges: list[list[tuple[int, int]]] = []
    accepting: list[bool] = []
    verdicts: list[Verdict] | None = None
    state_names: list[str] | None = None
    if not transition_based:
        # Keep the HOA states reachable from the start; the start becomes state 0.
        order, seen = [hoa.start], {hoa.start}
        k = 0
        while k < len(order):
            for target, _, _, _ in guards.get(order[k], []):
                if target not in seen:
                    seen.add(target)
                    order.append(target)
            k += 1
        order = [hoa.start] + sorted(seen - {hoa.start})
        renumber = {q: i for i, q in enumerate(order)}
        for q in order:
            found = hoa.states.get(q)
            marks = found.marks if found is not None and found.marks is not None else frozenset()
            accepting.append(_accepts(cond, marks))
            bdd_edges.append([(bdd, renumber[t]) for t, bdd, _, _ in guards.get(q, [])
                              if bdd != m.false])
            edges.append([(bdd_to_formula(m, bdd, names), t) for bdd, t in bdd_edges[-1]])
        if any(s.name is not None for s in hoa.states.values()):
            state_names = [hoa.states[q].name or str(q) if q in hoa.states else str(q)
                           for q in order]
        if hoa.verdicts is not None:
            if len(hoa.verdicts) != n:
                raise parser.error(f"`safeguards-verdicts:` lists {len(hoa.verdicts)} verdicts "
                                   f"for {n} states", hoa.verdicts_tok,
                                   hint="give one verdict per state, or remove the header")
            verdicts = [hoa.verdicts[q] for q in order]
    else:
        # Finite reading of transition marks: accepted iff the last transition is accepting, so a
        # state is (HOA state, was the last transition accepting?).
        start = (hoa.start, False)
        order_pairs, ids = [start], {start: 0}
        k = 0
        while k < len(order_pairs):
            q, _ = order_pairs[k]
            out_edges = []
            for target, bdd, marks, _ in guards.get(q, []):
                if bdd == m.false:
                    continue
                pair = (target, _accepts(cond, marks or frozenset()))
                if pair not in ids:
                    ids[pair] = len(order_pairs)
                    order_pairs.append(pair)
                out_edges.append((bdd_to_formula(m, bdd, names), ids[pair]))
            edges.append(out_edges)
            k += 1
        accepting = [flag for _, flag in order_pairs]

    name = hoa.name if hoa.name is not None else "automaton"
    if verdicts is not None and semantics != "finite":
        # Successors as the safeguard will see them: missing letters lead to a rejecting sink.
        sink = len(edges)
        succ = []
        for state_edges in edges:
            covered = m.false
            targets = []
            for formula, target in state_edges:
                targets.append(target)
                covered = m.bool_or(covered, guard_to_bdd(m, formula, index))
            if covered != m.true:
                targets.append(sink)
            succ.append(targets)
        succ.append([sink])
        if not _consistent(succ, accepting + [False], verdicts + [Verdict.VIOLATED], semantics):
            verdicts = None
    if semantics == "finite":
        result = from_edges(aps, edges, accepting, name=name, semantics="finite",
                            description=hoa.description)
    elif verdicts is not None:
        return _build_exact(aps, edges, accepting, verdicts, name, hoa.description, semantics,
                            state_names)
    elif semantics == "infinite":
        # No (consistent) verdicts: a safety monitor whose rejecting states are bad traps.
        result = from_edges(aps, edges, accepting, name=name, semantics="infinite",
                            description=hoa.description)
    else:
        raise SpecError("`mixed` semantics needs consistent `safeguards-verdicts:` (as written "
                    "by safeguards)", file=file,
                    hint="import with semantics='finite' or semantics='infinite'")
    if state_names is not None:
        _carry_names(result, m, bdd_edges, state_names)
    return result


def _letter_valuations(sg: Safeguard) -> list[list[bool]]:
    """One valuation (as Booleans in proposition order) per letter class of ``sg``."""
    node_var, low, high, root = sg.classifier
    found: dict[int, list[bool]] = {}
    seen: set[int] = set()
    stack = [(root, [False] * len(sg.props))]
    while stack:
        node, valuation = stack.pop()
        if node < 0:
            found.setdefault(-1 - node, valuation)
            continue
        if node in seen:
            continue
        seen.add(node)
        for child, value in ((low[node], False), (high[node], True)):
            branch = list(valuation)
            branch[node_var[node]] = value
            stack.append((child, branch))
    return [found[letter] for letter in range(sg.n_letters)]


def _carry_names(sg: Safeguard, m: MTBDD, bdd_edges: list[list[tuple[int, int]]],
                 names: list[str]) -> None:
    """Name the states of ``sg`` (built by ``from_edges``, which may merge states) after the
    imported states they stand for: stepping both automata side by side pairs them up."""
    sink = len(bdd_edges)

    def step(i: int, valuation: list[bool]) -> int:
        if i == sink:
            return sink
        for bdd, target in bdd_edges[i]:
            if m.evaluate(bdd, valuation):
                return target
        return sink

    valuations = _letter_valuations(sg)
    classes: list[set[int]] = [set() for _ in range(sg.n_states)]
    start = (0, sg.initial)
    seen, queue = {start}, [start]
    while queue:
        i, j = queue.pop()
        classes[j].add(i)
        for letter, valuation in enumerate(valuations):
            pair = (step(i, valuation), sg.step_letter(j, letter))
            if pair not in seen:
                seen.add(pair)
                queue.append(pair)
    result = []
    for j, members in enumerate(classes):
        own = list(dict.fromkeys(names[i] for i in sorted(members) if i != sink))
        result.append("|".join(own) if own else
                      "violated" if sg.verdicts[j] == Verdict.VIOLATED else str(j))
    sg.state_names = tuple(result)


def _build_exact(props: list[str], edges: list[list[tuple[ast.Formula, int]]],
                 accepting: list[bool], verdicts: list[Verdict], name: str,
                 description: str, semantics: str,
                 state_names: list[str] | None = None) -> Safeguard:
    """A safeguard with exactly these states, acceptance and (checked) verdicts; missing letters
    go to a violation sink.  Used for the verdicts of our own header under infinite or mixed
    semantics, which ``from_edges`` cannot express exactly."""
    m = MTBDD(len(props))
    index = {p: i for i, p in enumerate(props)}
    n = len(edges)
    trans = []
    needs_sink = False
    for out in edges:
        diagram = m.terminal(n)
        for guard, target in out:
            diagram = m.ite(guard_to_bdd(m, guard, index), m.terminal(target), diagram)
        needs_sink = needs_sink or n in m.terminals(diagram)
        trans.append(diagram)
    accepting = list(accepting)
    verdicts = list(verdicts)
    names = list(state_names) if state_names is not None else [str(q) for q in range(n)]
    if needs_sink:
        trans.append(m.terminal(n))
        accepting.append(False)
        verdicts.append(Verdict.VIOLATED)
        names.append("violated")
    info = RuleInfo(name, "automaton", semantics, 1.0, name,
                    "finite" if semantics == "finite" else "general")
    return Safeguard.from_diagrams(m, trans, accepting=accepting, verdicts=verdicts, rules=[info],
                                   props=props, name=name, description=description,
                                   semantics=semantics, state_names=names)
