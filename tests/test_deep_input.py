"""Input nested as deep as the documented limit compiles; deeper input is a located SpecError
(never a RecursionError)."""

import pytest

import safeguards
from safeguards.spec.depth import MAX_NESTING
from safeguards.spec.parser import parse_ltl
from safeguards.spec.printer import to_spot

N = MAX_NESTING
DEEPEST = {
    "not": "!" * N + "a",
    "next": "X " * N + "a",
    "and": " & ".join(f"p{i}" for i in range(N + 1)),
    "until": " U ".join(["a"] * (N + 1)),
    "parens": "(" * N + "a" + ")" * N,
}


@pytest.mark.parametrize("name", sorted(DEEPEST))
def test_deepest_formula_compiles_and_prints(name):
    sg = safeguards.compile_ltl(DEEPEST[name])
    assert sg.n_states >= 1
    assert to_spot(parse_ltl(DEEPEST[name]))


@pytest.mark.parametrize("text", ["!" * (N + 1) + "a", "X " * (N + 1) + "a",
                                  " & ".join(f"p{i}" for i in range(N + 2)),
                                  " U ".join(["a"] * (N + 2))])
def test_deeper_formula_is_a_located_error(text):
    with pytest.raises(safeguards.SpecError) as info:
        safeguards.compile_ltl(text)
    assert "at most 1,000" in info.value.message
    assert info.value.line == 1 and info.value.column is not None and info.value.hint


@pytest.mark.parametrize("body", ["never a[*1..328]", "never a[*990]", "never a[*1..1000]",
                                  "match {a ; b}[*496]", "never " + " ; ".join(["a"] * 1000)])
def test_repetitions_up_to_the_limit_compile(body):
    sg = safeguards.compile(f"props: a b\nrule r: {body}")
    assert sg.n_states >= 2


def test_deep_regex_is_a_located_error():
    with pytest.raises(safeguards.SpecError) as info:
        safeguards.compile("props: a\nrule r: never " + " ; ".join(["a"] * (N + 2)))
    assert info.value.line == 2


def test_let_macros_cannot_hide_depth_or_size():
    lets = "\n".join(f"let a{i + 1} = a{i} & a{i}" for i in range(60))
    with pytest.raises(safeguards.SpecError, match="operators; at most") as info:
        safeguards.compile(f"props: a0\n{lets}\nrule r: ltl G a60")
    assert info.value.line == 62
    chain = "\n".join(f"let b{i + 1} = !b{i}" for i in range(N + 5))
    with pytest.raises(safeguards.SpecError, match="deep"):
        safeguards.compile(f"props: b0\n{chain}\nrule r: ltl G b{N + 5}")


def test_include_chain_of_500_files(tmp_path):
    for i in range(500):
        body = f'include "f{i + 1}.sg"' if i < 499 else "props: a\nrule r: ltl G !a"
        (tmp_path / f"f{i}.sg").write_text(body + "\n")
    assert safeguards.compile(tmp_path / "f0.sg").props == ("a",)
