"""Reference semantics for property tests of the compiled automata.

Everything here follows the textbook definitions directly -- no automata, no formula
progression -- so that it can judge the compiler independently:

* :func:`holds` -- finite-trace LTL with past (LTLf, Spot conventions) on a non-empty trace;
* :func:`holds_infinite_lasso` -- future LTL on an ultimately periodic word ``prefix . loop^w``;
* :func:`regex_matches` and :func:`never_violation_step` -- regular expressions over events;
* :func:`earliest_violation` and :func:`earliest_satisfaction` -- bad and good prefixes;
* :func:`random_formula`, :func:`random_trace` and :func:`random_regex` -- seeded generators.

A trace is a sequence of valuations; a valuation is the frozenset of the propositions true there.

>>> from safeguards.spec.parser import parse_ltl
>>> holds(parse_ltl("a U b"), [frozenset({"a"}), frozenset({"b"})])
True
"""

from __future__ import annotations

import functools
import itertools
import operator
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from safeguards.spec.ast import (
    BINARY_OPS, FUTURE_OPS, PAST_OPS, UNARY_OPS, Binary, Concat, Const, Formula, Intersection,
    Letter, Prop, Regex, Repeat, Unary, Union, props_of, walk,
)

__all__ = [
    "Trace", "ALL_OPS", "FUTURE_ONLY_OPS", "SAFETY_OPS", "GUARANTEE_OPS", "BOOLEAN_ONLY_OPS",
    "holds", "holds_infinite_lasso", "regex_matches", "never_violation_step",
    "earliest_violation", "earliest_satisfaction", "alphabet",
    "random_formula", "random_trace", "random_regex",
]

Trace = Sequence[frozenset[str]]
_Table = Callable[[Formula], tuple[bool, ...]]
_Word = tuple[frozenset[str], ...]
_Vector = tuple[bool, ...]

ALL_OPS: tuple[str, ...] = UNARY_OPS + BINARY_OPS
FUTURE_ONLY_OPS: tuple[str, ...] = tuple(op for op in ALL_OPS if op not in PAST_OPS)
#: Syntactic safety and guarantee fragments (negation-free: leaves are literals).
SAFETY_OPS: tuple[str, ...] = ("&", "|", "X", "G", "R", "W")
GUARANTEE_OPS: tuple[str, ...] = ("&", "|", "X[!]", "F", "U", "M")
BOOLEAN_ONLY_OPS: tuple[str, ...] = ("!", "&", "|", "->", "<->", "xor")

_BOOLEAN: dict[str, Callable[[bool, bool], bool]] = {
    "&": lambda a, b: a and b,
    "|": lambda a, b: a or b,
    "->": lambda a, b: (not a) or b,
    "<->": operator.eq,
    "xor": operator.ne,
}

# op -> (hold, goal, weak), each test taking the left and right operand values at one position.
# Walking a path of positions, the formula holds at the first position where `goal` holds, fails
# at the first position where `hold` fails before that, and is `weak` if the path runs out.
# Past operators walk backwards: O is F, H is G and S is U towards position 0.
_Scan = tuple[Callable[[bool, bool], bool], Callable[[bool, bool], bool], bool]
_SCANS: dict[str, _Scan] = {
    "F": (lambda a, b: True, lambda a, b: a, False),     # some j: a
    "G": (lambda a, b: a, lambda a, b: False, True),     # all j: a
    "U": (lambda a, b: a, lambda a, b: b, False),        # some j: b, a before j
    "W": (lambda a, b: a, lambda a, b: b, True),         # (a U b) | G a
    "R": (lambda a, b: b, lambda a, b: a and b, True),   # b W (a & b)  ==  !(!a U !b)
    "M": (lambda a, b: b, lambda a, b: a and b, False),  # b U (a & b)
}
_PAST_SCANS = {"O": _SCANS["F"], "H": _SCANS["G"], "S": _SCANS["U"]}


def _scan(path: Iterable[int], left: Sequence[bool], right: Sequence[bool], form: _Scan,
          end: bool) -> bool:
    """Walk ``path`` as described at :data:`_SCANS`; ``end`` if it runs out undecided."""
    hold, goal, _ = form
    for j in path:
        if goal(left[j], right[j]):
            return True
        if not hold(left[j], right[j]):
            return False
    return end


def _lasso_path(i: int, size: int, loop_start: int) -> Iterator[int]:
    """``size`` positions from ``i`` on: enough to visit every position reachable from ``i``."""
    for _ in range(size):
        yield i
        i = i + 1 if i + 1 < size else loop_start


