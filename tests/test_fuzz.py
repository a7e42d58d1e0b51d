"""Fuzz tests (hypothesis, derandomized so every run checks the same inputs).

(a) Random text -- printable characters, arbitrary Unicode, and sequences of the spec language's
    operators and keywords -- given to ``parse_ltl``, ``parse_regex``, ``load_spec_text`` and
    ``safeguards.compile``: they succeed or raise :class:`SpecError`; nothing else escapes.
(b) Mutations of the shipped spec files (characters or tokens deleted, inserted, duplicated,
    swapped) compile or raise :class:`SpecError`.
(c) Every random formula of size <= 12 over the propositions a, b, c compiles (finite semantics)
    within ``BOUND_SECONDS`` = 2 s; under infinite semantics the native backend either compiles it
    within the same bound or raises :class:`BackendUnavailable` (not a safety or guarantee formula).

The whole file runs in well under 40 s.
"""

from __future__ import annotations

import re
import string
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import safeguards
from safeguards.errors import BackendUnavailable, SpecError
from safeguards.spec.loader import load_spec_text
from safeguards.spec.parser import parse_ltl, parse_regex

SPECS = Path(__file__).resolve().parents[1] / "specs"
SPEC_TEXTS = {str(p.relative_to(SPECS)): p.read_text(encoding="utf-8")
              for p in sorted(SPECS.rglob("*.sg"))}

BOUND_SECONDS = 2.0



def fuzz(max_examples: int) -> settings:
    """Deterministic settings: the same examples on every run, no example database."""
    return settings(derandomize=True, max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------
# (a) random text

TOKENS = [
    "G", "F", "X", "X[!]", "U", "R", "W", "M", "S", "V", "Y", "Z", "O", "H", "!", "~", "&", "|",
    "&&", "||", "->", "=>", "<->", "<=>", "xor", "^", "/\\", "\\/", "(", ")", "{", "}", "[", "]",
    "[*", "[*]", "[+]", "[*3]", "[*2..5]", "[*5..2]", "..", ";", ":", ",", "=", '"', '"doc"',
    "true", "false", "1", "0", "a", "b", "lava", "wood", "x", "g", "spec", "props", "props:",
    "rule", "ltl", "never", "match", "machine", "initial", "violation", "accepting", "else",
    "let", "include", '"nope.sg"', "penalty", "semantics", "finite", "infinite", "name", "1.5",
    "-1", "1e999", "nan", "#", "\n", " ", "\t", "q0", "q1", "bad", "->", "é", "\ufeff",
]

token_text = st.lists(st.sampled_from(TOKENS), max_size=30)
random_text = st.one_of(
    st.text(alphabet=string.printable, max_size=60),
    st.text(max_size=30),  # any Unicode (no surrogates)
    token_text.map(" ".join),
    token_text.map("".join),
)


def only_spec_errors(function, text):
    try:
        function(text)
    except SpecError:
        pass
    except BackendUnavailable:
        # a rule declared with infinite semantics that the native backend cannot monitor
        assert "infinite" in text


@fuzz(300)
@given(random_text)
def test_parse_ltl_raises_only_spec_errors(text):
    only_spec_errors(parse_ltl, text)


@fuzz(200)
@given(random_text)
def test_parse_regex_raises_only_spec_errors(text):
    only_spec_errors(parse_regex, text)


@fuzz(200)
@given(random_text)
def test_load_spec_text_raises_only_spec_errors(text):
    only_spec_errors(load_spec_text, text)


def _spec_like(data):
    """A text that starts like a spec file, so the fuzzer gets past the header more often."""
    head = data.draw(st.sampled_from(["", "props: a b lava\n", 'spec t "d"\nprops: a "a" b\n',
                                      "props: a b\nrule r: ", "props: a b\nrule r: ltl ",
                                      "props: a b\nrule r: never ",
                                      "props: a\nrule m: machine { initial q0 "]))
    return head + data.draw(random_text)


@fuzz(300)
@given(st.data())
def test_compile_text_raises_only_spec_errors(data):
    text = _spec_like(data)
    only_spec_errors(safeguards.compile, text)


# --------------------------------------------------------------------------------------------
# (b) mutations of the shipped specs

_TOKEN = re.compile(r"[A-Za-z_0-9.]+|\s+|\"[^\"\n]*\"|->|<->|\[\*|.", re.S)


@st.composite
def mutated_specs(draw):
    name = draw(st.sampled_from(sorted(SPEC_TEXTS)))
    text = SPEC_TEXTS[name]
    for _ in range(draw(st.integers(1, 3))):
        by_token = draw(st.booleans())
        pieces = _TOKEN.findall(text) if by_token else list(text)
        if not pieces:
            break
        i = draw(st.integers(0, len(pieces) - 1))
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "swap", "replace"]))
        if op == "delete":
            del pieces[i]
        elif op == "duplicate":
            pieces.insert(i, pieces[i])
        elif op == "swap":
            j = draw(st.integers(0, len(pieces) - 1))
            pieces[i], pieces[j] = pieces[j], pieces[i]
        else:
            new = draw(st.sampled_from(TOKENS) if by_token
                       else st.sampled_from(string.printable + "é"))
            if op == "insert":
                pieces.insert(i, new)
            else:
                pieces[i] = new
        text = "".join(pieces)
    return name, text


