"""Hostile inputs: seeded generators of the spec texts, trace lines and experiment files a hostile
user (or a buggy tool) hands to safeguards.  Shared by ``tests/test_hostile.py`` (small, fast)
and ``benchmarks/bench_hostile.py`` (a larger corpus with timings and memory).

Every case must end in a result or a :class:`~safeguards.errors.SafeguardsError` within the
compile budget — never a traceback, a hang or an unbounded allocation.
"""

from __future__ import annotations

import random
import string
from typing import Iterator

__all__ = ["spec_cases", "trace_lines", "config_texts"]

_STAGE = ('[[stages]]\nenv = "safeguards/Minecraft-L1-v0"\nspec = "minecraft/safeguard0"\n'
          'episodes = 3\n')


def _props(n: int) -> list[str]:
    return [f"p{i}" for i in range(n)]


def spec_cases(seed: int = 0, scale: int = 1) -> Iterator[tuple[str, str]]:
    """``(kind, text)`` pairs for ``safeguards.compile``; ``scale`` multiplies the sizes."""
    rng = random.Random(seed)
    for depth in (50, 400, 1_000 * scale, 3_000 * scale):
        yield "nested parentheses", "(" * depth + "a" + ")" * depth
        yield "negation chain", "!" * depth + "a"
        yield "next chain", "X " * depth + "a"
        yield "conjunction chain", " & ".join(_props(depth))
        yield "until chain", " U ".join(["a"] * depth)
        yield "nested regex groups", f"spec s props: a rule r: never {'{' * depth}a{'}' * depth}"
    for n in (10, 100 * scale):
        yield "nested yesterday", "G(" + "Y " * n + "a)"
    yield "xor of many", "G(" + " xor ".join(_props(20 + 5 * scale)) + ")"
    yield "many eventualities", " & ".join(f"F {p}" for p in _props(13 + 2 * scale))
    rules = "".join(f"rule r{i}: ltl G(p{i} -> F p{(i + 1) % 14})\n" for i in range(14))
    yield "many response rules", "spec s\nprops: " + " ".join(_props(14)) + "\n" + rules
    for n in (328, 990, 1_000, 1_001):
        yield "counted repetition", f"spec s props: a rule r: never a[*1..{n}]"
        yield "exact repetition", f"spec s props: a rule r: never a[*{n}]"
    yield "repeated concatenation", "spec s props: a b rule r: match {a ; b}[*496]"
    yield "nested counted repetition", "spec s props: a b c rule r: never {c ; b ; a[*6]}[*3..]"
    yield "identical rules", "spec s props: a\n" + "rule: ltl G !a\n" * (1_000 * scale)
    yield "long proposition name", "G !" + "a" * (100_000 * scale)
    yield "long one-line text", "a" * 253
    yield "NUL byte", "G !a\x00"
    yield "NUL byte in a path", "a\x00.sg"
    yield "lone surrogate", "G !\ud800"
    yield "include outside", 'spec s include "/etc/passwd"'
    yield "include the environment", 'spec s include "../../../../../../proc/self/environ"'
    for _ in range(20 * scale):
        tokens = ["(", ")", "!", "&", "|", "->", "X", "F", "G", "U", "R", "Y", "H", "O", "S",
                  "a", "b", "true", "false", "[*", "]", "{", "}", ";", "never", "match",
                  "rule", "ltl", "spec", "props:", "let", "=", "include", '"', "\n", "#"]
        yield "random tokens", " ".join(rng.choice(tokens) for _ in range(rng.randint(1, 60)))
    for _ in range(10 * scale):
        yield "random text", "".join(rng.choice(string.printable)
                                     for _ in range(rng.randint(1, 400)))


def trace_lines(seed: int = 0, scale: int = 1) -> Iterator[tuple[str, bytes]]:
    """``(kind, line)`` pairs: one JSON-lines trace line each (props ``a``, ``b``)."""
    rng = random.Random(seed)
    yield "non-finite float", b'{"a": NaN}'
    yield "infinity", b"[Infinity]"
    yield "deep list", b"[" * (100_000 * scale)
    yield "deep object", b'{"a":' * (50_000 * scale)
    yield "huge integer", b"[" + b"9" * (5_000 * scale) + b"]"
    yield "long unknown name", b'["' + b"x" * (2_000_000 * scale) + b'"]'
    yield "not UTF-8", b'["a", "\xff\xfe"]'
    yield "NUL", b'["a\x00"]'
    yield "duplicate key", b'{"a": true, "a": false}'
    yield "boolean list", b"[true]"
    yield "nested", b'[["a"]]'
    for _ in range(20 * scale):
        yield "random bytes", bytes(rng.randrange(256) for _ in range(rng.randint(1, 80)))


def config_texts(seed: int = 0, scale: int = 1) -> Iterator[tuple[str, str]]:
    """``(kind, text)`` pairs: TOML experiment files."""
    rng = random.Random(seed)
    yield "absurd seed list", "seeds = [" + ", ".join(str(i) for i in range(20_000)) + "]\n" \
        + _STAGE
    yield "absurd seed count", "seeds = 1000000000\n" + _STAGE
    yield "huge integer", "seeds = " + "9" * (5_000 * scale) + "\n" + _STAGE
    yield "deep inline table", "x = " + "{a = " * (1_000 * scale) + "1" + "}" * (1_000 * scale) \
        + "\n" + _STAGE
    yield "deep array", "x = " + "[" * (5_000 * scale) + "]" * (5_000 * scale) + "\n" + _STAGE
    yield "non-finite float", "[train]\nalpha = nan\n" + _STAGE
    yield "name with a newline", 'name = "quick\\n"\n' + _STAGE
    yield "long spec", _STAGE.replace('"minecraft/safeguard0"', '"' + "G !a & " * 2_000 + 'a"')
    yield "include outside", _STAGE.replace('"minecraft/safeguard0"',
                                            '"spec s include \\"/etc/passwd\\""')
    keys = ["seeds", "train", "stages", "x", "methods"]
    values = ["1", "[1]", "{}", '"a"', "true", "-5", "1e308"]
    for _ in range(10 * scale):
        lines = [f"{rng.choice(keys)} = {rng.choice(values)}" for _ in range(rng.randint(1, 5))]
        yield "random keys", "\n".join(lines) + "\n"
