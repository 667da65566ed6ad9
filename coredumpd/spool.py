"""A landing zone for big cores: disk blocks written ahead of time, so a crash's bytes
overwrite instead of allocate. Off unless ``SpoolSize=`` is set.

On thin-provisioned virtual disks (qcow2, thin LVM, cloud volumes) the first write of a block
costs more than overwriting it, and a deleted file's blocks are discarded (ext4 ``discard``):
they cost again. Measured on these VMs (ext4 on virtio, 1 GiB in 2 MiB ``O_DIRECT`` writes,
the "disk floor" lines of ``bench/bench_pipeline.py``): 0.47-0.74 s into new blocks at any
queue depth or write size (``fallocate`` first changes nothing: the blocks are reserved, not
written), 0.26-0.39 s over blocks a file already wrote. PostgreSQL recycles its WAL segments
for the same reason.

End to end it did not show: the daemon's receive of a 1 GiB random core takes about 0.6 s
either way here, bound by the pipe, not the disk (``bench_pipeline.py --spool 1G`` against
none, rounds alternating: 0.645 s and 0.741 s median with it, 0.701 s and 0.607 s without,
in two runs). Hence off by default; it is for disks whose first writes are the bottleneck.

The daemon keeps one file of written blocks, :data:`SPOOL` in the core directory. A core
guessed to be big on disk (:mod:`coredumpd.estimate`: at least a quarter of the spool) is
written into it: :meth:`Spool.take` renames it to a temp name of its own (:data:`TAKEN`),
storage writes from offset 0 and cuts the file to the core's size; the spool has become the
core. Once the core is published, :meth:`Spool.refill` writes a new one on a thread, pausing
while a core is being received (:meth:`Spool.receiving`), and only where the spool fits under
``MaxUse=`` (the cores' usage counted, at most a quarter of it) and above ``KeepFree=``. The
price: the spool's size on disk (vacuum gives it up before any core,
:func:`coredumpd.vacuum.vacuum`), and one spool of writes after each big core, after its task
is released.

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

from coredumpd.directout import DirectWriter, open_direct
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

    def take(self, dirfd: int, guess: int | None) -> tuple[int, str] | None:
        """The spool, opened for writing and renamed to a temp name of its own in ``dirfd``
        (the core directory), when one is ready and the core's size on disk, as guessed
        (:mod:`coredumpd.estimate`), is a quarter of it or more: ``(fd, name)``. Else None
        (the caller makes a file of its own). The fd holds an flock for as long as it is
        open: a writer killed meanwhile leaves a file :meth:`fill` knows to remove."""
        if self.wanted <= 0 or guess is None:
            return None
        try:
            fd = os.open(SPOOL, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=dirfd)
        except FileNotFoundError:
            return None
        try:
            if guess < os.fstat(fd).st_size // 4:
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
        return fd, name

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """While a core streams in, a refill waits (the disk is the core's)."""
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
            writer = open_direct(fd)
            if writer is None:
                # no O_DIRECT, no gain: a core through the page cache allocates its pages anyway
                return "no O_DIRECT on this file system"
            if not self._write(writer, size):
                return "stopped"
            os.fsync(fd)
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

    def _write(self, writer: DirectWriter, size: int) -> bool:
        """``size`` bytes of :data:`PATTERN`, a segment at a time, waiting while a core is
        received; False when stopped (nothing more is written)."""
        block = PATTERN * (SEGMENT // len(PATTERN)) + PATTERN[:SEGMENT % len(PATTERN)]
        for _ in range(0, size, SEGMENT):
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or not self._receiving)
                if self._stopping:
                    writer.abort()
                    return False
            writer.write(block)
        writer.close()
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


def pausing(spool: Spool | None) -> contextlib.AbstractContextManager[None]:
    """``spool.receiving()``, or nothing when there is no spool."""
    return spool.receiving() if spool is not None else contextlib.nullcontext()