def _truth_table(word: Trace, loop_start: int | None = None,
                 before: Mapping[Formula, bool] | None = None,
                 after: Mapping[Formula, bool] | None = None) -> _Table:
    """Memoised ``formula -> truth value at every position of word``.

    ``loop_start=None`` reads ``word`` as a finite trace; otherwise as the lasso whose last
    position is followed by position ``loop_start`` (future operators only).  A finite ``word``
    may be cut out of a longer trace: ``before``/``after`` then give the value of every
    subformula just before its first/after its last position (default: the trace ends there).
    """
    n = len(word)

    def beyond(f: Formula, edge: Mapping[Formula, bool] | None, weak: bool) -> bool:
        return weak if edge is None else edge[f]

    @functools.cache
    def table(f: Formula) -> tuple[bool, ...]:
        if isinstance(f, Const):
            return (f.value,) * n
        if isinstance(f, Prop):
            return tuple(f.name in step for step in word)
        if isinstance(f, Unary):
            left = right = table(f.arg)
        elif isinstance(f, Binary):
            left, right = table(f.left), table(f.right)
        else:
            raise TypeError(f"not a formula: {f!r}")
        op = f.op
        if op == "!":
            return tuple(not a for a in left)
        if op in _BOOLEAN:
            return tuple(_BOOLEAN[op](a, b) for a, b in zip(left, right))
        if loop_start is not None:
            if op in PAST_OPS:
                raise ValueError(f"past operator {op} in an infinite-word formula")
            if op in ("X", "X[!]"):
                return tuple(left[i + 1 if i + 1 < n else loop_start] for i in range(n))
            form = _SCANS[op]
            return tuple(_scan(_lasso_path(i, n, loop_start), left, right, form, form[2])
                         for i in range(n))
        if op in ("X", "X[!]"):       # X is weak, X[!] strong at the last position
            last = beyond(f.arg, after, op == "X")
            return tuple(left[i + 1] if i + 1 < n else last for i in range(n))
        if op in ("Y", "Z"):          # Y is strong, Z weak at position 0
            first = beyond(f.arg, before, op == "Z")
            return tuple(left[i - 1] if i > 0 else first for i in range(n))
        if op in _PAST_SCANS:
            form = _PAST_SCANS[op]
            first = beyond(f, before, form[2])
            return tuple(_scan(range(i, -1, -1), left, right, form, first) for i in range(n))
        form = _SCANS[op]
        last = beyond(f, after, form[2])
        return tuple(_scan(range(i, n), left, right, form, last) for i in range(n))

    return table


def holds(formula: Formula, trace: Trace, i: int = 0) -> bool:
    """Does ``formula`` hold at position ``i`` of the non-empty finite ``trace`` (LTLf)?

    ``X`` is weak (true at the last position), ``X[!]`` strong; ``Y`` is strong (false at
    position 0), ``Z`` weak.

    >>> from safeguards.spec.parser import parse_ltl
    >>> holds(parse_ltl("X a"), [frozenset()]), holds(parse_ltl("X[!] a"), [frozenset()])
    (True, False)
    """
    if not trace:
        raise ValueError("finite-trace semantics needs a non-empty trace")
    if not 0 <= i < len(trace):
        raise IndexError(f"position {i} outside a trace of length {len(trace)}")
    return _truth_table(tuple(trace))(formula)[i]


def holds_infinite_lasso(formula: Formula, prefix: Trace, loop: Trace, i: int = 0) -> bool:
    """Does the future-only ``formula`` hold at position ``i`` of ``prefix . loop^w``?

    >>> from safeguards.spec.parser import parse_ltl
    >>> holds_infinite_lasso(parse_ltl("G F a"), [], [frozenset({"a"}), frozenset()])
    True
    """
    if not loop:
        raise ValueError("the loop of a lasso is non-empty")
    if i >= len(prefix):
        i = len(prefix) + (i - len(prefix)) % len(loop)
    return _truth_table(tuple(prefix) + tuple(loop), len(prefix))(formula)[i]


# --------------------------------------------------------------------------------------------
# Regular expressions


def _regex_ends(trace: Trace) -> Callable[[Regex, int], frozenset[int]]:
    """Memoised ``(regex, i) -> {j : trace[i:j] matches regex}``: spans by dynamic programming."""
    n = len(trace)

    @functools.cache
    def letter_holds(guard: Formula, i: int) -> bool:
        return holds(guard, [trace[i]])

    @functools.cache
    def ends(r: Regex, i: int) -> frozenset[int]:
        if isinstance(r, Letter):
            return frozenset({i + 1}) if i < n and letter_holds(r.guard, i) else frozenset()
        if isinstance(r, Concat):
            return frozenset().union(*(ends(r.right, k) for k in ends(r.left, i)))
        if isinstance(r, Union):
            return ends(r.left, i) | ends(r.right, i)
        if isinstance(r, Intersection):
            return ends(r.left, i) & ends(r.right, i)
        if isinstance(r, Repeat):
            def step(starts: Iterable[int]) -> frozenset[int]:
                return frozenset().union(*(ends(r.body, k) for k in starts))

            frontier = frozenset({i})           # ends after exactly `count` iterations
            for _ in range(r.low):
                frontier = step(frontier)
            seen, count = set(frontier), r.low
            # An end first reached after more than `low` iterations is only new if it was not
            # reached with fewer: anything reachable from an old end was reached earlier too.
            while frontier and (r.high is None or count < r.high):
                frontier = step(frontier) - seen
                seen |= frontier
                count += 1
            return frozenset(seen)
        raise TypeError(f"not a regular expression: {r!r}")

    return ends


