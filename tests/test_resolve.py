"""The one spec resolver: every entry point reads "something spec-like" the same way."""

from __future__ import annotations

import os

import pytest

import safeguards
from safeguards import SpecError, load_safeguard, resolve_spec

SPEC_TEXT = 'spec mine "x"\nprops:\n    lava\nrule r: ltl G !lava\n'


def test_kinds() -> None:
    assert resolve_spec("minecraft/safeguard3.sg").kind == "shipped"
    assert resolve_spec("minecraft/safeguard3").kind == "shipped"
    assert resolve_spec("G !lava").kind == "formula"
    assert resolve_spec("lava").kind == "formula"
    assert resolve_spec(SPEC_TEXT).kind == "text"
    assert resolve_spec("props: a rule r: ltl G a").kind == "text"


def test_paths_are_relative_to_base_and_made_absolute(tmp_path) -> None:
    (tmp_path / "mine.sg").write_text(SPEC_TEXT)
    source = resolve_spec("mine.sg", base=tmp_path)
    assert source.kind == "path" and source.value == os.fspath((tmp_path / "mine.sg").resolve())
    assert resolve_spec(tmp_path / "mine.sg").value == source.value
    with pytest.raises(SpecError, match="does not exist"):
        resolve_spec("mine.sg")  # not in the current folder


def test_an_existing_file_wins_over_a_shipped_name(tmp_path) -> None:
    (tmp_path / "minecraft").mkdir()
    (tmp_path / "minecraft" / "safeguard3").write_text(SPEC_TEXT)
    assert resolve_spec("minecraft/safeguard3", base=tmp_path).kind == "path"


def test_a_missing_path_is_an_error_with_a_hint_never_a_formula() -> None:
    with pytest.raises(SpecError) as info:
        resolve_spec("minecraft/safeguard9")
    assert info.value.hint is not None and "did you mean `minecraft/safeguard" in info.value.hint
    with pytest.raises(SpecError, match="does not exist"):
        resolve_spec("lava.sg")
    with pytest.raises(SpecError) as info:
        resolve_spec("lava", formulas=False)
    assert "LTL formula" not in info.value.hint and "minecraft/safeguard0" in info.value.hint


def test_long_text_is_never_taken_for_a_path() -> None:
    formula = " & ".join(f"G !p{i}" for i in range(60))  # > 255 characters, one line
    assert len(formula) > 300
    assert resolve_spec(formula).kind == "formula"
    assert len(safeguards.compile(formula).props) == 60


def test_compile_accepts_every_kind(tmp_path) -> None:
    (tmp_path / "mine.sg").write_text(SPEC_TEXT)
    for source in ("G !lava", SPEC_TEXT, "mine.sg"):
        sg = safeguards.compile(source, base=tmp_path)
        assert sg.props == ("lava",) and not sg.accepts([{"lava"}])
    assert safeguards.compile("minecraft/safeguard3").name == "minecraft_safeguard3"


def test_load_safeguard_caches_and_sees_file_changes(tmp_path) -> None:
    assert load_safeguard("G !lava") is load_safeguard("G !lava")
    sg = safeguards.compile_ltl("G !a")
    assert load_safeguard(sg) is sg
    path = tmp_path / "mine.sg"
    path.write_text(SPEC_TEXT)
    first = load_safeguard(path)
    assert load_safeguard(os.fspath(path)) is first
    path.write_text(SPEC_TEXT.replace("G !lava", "G lava") + "\n")
    changed = load_safeguard(path)
    assert changed is not first and changed.accepts([{"lava"}])


def test_the_wrappers_read_a_shipped_name_as_a_spec() -> None:
    gym = pytest.importorskip("gymnasium")
    from safeguards.gym import make_safeguarded
    from safeguards.labels import InfoLabeler

    env = make_safeguarded(gym.make("CartPole-v1"), "patterns/absence", InfoLabeler(["bad"]))
    assert env.safeguard.name == load_safeguard("patterns/absence").name
