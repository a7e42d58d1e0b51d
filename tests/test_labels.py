"""Labelers: PropositionLabeler, InfoLabeler, FunctionLabeler / @labeler, `|`, coverage checks,
validation of what a labeler returns."""

from __future__ import annotations

import pickle
import re
import warnings
from typing import Any

import numpy as np
import pytest

from safeguards.labels import (
    CombinedLabeler, FunctionLabeler, InfoLabeler, LabelError, Labeler, PropositionLabeler,
    check_coverage, checked_labels, labeler, proposition,
)


# -- labelers shared by the tests (module level: picklable) -----------------------------------
class Cell(PropositionLabeler):
    """A 1-D corridor: cell 0 is lava, cell 4 the goal."""

    @proposition
    def lava(self, obs: Any, info: Any, action: Any) -> bool:
        "the agent stands on lava"
        return obs == 0

    @proposition
    def goal(self, obs: Any, info: Any, action: Any) -> bool:
        """the agent reached the goal"""
        return bool(obs == 4)

    def helper(self, obs: Any, info: Any, action: Any) -> bool:  # not a proposition
        return True


class CellWithWall(Cell):
    @proposition
    def wall(self, obs: Any, info: Any, action: Any) -> bool:
        return action == 0 and obs == 0


class ReturnsWhatObsSays(PropositionLabeler):
    @proposition
    def lava(self, obs: Any, info: Any, action: Any) -> bool:
        return obs  # deliberately not always a bool


@labeler("moved_left")
def moved_left(obs: Any, info: Any, action: Any) -> set[str]:
    return {"moved_left"} if action == 0 else set()


def _pushed(obs: Any, info: Any, action: Any) -> list[str]:
    return ["pushed"] if action == 1 else []


class PlainLabeler:
    """A labeler that only follows the protocol (no base class)."""

    props = frozenset({"bump"})

    def __call__(self, obs: Any, info: Any, action: Any) -> set[str]:
        return {"bump"} if info.get("bumped") else set()


# -- PropositionLabeler ------------------------------------------------------------------------
def test_proposition_methods_declare_the_props_and_their_docs() -> None:
    cell = Cell()
    assert cell.props == frozenset({"lava", "goal"})
    assert cell.docs == {"lava": "the agent stands on lava", "goal": "the agent reached the goal"}
    assert isinstance(cell, Labeler)
    assert CellWithWall().props == frozenset({"lava", "goal", "wall"})


@pytest.mark.parametrize(("obs", "action", "expected"), [
    (0, 1, {"lava"}),
    (4, 1, {"goal"}),
    (2, 0, set()),
    (np.int64(0), 1, {"lava"}),          # numpy comparisons give np.bool_: accepted
    (np.int64(4), None, {"goal"}),       # action None at reset
])
def test_proposition_labeler_table(obs: Any, action: Any, expected: set[str]) -> None:
    assert Cell()(obs, {}, action) == expected


@pytest.mark.parametrize(("obs", "action", "expected"), [
    (0, 0, {"lava", "wall"}),
    (0, 1, {"lava"}),
    (3, 0, set()),
])
def test_inherited_propositions(obs: Any, action: Any, expected: set[str]) -> None:
    assert CellWithWall()(obs, {}, action) == expected


@pytest.mark.parametrize(("value", "type_name"), [
    (1, "int"), (0, "int"), (None, "NoneType"), ("yes", "str"), (np.int64(1), "int64"),
    (np.array([True]), "ndarray"), (1.0, "float"),
])
def test_non_bool_returns_are_label_errors(value: Any, type_name: str) -> None:
    with pytest.raises(LabelError, match=re.escape(f"ReturnsWhatObsSays.lava returned {value!r} "
                                                   f"({type_name}), not a bool")):
        ReturnsWhatObsSays()(value, {}, 0)


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_])
def test_bools_and_numpy_bools_are_accepted(value: Any) -> None:
    assert ReturnsWhatObsSays()(value, {}, 0) == ({"lava"} if value else set())


# -- InfoLabeler -------------------------------------------------------------------------------
@pytest.mark.parametrize(("keys", "info", "expected"), [
    (["lava", "goal"], {"lava": True, "goal": False}, {"lava"}),
    (["lava", "goal"], {"lava": 1, "goal": "yes"}, {"lava", "goal"}),
    (["lava", "goal"], {}, set()),                                    # missing keys are false
    (["lava"], {"lava": 0}, set()),
    (["lava"], {"lava": None}, set()),
    (["lava"], {"lava": np.True_}, {"lava"}),
    ({"goal": "is_success"}, {"is_success": True}, {"goal"}),         # prop -> info key
    ({"goal": "is_success"}, {"goal": True}, set()),
    ({"lava": "cost", "goal": "is_success"}, {"cost": 1.0, "is_success": 0}, {"lava"}),
])
def test_info_labeler_table(keys: Any, info: dict[str, Any], expected: set[str]) -> None:
    lab = InfoLabeler(keys)
    assert lab.props == frozenset(keys)
    assert lab(None, info, None) == expected


