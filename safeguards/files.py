"""Output files written as the user means them: nothing a user made is lost to a half-written file.

A regular file (or a path with no file yet) is replaced atomically: the data goes to a temporary
file in the same folder, then ``os.replace`` puts it in place, so readers see the old file or the
new one, never a part. A symlink is followed and its target written, never replaced by a file.
A device or FIFO (``/dev/null``, ``/dev/stdout``, a named pipe) is written directly: replacing it
would destroy it.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
>>> write_atomic(target, "hello\\n")
>>> target.read_text()
'hello\\n'
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomic", "open_regular", "read_regular", "file_kind"]


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, for error messages.

    >>> file_kind(os.stat("/dev/null").st_mode)
    'a character device'
    """
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file; a FIFO, device or folder is an
    ``OSError`` saying what it is, raised at once (opening never blocks on a FIFO).

    >>> try:
    ...     open_regular("/dev/zero")
    ... except OSError as error:
    ...     print(error.strerror)
    not a regular file but a character device
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file but {file_kind(mode)}", os.fspath(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them (more is an ``OSError``).

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(delete=False) as handle:
    ...     _ = handle.write(b"0123456789")
    >>> try:
    ...     read_regular(handle.name, limit=4)
    ... except OSError as error:
    ...     print(error.strerror)
    larger than 4 bytes
    """
    with open_regular(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes", os.fspath(path))
    return data


def _new_file_mode(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the umask's."""
    with suppress(OSError):
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_error(exc: OSError, path: Path) -> OSError:
    """The error to show for a failed write: it names the target, not the temporary file."""
    return OSError(exc.errno, f"cannot write the output file ({exc.strerror or exc})",
                   os.fspath(path))


def _write_special(target: Path, shown: Path, payload: bytes) -> None:
    """Write to a device or FIFO in place; ``O_NONBLOCK`` first so a FIFO nobody reads from
    is an error, not a hang."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(exc.errno, "cannot write the output file (a FIFO with no reader)",
                          os.fspath(shown)) from None
        raise _write_error(exc, shown) from None
    try:
        os.set_blocking(fd, True)
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        raise _write_error(exc, shown) from None
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` to ``path``: atomically over a regular file or no file, through a symlink
    to its target, directly into a device or FIFO (see the module docstring)."""
    shown = Path(path)
    target = Path(os.path.realpath(shown))
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        status = os.stat(target)
    except FileNotFoundError:
        status = None
    except OSError as exc:
        raise _write_error(exc, shown) from None
    if status is not None and stat.S_ISDIR(status.st_mode):
        raise OSError(errno.EISDIR, "cannot write the output file (it is a folder)",
                      os.fspath(shown))
    if status is not None and not stat.S_ISREG(status.st_mode):
        _write_special(target, shown, payload)
        return
    mode = _new_file_mode(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _write_error(exc, shown) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and tmp in (exc.filename, exc.filename2):
            raise _write_error(exc, shown) from None
        raise
