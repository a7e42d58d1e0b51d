"""The compile budget: one limit on time, automaton states, decision-diagram nodes (about 200
bytes each) and memory (growth of the process's peak resident size) that every construction
checks — LTL progression, regex
derivatives, machines, products, minimisation, the Spot backend — so that no spec text compiles
for longer or grows larger than the caller allows.

>>> import safeguards
>>> try:
...     safeguards.compile_ltl(" & ".join(f"F p{i}" for i in range(20)), max_seconds=0.2)
... except safeguards.SpecError as error:
...     print(error.message)
rule `formula`: compile budget exceeded: more than 0.2 s
"""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator

from safeguards.errors import SpecError
from safeguards.spec.depth import deep_recursion

__all__ = ["Budget", "compile_budget", "current_budget", "check_time",
           "DEFAULT_SECONDS", "DEFAULT_STATES", "DEFAULT_NODES"]

#: Defaults: a few seconds, as many states as a monitor table sensibly holds, and a node count
#: that stays within a few hundred MB.
DEFAULT_SECONDS = 10.0
DEFAULT_STATES = 50_000
DEFAULT_NODES = 1_000_000
DEFAULT_MEMORY_MB = 400
_MEMORY_EVERY = 64   # looks at the clock between two looks at the memory
SPLIT_HINT = ("split the rule into smaller rules (they are conjoined), or raise the budget "
              "(--max-seconds / --max-states, or max_seconds= / max_states= in Python)")


@dataclass
class Budget:
    """What one compilation may use: seconds from its start, states per automaton, diagram
    nodes."""

    max_seconds: float = DEFAULT_SECONDS
    max_states: int = DEFAULT_STATES
    max_nodes: int = DEFAULT_NODES
    max_memory_mb: float = DEFAULT_MEMORY_MB
    started: float = field(default_factory=time.monotonic)
    peak_before: float = field(default_factory=lambda: _peak_mb())
    checks: int = 0

    def __post_init__(self) -> None:
        if not (self.max_seconds > 0 and self.max_states >= 1 and self.max_nodes >= 1):
            raise ValueError("a compile budget needs max_seconds > 0, max_states >= 1 and "
                             "max_nodes >= 1")

    def check_time(self) -> None:
        """Raise :func:`exceeded` if the compilation is past its time (or, now and then looked
        at, its memory)."""
        if time.monotonic() - self.started > self.max_seconds:
            raise exceeded(f"more than {self.max_seconds:g} s")
        self.checks += 1
        if not self.checks % _MEMORY_EVERY and _peak_mb() - self.peak_before > self.max_memory_mb:
            raise exceeded(f"more than {self.max_memory_mb:g} MB of memory")


def _peak_mb() -> float:
    """The peak resident size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def exceeded(what: str) -> SpecError:
    """The error of a construction that outgrows the budget."""
    return SpecError(f"compile budget exceeded: {what}", hint=SPLIT_HINT)


_CURRENT: ContextVar[Budget | None] = ContextVar("compile_budget", default=None)


def current_budget() -> Budget:
    """The budget of the compilation under way (a fresh default one outside
    :func:`compile_budget`)."""
    return _CURRENT.get() or Budget()


def check_time() -> None:
    """Raise the budget's error if the compilation under way is past its time."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.check_time()


@contextmanager
def compile_budget(max_seconds: float | None = None, max_states: int | None = None,
                   max_nodes: int | None = None) -> Iterator[Budget]:
    """Run a compilation under a budget.  Inside another one without limits of its own, the
    outer budget keeps counting.  Deep (but allowed) nesting gets room to recurse
    (:func:`~safeguards.spec.depth.deep_recursion`)."""
    outer = _CURRENT.get()
    if outer is not None and max_seconds is None and max_states is None and max_nodes is None:
        yield outer
        return
    budget = Budget(DEFAULT_SECONDS if max_seconds is None else max_seconds,
                    DEFAULT_STATES if max_states is None else max_states,
                    DEFAULT_NODES if max_nodes is None else max_nodes)
    token = _CURRENT.set(budget)
    try:
        with deep_recursion():
            yield budget
    finally:
        _CURRENT.reset(token)
