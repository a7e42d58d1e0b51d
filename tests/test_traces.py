"""The JSON-lines trace reader and the trace check behind ``safeguards check``."""

from __future__ import annotations

import io

import pytest

import safeguards
from safeguards.errors import TraceError
from safeguards.traces import TraceCheck, open_trace, read_trace

PROPS = ("lava", "wood")


def steps(text: str) -> list[tuple[int, frozenset[str]]]:
    return list(read_trace(io.StringIO(text), PROPS, "t.jsonl"))


def test_lists_objects_blank_lines_and_a_bom() -> None:
    text = '\ufeff["wood"]\n\n{"lava": true, "wood": false}\r\n[]\n'
    assert steps(text) == [(1, frozenset({"wood"})), (3, frozenset({"lava"})), (4, frozenset())]


@pytest.mark.parametrize("line, message, column", [
    ('["wood"', "invalid JSON", 8),
    ('["wood", 3]', "must be a string, not the number 3", 10),
    ('{"wood": 1}', "must be true or false, not the number 1", 10),
    ('{"wood": true, "wood": false}', "given twice", 16),
    ('"wood"', "must be a JSON list or object, not the string", 1),
    ('["wod"]', "unknown proposition `wod`", 2),
    ("[" * 100_000, "invalid JSON", 1),
])
def test_every_malformed_line_is_located(line: str, message: str, column: int) -> None:
    with pytest.raises(TraceError) as info:
        steps('["wood"]\n' + line + "\n")
    error = info.value
    assert message in error.message and error.line == 2 and error.column == column
    assert error.file == "t.jsonl"


def test_non_utf8_bytes_are_a_trace_error(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'["wood"]\n["\xff"]\n')
    with pytest.raises(TraceError, match="not UTF-8") as info:
        with open_trace(str(path)) as (handle, name):
            list(read_trace(handle, PROPS, name))
    assert info.value.line == 2


def test_a_missing_file_is_a_trace_error(tmp_path) -> None:
    with pytest.raises(TraceError, match="does not exist"):
        with open_trace(str(tmp_path / "none.jsonl")):
            pass


def test_the_check_finds_the_first_violation_and_pending_obligations() -> None:
    sg = safeguards.compile_ltl("G !lava & F wood")
    check = TraceCheck(sg)
    for line, labels in steps('[]\n["lava"]\n[]\n'):
        check.step(line, labels)
    end = check.end()
    assert end.failed and end.first_violation == (1, 2) and end.steps == 3
    pending = TraceCheck(sg)
    pending.step(1, frozenset())
    end = pending.end()
    assert end.failed and end.first_violation is None and end.pending_rules == ["formula"]
    done = TraceCheck(sg)
    done.step(1, frozenset({"wood"}))
    assert not done.end().failed


def test_an_unsatisfiable_spec_names_its_rules() -> None:
    check = TraceCheck(safeguards.compile_ltl("a & !a"))
    end = check.end()
    assert end.failed and end.violated_rules == ["formula"] and end.verdict.value == "violated"


def test_a_number_beyond_the_int_string_limit_is_located() -> None:
    with pytest.raises(TraceError, match="a number with too many digits") as caught:
        steps('["wood", ' + "7" * 5000 + "]\n")
    assert (caught.value.line, caught.value.column) == (1, 10)


def test_a_huge_line_is_refused_without_reading_it_whole(tmp_path) -> None:
    from safeguards.traces import MAX_LINE_BYTES

    path = tmp_path / "long.jsonl"
    path.write_text('["wood"]\n["' + "x" * (2 * MAX_LINE_BYTES) + '"]\n["lava"]\n')
    with open_trace(str(path)) as (handle, name):
        lines = read_trace(handle, PROPS, name)
        assert next(lines) == (1, frozenset({"wood"}))
        with pytest.raises(TraceError, match="line 2 is longer than") as caught:
            next(lines)
    assert caught.value.line == 2


def test_a_line_of_exactly_the_limit_is_read(tmp_path) -> None:
    from safeguards.traces import MAX_LINE_BYTES

    line = '["wood"]' + " " * (MAX_LINE_BYTES - 9) + "\n"
    assert len(line) == MAX_LINE_BYTES
    assert steps(line + '["lava"]\n') == [(1, frozenset({"wood"})), (2, frozenset({"lava"}))]


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "folder"])
def test_special_files_are_refused_at_once(tmp_path, special) -> None:
    import os

    path = {"fifo": str(tmp_path / "pipe"), "folder": str(tmp_path)}.get(special, special)
    if special == "fifo":
        os.mkfifo(path)
    with pytest.raises(TraceError, match="not a regular file"):
        with open_trace(path):
            pass
