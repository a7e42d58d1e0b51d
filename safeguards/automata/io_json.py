"""Save and load a :class:`~safeguards.automata.safeguard.Safeguard` as JSON.

The document holds everything the ``Safeguard`` constructor takes, so loading gives back the same
monitor (same states, letters, verdicts, rules and per-rule parts).

Schema, version 1 (every key is required; ``parts`` entries have the same keys except ``format``
and ``version``)::

    {
      "format": "safeguards-automaton",   # fixed marker
      "version": 1,                       # schema version (an integer)
      "name": str,                        # spec name
      "description": str,
      "semantics": "finite" | "infinite" | "mixed",
      "props": [str, ...],                # distinct proposition names, in variable order
      "prop_docs": {prop: str, ...},      # documentation of (some of) the propositions
      "rules": [{"name": str, "kind": str, "semantics": str, "penalty": number,
                 "source": str, "fragment": str}, ...],
      "classifier": {                     # decision diagram: valuation -> letter class
        "var": [int, ...],                #   node i tests proposition props[var[i]]
        "low": [int, ...],                #   child when it is false ...
        "high": [int, ...],               #   ... and when it is true;
        "root": int                       #   a child or root >= 0 is a node, -1-k is letter k
      },                                  #   (variables strictly increase along every path,
                                          #   every letter 0..n_letters-1 is reachable)
      "table": [[int, ...], ...],         # table[state][letter] = successor; state 0 initial
      "accepting": [bool, ...],           # one per state: accept if the trace ends here
      "verdicts": [str, ...],             # one per state, a Verdict value ("violated", ...)
      "components": null | [null | [int, ...], ...],
                                          # per state, the state of each part (null: the sink)
      "parts": [{...}, ...],              # one safeguard per rule (empty for one-rule specs)
      "state_names": [str, ...]           # one per state, for display (optional when reading;
    }                                     # default "0", "1", ...)

>>> import safeguards
>>> sg = safeguards.compile_ltl("G(a -> X b)")
>>> back = from_json(to_json(sg))
>>> (back.table == sg.table).all() and back.verdicts == sg.verdicts
True
>>> from_json('{"format": "safeguards-automaton", "version": 7}')
Traceback (most recent call last):
    ...
safeguards.errors.SpecError: <input>: error: unsupported safeguards-automaton version 7 (this version of safeguards reads version 1)
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from safeguards.automata.analysis import Verdict
from safeguards.automata.build import RuleInfo
from safeguards.automata.safeguard import Safeguard
from safeguards.errors import SpecError

__all__ = ["FORMAT", "VERSION", "to_json", "from_json", "to_dict", "from_dict"]

FORMAT = "safeguards-automaton"
VERSION = 1
_SEMANTICS = ("finite", "infinite", "mixed")
_BODY_KEYS = ("name", "description", "semantics", "props", "prop_docs", "rules", "classifier",
              "table", "accepting", "verdicts", "components", "parts")
_RULE_KEYS = ("name", "kind", "semantics", "penalty", "source", "fragment")
_CLASSIFIER_KEYS = ("var", "low", "high", "root")


# -- writing -------------------------------------------------------------------------------------
def _body(sg: Safeguard) -> dict[str, Any]:
    node_var, low, high, root = sg.classifier
    return {
        "name": sg.name,
        "description": sg.description,
        "semantics": sg.semantics,
        "props": list(sg.props),
        "prop_docs": dict(sg.prop_docs),
        "rules": [{"name": r.name, "kind": r.kind, "semantics": r.semantics,
                   "penalty": float(r.penalty), "source": r.source, "fragment": r.fragment}
                  for r in sg.rules],
        "classifier": {"var": [int(v) for v in node_var], "low": [int(v) for v in low],
                       "high": [int(v) for v in high], "root": int(root)},
        "table": sg.table.tolist(),
        "accepting": [bool(a) for a in sg.accepting],
        "verdicts": [v.value for v in sg.verdicts],
        "components": None if sg.components is None else
        [None if c is None else [int(q) for q in c] for c in sg.components],
        "parts": [_body(part) for part in sg.parts],
        "state_names": [str(name) for name in sg.state_names],
    }


def to_dict(sg: Safeguard) -> dict[str, Any]:
    """The JSON document of ``sg`` as plain Python data (see the module docstring)."""
    return {"format": FORMAT, "version": VERSION, **_body(sg)}


def to_json(sg: Safeguard) -> str:
    """Serialise ``sg`` (one top-level key per line, one table row per line)."""
    doc = to_dict(sg)
    lines = []
    for key, value in doc.items():
        if key == "table":
            rows = ",\n    ".join(json.dumps(row) for row in value)
            text = f"[\n    {rows}\n  ]" if value else "[]"
        else:
            text = json.dumps(value, ensure_ascii=False)
        lines.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


# -- reading -------------------------------------------------------------------------------------
class _Reader:
    """Validates a decoded document; every error names the JSON path of the bad value."""

    def __init__(self, file: str | None) -> None:
        self.file = file

    def fail(self, path: str, message: str, hint: str | None = None) -> SpecError:
        where = f"{path}: " if path and path != "$" else ""
        return SpecError(f"{where}{message}", file=self.file, hint=hint)

    def obj(self, value: Any, path: str, keys: tuple[str, ...],
            ignore: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        for key in keys:
            if key not in value:
                raise self.fail(path, f"missing key `{key}`")
        extra = sorted(set(value) - set(keys) - set(ignore))
        if extra:
            raise self.fail(path, f"unknown key `{extra[0]}`",
                            hint="allowed keys: " + ", ".join(
                                [*keys, *(k for k in ignore if k not in ("format", "version"))]))
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_kind(value)}")
        return value

    def integer(self, value: Any, path: str, low: int | None = None,
                high: int | None = None, what: str = "") -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {_kind(value)}")
        if (low is not None and value < low) or (high is not None and value >= high):
            bounds = f"{low}..{high - 1}" if high is not None and high > (low or 0) else \
                f">= {low}" if high is None else "an empty range"
            raise self.fail(path, f"{what or 'value'} {value} out of range ({bounds})")
        return value

    def array(self, value: Any, path: str, length: int | None = None,
              what: str = "") -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected an array, got {_kind(value)}")
        if length is not None and len(value) != length:
            raise self.fail(path, f"expected {length} entries{what}, got {len(value)}")
        return value

    def body(self, doc: Any, path: str) -> Safeguard:
        doc = self.obj(doc, path, _BODY_KEYS, ignore=("format", "version", "state_names"))
        name = self.string(doc["name"], f"{path}.name")
        description = self.string(doc["description"], f"{path}.description")
        semantics = self.string(doc["semantics"], f"{path}.semantics")
        if semantics not in _SEMANTICS:
            raise self.fail(f"{path}.semantics", f"unknown semantics `{semantics}`",
                            hint="use " + ", ".join(_SEMANTICS))

        props = [self.string(p, f"{path}.props[{i}]")
                 for i, p in enumerate(self.array(doc["props"], f"{path}.props"))]
        seen: set[str] = set()
        for i, p in enumerate(props):
            if p in seen:
                raise self.fail(f"{path}.props[{i}]", f"duplicate proposition `{p}`")
            seen.add(p)
        docs = doc["prop_docs"]
        if not isinstance(docs, dict):
            raise self.fail(f"{path}.prop_docs", f"expected an object, got {_kind(docs)}")
        for key, text in docs.items():
            if key not in seen:
                raise self.fail(f"{path}.prop_docs", f"documents unknown proposition `{key}`")
            self.string(text, f"{path}.prop_docs.{key}")

        rules = []
        for i, rule in enumerate(self.array(doc["rules"], f"{path}.rules")):
            where = f"{path}.rules[{i}]"
            rule = self.obj(rule, where, _RULE_KEYS)
            penalty = rule["penalty"]
            if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or \
                    not math.isfinite(penalty):
                raise self.fail(f"{where}.penalty", f"expected a finite number, got "
                                f"{_kind(penalty)}")
            rules.append(RuleInfo(self.string(rule["name"], f"{where}.name"),
                                  self.string(rule["kind"], f"{where}.kind"),
                                  self.string(rule["semantics"], f"{where}.semantics"),
                                  float(penalty),
                                  self.string(rule["source"], f"{where}.source"),
                                  self.string(rule["fragment"], f"{where}.fragment")))

        table_rows = self.array(doc["table"], f"{path}.table")
        if not table_rows:
            raise self.fail(f"{path}.table", "a safeguard needs at least one state")
        n_states = len(table_rows)
        first = self.array(table_rows[0], f"{path}.table[0]")
        n_letters = len(first)
        if n_letters == 0:
            raise self.fail(f"{path}.table[0]", "a safeguard needs at least one letter")
        for q, row in enumerate(table_rows):
            row = self.array(row, f"{path}.table[{q}]", n_letters, " (one per letter)")
            for letter, target in enumerate(row):
                self.integer(target, f"{path}.table[{q}][{letter}]", 0, n_states,
                             "successor state")
        table = np.array(table_rows, dtype=np.int32).reshape(n_states, n_letters)

        classifier = self.classifier(doc["classifier"], f"{path}.classifier", len(props),
                                     n_letters)

        accepting = self.array(doc["accepting"], f"{path}.accepting", n_states,
                               " (one per state)")
        for q, flag in enumerate(accepting):
            if not isinstance(flag, bool):
                raise self.fail(f"{path}.accepting[{q}]", f"expected true or false, got "
                                f"{_kind(flag)}")
        verdicts = []
        for q, text in enumerate(self.array(doc["verdicts"], f"{path}.verdicts", n_states,
                                            " (one per state)")):
            text = self.string(text, f"{path}.verdicts[{q}]")
            try:
                verdicts.append(Verdict(text))
            except ValueError:
                raise self.fail(f"{path}.verdicts[{q}]", f"unknown verdict `{text}`",
                                hint="use " + ", ".join(v.value for v in Verdict)) from None

        state_names = None
        if doc.get("state_names") is not None:
            state_names = [self.string(text, f"{path}.state_names[{q}]") for q, text in
                           enumerate(self.array(doc["state_names"], f"{path}.state_names",
                                                n_states, " (one per state)"))]

        parts = [self.body(part, f"{path}.parts[{i}]")
                 for i, part in enumerate(self.array(doc["parts"], f"{path}.parts"))]
        for i, part in enumerate(parts):
            if part.props != tuple(props):
                raise self.fail(f"{path}.parts[{i}].props",
                                "a part must have the same propositions as its safeguard")
        if parts and len(parts) != len(rules):
            raise self.fail(f"{path}.parts", f"expected one part per rule ({len(rules)}), "
                            f"got {len(parts)}")

        components: list[tuple[int, ...] | None] | None = None
        if doc["components"] is not None:
            components = []
            for q, comp in enumerate(self.array(doc["components"], f"{path}.components",
                                                n_states, " (one per state)")):
                if comp is None:
                    components.append(None)
                    continue
                comp = self.array(comp, f"{path}.components[{q}]",
                                  len(parts) if parts else None, " (one per part)")
                components.append(tuple(
                    self.integer(c, f"{path}.components[{q}][{i}]", 0,
                                 parts[i].n_states if parts else None, "part state")
                    for i, c in enumerate(comp)))
        elif parts:
            raise self.fail(f"{path}.components", "required (an array) when there are parts")
        if parts and components is not None:
            for q, comp in enumerate(components):
                if comp is None and verdicts[q] != Verdict.VIOLATED:
                    raise self.fail(f"{path}.components[{q}]",
                                    "only the violation sink may have no part states")

        return Safeguard(props=props, classifier=classifier, table=table, accepting=accepting,
                         verdicts=verdicts, rules=rules, components=components, parts=parts,
                         name=name, description=description, prop_docs=docs,
                         semantics=semantics, state_names=state_names)

    def classifier(self, value: Any, path: str, n_props: int,
                   n_letters: int) -> tuple[list[int], list[int], list[int], int]:
        value = self.obj(value, path, _CLASSIFIER_KEYS)
        node_var = [self.integer(v, f"{path}.var[{i}]", 0, n_props, "proposition index")
                    for i, v in enumerate(self.array(value["var"], f"{path}.var"))]
        n_nodes = len(node_var)
        low = self.array(value["low"], f"{path}.low", n_nodes, " (one per node)")
        high = self.array(value["high"], f"{path}.high", n_nodes, " (one per node)")

        def child(ref: Any, where: str) -> int:
            ref = self.integer(ref, where)
            if ref >= n_nodes:
                raise self.fail(where, f"node {ref} out of range (0..{n_nodes - 1})"
                                if n_nodes else f"node {ref} does not exist (no nodes)")
            if ref < 0 and -1 - ref >= n_letters:
                raise self.fail(where, f"letter {-1 - ref} (encoded {ref}) out of range "
                                f"(0..{n_letters - 1})")
            return ref

        low = [child(x, f"{path}.low[{i}]") for i, x in enumerate(low)]
        high = [child(x, f"{path}.high[{i}]") for i, x in enumerate(high)]
        root = child(value["root"], f"{path}.root")
        for i in range(n_nodes):
            for kids, side in ((low, "low"), (high, "high")):
                if kids[i] >= 0 and node_var[kids[i]] <= node_var[i]:
                    raise self.fail(f"{path}.{side}[{i}]",
                                    f"node {kids[i]} tests proposition {node_var[kids[i]]}, "
                                    f"not after its parent's {node_var[i]}",
                                    hint="variables must strictly increase along every path")
        # Every letter must be some valuation's class.
        reached: set[int] = set()
        stack, seen = [root], set()
        while stack:
            node = stack.pop()
            if node < 0:
                reached.add(-1 - node)
            elif node not in seen:
                seen.add(node)
                stack += [low[node], high[node]]
        missing = sorted(set(range(n_letters)) - reached)
        if missing:
            raise self.fail(path, f"letter {missing[0]} is not reachable from the root "
                            f"(the table has {n_letters} letters)")
        return node_var, low, high, root


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a Boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value)[:40]}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def from_dict(doc: Any, *, file: str | None = None) -> Safeguard:
    """Rebuild a safeguard from decoded JSON data, validating it (:class:`SpecError` if bad)."""
    reader = _Reader(file)
    if not isinstance(doc, dict):
        raise reader.fail("", f"expected a JSON object at the top level, got {_kind(doc)}")
    if doc.get("format") != FORMAT:
        found = doc.get("format")
        raise reader.fail("", "not a safeguards automaton"
                          + (f" (format {json.dumps(found)})" if found is not None else
                             " (no `format` key)"),
                          hint=f'the file should start with {{"format": "{FORMAT}", '
                               f'"version": {VERSION}, ...}}')
    version = doc.get("version")
    if version is None:
        raise reader.fail("", "missing key `version`")
    if isinstance(version, bool) or not isinstance(version, int):
        raise reader.fail("$.version", f"expected an integer, got {_kind(version)}")
    if version != VERSION:
        raise reader.fail("", f"unsupported {FORMAT} version {version} (this version of "
                          f"safeguards reads version {VERSION})")
    try:
        return reader.body(doc, "$")
    except RecursionError:
        raise reader.fail("$", "parts nested too deeply") from None


def from_json(text: str | bytes, *, file: str | None = None) -> Safeguard:
    """Load a safeguard saved by :func:`to_json`; malformed input raises :class:`SpecError`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SpecError(f"not UTF-8 text: {error}", file=file) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(f"invalid JSON: {error.msg}", source=text, line=error.lineno,
                        column=error.colno, file=file) from None
    except RecursionError:
        raise SpecError("invalid JSON: nested too deeply", file=file) from None
    return from_dict(doc, file=file)
