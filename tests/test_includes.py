"""Includes: confined to the spec's folder tree (``include_path`` widens it), regular ``.sg``
files only, each file loaded once, bombs linear; spec files that are not files refused."""

from __future__ import annotations

import os
import time

import pytest

import safeguards
from safeguards.cli import main
from safeguards.errors import SpecError
from safeguards.spec.loader import load_spec, load_spec_text

RULE = "props: a\nrule r: ltl G !a\n"


def spec_tree(tmp_path):
    """``project/main.sg`` beside ``project/common/`` and an ``outside/`` folder."""
    (tmp_path / "project" / "common").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "lib.sg").write_text("props: b\nrule rb: ltl G !b\n")
    (tmp_path / "project" / "common" / "base.sg").write_text(RULE)
    return tmp_path / "project"


def main_spec(project, include):
    path = project / "main.sg"
    path.write_text(f'include "{include}"\nprops: a\nrule mine: ltl F a\n')
    return path


def test_include_inside_the_folder_tree(tmp_path):
    spec = load_spec(main_spec(spec_tree(tmp_path), "common/base.sg"))
    assert [rule.name for rule in spec.rules] == ["r", "mine"]


@pytest.mark.parametrize("include", ["../outside/lib.sg", "{root}/outside/lib.sg"])
def test_include_leaving_the_folder_is_refused(tmp_path, include):
    path = main_spec(spec_tree(tmp_path), include.format(root=tmp_path))
    with pytest.raises(SpecError, match="outside the spec's folder") as caught:
        load_spec(path)
    assert caught.value.line == 1 and "--include-path" in caught.value.hint


def test_symlink_out_of_the_folder_is_refused(tmp_path):
    project = spec_tree(tmp_path)
    (project / "link.sg").symlink_to(tmp_path / "outside" / "lib.sg")
    with pytest.raises(SpecError, match="outside the spec's folder"):
        load_spec(main_spec(project, "link.sg"))


def test_include_path_widens_and_is_searched(tmp_path):
    project = spec_tree(tmp_path)
    outside = tmp_path / "outside"
    assert len(load_spec(main_spec(project, "../outside/lib.sg"), include_path=[outside]).rules) == 2
    assert len(load_spec(main_spec(project, "lib.sg"), include_path=[outside]).rules) == 2
    assert safeguards.compile(main_spec(project, "lib.sg"), include_path=[outside]).props == ("b", "a")


def test_cli_include_path(capsys, tmp_path):
    project = spec_tree(tmp_path)
    path = str(main_spec(project, "lib.sg"))
    assert main(["compile", path]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["compile", path, "--include-path", str(tmp_path / "outside")]) == 0


def test_text_specs_include_from_the_current_folder_only(tmp_path, monkeypatch):
    project = spec_tree(tmp_path)
    monkeypatch.chdir(project)
    assert len(load_spec_text('include "common/base.sg"\n').rules) == 1
    with pytest.raises(SpecError, match="outside"):
        load_spec_text('include "../outside/lib.sg"\n')


def test_system_files_are_never_read_or_echoed(capsys, tmp_path):
    project = spec_tree(tmp_path)
    for target in ("/proc/self/environ", "/etc/passwd", "../../../../../../etc/passwd"):
        assert main(["compile", str(main_spec(project, target))]) == 2
        err = capsys.readouterr().err
        assert "outside the spec's folder" in err and "root:" not in err
    secret = "SECRET_TOKEN=hunter2"
    (project / "notes.txt").write_text(secret + "\n")
    assert main(["compile", str(main_spec(project, "notes.txt"))]) == 2
    err = capsys.readouterr().err
    assert "is not a spec file" in err and secret not in err


def test_special_files_are_refused_without_blocking(tmp_path):
    project = spec_tree(tmp_path)
    os.mkfifo(project / "pipe.sg")
    with pytest.raises(SpecError, match="not a regular file but a FIFO"):
        load_spec(main_spec(project, "pipe.sg"))
    with pytest.raises(SpecError, match="is a FIFO, not a spec file"):
        safeguards.compile(project / "pipe.sg")


@pytest.mark.parametrize("argv", [["compile", "/dev/zero"], ["check", "/dev/zero", "-"]])
def test_device_as_spec_exits_2(capsys, argv):
    assert main(argv) == 2
    assert "is a character device, not a spec file" in capsys.readouterr().err


def test_diamond_is_loaded_once(tmp_path):
    (tmp_path / "base.sg").write_text(RULE)
    (tmp_path / "left.sg").write_text('include "base.sg"\nprops: l\n')
    (tmp_path / "right.sg").write_text('include "base.sg"\nprops: r\n')
    top = tmp_path / "top.sg"
    top.write_text('include "left.sg"\ninclude "right.sg"\nrule t: ltl G !l | F r\n')
    spec = load_spec(top)
    assert [rule.name for rule in spec.rules] == ["r", "t"]


def test_include_bomb_is_linear(tmp_path):
    depth = 40  # each file includes the next twice: 2**40 loads if nothing were shared
    for level in range(depth):
        (tmp_path / f"f{level}.sg").write_text(
            f'include "f{level + 1}.sg"\ninclude "f{level + 1}.sg"\nprops: p{level}\n')
    (tmp_path / f"f{depth}.sg").write_text(RULE)
    started = time.perf_counter()
    spec = load_spec(tmp_path / "f0.sg")
    assert len(spec.props) == depth + 1 and time.perf_counter() - started < 10


def test_invalid_utf8_is_located(tmp_path, capsys):
    path = tmp_path / "bad.sg"
    path.write_bytes(b"props: a\nrule r: ltl G !a \xc3\x28\n")
    assert main(["compile", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:18: error: the file is not valid UTF-8 (byte 0xc3)" in err
    (tmp_path / "top.sg").write_text('include "bad.sg"\n')
    with pytest.raises(SpecError, match="not valid UTF-8") as caught:
        load_spec(tmp_path / "top.sg")
    assert caught.value.file == str(path) and caught.value.line == 2


def test_huge_line_is_shown_as_an_excerpt(tmp_path):
    path = tmp_path / "long.sg"
    path.write_text("props: a\nrule r: ltl G !a & " + "x" * 1_000_000 + "\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert len(str(caught.value)) < 5_000