def regex_matches(regex: Regex, trace: Trace) -> bool:
    """Does the whole (possibly empty) ``trace`` match ``regex``?

    >>> from safeguards.spec.parser import parse_regex
    >>> regex_matches(parse_regex("a[*2..3]"), [frozenset({"a"})] * 3)
    True
    """
    return len(trace) in _regex_ends(trace)(regex, 0)


def never_violation_step(regex: Regex, trace: Trace) -> int | None:
    """The first ``t`` such that a non-empty segment ``trace[s..t]`` (inclusive) matches."""
    ends = _regex_ends(trace)
    for t in range(len(trace)):
        if any(t + 1 in ends(regex, s) for s in range(t + 1)):
            return t
    return None


# --------------------------------------------------------------------------------------------
# Bad and good prefixes


def alphabet(formula: Formula) -> list[frozenset[str]]:
    """Every valuation of the propositions of ``formula``."""
    props = sorted(props_of(formula))
    return [frozenset(p for p, bit in zip(props, bits) if bit)
            for bits in itertools.product((False, True), repeat=len(props))]


def _satisfiable_after(formula: Formula, trace: Trace, horizon: int | None) -> list[bool]:
    """For t = 0, 1, ...: does some extension of ``trace[:t+1]`` (itself included) satisfy it?

    Cut a word ``u.e`` between ``u`` and ``e``.  Past operators in ``e`` look back at some
    subformulas at the last position of ``u`` (its *tail*); future operators in ``u`` look ahead
    at some subformulas at the first position of ``e`` (its *head*).  Evaluating ``u`` with
    ``e``'s head after it gives the true values on ``u``, in particular its tail; evaluating
    ``e`` with ``u``'s tail before it gives the true head; and conversely any tail and head
    consistent in this way are the true ones, since the values on a word are the only ones that
    satisfy every operator's one-step law.  So it is enough to know, for each tail, the set of
    heads of the extensions that can follow it: ``a.e`` after tail ``p`` has head ``q`` iff
    evaluating ``a`` between ``p`` and the head ``r`` of ``e`` gives head ``q`` and a tail ``p2``
    that ``r`` can follow.  A least fixpoint, by length: exact without a ``horizon`` and equal
    to trying every extension of up to ``horizon`` steps with one.
    """
    nodes = list(dict.fromkeys(walk(formula)))
    back = [node for node in nodes if isinstance(node, (Unary, Binary)) and node.op in PAST_OPS]
    back += [node.arg for node in back if isinstance(node, Unary) and node.op in ("Y", "Z")]
    ahead = [node for node in nodes if isinstance(node, (Unary, Binary)) and node.op in FUTURE_OPS]
    ahead += [node.arg for node in ahead if isinstance(node, Unary) and node.op in ("X", "X[!]")]
    letters = alphabet(formula)
    prefixes = [tuple(trace[:t + 1]) for t in range(len(trace))]

    @functools.cache
    def head(letter: frozenset[str], tail: _Vector, after: _Vector | None) -> tuple[_Vector, _Vector]:
        """The tail and head of the one-step word ``letter`` between ``tail`` and ``after``."""
        table = _truth_table((letter,), before=dict(zip(back, tail)),
                             after=None if after is None else dict(zip(ahead, after)))
        return tuple(table(node)[0] for node in back), tuple(table(node)[0] for node in ahead)

    @functools.cache
    def cut(prefix: _Word, after: _Vector) -> tuple[_Vector, bool]:
        """The tail of ``prefix`` before head ``after``, and whether the formula holds."""
        table = _truth_table(prefix, after=dict(zip(ahead, after)))
        return tuple(table(node)[-1] for node in back), table(formula)[0]

    def heads_after(tails: set[_Vector]) -> dict[_Vector, set[_Vector]]:
        """Tail -> heads of the extensions (up to the horizon) that can follow it."""
        while True:
            heads = {p: {head(a, p, None)[1] for a in letters} for p in tails}
            fresh = {p: set(hs) for p, hs in heads.items()}     # found in the last round
            missing: set[_Vector] = set()
            length = 1
            while any(fresh.values()) and not missing and (horizon is None or length < horizon):
                length += 1
                found: dict[_Vector, set[_Vector]] = {p: set() for p in tails}
                for r in set().union(*fresh.values()):
                    for p in tails:
                        for a in letters:
                            p2, q = head(a, p, r)
                            if p2 not in tails:
                                missing.add(p2)
                            elif r in fresh[p2] and q not in heads[p]:
                                found[p].add(q)
                for p, qs in found.items():
                    heads[p] |= qs
                fresh = found
            if not missing:
                return heads
            tails = tails | missing

    tails = {tuple(_truth_table(prefix)(node)[-1] for node in back) for prefix in prefixes}
    while True:
        heads = heads_after(tails)
        known = set().union(*heads.values())
        wanted = {cut(prefix, r)[0] for prefix in prefixes for r in known}
        if wanted <= heads.keys():
            break
        tails = set(heads) | wanted
    return [holds(formula, prefix) or any(ok and r in heads[p]
                                          for r in known for p, ok in [cut(prefix, r)])
            for prefix in prefixes]


