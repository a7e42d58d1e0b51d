"""Labelers: what the environment shows -> the set of propositions that are true.

A labeler is any callable ``labeler(obs, info, action) -> set[str]`` with a ``props`` attribute,
the propositions it can emit.  It is called on the state a step *reached*: ``obs`` and ``info``
are what ``env.step(action)`` returned.  At ``reset`` the wrappers call it with ``action=None``
on the initial observation (see :class:`~safeguards.gym.SafeguardWrapper` for whether that label
is fed to the safeguard).

>>> class Lava(PropositionLabeler):
...     @proposition
...     def lava(self, obs, info, action) -> bool:
...         "the agent stands on lava"
...         return obs == 3
>>> labeler = Lava() | InfoLabeler({"goal": "is_success"})
>>> sorted(labeler.props), sorted(labeler(3, {"is_success": True}, 0))
(['goal', 'lava'], ['goal', 'lava'])
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from safeguards.errors import SafeguardsError, did_you_mean

__all__ = [
    "Labeler", "LabelError", "PropositionLabeler", "proposition", "InfoLabeler",
    "FunctionLabeler", "labeler", "CombinedLabeler", "check_coverage", "checked_labels",
]


class LabelError(SafeguardsError, ValueError):
    """A labeler emitted something it should not, or cannot emit what a spec needs."""


@runtime_checkable
class Labeler(Protocol):
    """``labeler(obs, info, action) -> set of true propositions``; ``props``: all it can emit."""

    props: frozenset[str]

    def __call__(self, obs: Any, info: Mapping[str, Any], action: Any) -> set[str]: ...


def _name(labeler: Any) -> str:
    return getattr(labeler, "name", None) or type(labeler).__name__


class _Composable:
    """``a | b`` combines labelers (the union of what they say)."""

    props: frozenset[str]

    def __or__(self, other: Labeler) -> "CombinedLabeler":
        return CombinedLabeler(self, other)  # type: ignore[arg-type]

    def __ror__(self, other: Labeler) -> "CombinedLabeler":
        return CombinedLabeler(other, self)  # type: ignore[arg-type]


def proposition(method: Callable[..., bool]) -> Callable[..., bool]:
    """Mark a method of a :class:`PropositionLabeler` as deciding the proposition of its name."""
    method.__safeguards_proposition__ = True  # type: ignore[attr-defined]
    return method


class PropositionLabeler(_Composable):
    """A labeler whose ``@proposition`` methods each decide one proposition (named after the
    method; the docstring documents it)."""

    def __init__(self) -> None:
        self._deciders = {
            name: getattr(self, name) for name in dir(type(self))
            if getattr(getattr(type(self), name), "__safeguards_proposition__", False)
        }
        self.props = frozenset(self._deciders)
        self.docs = {name: (getattr(type(self), name).__doc__ or "").strip()
                     for name in self._deciders}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._state() == other._state()  # type: ignore

    def __hash__(self) -> int:
        return hash(type(self))

    def _state(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("_deciders", "docs", "props")}

    def __call__(self, obs: Any, info: Mapping[str, Any], action: Any) -> set[str]:
        true = set()
        for name, decide in self._deciders.items():
            value = decide(obs, info, action)
            if not isinstance(value, (bool, _numpy_bool())):
                raise LabelError(f"{type(self).__name__}.{name} returned {value!r} "
                                 f"({type(value).__name__}), not a bool")
            if value:
                true.add(name)
        return true


def _numpy_bool() -> type:
    import numpy as np

    return np.bool_


class InfoLabeler(_Composable):
    """Propositions read from ``info``: ``{prop: info_key}``, true when the value is truthy.

    A key missing from ``info`` counts as false.

    >>> InfoLabeler(["lava"])(None, {"lava": 1}, None)
    {'lava'}
    """

    def __init__(self, keys: Mapping[str, str] | Iterable[str]) -> None:
        self.keys = dict(keys) if isinstance(keys, Mapping) else {k: k for k in keys}
        self.props = frozenset(self.keys)

    def __call__(self, obs: Any, info: Mapping[str, Any], action: Any) -> set[str]:
        return {prop for prop, key in self.keys.items() if info.get(key)}

    def __eq__(self, other: object) -> bool:
        return type(other) is InfoLabeler and other.keys == self.keys

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.keys.items())))


class FunctionLabeler(_Composable):
    """Wrap a plain function ``fn(obs, info, action) -> iterable of props`` with its props."""

    def __init__(self, fn: Callable[[Any, Mapping[str, Any], Any], Iterable[str]],
                 props: Iterable[str], name: str | None = None) -> None:
        self.fn = fn
        self.props = frozenset(props)
        self.name = name or getattr(fn, "__name__", "labeler")
        self.__qualname__ = self.name
        self._global = False  # set by @labeler: pickled by reference to its module attribute

    def __call__(self, obs: Any, info: Mapping[str, Any], action: Any) -> set[str]:
        return self.as_labels(self.fn(obs, info, action))

    def as_labels(self, result: Any) -> set[str]:
        """What ``fn`` returned, as a set; a :class:`LabelError` if it is not a collection."""
        return result if type(result) is set else _as_label_set(self, result)

    def __eq__(self, other: object) -> bool:
        return (type(other) is FunctionLabeler and other.fn is self.fn
                and other.props == self.props)

    def __hash__(self) -> int:
        return hash((self.fn, self.props))

    def __reduce__(self) -> Any:
        # A decorated function's module attribute is this labeler: pickle it by reference.
        if getattr(self, "_global", False):
            return self.__qualname__
        return (FunctionLabeler, (self.fn, self.props, self.name))


_COLLECTIONS = (set, frozenset, list, tuple)


def _as_label_set(labeler: Any, labels: Any, step: int | None = None) -> set[str]:
    """What a labeler returned, as a set — a collection of names, not a str, map or None."""
    if type(labels) in _COLLECTIONS:
        return set(labels)
    where = f" at step {step}" if step is not None else ""
    if isinstance(labels, (str, bytes, Mapping)) or labels is None or \
            not isinstance(labels, (set, frozenset, list, tuple)):
        raise LabelError(f"labeler {_name(labeler)} returned {type(labels).__name__} "
                         f"{labels!r}{where}; expected a set of proposition names")
    return set(labels)


def labeler(*props: str) -> Callable[[Callable[..., Iterable[str]]], FunctionLabeler]:
    """Decorator: ``@labeler("lava", "goal")`` turns a function into a :class:`FunctionLabeler`.

    >>> @labeler("lava")
    ... def on_lava(obs, info, action):
    ...     return {"lava"} if obs == 3 else set()
    >>> on_lava(3, {}, None), on_lava.props
    ({'lava'}, frozenset({'lava'}))
    """
    def wrap(fn: Callable[..., Iterable[str]]) -> FunctionLabeler:
        made = FunctionLabeler(fn, props)
        made.__module__ = fn.__module__
        made.__qualname__ = fn.__qualname__
        made._global = True
        return made
    return wrap


class CombinedLabeler(_Composable):
    """The union of several labelers' propositions; they must not declare the same one."""

    def __init__(self, *labelers: Labeler) -> None:
        flat: list[Labeler] = []
        for item in labelers:
            flat += item.labelers if isinstance(item, CombinedLabeler) else [item]
        self.labelers: list[Labeler]
        seen: dict[str, str] = {}
        for item in flat:
            for prop in item.props:
                if prop in seen:
                    raise LabelError(f"proposition `{prop}` is declared by both {seen[prop]} and "
                                     f"{_name(item)}")
                seen[prop] = _name(item)
        self.labelers = flat
        self.props = frozenset(seen)

    def __call__(self, obs: Any, info: Mapping[str, Any], action: Any) -> set[str]:
        true: set[str] = set()
        for item in self.labelers:
            true |= checked_labels(item, item(obs, info, action))
        return true

    def __eq__(self, other: object) -> bool:
        return type(other) is CombinedLabeler and other.labelers == self.labelers

    def __hash__(self) -> int:
        return hash(len(self.labelers))