# -- FunctionLabeler and @labeler --------------------------------------------------------------
def test_labeler_decorator_makes_a_function_labeler() -> None:
    assert isinstance(moved_left, FunctionLabeler)
    assert moved_left.props == frozenset({"moved_left"})
    assert moved_left.name == "moved_left"
    assert isinstance(moved_left, Labeler)


@pytest.mark.parametrize(("lab", "action", "expected"), [
    (moved_left, 0, {"moved_left"}),
    (moved_left, 1, set()),
    (FunctionLabeler(_pushed, ["pushed"]), 1, {"pushed"}),       # any iterable is accepted
    (FunctionLabeler(_pushed, ["pushed"]), 0, set()),
    (FunctionLabeler(_pushed, ("pushed",), name="pusher"), 1, {"pushed"}),
])
def test_function_labeler_table(lab: FunctionLabeler, action: Any, expected: set[str]) -> None:
    assert lab(None, {}, action) == expected


@pytest.mark.parametrize(("lab", "name"), [
    (FunctionLabeler(_pushed, ["pushed"]), "_pushed"),
    (FunctionLabeler(_pushed, ["pushed"], name="pusher"), "pusher"),
    (FunctionLabeler(lambda o, i, a: [], []), "<lambda>"),
])
def test_function_labeler_names(lab: FunctionLabeler, name: str) -> None:
    assert lab.name == name


def test_function_labeler_rejects_or_reads_a_dict_valuation() -> None:
    lab = FunctionLabeler(lambda o, i, a: {"lava": False, "goal": True}, ["lava", "goal"])
    try:
        labels = lab(None, {}, None)
    except LabelError:
        return
    assert labels == {"goal"}  # got {'lava', 'goal'}


def test_function_labeler_returning_none_is_a_label_error() -> None:
    lab = FunctionLabeler(lambda o, i, a: None, ["lava"], name="forgetful")
    with pytest.raises(LabelError, match="labeler forgetful returned NoneType None"):
        lab(None, {}, None)


def test_function_labeler_returning_a_string_names_the_mistake() -> None:
    lab = FunctionLabeler(lambda o, i, a: "lava", ["lava"], name="stringly")
    with pytest.raises(LabelError, match="returned str 'lava'"):
        lab(None, {}, None)


def test_decorated_labeler_pickles() -> None:
    clone = pickle.loads(pickle.dumps(moved_left))
    assert clone(None, {}, 0) == {"moved_left"}


@pytest.mark.parametrize("lab", [Cell(), InfoLabeler({"goal": "is_success"}),
                                 FunctionLabeler(_pushed, ["pushed"]),
                                 Cell() | InfoLabeler(["door"])])
def test_labelers_pickle(lab: Labeler) -> None:
    clone = pickle.loads(pickle.dumps(lab))
    assert clone.props == lab.props
    for obs, info, action in [(0, {}, 1), (4, {"is_success": 1, "door": 1}, 0)]:
        assert clone(obs, info, action) == lab(obs, info, action)


# -- composition -------------------------------------------------------------------------------
@pytest.mark.parametrize(("obs", "info", "action", "expected"), [
    (0, {}, 0, {"lava", "moved_left"}),
    (4, {"door": True}, 1, {"goal", "door"}),
    (2, {"bumped": True}, 1, {"bump"}),
    (2, {}, 1, set()),
])
def test_composition_is_the_union(obs: Any, info: dict[str, Any], action: Any,
                                  expected: set[str]) -> None:
    combined = Cell() | moved_left | InfoLabeler(["door"]) | PlainLabeler()
    assert isinstance(combined, CombinedLabeler)
    assert len(combined.labelers) == 4                        # nested combinations flatten
    assert combined.props == frozenset({"lava", "goal", "moved_left", "door", "bump"})
    assert combined(obs, info, action) == expected


@pytest.mark.parametrize(("left", "right", "prop", "names"), [
    (Cell(), InfoLabeler(["lava"]), "lava", ("Cell", "InfoLabeler")),
    (moved_left, FunctionLabeler(_pushed, ["moved_left"], name="pusher"), "moved_left",
     ("moved_left", "pusher")),
    (Cell() | moved_left, InfoLabeler({"goal": "is_success"}), "goal", ("Cell", "InfoLabeler")),
    (InfoLabeler(["bump"]), PlainLabeler(), "bump", ("InfoLabeler", "PlainLabeler")),
])
def test_composition_rejects_a_proposition_declared_twice(left: Any, right: Any, prop: str,
                                                          names: tuple[str, str]) -> None:
    with pytest.raises(LabelError, match=re.escape(
            f"proposition `{prop}` is declared by both {names[0]} and {names[1]}")):
        left | right


def test_composition_checks_each_part() -> None:
    liar = FunctionLabeler(lambda o, i, a: {"lavaa"}, ["door"], name="liar")
    with pytest.raises(LabelError, match="labeler liar emitted undeclared proposition `lavaa`"):
        (Cell() | liar)(2, {}, 0)


