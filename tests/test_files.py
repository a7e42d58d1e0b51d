"""``write_atomic``: atomic over regular files, never replaces a device, FIFO or symlink."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from safeguards.files import write_atomic


def test_regular_file_is_replaced_whole_and_keeps_its_mode(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    old_inode = target.stat().st_ino
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != old_inode  # a new file renamed into place
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary left


def test_symlink_is_followed_not_replaced(tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "data.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_atomic(link, "through the link")
    assert link.is_symlink()
    assert real.read_text() == "through the link"


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "new.txt")
    write_atomic(link, "x")
    assert link.is_symlink() and (tmp_path / "new.txt").read_text() == "x"


def test_dev_null_stays_a_character_device():
    write_atomic("/dev/null", b"discarded")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader_open = threading.Event()

    def read() -> None:
        with open(fifo, "rb") as handle:
            reader_open.set()
            received.append(handle.read())

    thread = threading.Thread(target=read)
    thread.start()
    # the reader blocks in open() until a writer appears; retry until it is there
    for _ in range(200):
        try:
            write_atomic(fifo, b"hello through a pipe")
            break
        except OSError:
            threading.Event().wait(0.01)
    thread.join(timeout=10)
    assert received == [b"hello through a pipe"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_fifo_without_reader_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="no reader"):
        write_atomic(fifo, b"nobody listens")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_folder_target_is_an_error(tmp_path):
    with pytest.raises(OSError, match="folder"):
        write_atomic(tmp_path, "x")


def test_missing_parent_names_the_target(tmp_path):
    target = tmp_path / "missing" / "out.txt"
    with pytest.raises(OSError) as caught:
        write_atomic(target, "x")
    assert caught.value.filename == os.fspath(target)
