"""How deep spec input may nest, and room on the stack for constructions that recurse on it.

Formulas and regular expressions may nest at most :data:`MAX_NESTING` operators deep (a flat
chain ``a & b & …`` of ``n`` operators nests ``n`` deep, and so does ``!!…a``); after ``let``
macros are expanded a rule may hold at most :data:`MAX_SIZE` operators.  Deeper or larger input is
a :class:`~safeguards.errors.SpecError` at its location.  Everything within these limits works:
:func:`deep_recursion` gives the recursive walks of the compiler room for them, after checking that
the thread's C stack is large enough for that many frames.

>>> from safeguards.spec.parser import parse_ltl
>>> try:
...     parse_ltl("!" * 1001 + "a")
... except SpecError as error:
...     print(error.message)
operators nest 1,001 deep; at most 1,000 are supported
"""

from __future__ import annotations

import resource
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from safeguards.errors import SpecError

__all__ = ["MAX_NESTING", "MAX_SIZE", "nesting_error", "measure", "deep_recursion"]

#: The deepest nesting of operators a formula or regular expression may have.
MAX_NESTING = 1000
#: The most operators one rule may hold once its ``let`` macros are expanded.
MAX_SIZE = 100_000
#: Python frames the compiler's recursive walks may use per nesting level, and for the caller.
_FRAMES_PER_LEVEL = 12
_FRAMES_SPARE = 3000
#: The C stack a thread needs for that recursion (measured: the deepest allowed cases pass with 2 MiB).
_STACK_NEEDED = 8 * 1024 * 1024
_HINT = "split the formula into several rules (they are conjoined), or name parts with `let`"

_lock = threading.Lock()
_raised = {"count": 0, "previous": 0}


def nesting_error(depth: int, pos: Any, source: str | None = None,
                  file: str | None = None) -> SpecError:
    """The error for input nesting ``depth`` (> :data:`MAX_NESTING`) deep at ``pos``."""
    return SpecError(f"operators nest {depth:,} deep; at most {MAX_NESTING:,} are supported",
                     source=source, line=getattr(pos, "line", None),
                     column=getattr(pos, "column", None),
                     file=getattr(pos, "file", None) or file, hint=_HINT)


def measure(root: Any, children: Callable[[Any], Sequence[Any]],
            is_operator: Callable[[Any], bool]) -> tuple[int, int, Any]:
    """``(depth, size, culprit)`` of a tree or DAG in operators, without recursion:
    ``children(node)`` lists a node's children.  Shared subtrees count as often as they occur but
    are visited once; ``culprit`` is the operator at nesting level ``MAX_NESTING + 1`` on a
    deepest path (else None).

    >>> pair = lambda n: isinstance(n, tuple)
    >>> measure((1, (2, 3)), lambda n: n if pair(n) else (), pair)[:2]
    (2, 2)
    """
    depth: dict[int, int] = {}
    size: dict[int, int] = {}
    keep = []   # keeps visited nodes alive, so that their ids stay unique
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in depth:
            continue
        kids = children(node)
        if not done:
            stack.append((node, True))
            stack.extend((kid, False) for kid in kids if id(kid) not in depth)
            continue
        keep.append(node)
        weight = int(is_operator(node))
        depth[id(node)] = weight + max((depth[id(kid)] for kid in kids), default=0)
        size[id(node)] = weight + sum(size[id(kid)] for kid in kids)
    culprit, level = root, int(is_operator(root))
    while culprit is not None and level <= MAX_NESTING:
        kids = children(culprit)
        culprit = max(kids, key=lambda kid: depth[id(kid)]) if kids else None
        level += culprit is not None and is_operator(culprit)
    return depth[id(root)], size[id(root)], culprit


def _stack_size() -> int | None:
    """The C stack of the current thread in bytes (None: unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    if threading.current_thread() is threading.main_thread():
        return None if soft == resource.RLIM_INFINITY else soft
    # New threads get threading.stack_size() if set, else the C library's default (the rlimit).
    return threading.stack_size() or (2 * 1024 * 1024 if soft == resource.RLIM_INFINITY else soft)


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Room for the compiler's recursive walks over input nested up to :data:`MAX_NESTING` deep:
    the recursion limit is raised for the duration if the thread's C stack is large enough (else
    kept), and a :class:`RecursionError` that still happens becomes a :class:`SpecError`."""
    needed = MAX_NESTING * _FRAMES_PER_LEVEL + _FRAMES_SPARE
    stack = _stack_size()
    room = stack is None or stack >= _STACK_NEEDED
    with _lock:
        if room and _raised["count"] == 0:
            _raised["previous"] = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_raised["previous"], needed))
        _raised["count"] += room
    try:
        yield
    except RecursionError:
        raise SpecError("the input nests too deeply for the stack of this thread",
                        hint=f"{_HINT}; or run in a thread with a stack of at least "
                             f"{_STACK_NEEDED >> 20} MiB") from None
    finally:
        with _lock:
            _raised["count"] -= room
            if room and _raised["count"] == 0:
                sys.setrecursionlimit(_raised["previous"])
