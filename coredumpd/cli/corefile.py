"""Getting a crash's core back out, for ``dump`` and ``debug``: from a stored file (zstd, xz
or plain) or from the journal entry itself (``Storage=journal``), with holes kept when the
output is a file, and a one-line reason when it cannot be done.
"""

from __future__ import annotations

import errno
import io
import lzma
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from coredumpd.cli.records import Crash
from coredumpd.errors import CoredumpError
from coredumpd.storage import CHUNK, open_core, write_sparse

XZ_MAGIC = b"\xfd7zXZ\x00"
LZ4_MAGIC = b"\x04\x22\x4d\x18"


class CoreUnavailable(CoredumpError):
    """The core of a crash cannot be read back; the message says why."""


def _who(crash: Crash) -> str:
    return f"pid {crash.pid} ({(crash.comm or b'?').decode('utf-8', 'backslashreplace')})"


def refusal(crash: Crash) -> str | None:
    """Why the core of ``crash`` cannot be read back, or None when it can."""
    state = crash.storage
    if state in ("present", "truncated", "journal"):
        return None
    if state == "none":
        why = "; ".join(crash.notes) or "not kept (Storage=none, size limits or disk space)"
        return f"the core of {_who(crash)} was not stored: {why}"
    if state == "missing":
        return f"the core of {_who(crash)} is gone: {crash.filename} no longer exists (vacuumed?)"
    if state == "inaccessible":
        return (f"permission denied reading {crash.filename}: the cores of other users and "
                f"of processes that were not dumpable are readable by root only")
    return f"the core of {_who(crash)} cannot be read ({state})"


def _open_file(path: Path) -> BinaryIO:
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as err:
        if err.errno == errno.EACCES:
            raise CoreUnavailable(f"permission denied reading {path}: the cores of other users "
                                  f"and of processes that were not dumpable are readable by "
                                  f"root only") from err
        raise CoreUnavailable(f"cannot read {path}: {err.strerror}") from err
    if magic.startswith(XZ_MAGIC):
        return lzma.open(path, "rb")  # type: ignore[return-value]
    if magic.startswith(LZ4_MAGIC):
        raise CoreUnavailable(f"{path}: lz4-compressed cores are not supported; "
                              f"use coredumpctl dump")
    return open_core(path)


def open_crash_core(crash: Crash, *, journal_directory: Path | None = None) -> BinaryIO:
    """The core's bytes as a stream. :raises CoreUnavailable: with the reason."""
    reason = refusal(crash)
    if reason is not None:
        raise CoreUnavailable(reason)
    if crash.storage == "journal":
        from coredumpd.journal_reader import JournalReadError, read_journal_core

        try:
            data = read_journal_core(crash.cursor or "", directory=journal_directory)
        except JournalReadError as err:
            raise CoreUnavailable(str(err)) from err
        if data is None:
            raise CoreUnavailable(f"the journal entry of {_who(crash)} no longer holds its core")
        return io.BytesIO(data)
    assert crash.filename is not None
    return _open_file(Path(crash.filename))


def core_size_hint(crash: Crash) -> int | None:
    """The uncompressed size, when recorded (for the progress bar)."""
    if crash.row is not None:
        return crash.row.stored_bytes or crash.row.received
    return None


def copy_core(src: BinaryIO, fd: int, *, sparse: bool,
              advance: Callable[[int], None] = lambda n: None) -> int:
    """Copy the stream to ``fd`` (at its current position); all-zero blocks become holes
    when ``sparse`` (``fd`` must then be a regular file, truncated to the size at the end).
    Returns the bytes copied."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    try:
        while n := src.readinto(buf):
            if sparse:
                total = write_sparse(fd, buf, n, total)
            else:
                done = 0
                while done < n:
                    done += os.write(fd, view[done:n])
                total += n
            advance(n)
    except (lzma.LZMAError, EOFError) as err:
        raise CoreUnavailable(f"corrupt compressed core: {err}") from err
    except Exception as err:
        import zstandard

        if isinstance(err, zstandard.ZstdError):
            raise CoreUnavailable(f"corrupt compressed core: {err}") from err
        raise
    if sparse:
        os.ftruncate(fd, total)
    return total
