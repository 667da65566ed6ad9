"""Keep the core directory within ``MaxUse=`` and ``KeepFree=``, as systemd-coredump does.

systemd's rule (``coredump-vacuum.c``): while the directory's cores use more than MaxUse
(sum of ``st_blocks * 512``) or the filesystem has less than KeepFree free (``f_bfree``),
delete the oldest file (by mtime) of the uid that owns the most cores. Only regular files
named ``core.<comm>.<uid>.…`` count; the file just written is excluded. Unset limits are
percentages of the filesystem: MaxUse 10 % clamped to [1 MiB, 4 GiB], KeepFree 15 % capped
at 4 GiB; explicit values are rounded up to a page; 0 disables a check. Ours on top: the
daemon's spool (:mod:`coredumpd.spool`) counts in the usage too, and is
the first file to go, before any core.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MiB = 1 << 20
GiB = 1 << 30
DEFAULT_MAX_USE_LOWER = 1 * MiB
DEFAULT_MAX_USE_UPPER = 4 * GiB
DEFAULT_KEEP_FREE_UPPER = 4 * GiB
DEFAULT_KEEP_FREE = 1 * MiB
#: a ``.#core…`` temp file older than this is left over from a killed writer
STALE_TEMP_AGE = 3600.0
#: the daemon's spool (:mod:`coredumpd.spool`), in the core directory
SPOOL = ".spool"


def _page_align(n: int) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    return (n + page - 1) // page * page


def resolve_max_use(max_use: int | None, fs_size: int) -> int:
    """MaxUse in bytes: ``None`` means 10 % of ``fs_size`` clamped to [1 MiB, 4 GiB]."""
    if max_use is not None:
        return _page_align(max_use)
    if fs_size <= 0:
        return DEFAULT_MAX_USE_LOWER
    return min(max(_page_align(fs_size // 10), DEFAULT_MAX_USE_LOWER), DEFAULT_MAX_USE_UPPER)


def resolve_keep_free(keep_free: int | None, fs_size: int) -> int:
    """KeepFree in bytes: ``None`` means 15 % of ``fs_size``, at most 4 GiB."""
    if keep_free is not None:
        return _page_align(keep_free)
    if fs_size <= 0:
        return DEFAULT_KEEP_FREE
    return min(_page_align(fs_size * 3 // 20), DEFAULT_KEEP_FREE_UPPER)


@dataclass(frozen=True)
class FsSpace:
    """Size and free bytes of the filesystem holding a directory (``f_blocks``/``f_bfree``)."""

    size: int
    free: int


def read_fs_space(directory: Path | int) -> FsSpace:
    sv = os.statvfs(directory)
    return FsSpace(sv.f_frsize * sv.f_blocks, sv.f_frsize * sv.f_bfree)


def uid_from_file_name(name: str) -> int | None:
    """The uid of a ``core.<comm>.<uid>.…`` name, or None when the name is not ours. ``comm``
    is escaped (no dots), so the uid is the third dot-separated field."""
    if not name.startswith("core."):
        return None
    parts = name.split(".", 3)
    if len(parts) < 4 or not parts[2].isdigit() or not parts[2].isascii():
        return None
    return int(parts[2])


@dataclass
class _Candidate:
    n_files: int
    oldest: str
    oldest_mtime: int


def usage_of(dirfd: int) -> int:
    """Bytes the cores in the directory (and its spool) take on disk."""
    return _scan(dirfd, set())[0]


def _scan(dirfd: int, keep: set[str]) -> tuple[int, _Candidate | None]:
    """One pass over the directory: total usage and the uid-with-most-cores' oldest file."""
    by_uid: dict[int, _Candidate] = {}
    usage = 0
    with os.scandir(dirfd) as entries:
        for entry in entries:
            if entry.name == SPOOL:
                with contextlib.suppress(OSError):
                    usage += entry.stat(follow_symlinks=False).st_blocks * 512
                continue
            uid = uid_from_file_name(entry.name)
            if uid is None or entry.name in keep:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as err:
                log.warning("failed to stat %s, ignoring: %s", entry.name, err)
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            usage += st.st_blocks * 512
            c = by_uid.get(uid)
            if c is None:
                by_uid[uid] = _Candidate(1, entry.name, st.st_mtime_ns)
            else:
                c.n_files += 1
                if (st.st_mtime_ns, entry.name) < (c.oldest_mtime, c.oldest):
                    c.oldest, c.oldest_mtime = entry.name, st.st_mtime_ns
    worst = min(by_uid.values(), key=lambda c: (-c.n_files, c.oldest_mtime, c.oldest), default=None)
    return usage, worst


def vacuum(directory: Path, *, max_use: int | None, keep_free: int | None,
           keep: Iterable[Path] = ()) -> list[Path]:
    """Delete cores in ``directory`` until it is within the limits (``None`` = systemd's
    percentage defaults, 0 = check disabled); files in ``keep`` are neither counted nor
    deleted. Also removes ``.#core…`` temp files older than :data:`STALE_TEMP_AGE`.
    Returns the deleted paths, oldest first."""
    removed: list[Path] = []
    try:
        dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return removed
    try:
        removed += _remove_stale_temp(directory, dirfd)
        if keep_free == 0 and max_use == 0:
            return removed
        keep_names = {Path(p).name for p in keep}
        while True:
            usage, worst = _scan(dirfd, keep_names)
            space = read_fs_space(dirfd)
            limit_use = resolve_max_use(max_use, space.size)
            limit_free = resolve_keep_free(keep_free, space.size)
            if not ((limit_use > 0 and usage > limit_use) or (limit_free > 0 and space.free < limit_free)):
                break
            try:  # written ahead for speed only: it goes before any core
                os.unlink(SPOOL, dir_fd=dirfd)
            except FileNotFoundError:
                pass
            else:
                log.info("Removed the core spool to make room.")
                removed.append(directory / SPOOL)
                continue
            if worst is None:
                break
            try:
                os.unlink(worst.oldest, dir_fd=dirfd)
            except FileNotFoundError:
                continue
            log.info("Removed old coredump %s.", worst.oldest)
            removed.append(directory / worst.oldest)
    finally:
        os.close(dirfd)
    return removed


def _remove_stale_temp(directory: Path, dirfd: int) -> list[Path]:
    removed = []
    now = time.time()
    with os.scandir(dirfd) as entries:
        for entry in entries:
            if not entry.name.startswith(".#core"):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and now - st.st_mtime > STALE_TEMP_AGE:
                    os.unlink(entry.name, dir_fd=dirfd)
                    log.info("Removed stale temporary file %s.", entry.name)
                    removed.append(directory / entry.name)
            except FileNotFoundError:
                continue
    return removed
