"""The config layer: one schema per experiment kind, errors at ``file:line``.

Every experiment kind (the RL curricula of :mod:`safeguards.experiment`, the LLM files of
:mod:`safeguards.llm.config`, and the methods to come) declares its settings once, as a
pydantic dataclass (:mod:`safeguards.learn.config`, :mod:`safeguards.llm.config`): the Python
API constructs it directly, and a file's tables are validated by the same class through a
:class:`Checker`, which turns pydantic's errors into :class:`ConfigError` s located at the line
that defines the key (:func:`locate`), with the offending line and a hint.

Constraints carry the message a user reads (:func:`at_least`, :func:`in_range`,
:func:`one_of`, :func:`module_name`):

>>> from typing import Annotated
>>> from pydantic.dataclasses import dataclass
>>> @dataclass(config=SCHEMA)
... class Demo:
...     alpha: Annotated[float, in_range(0, 1, lo_open=True)] = 0.5
>>> c = Checker("[train]\\nalpha = 2\\n", "demo.toml")
>>> c.fields(Demo, {"alpha": 2}, ("train",), "[train]")
{}
>>> print(c.problems[0])
demo.toml:2: error: `alpha` must be in (0, 1], not the number 2
    alpha = 2
"""

from __future__ import annotations

import os
import re
import sys
import typing
from functools import lru_cache
from typing import Annotated, Any, Callable, Mapping, Sequence

from pydantic import AfterValidator, BeforeValidator, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from safeguards.errors import SafeguardsError, SpecError, did_you_mean, excerpt, shorten

__all__ = ["ConfigError", "Checker", "SCHEMA", "locate", "parse_config_text", "describe",
           "at_least", "in_range", "positive", "one_of", "module_name", "schema_fields"]

#: The pydantic configuration of every settings class: unknown keys are errors, values are
#: taken strictly (no "5" for 5, no true for 1; an integer is a valid float), floats finite.
SCHEMA = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


# -- constraints --------------------------------------------------------------------------------

def _constraint(test: Callable[[Any], bool], message: str, *, before: bool = False,
                **context: Any) -> Any:
    def check(value: Any) -> Any:
        if value is not None and not test(value):
            raise PydanticCustomError("safeguards_constraint", message, context or None)
        return value
    return BeforeValidator(check) if before else AfterValidator(check)


def at_least(lo: float) -> AfterValidator:
    """``value >= lo`` ("must be at least 1")."""
    return _constraint(lambda v: v >= lo, f"must be at least {lo:g}")


def in_range(lo: float, hi: float, *, lo_open: bool = False,
             hi_open: bool = False) -> AfterValidator:
    """``lo <= value <= hi`` (``lo < value`` if ``lo_open``, ``value < hi`` if ``hi_open``):
    "must be in (0, 1]"."""
    return _constraint(lambda v: (v > lo if lo_open else v >= lo) and (v < hi if hi_open
                                                                       else v <= hi),
                       f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}"
                       f"{')' if hi_open else ']'}")


def positive() -> AfterValidator:
    """``value > 0``."""
    return _constraint(lambda v: v > 0, "must be positive")


def one_of(choices: Any) -> BeforeValidator:
    """A string among ``choices`` (a ``Literal`` type or a sequence), checked before the
    ``Literal`` so that the message lists the choices and suggests the closest."""
    names = tuple(typing.get_args(choices)) if typing.get_origin(choices) is typing.Literal \
        else tuple(choices)
    return _constraint(lambda v: isinstance(v, str) and v in names,
                       "must be one of " + ", ".join(f'"{c}"' for c in names), before=True,
                       choices=names)


def module_name() -> AfterValidator:
    """A string must be ``"module:Name"`` (other values, e.g. objects, pass)."""
    return _constraint(lambda v: not isinstance(v, str) or all(v.partition(":")[::2]),
                       'must be "module:Name" (e.g. "my_pkg.labels:MyLabeler")')


def schema_fields(cls: Any) -> tuple[str, ...]:
    """The field names of a settings class, in order."""
    return tuple(cls.__pydantic_fields__)


@lru_cache(maxsize=None)
def _field_adapter(cls: Any, name: str) -> TypeAdapter[Any]:
    info = cls.__pydantic_fields__[name]
    schema: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(schema, config=SCHEMA)


# -- errors -------------------------------------------------------------------------------------

