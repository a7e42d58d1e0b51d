"""The decision-diagram memo is keyed by a stable operation name plus the operands, so a repeated
operation is answered from the memo instead of adding entries under a freshly built lambda."""

from __future__ import annotations

from pathlib import Path

import pytest

from safeguards.automata.build import compile_rule
from safeguards.automata.mtbdd import MTBDD
from safeguards.spec.loader import load_spec, load_spec_text

SPECS = Path(__file__).resolve().parents[1] / "specs"


def _memo_size(m: MTBDD) -> int:
    return len(m._apply_cache) + len(m._map_cache)


def test_repeated_ite_hits_the_memo() -> None:
    m = MTBDD(3)
    first = m.ite(m.var(0), m.var(1), m.var(2))
    size = _memo_size(m)
    assert all(m.ite(m.var(0), m.var(1), m.var(2)) == first for _ in range(100))
    assert _memo_size(m) == size


def test_fresh_lambdas_under_one_name_share_the_memo() -> None:
    m = MTBDD(3)
    a, b, c = m.var(0), m.var(1), m.var(2)

    def operations() -> tuple[int, int, int]:
        and_not = m.apply(lambda x, y: x and not y, a, b, name="and-not")
        return (and_not, m.map(lambda x: not x, and_not, name="not"),
                m.apply3(lambda x, y, z: x or y or z, a, b, c, name="or3"))

    first = operations()
    size = _memo_size(m)
    assert operations() == first
    assert _memo_size(m) == size


def test_apply3_and_apply_under_one_name_stay_apart() -> None:
    m = MTBDD(3)
    a, b, c = m.var(0), m.var(1), m.var(2)
    both = m.apply(lambda x, y: x and y, a, b, name="op")
    choice = m.apply3(lambda x, y, z: y if x else z, a, b, c, name="op")
    assert m.evaluate(both, [False, False, True]) is False
    assert m.evaluate(choice, [False, False, True]) is True


@pytest.mark.parametrize("source", [
    SPECS / "minecraft" / "safeguard3.sg",             # a machine: one ite per edge
    "spec s\nprops:\n  a\n  b\nrule r:\n  ltl G((a <-> b) | Y(a xor b))\n",
])
def test_compiling_a_rule_again_does_not_grow_the_memo(source: Path | str) -> None:
    spec = load_spec(source) if isinstance(source, Path) else load_spec_text(source)
    m, props = MTBDD(len(spec.props)), list(spec.props)
    first = [compile_rule(m, rule, props).aut.trans for rule in spec.rules]
    size = _memo_size(m)
    assert [compile_rule(m, rule, props).aut.trans for rule in spec.rules] == first
    assert _memo_size(m) == size
