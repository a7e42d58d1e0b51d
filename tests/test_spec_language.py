"""Parsing LTL (Spot compatibility), regexes and spec files: includes, macros, options, errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from reference import random_formula

import safeguards
from safeguards import SpecError
from safeguards.spec import ast
from safeguards.spec.loader import load_spec, load_spec_text
from safeguards.spec.parser import parse_ltl, parse_regex
from safeguards.spec.printer import regex_to_text, to_spot


@pytest.mark.parametrize("text, expected", [
    ("a -> b -> c", "a -> (b -> c)"),
    ("a | b xor c", "a | (b xor c)"),
    ("a xor b & c", "a xor (b & c)"),
    ("a & b U c", "a & (b U c)"),
    ("a U b U c", "a U (b U c)"),
    ("G a -> b", "(G a) -> b"),
    ("!a U b", "(!a) U b"),
    ("GFa", "G(F(a))"),
    ("X[!]Xa", "X[!](X(a))"),
    ("O a S Y b", "(O a) S (Y b)"),
    ('G !"door 1"', 'G(!"door 1")'),
    ("true & 1 | false | 0", "((true & true) | false) | false"),
])
def test_precedence_and_associativity(text: str, expected: str) -> None:
    assert parse_ltl(text) == parse_ltl(expected)


def test_every_formula_spot_prints_parses_to_the_same_formula() -> None:
    spot = pytest.importorskip("spot")
    checked = 0
    for f in spot.randltl(["a", "b", "c", "door_1"], 600, seed=7, tree_size=(1, 25),
                          output="ltl"):
        text = f.to_str()
        ours = parse_ltl(text)
        assert spot.are_equivalent(spot.formula(to_spot(ours)), f), text
        checked += 1
    assert checked == 600


def test_printing_round_trips_through_our_parser() -> None:
    rng = random.Random(3)
    for _ in range(500):
        f = random_formula(rng, ["a", "b", "Door 1"], rng.randint(0, 12), past=True)
        assert to_spot(parse_ltl(to_spot(f))) == to_spot(f)


def test_regex_printing_round_trips() -> None:
    for text in ["{a ; b | c}[*2..3] ; !d", "a[+] && {b ; c}[*]", "(a | b) ; c[*2..]", "a[*0]"]:
        assert regex_to_text(parse_regex(regex_to_text(parse_regex(text)))) == \
            regex_to_text(parse_regex(text))


def test_spec_file_parts(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "hazards.sg").write_text(
        'props:\n  lava "on lava"\nrule no_lava: ltl G !lava\n')
    main = tmp_path / "main.sg"
    main.write_text('''
        spec world "A world with lava."
        props:
            lava "on lava"
            suit "wearing a suit"
        include "common/hazards.sg"
        let bare = !suit
        rule careful (penalty = 0.5, semantics = infinite): ltl G (lava -> !bare)
        rule: never lava ; lava
    ''')
    spec = load_spec(main)
    assert spec.name == "world" and spec.description == "A world with lava."
    assert spec.props == {"lava": "on lava", "suit": "wearing a suit"}
    assert [r.name for r in spec.rules] == ["no_lava", "careful", "rule3"]
    careful = spec.rules[1]
    assert careful.penalty == 0.5 and careful.semantics == "infinite"
    assert careful.body == parse_ltl("G(lava -> !!suit)")
    sg = safeguards.compile(main)
    assert [r.name for r in sg.rules] == ["no_lava", "careful", "rule3"]


@pytest.mark.parametrize("text, message, hint", [
    ("props: lava\nrule r: ltl G !lav", "unknown proposition `lav`", "did you mean `lava`?"),
    ("props: a\nrule r: ltl G a\nrule r: ltl F a", "rule `r` is defined twice", "first defined"),
    ("props: a a\nrule r: ltl a", "proposition `a` is declared twice", "first declared"),
    ("props: a\nrule r (penalty = high): ltl a", "penalty must be a number", "e.g."),
    ("props: a\nrule r (semantic = finite): ltl a", "unknown rule option `semantic`",
     "did you mean `semantics`?"),
    ("props: a\nrule r (semantics = infnite): ltl a", "semantics is `finite` or `infinite`",
     "did you mean `infinite`?"),
    ("props: a\nrule r: never a[*3..1]", "upper bound below its lower bound", "[*1..3]"),
    ("props: a\nrule r: ltl Y F a", "past operator `Y`", "pure past"),
    ("props: a\nrule r: machine { initial s  s -> s : a }", "state `s` has no edge for {}",
     "else"),
    ("props: a\nrule r: machine { initial s  violation bad  s -> bad : a  s -> s : true }",
     "non-deterministic", "disjoint"),
    ("props: a\n", "this spec has no rules", "rule no_lava"),
    ("props: a\nrule r: ltl x a", "unexpected `a`", "did you mean `X`?"),
])
def test_spec_errors_are_located_and_hinted(text: str, message: str, hint: str) -> None:
    with pytest.raises(SpecError) as info:
        safeguards.compile(text)
    error = info.value
    assert message in error.message
    assert error.hint is not None and hint in error.hint
    assert error.line is not None and str(error).count("\n") >= 2  # message, line, caret


def test_include_cycle_and_missing_include(tmp_path: Path) -> None:
    (tmp_path / "a.sg").write_text('include "b.sg"\nprops: x\nrule r: ltl x\n')
    (tmp_path / "b.sg").write_text('include "a.sg"\n')
    with pytest.raises(SpecError, match=r"include cycle: a\.sg -> b\.sg -> a\.sg"):
        load_spec(tmp_path / "a.sg")
    (tmp_path / "c.sg").write_text('include "nowhere.sg"\nprops: x\nrule r: ltl x\n')
    with pytest.raises(SpecError, match="does not exist") as info:
        load_spec(tmp_path / "c.sg")
    assert info.value.line == 1 and info.value.column == 9


def test_g_implies_note() -> None:
    spec = load_spec_text("props: lava dead\nrule r: ltl G lava -> dead\n")
    assert len(spec.notes) == 1 and "reads as `(G lava) -> dead`" in str(spec.notes[0])
    assert not load_spec_text("props: lava dead\nrule r: ltl (G lava) -> dead\n").notes
    assert not load_spec_text("props: lava dead\nrule r: ltl G(lava -> dead)\n").notes


def test_ast_nodes_compare_without_positions() -> None:
    assert parse_ltl("G  a") == ast.Unary("G", ast.Prop("a"))