def earliest_violation(formula: Formula, trace: Trace, horizon: int | None = None) -> int | None:
    """The first ``t`` such that ``trace[:t+1]`` is a bad prefix of ``formula`` (finite
    semantics): no extension of it, itself included, satisfies the formula.

    Exact with ``horizon=None``; with a ``horizon`` only extensions of up to that many steps
    count (as if enumerated over every valuation of the formula's propositions), so a prefix may
    be called bad too early.

    >>> from safeguards.spec.parser import parse_ltl
    >>> earliest_violation(parse_ltl("G !lava"), [frozenset(), frozenset({"lava"})])
    1
    """
    return next((t for t, ok in enumerate(_satisfiable_after(formula, trace, horizon)) if not ok),
                None)


def earliest_satisfaction(formula: Formula, trace: Trace, horizon: int | None = None) -> int | None:
    """The first ``t`` such that ``trace[:t+1]`` is a good prefix: every extension of it, itself
    included, satisfies ``formula``.  Same exactness as :func:`earliest_violation`."""
    return earliest_violation(Unary("!", formula), trace, horizon)


# --------------------------------------------------------------------------------------------
# Random generators


def random_formula(rng: random.Random, props: Sequence[str], size: int,
                   ops: Sequence[str] | None = None, past: bool = False,
                   constants: float = 0.1) -> Formula:
    """A formula with exactly ``size`` operators drawn uniformly from ``ops`` (default: all,
    past ones only if ``past``).  Leaves are propositions, or constants with probability
    ``constants``; when ``!`` is not in ``ops`` (the NNF fragments :data:`SAFETY_OPS`,
    :data:`GUARANTEE_OPS`) a proposition is negated with probability 1/2, on top of ``size``.
    """
    if ops is None:
        ops = ALL_OPS if past else FUTURE_ONLY_OPS
    unary = [op for op in ops if op in UNARY_OPS]
    binary = [op for op in ops if op in BINARY_OPS]

    def leaf() -> Formula:
        if rng.random() < constants:
            return Const(rng.random() < 0.5)
        prop = Prop(rng.choice(props))
        return Unary("!", prop) if "!" not in ops and rng.random() < 0.5 else prop

    def build(n: int) -> Formula:
        if n == 0:
            return leaf()
        op = rng.choice(unary + binary)
        if op in UNARY_OPS:
            return Unary(op, build(n - 1))
        left = rng.randint(0, n - 1)
        return Binary(op, build(left), build(n - 1 - left))

    return build(size)


def random_trace(rng: random.Random, props: Sequence[str], length: int,
                 p: float = 0.5) -> list[frozenset[str]]:
    """``length`` valuations, each proposition true with probability ``p``."""
    return [frozenset(prop for prop in props if rng.random() < p) for _ in range(length)]


def random_regex(rng: random.Random, props: Sequence[str], size: int) -> Regex:
    """A regex with exactly ``size`` operators (``;`` ``|`` ``&&`` and repetition with bounds
    of at most 4); letters are Boolean formulas with at most one operator."""
    def build(n: int) -> Regex:
        if n == 0:
            return Letter(random_formula(rng, props, rng.choice((0, 0, 1)), ops=("!", "&", "|")))
        kind = rng.choices(("concat", "union", "inter", "repeat"), weights=(3, 2, 1, 2))[0]
        if kind == "repeat":
            low = rng.randint(0, 2)
            return Repeat(build(n - 1), low, rng.choice((None, low, low + 1, low + 2)))
        left = rng.randint(0, n - 1)
        node = {"concat": Concat, "union": Union, "inter": Intersection}[kind]
        return node(build(left), build(n - 1 - left))

    return build(size)
