"""Writing a file past the page cache: ``O_DIRECT`` from aligned buffers, on a thread of its own.

A stored core is written once and seldom read. Through the page cache, every page of it is
a page taken fresh (on these VMs each one costs a host fault: free page reporting has handed
idle memory back to the host), then written back and dropped (:mod:`coredumpd.writeback`).
With ``O_DIRECT`` the bytes go from our buffers to the device, the page cache is not
touched, and a core is on the disk by the time its last byte is written (the fsync only
settles metadata). Measured with ``bench/bench_pipeline.py`` on a 1 GiB random crash: the
daemon's receive step took 587-932 ms (9 trials), against 1111-1479 ms splicing into the
page cache with write-behind minutes before; the device itself takes 0.5-0.8 s a GiB of
``O_DIRECT`` writes here at any queue depth or write size, the floor of storing them.

The caller fills :data:`BUFFERS` buffers of :data:`SEGMENT` bytes (:meth:`DirectWriter.write`,
or :meth:`~DirectWriter.reserve` and :meth:`~DirectWriter.commit` to read straight into
one); each full buffer goes to the writer thread, which writes it at its aligned offset while
the caller fills the next. :meth:`~DirectWriter.close` writes the last one padded to the
alignment and cuts the file to its size. A write error (a full disk) stops the thread and is
raised by the caller's next call. Where the file system refuses ``O_DIRECT``,
:func:`open_direct` says so and the caller writes through the page cache; where it takes the
flag but refuses a write (EINVAL: it wants a larger alignment), the writer clears the flag
and goes on through the page cache.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import queue
import stat
import threading

from coredumpd.rawzstd import BlockOutput

log = logging.getLogger(__name__)

#: bytes per buffer, and per write(2) to the device
SEGMENT = 2 << 20
#: buffers in flight: one filled by the caller, the others queued or being written
BUFFERS = 3
#: offsets and sizes of direct writes are multiples of this (a page: every block device's
#: logical block size divides it)
ALIGN = 4096


def open_direct(fd: int, start: int = 0) -> DirectWriter | None:
    """A writer for ``fd`` (a regular file, empty from ``start`` on, a multiple of
    :data:`ALIGN`) with ``O_DIRECT`` set on it; ``None`` when the file system refuses it, or
    ``fd`` is no regular file (on a pipe the flag means packet mode): the fd is left as it
    was."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return None
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
    except OSError as err:
        if err.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return None
        raise
    return DirectWriter(fd, flags, start)


class DirectWriter(BlockOutput):
    """Appends to a file opened for ``O_DIRECT`` (:func:`open_direct`) from offset ``start``;
    ``size`` is the file's size so far (its final size)."""

    def __init__(self, fd: int, flags: int, start: int = 0) -> None:
        if start % ALIGN:
            raise ValueError(f"direct writes start at a multiple of {ALIGN}, not {start}")
        self.fd = fd
        self.size = start
        #: still writing with O_DIRECT (a refused write turns it off: :meth:`_write_at`)
        self.direct = True
        self._flags = flags  # without O_DIRECT, restored by close()
        self._free: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[mmap.mmap, int, int] | None] = queue.SimpleQueue()
        for _ in range(BUFFERS):
            self._free.put(mmap.mmap(-1, SEGMENT))
        self._buf: mmap.mmap | None = self._free.get()
        self._fill = 0  # bytes in _buf
        self._offset = start  # file offset of _buf's first byte
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="direct-writer", daemon=True)
        self._thread.start()

    def reserve(self, most: int) -> memoryview:
        """Room for up to ``most`` bytes in the current buffer (never empty); fill it, release
        the view, then :meth:`commit` what was filled."""
        self._raise()
        assert self._buf is not None, "closed"
        if self._fill == SEGMENT:
            self._hand_over()
        return memoryview(self._buf)[self._fill:self._fill + min(most, SEGMENT - self._fill)]

    def commit(self, n: int) -> None:
        """``n`` bytes of the last :meth:`reserve` are the file's next bytes."""
        self._fill += n
        self.size += n
        if self._fill == SEGMENT:
            self._hand_over()

    def close(self) -> None:
        """Write the rest, wait for the thread, cut the file to :attr:`size` and clear
        ``O_DIRECT``. Raises the first write error."""
        if self._buf is None:
            self._raise()
            return
        buf, fill = self._buf, self._fill
        self._buf = None
        if fill:
            padded = -(-fill // ALIGN) * ALIGN
            buf[fill:padded] = bytes(padded - fill)
            self._full.put((buf, padded, self._offset))
        self._stop()
        self._raise()
        os.ftruncate(self.fd, self.size)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, self._flags)

    def abort(self) -> None:
        """Stop without writing what is left (the file is being thrown away)."""
        self._buf = None
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._full.put(None)
            self._thread.join()

    def _hand_over(self) -> None:
        assert self._buf is not None
        self._full.put((self._buf, SEGMENT, self._offset))
        self._offset += SEGMENT
        self._fill = 0
        self._buf = self._free.get()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            buf, n, offset = item
            if self._error is None:
                try:
                    with memoryview(buf) as view:
                        self._write_at(view, n, offset)
                except OSError as err:
                    self._error = err
            self._free.put(buf)

    def _write_at(self, view: memoryview, n: int, offset: int) -> None:
        done = 0
        while done < n:
            try:
                done += os.pwrite(self.fd, view[done:n], offset + done)
            except OSError as err:
                # the file system took the flag but refuses the write (an alignment it wants
                # larger than ALIGN): the core goes on through the page cache, not lost
                if err.errno != errno.EINVAL or not self.direct:
                    raise
                fcntl.fcntl(self.fd, fcntl.F_SETFL, self._flags)
                self.direct = False
                log.warning("O_DIRECT write refused (%s): writing through the page cache",
                            err.strerror)


