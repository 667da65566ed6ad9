"""A landing zone for big cores: a file written ahead of time whose pages stay in the page
cache, so a crash's bytes are copied into memory the kernel already holds, and reach the disk
(over blocks written before) only after the task is released. ``SpoolSize=`` (1 GiB by
default, at most a quarter of ``MaxUse=``; 0: none).

Why: the task is released when its last byte is read, and on these VMs neither of the other
ways to take a GiB in keeps up with the kernel's pipe. ``O_DIRECT`` writes (the storage path
otherwise) run at the device's speed, 0.47-0.74 s a GiB into new blocks, 0.26-0.39 s over
written ones (the "disk floor" lines of ``bench/bench_pipeline.py``), while the pipe gives a
GiB in 0.36-0.5 s; and page cache taken fresh costs a host fault a page (free page reporting
has handed idle memory back to the host), 0.6-3 s a GiB. Copying into cached pages does not
wait for either: 1 GiB random core through the daemon, ``bench_pipeline.py --reps 3 --rounds 3
--only limit,coredumpd,coredumpd-nospool --programs random`` (the handlers taking turns):
reaped in 0.536 s median with the spool, 0.779 s with ``SpoolSize=0``, the pipe limit 0.426 s.

The daemon keeps one file, :data:`SPOOL` in the core directory, written through the page
cache and fsync'd (its blocks are allocated and written; its pages stay, clean). A core guessed
to be big on disk (:mod:`coredumpd.estimate`: at least a quarter of the spool) is written into
it: :meth:`Spool.take` renames it to a temp name of its own (:data:`TAKEN`), storage checks that
its pages are still cached (:func:`cached`: memory pressure may have taken them; then it writes
over the blocks with ``O_DIRECT``), copies the core in from offset 0 (past the spool's end with
``O_DIRECT``), cuts the file to the core's size, and after the fsync drops its pages. The spool
has become the core. Once the core is published, :meth:`Spool.refill` writes a new one on a
thread, pausing while a core is being received (:meth:`Spool.receiving`), and only where the
spool fits under ``MaxUse=`` (the cores' usage counted, at most a quarter of it) and above
``KeepFree=``; its pages are mostly the ones the last core just gave back.

The price: the spool's size on disk (vacuum gives it up before any core,
:func:`coredumpd.vacuum.vacuum`, and ``coredumpd uninstall`` removes it, :func:`remove`), as much
page cache (memory the kernel reclaims under pressure like any clean file's, not the daemon's
RSS), and one spool of writes after each big core, after its task is released.

Only zstd cores take the spool: a sparse (``Compress=no``) core skips its holes with
``lseek``, and the spool's old bytes would show through them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from coredumpd.vacuum import (
    SPOOL,
    FsSpace,
    read_fs_space,
    resolve_keep_free,
    resolve_max_use,
    usage_of,
)

log = logging.getLogger(__name__)

#: a spool being written; renamed to SPOOL when whole (a killed writer's is removed)
FILLING = ".spool-filling"
#: flock'd by whoever writes a spool: one writer per directory, across daemons and reloads
LOCK = ".spool.lock"
#: a taken spool's name while its core is written (a ``.#core`` temp name, for vacuum)
TAKEN = ".#core-spooled."
#: bytes per write while filling
SEGMENT = 2 << 20
#: what :meth:`Spool.fill` says when there was nothing to do
READY, BUSY = "ready already", "another writer has it"
#: what a spool holds until a core overwrites it: not zeros, which a thin disk may store as
#: a hole again (QEMU's detect-zeroes=unmap)
PATTERN = b"coredumpd spool\n"


class Taken(NamedTuple):
    """A spool taken for a core: its ``fd`` (locked), its temp ``name`` in the core
    directory, and how many of its bytes have their pages in the page cache (its size, or 0
    when memory pressure took them: :func:`cached`)."""

    fd: int
    name: str
    cached: int


def spool_size(wanted: int, max_use: int | None, fs_size: int) -> int:
    """The spool's size: ``wanted``, at most a quarter of ``MaxUse`` (``None``: systemd's
    default, 0: no limit), in whole segments."""
    limit = resolve_max_use(max_use, fs_size)
    size = min(wanted, limit // 4) if limit > 0 else wanted
    return size // SEGMENT * SEGMENT


def room(wanted: int, max_use: int | None, keep_free: int | None, space: FsSpace,
         used: int) -> tuple[int, str | None]:
    """The spool's size on a file system with ``space`` whose cores (and spool) use ``used``
    bytes, and what refuses it, if anything: MaxUse (a quarter of it at most, the cores
    counted) or KeepFree."""
    size = spool_size(wanted, max_use, space.size)
    if size <= 0:
        return 0, "MaxUse= leaves none"
    limit_free = resolve_keep_free(keep_free, space.size)
    if space.free - size < limit_free:
        return size, f"{space.free} bytes free, KeepFree={limit_free}"
    limit_use = resolve_max_use(max_use, space.size)
    if limit_use > 0 and used + size > limit_use:
        return size, f"cores use {used} bytes, MaxUse={limit_use}"
    return size, None


class Spool:
    """The spool of one core directory. Thread-safe; any number of instances (a reloaded
    daemon's old and new pipelines) may share a directory."""

    def __init__(self, directory: Path, wanted: int, *, max_use: int | None = None,
                 keep_free: int | None = None) -> None:
        self.directory = directory
        self.wanted = wanted
        self.max_use = max_use
        self.keep_free = keep_free
        self._cond = threading.Condition()
        self._receiving = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        #: what the last refill did, for logs and tests ("filled N bytes", "no room: …")
        self.last: str | None = None

    # -- taking -----------------------------------------------------------------------------

    def take(self, dirfd: int, guess: int | None) -> Taken | None:
        """The spool, opened for writing and renamed to a temp name of its own in ``dirfd``
        (the core directory), when one is ready and the core's size on disk, as guessed
        (:mod:`coredumpd.estimate`), is a quarter of it or more. Else None (the caller makes
        a file of its own). The fd holds an flock for as long as it is open: a writer killed
        meanwhile leaves a file :meth:`fill` knows to remove."""
        if self.wanted <= 0 or guess is None:
            return None
        try:
            fd = os.open(SPOOL, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=dirfd)
        except FileNotFoundError:
            return None
        try:
            size = os.fstat(fd).st_size
            if guess < size // 4:
                os.close(fd)
                return None
            # locked before the rename: a taken spool is never free
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            name = f"{TAKEN}{secrets.token_hex(8)}"
            os.rename(SPOOL, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
            os.utime(fd)  # vacuum removes temp names by age: this one is new
        except (FileNotFoundError, BlockingIOError):  # another crash took it first
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        log.debug("a core lands in the spool as %s", name)
        return Taken(fd, name, size if cached(fd, size) else 0)

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """While a core streams in, a refill waits (the disk and the CPUs are the core's)."""
        with self._cond:
            self._receiving += 1
        try:
            yield
        finally:
            with self._cond:
                self._receiving -= 1
                self._cond.notify_all()

    # -- filling ----------------------------------------------------------------------------

    def refill(self) -> None:
        """Write a spool on a thread of its own, unless one is there or being written."""
        if self.wanted <= 0:
            return
        if (self.directory / SPOOL).exists():
            return
        with self._cond:
            if self._stopping or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._fill_logged, name="spool-fill",
                                            daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running refill; True when none is left running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def close(self) -> None:
        """Stop a refill between two writes (its partial file is removed) and wait for it."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.wait()

    def _fill_logged(self) -> None:
        start = time.monotonic()
        try:
            self.last = self.fill()
        except OSError as err:
            self.last = f"failed: {err.strerror or err}"
            log.warning("writing the core spool in %s failed: %s", self.directory, self.last)
        else:
            quiet = self.last in (READY, BUSY)
            log.log(logging.DEBUG if quiet else logging.INFO,
                    "core spool in %s: %s (%.2f s)", self.directory, self.last,
                    time.monotonic() - start)

    def fill(self) -> str:
        """Write the spool now (on the caller's thread); says what was done."""
        dirfd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            lock = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600,
                           dir_fd=dirfd)
            try:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return BUSY
                return self._fill_locked(dirfd)
            finally:
                os.close(lock)
        finally:
            os.close(dirfd)

    def _fill_locked(self, dirfd: int) -> str:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(FILLING, dir_fd=dirfd)  # a killed writer's
        _remove_abandoned(dirfd)
        try:
            os.stat(SPOOL, dir_fd=dirfd, follow_symlinks=False)
            return READY
        except FileNotFoundError:
            pass
        size, refusal = room(self.wanted, self.max_use, self.keep_free, read_fs_space(dirfd),
                             usage_of(dirfd))
        if refusal is not None:
            return f"no room: {refusal}"
        fd = os.open(FILLING, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600,
                     dir_fd=dirfd)
        done = False
        try:
            if not self._write(fd, size):
                return "stopped"
            os.fsync(fd)  # written blocks on the disk; the pages stay in the cache, clean
            try:  # never over a spool another writer made meanwhile
                os.link(FILLING, SPOOL, src_dir_fd=dirfd, dst_dir_fd=dirfd)
            except FileExistsError:
                return READY
            done = True
            return f"filled {size} bytes"
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(FILLING, dir_fd=dirfd)
            if done:
                os.fsync(dirfd)

    def _write(self, fd: int, size: int) -> bool:
        """``size`` bytes of :data:`PATTERN` through the page cache, a segment at a time,
        waiting while a core is received; False when stopped (nothing more is written)."""
        block = PATTERN * (SEGMENT // len(PATTERN)) + PATTERN[:SEGMENT % len(PATTERN)]
        for offset in range(0, size, SEGMENT):
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or not self._receiving)
                if self._stopping:
                    return False
            _pwrite_all(fd, block, offset)
        return True


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def cached(fd: int, size: int, samples: int = 16) -> bool:
    """Whether the pages of the file ``fd`` (``size`` bytes) are in the page cache, judged
    from ``samples`` pages spread over it (a read with ``RWF_NOWAIT`` fails rather than go to
    the disk): the spool's pages are kept, but memory pressure may have taken them."""
    if size <= 0 or not hasattr(os, "RWF_NOWAIT"):
        return False
    page = bytearray(1)
    step = max(size // samples, 1)
    for offset in range(0, size, step):
        try:
            if os.preadv(fd, [page], offset, os.RWF_NOWAIT) != 1:
                return False
        except OSError:  # EAGAIN: not cached; EOPNOTSUPP: cannot tell
            return False
    return True


def _remove_abandoned(dirfd: int) -> None:
    """Remove taken spools nobody holds: the cores of a killed daemon, never to be finished."""
    with os.scandir(dirfd) as entries:
        names = [e.name for e in entries if e.name.startswith(TAKEN)]
    for name in names:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=dirfd)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a core is being written into it
        finally:
            os.close(fd)  # (the lock, when taken, goes with it: nobody takes this name again)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dirfd)
        log.info("Removed %s, left by a writer that was killed.", name)


def remove(directory: Path) -> list[str]:
    """Remove the spool of the core directory ``directory``, and one being written (coredumpd
    takes no more crashes there); the names removed. Taken spools are cores being written:
    they stay."""
    removed = []
    for name in (SPOOL, FILLING):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
            removed.append(name)
    return removed


def pausing(spool: Spool | None) -> contextlib.AbstractContextManager[None]:
    """``spool.receiving()``, or nothing when there is no spool."""
    return spool.receiving() if spool is not None else contextlib.nullcontext()