def test_protocol_labeler_on_the_left_of_or() -> None:
    combined = PlainLabeler() | Cell()
    assert combined.props == frozenset({"bump", "lava", "goal"})


# -- check_coverage ----------------------------------------------------------------------------
@pytest.mark.parametrize(("spec_props", "lab"), [
    (["lava"], Cell()),
    (["lava", "goal"], Cell()),
    ([], InfoLabeler([])),
    (["moved_left", "door"], moved_left | InfoLabeler(["door"])),
])
def test_coverage_ok(spec_props: list[str], lab: Labeler) -> None:
    check_coverage(spec_props, lab)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_coverage(spec_props, lab, missing="warn")


@pytest.mark.parametrize(("spec_props", "lab", "fragments"), [
    (["lva"], Cell(), ["proposition `lva` that labeler Cell never emits", "(it emits goal, lava)",
                       "did you mean `lava`?"]),
    (["lava", "gaol", "zzz"], Cell(),
     ["propositions `gaol`, `zzz` that labeler Cell", "did you mean `goal`?"]),
    (["xyzzy"], Cell(), ["`xyzzy`", "(it emits goal, lava)"]),
    (["lava"], InfoLabeler([]), ["labeler InfoLabeler never emits (it emits nothing)"]),
    (["moved_lft"], moved_left, ["labeler moved_left never emits", "did you mean `moved_left`?"]),
])
def test_coverage_error_and_warn(spec_props: list[str], lab: Labeler,
                                 fragments: list[str]) -> None:
    with pytest.raises(LabelError) as info:
        check_coverage(spec_props, lab)
    for fragment in fragments:
        assert fragment in str(info.value)
    if "xyzzy" in spec_props:
        assert "did you mean" not in str(info.value)
    with pytest.warns(UserWarning) as record:
        check_coverage(spec_props, lab, missing="warn")
    message = str(record[0].message)
    assert all(fragment in message for fragment in fragments)
    assert message.endswith("treating them as always false")


def test_coverage_needs_declared_props() -> None:
    with pytest.raises(LabelError, match="does not declare the propositions it emits"):
        check_coverage(["lava"], lambda o, i, a: set())  # type: ignore[arg-type]


def test_coverage_rejects_a_bad_mode_when_props_are_missing() -> None:
    with pytest.raises(ValueError, match="missing must be 'error' or 'warn', not 'ignore'"):
        check_coverage(["lva"], Cell(), missing="ignore")


def test_coverage_rejects_a_bad_mode_always() -> None:
    with pytest.raises(ValueError, match="missing must be 'error' or 'warn'"):
        check_coverage(["lava"], Cell(), missing="ignore")


# -- checked_labels ----------------------------------------------------------------------------
@pytest.mark.parametrize("labels", [set(), {"lava"}, frozenset({"lava", "goal"}), ["goal"],
                                    ("lava", "goal"), ["lava", "lava"]])
def test_checked_labels_accepts_collections_of_declared_props(labels: Any) -> None:
    assert checked_labels(Cell(), labels, 3) == set(labels)


@pytest.mark.parametrize(("lab", "labels", "step", "message"), [
    (Cell(), "lava", 3, "labeler Cell returned str 'lava' at step 3; expected a set of "
                        "proposition names"),
    (Cell(), None, 0, "labeler Cell returned NoneType None at step 0; expected a set"),
    (Cell(), {"lava": True}, 7, "labeler Cell returned dict {'lava': True} at step 7"),
    (Cell(), b"lava", 1, "labeler Cell returned bytes b'lava' at step 1"),
    (Cell(), (x for x in ["lava"]), 2, "labeler Cell returned generator"),
    (Cell(), [1], 5, "labeler Cell emitted 1 (int) at step 5; propositions are strings"),
    (Cell(), {"lvaa"}, 12, "labeler Cell emitted undeclared proposition `lvaa` at step 12; "
                           "did you mean `lava`?"),
    (moved_left, ["xyzzy"], 4, "labeler moved_left emitted undeclared proposition `xyzzy` at "
                               "step 4"),
    (FunctionLabeler(_pushed, ["pushed"], name="pusher"), {"push"}, 9,
     "labeler pusher emitted undeclared proposition `push` at step 9; did you mean `pushed`?"),
    (PlainLabeler(), {"bumpp"}, 1, "labeler PlainLabeler emitted undeclared proposition `bumpp`"),
    (Cell(), {"lvaa"}, None, "labeler Cell emitted undeclared proposition `lvaa`; did you mean"),
])
def test_checked_labels_errors_name_labeler_prop_and_step(lab: Labeler, labels: Any,
                                                          step: int | None,
                                                          message: str) -> None:
    with pytest.raises(LabelError) as info:
        checked_labels(lab, labels, step)
    assert message in str(info.value)
    if step is None:
        assert "at step" not in str(info.value)


def test_label_error_is_a_value_error() -> None:
    assert issubclass(LabelError, ValueError)