class ConfigError(SafeguardsError, ValueError):
    """A malformed experiment file: ``file:line: error: message``, the line, a hint.

    Several problems found together are shown one after the other (``problems``)."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 source: str | None = None, hint: str | None = None,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.message, self.file, self.line = message, file, line
        self.source, self.hint, self.detail = source, hint, detail
        self.problems: list[ConfigError] = [self]

    @classmethod
    def several(cls, problems: Sequence["ConfigError"]) -> "ConfigError":
        first = problems[0]
        first.problems = list(problems)
        return first

    def _one(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        out = [f"{where}: error: {shorten(self.message)}"]
        if self.source is not None and self.line is not None:
            lines = self.source.splitlines()
            if 0 < self.line <= len(lines) and lines[self.line - 1].strip():
                out.append("    " + excerpt(lines[self.line - 1].strip(), 1)[0])
        if self.detail:
            out += ["    " + d for d in self.detail.rstrip().splitlines()]
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)

    def __str__(self) -> str:
        return "\n".join(p._one() for p in self.problems)


# -- locating keys in the text ------------------------------------------------------------------

_KEY_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)')
_TOML_HEADER = re.compile(r"^\s*(\[\[|\[)\s*(.+?)\s*(\]\]|\])\s*(#.*)?$")
_TOML_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
                       r"""(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'))*)\s*=""")


def _key_parts(text: str) -> list[str]:
    return [a or b or c for a, b, c in _KEY_PART.findall(text)]


def _toml_lines(text: str) -> list[tuple[int, tuple[Any, ...]]]:
    """``(line, key path)`` of every table header and key assignment of a TOML text; array
    tables get their index (``("stages", 1, "spec")``)."""
    out: list[tuple[int, tuple[Any, ...]]] = []
    arrays: dict[tuple[str, ...], int] = {}
    table: tuple[Any, ...] = ()
    in_string = False

    def indexed(parts: Sequence[str]) -> tuple[Any, ...]:
        path: list[Any] = []
        for k in range(len(parts)):
            path.append(parts[k])
            count = arrays.get(tuple(parts[:k + 1]))
            if count is not None:
                path.append(count - 1)
        return tuple(path)

    for number, line in enumerate(text.splitlines(), 1):
        if in_string:
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_string = False
            continue
        header = _TOML_HEADER.match(line)
        if header and not _TOML_KEY.match(line):
            parts = _key_parts(header.group(2))
            if header.group(1) == "[[":
                arrays[tuple(parts)] = arrays.get(tuple(parts), 0) + 1
            table = indexed(parts)
            out.append((number, table))
            continue
        key = _TOML_KEY.match(line)
        if key:
            out.append((number, table + tuple(_key_parts(key.group(1)))))
            rest = line[key.end():]
            if rest.count('"""') % 2 or rest.count("'''") % 2:
                in_string = True
    return out


def _yaml_locate(text: str, path: Sequence[Any]) -> int | None:
    """The line of the deepest key of ``path`` that a YAML text defines (PyYAML's marks)."""
    import yaml as pyyaml

    try:
        node = pyyaml.compose(text)
    except pyyaml.YAMLError:
        return None
    best = None
    for part in path:
        if isinstance(node, pyyaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    best, node = key.start_mark.line + 1, value
                    break
            else:
                return best
        elif isinstance(node, pyyaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            best = node.start_mark.line + 1
        else:
            return best
    return best


def locate(text: str, path: Sequence[Any], *, yaml: bool = False) -> int | None:
    """The line of ``text`` that defines ``path`` (or its longest defined prefix), or None.

    >>> locate('[train]\\nalpha = 2\\n[[stages]]\\nspec = "a"\\n[[stages]]\\nspec = "b"\\n',
    ...        ("stages", 1, "spec"))
    6
    """
    if yaml:
        return _yaml_locate(text, path)
    lines = _toml_lines(text)
    target = tuple(path)
    best, best_len = None, 0
    for number, key in lines:
        if key[:len(target)] == target:  # the line defines the target or a part of it
            n = len(target)
        elif key == target[:len(key)]:  # the line defines an enclosing table
            n = len(key)
        else:
            continue
        if n > best_len:
            best, best_len = number, n
    return best



def parse_config_text(text: str, file: str, yaml: bool) -> Any:
    """The data of a TOML (or, with ``yaml``, YAML) text; syntax errors are
    :class:`ConfigError` at their line.

    >>> parse_config_text('seeds = [0, 1]', 'demo.toml', yaml=False)
    {'seeds': [0, 1]}
    """
    _check_shape(text, file)
    try:
        return _parse(text, file, yaml)
    except RecursionError:
        raise ConfigError(f"values nest too deeply (at most {MAX_CONFIG_NESTING} levels)",
                          file=file) from None


MAX_CONFIG_NESTING = 100
"""How deep arrays and tables may nest in an experiment file."""
_LONG_NUMBER = re.compile(r"\d{%d,}" % (sys.get_int_max_str_digits() or 4300))


def _check_shape(text: str, file: str) -> None:
    """Numbers too long for Python and brackets nested deeper than :data:`MAX_CONFIG_NESTING`
    are located errors (the parsers would raise ``ValueError`` or ``RecursionError``)."""
    digits = _LONG_NUMBER.search(text)
    if digits:
        line = text.count("\n", 0, digits.start()) + 1
        raise ConfigError(f"a number with {digits.end() - digits.start():,} digits",
                          file=file, line=line, source=text, hint="no setting needs such a number")
    depth, quote, escaped = 0, "", False
    for lineno, line_text in enumerate(text.splitlines(), 1):
        for char in line_text:
            if quote:
                escaped, quote = (char == "\\" and not escaped and quote == '"',
                                  "" if char == quote and not escaped else quote)
            elif char in "\"'":
                quote = char
            elif char == "#":
                break
            elif char in "[{":
                depth += 1
                if depth > MAX_CONFIG_NESTING:
                    raise ConfigError(f"values nest more than {MAX_CONFIG_NESTING} levels deep",
                                      file=file, line=lineno, source=text)
            elif char in "]}":
                depth = max(0, depth - 1)


def _parse(text: str, file: str, yaml: bool) -> Any:
    if yaml:
        try:
            import yaml as pyyaml
        except ImportError:
            raise ConfigError("YAML experiment files need PyYAML (pip install pyyaml); "
                              "or write the file as TOML", file=file) from None
        try:
            return pyyaml.safe_load(text)
        except pyyaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"invalid YAML: {problem}", file=file, source=text,
                              line=mark.line + 1 if mark is not None else None) from None
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
        line = None
        if match:
            line = int(match.group(1))
            message = message[:match.start()]
        elif "(at end of document)" in message:
            message = message.replace("(at end of document)", "").strip()
            line = max(1, len(text.splitlines()))
        message = message[:1].lower() + message[1:]
        raise ConfigError(f"invalid TOML: {message}", file=file, line=line, source=text,
                          hint="see https://toml.io for the syntax") from None



class Checker:
    """Collects the problems of one file, each located at a line."""

    def __init__(self, text: str, file: str, yaml: bool = False) -> None:
        self.text, self.file, self.yaml = text, file, yaml
        self.problems: list[ConfigError] = []

    def error(self, path: Sequence[Any], message: str, hint: str | None = None,
              detail: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.file, line=locate(self.text, path, yaml=self.yaml),
                           source=self.text, hint=hint, detail=detail)

    def add(self, path: Sequence[Any], message: str, hint: str | None = None,
            detail: str | None = None) -> None:
        self.problems.append(self.error(path, message, hint, detail))

    def raise_if_any(self) -> None:
        if self.problems:
            ordered = sorted(self.problems, key=lambda p: p.line or 0)
            raise ConfigError.several(ordered)

    # -- shape checks --------------------------------------------------------------------------
    def keys(self, table: Mapping[str, Any], allowed: Sequence[str], path: tuple[Any, ...],
             where: str) -> None:
        for key in table:
            if key not in allowed:
                hint = did_you_mean(key, allowed) or ("allowed keys: " + ", ".join(allowed))
                self.add(path + (key,), f"unknown key `{key}` in {where}", hint)

    def typed(self, value: Any, kind: type, path: tuple[Any, ...], key: str,
              check: AfterValidator | BeforeValidator | None = None) -> Any:
        """``value`` validated as ``kind`` (and ``check``), or None with the problem recorded.

        >>> c = Checker('seeds = ["0"]', "demo.toml")
        >>> c.typed("0", int, ("seeds",), "seeds[0]") is None, c.problems[0].hint
        (True, 'write the value without quotes: seeds[0] = 0')
        """
        schema: Any = Annotated[kind, check] if check is not None else kind
        try:
            return TypeAdapter(schema, config=SCHEMA).validate_python(value)
        except ValidationError as error:
            self.pydantic(error, path, key, key=key)
            return None

    def spec(self, value: str, base: str | os.PathLike[str], path: tuple[Any, ...]
             ) -> str | None:
        """What a run records of a spec-like value (:func:`~safeguards.spec.resolve.
        resolve_spec`: a file made absolute relative to ``base``, a shipped name, spec text or a
        formula), or None with the problem recorded at ``path``."""
        from safeguards.spec.resolve import resolve_spec

        try:
            return resolve_spec(value, base=base).value
        except SpecError as error:
            self.add(path, error.message, error.hint)
            return None

    # -- pydantic ------------------------------------------------------------------------------
    def field(self, cls: Any, name: str, value: Any, path: tuple[Any, ...],
              key: str | None = None) -> Any:
        """``value`` validated as the field ``name`` of the settings class ``cls``, or None
        with the problem recorded at ``path`` (messages call it ``key``, default ``name``)."""
        try:
            return _field_adapter(cls, name).validate_python(value)
        except ValidationError as error:
            self.pydantic(error, path, key or name, key=key or name)
            return None

    def fields(self, cls: Any, table: Mapping[str, Any], path: tuple[Any, ...], where: str,
               allowed: Sequence[str] | None = None) -> dict[str, Any]:
        """The keys of ``table`` that are fields of the settings class ``cls``, each validated
        on its own (other keys are reported as unknown unless listed in ``allowed``); the
        valid ones are returned."""
        names = schema_fields(cls)
        self.keys({k: v for k, v in table.items() if k not in names}, [*(allowed or ()), *names],
                  path, where)
        valid = {}
        for key, value in table.items():
            if key in names:
                checked = self.field(cls, key, value, path + (key,))
                if checked is not None:
                    valid[key] = checked
        return valid

    def build(self, cls: Any, values: Mapping[str, Any], path: tuple[Any, ...], where: str,
              prefix: str = "") -> Any:
        """``cls(**values)``, or None with its problems recorded at ``path``."""
        try:
            return cls(**values)
        except ValidationError as error:
            self.pydantic(error, path, where, prefix=prefix)
            return None

    def pydantic(self, error: ValidationError, path: tuple[Any, ...], where: str, *,
                 key: str | None = None, prefix: str = "") -> None:
        """Record pydantic's errors as problems located at ``path`` (plus each error's loc)."""
        for item in error.errors(include_url=False):
            loc = tuple(item["loc"]) if key is None else ()
            name = key if key is not None else next(
                (str(p) for p in reversed(loc) if isinstance(p, str)), where)
            message, hint = _message(item, name, where)
            self.add(path + loc, prefix + message, hint)


_WANT = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
         "string_type": "a string", "dict_type": "a table", "list_type": "a list",
         "finite_number": "a finite number"}


def _message(item: Mapping[str, Any], key: str, where: str) -> tuple[str, str | None]:
    """The message and hint of one pydantic error about ``key``."""
    kind, value = item["type"], item.get("input")
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"unknown key `{key}` in {where}", None
    if kind in ("missing", "missing_argument"):
        return f"{where} has no `{key}`", None
    if kind in _WANT:
        hint = None
        if isinstance(value, str) and kind in ("int_type", "float_type", "bool_type"):
            hint = f"write the value without quotes: {key} = {value}"
        elif kind == "string_type" and not isinstance(value, (dict, list)):
            hint = f'write the value in double quotes: {key} = "{value}"'
        return f"`{key}` must be {_WANT[kind]}, not {describe(value)}", hint
    if kind == "safeguards_constraint":
        choices = (item.get("ctx") or {}).get("choices")
        hint = did_you_mean(value, choices) if choices and isinstance(value, str) else None
        return f"`{key}` {item['msg']}, not {describe(value)}", hint
    if kind in ("value_error", "assertion_error"):
        return str(item["msg"]).split(", ", 1)[-1], None
    return f"`{key}`: {item['msg'][:1].lower()}{item['msg'][1:]}", None


def describe(value: Any) -> str:
    """How a value reads in a message.

    >>> describe(2), describe("5"), describe(True)
    ('the number 2', 'the string "5"', 'the boolean true')
    """
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