class CachedWriter(BlockOutput):
    """Appends to a file whose first ``cached`` bytes have their pages in the page cache
    already (the spool, :mod:`coredumpd.spool`), through one buffer of :data:`SEGMENT` bytes
    on the caller's thread: each write is one copy into cached pages, and nothing goes to the
    disk before the fsync. Past ``cached`` it goes on with a :class:`DirectWriter` (where the
    file system refuses ``O_DIRECT``, through the page cache). The same calls as
    :class:`DirectWriter`.

    No writer thread, and no wait after short reads (:attr:`read_wait`): with the kernel
    writing the core on one CPU and the reader on the other, a third busy thread only takes
    turns with them, and a wait lets the pipe fill and the kernel block. A helper doing only
    this, 1 GiB random core, trials interleaved: 0.51 s median reading and copying on one
    thread, 0.62 s handing 2 MiB buffers to a writer thread (8 trials each); 0.494 s without
    the wait, 0.754 s with the 0.2 ms one, cat > /dev/null 0.447 s (10 trials each).
    """

    def __init__(self, fd: int, cached: int) -> None:
        self.fd = fd
        self._cached = cached
        self._written = 0  # bytes of the file written by the buffer
        self._buf: bytearray | None = bytearray(SEGMENT)
        self._fill = 0
        #: past the cached pages (from the first segment's end at or after ``cached``)
        self._past = open_direct(fd) if cached <= 0 else None

    @property
    def size(self) -> int:
        return self._past.size if self._past is not None else self._written + self._fill

    @property
    def read_wait(self) -> float:  # type: ignore[override]
        return self._past.read_wait if self._past is not None else 0.0

    def reserve(self, most: int) -> memoryview:
        if self._past is not None:
            return self._past.reserve(most)
        assert self._buf is not None, "closed"
        return memoryview(self._buf)[self._fill:self._fill + min(most, SEGMENT - self._fill)]

    def commit(self, n: int) -> None:
        if self._past is not None:
            self._past.commit(n)
            return
        self._fill += n
        if self._fill == SEGMENT:
            self._flush()
            if self._written >= self._cached:
                self._past = open_direct(self.fd, self._written)

    def close(self) -> None:
        """Write the rest and cut the file to :attr:`size`."""
        if self._past is not None:
            self._past.close()
        elif self._buf is not None:
            self._flush()
            os.ftruncate(self.fd, self._written)
        self._buf = None

    def abort(self) -> None:
        if self._past is not None:
            self._past.abort()
        self._buf = None

    def _flush(self) -> None:
        assert self._buf is not None
        with memoryview(self._buf) as view:
            done = 0
            while done < self._fill:
                done += os.pwrite(self.fd, view[done:self._fill], self._written + done)
        self._written += self._fill
        self._fill = 0