@fuzz(250)
@given(mutated_specs())
def test_mutated_shipped_specs_compile_or_raise_spec_error(case):
    name, text = case
    try:
        sg = safeguards.compile(text)
    except SpecError as error:
        assert str(error)  # the message renders
    except BackendUnavailable:
        assert "infinite" in text
    else:
        assert sg.n_states >= 1


def test_unmutated_shipped_specs_compile():
    for name in SPEC_TEXTS:          # from their files: some include others
        assert safeguards.compile(SPECS / name).n_states >= 2


# --------------------------------------------------------------------------------------------
# (c) every small formula compiles quickly

PROPS = ["a", "b", "c"]
UNARY = ["!", "X", "X[!]", "F", "G", "Y", "Z", "O", "H"]
BINARY = ["&", "|", "->", "<->", "xor", "U", "R", "W", "M", "S"]
PAST = {"Y", "Z", "O", "H", "S"}
BOOLEAN = {"!", "&", "|", "->", "<->", "xor"}


@st.composite
def formulas(draw, size=None, past=False):
    """Formula text of ``size`` nodes (random <= 12); past operators get pure-past arguments."""
    if size is None:
        size = draw(st.integers(1, 12))
    if size == 1:
        return draw(st.sampled_from(PROPS + ["true", "false"]))
    if size == 2 or draw(st.booleans()):
        op = draw(st.sampled_from([u for u in UNARY if not past or u in PAST | BOOLEAN]))
        arg = draw(formulas(size=size - 1, past=past or op in PAST))
        return f"{op}({arg})"
    op = draw(st.sampled_from([b for b in BINARY if not past or b in PAST | BOOLEAN]))
    left_size = draw(st.integers(1, size - 2))
    inner_past = past or op in PAST
    left = draw(formulas(size=left_size, past=inner_past))
    right = draw(formulas(size=size - 1 - left_size, past=inner_past))
    return f"({left}) {op} ({right})"


def test_small_formulas_compile_within_bound():
    """Each formula of size <= 12 over a, b, c compiles in under BOUND_SECONDS = 2 s.

    250 formulas, each under finite and infinite semantics.  The measured maximum (printed with
    ``pytest -s``) is far below the bound: under 0.2 s, once the parser is built.
    """
    times: list[tuple[float, str, str]] = []
    parse_ltl("a")  # build the parser outside the timed region

    @fuzz(250)
    @given(formulas())
    def compiles_quickly(text):
        parse_ltl(text)  # the generator only makes well-formed formulas
        for semantics in ("finite", "infinite"):
            start = time.perf_counter()
            try:
                sg = safeguards.compile_ltl(text, semantics=semantics)
            except BackendUnavailable:
                assert semantics == "infinite"  # neither safety nor guarantee: needs Spot
                continue
            finally:
                times.append((time.perf_counter() - start, semantics, text))
            assert times[-1][0] < BOUND_SECONDS, times[-1]
            assert sg.n_states >= 1 and sg.n_letters >= 1

    compiles_quickly()
    worst = max(times)
    print(f"\nslowest of {len(times)} compilations: {worst[0]:.3f} s ({worst[1]}) {worst[2]}")
    assert worst[0] < BOUND_SECONDS


# --------------------------------------------------------------------------------------------
# regressions found by fuzzing


def test_path_with_nul_byte_is_a_spec_error():
    """``compile`` takes a one-line text ending in ``.sg`` for a path; a NUL byte in it makes
    ``Path.read_text`` raise ValueError, which must surface as a SpecError."""
    with pytest.raises(SpecError):
        safeguards.compile("a\x00.sg")