def check_coverage(spec_props: Iterable[str], labeler: Labeler, *, missing: str = "error",
                   stacklevel: int = 3) -> None:
    """Every spec proposition must be one the labeler can emit.

    ``missing="error"`` raises :class:`LabelError`; ``"warn"`` warns that the proposition will
    always be false (``stacklevel`` as :func:`warnings.warn`'s, counted from the caller).
    """
    if missing not in ("error", "warn"):
        raise ValueError(f"missing must be 'error' or 'warn', not {missing!r}")
    declared = getattr(labeler, "props", None)
    if declared is None:
        raise LabelError(f"labeler {_name(labeler)} does not declare the propositions it emits "
                         "(give it a `props` attribute, or wrap it with safeguards.labels.labeler)")
    absent = [p for p in spec_props if p not in declared]
    if not absent:
        return
    hint = did_you_mean(absent[0], declared)
    message = (f"the spec uses proposition{'s' if len(absent) > 1 else ''} "
               f"{', '.join(f'`{p}`' for p in absent)} that labeler {_name(labeler)} never emits "
               f"(it emits {', '.join(sorted(declared)) or 'nothing'})" + (f"; {hint}" if hint else ""))
    if missing == "warn":
        warnings.warn(message + "; treating them as always false", stacklevel=stacklevel)
    else:
        raise LabelError(message)


def checked_labels(labeler: Labeler, labels: Any, step: int | None = None) -> set[str]:
    """Validate what a labeler returned: a collection of declared proposition names."""
    where = f" at step {step}" if step is not None else ""
    result = set()
    for prop in _as_label_set(labeler, labels, step):
        if not isinstance(prop, str):
            raise LabelError(f"labeler {_name(labeler)} emitted {prop!r} "
                             f"({type(prop).__name__}){where}; propositions are strings")
        if prop not in labeler.props:
            hint = did_you_mean(prop, labeler.props)
            raise LabelError(f"labeler {_name(labeler)} emitted undeclared proposition `{prop}`"
                             f"{where}" + (f"; {hint}" if hint else ""))
        result.add(prop)
    return result
