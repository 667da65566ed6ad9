"""Store a core stream: streaming zstd into a temp file in the core directory, then publish
it atomically under systemd-coredump's name.

The bytes go once through a bounded ring of buffers (:data:`READ_AHEAD` × :data:`CHUNK`)
and the compressor; there is never an uncompressed copy, whatever the core's size. A reader
thread empties the stream into the ring while the calling thread compresses and writes (zstd
and write(2) release the GIL), so the kernel is not held up by the compressor. Data that does
not compress (random, encrypted, already compressed) goes through zstd's fastest level
instead (:class:`_ZstdSink`): the file stays a series of ordinary checksummed zstd frames.
The stream is always read to EOF, even when nothing is kept (the kernel must not block on a
full pipe), and ``on_received`` fires on the calling thread as soon as the reader has seen
EOF — before the chunks still queued are compressed and before the slow fsync — so the
pipeline can release the task early.

Limits follow systemd-coredump (``save_external_coredump``): bytes beyond
``min(RLIMIT_CORE, max(ProcessSizeMax, ExternalSizeMax))`` are not kept (truncated); a kept
file bigger than ``ExternalSizeMax`` on disk is not stored at all; ``RLIMIT_CORE`` below a
page disables storage. Publishing: mode 0640 root:root, a read ACL for the crashing user
when safe (:mod:`coredumpd.acl`), ``user.coredump.*`` xattrs, fsync, link without
clobbering, fsync of the directory. zstd frames are written past the page cache
(``O_DIRECT``, :mod:`coredumpd.directout`) where the file system allows it; otherwise, and
for sparse files, the page cache is kept small while the file is written
(:mod:`coredumpd.writeback`), and the fsync has little left to do. A big core the daemon's
spool takes (:mod:`coredumpd.spool`) is copied into the spool's cached pages instead, and
the fsync after the task's release writes it.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import secrets
import stat
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

from coredumpd import acl, rawzstd
from coredumpd.context import CrashContext
from coredumpd.directout import CachedWriter, DirectWriter, open_direct
from coredumpd.errors import StorageError
from coredumpd.spool import Spool, pausing
from coredumpd.vacuum import read_fs_space, resolve_keep_free
from coredumpd.writeback import WriteBehind

log = logging.getLogger(__name__)

#: bytes per buffer read from the stream (and per compressed chunk)
CHUNK = 1 << 20
#: granularity of hole detection when writing uncompressed/sparse files
SPARSE_BLOCK = 4096
#: buffers of :data:`CHUNK` bytes the reader thread may fill ahead of the compressor
READ_AHEAD = 4
#: the kind of a :class:`_ZstdSink` frame that holds raw and RLE blocks (no compressor)
RAW = "raw"
#: zstd level; systemd uses the library default (3)
ZSTD_LEVEL = 3
#: level for data that did not compress: zstd's fast mode, ~2× the speed of level 3 on
#: random bytes (stored as raw blocks either way), still compresses runs and repeats
FAST_LEVEL = -100
#: a chunk that compresses to at least this fraction of its size is incompressible: the
#: following chunks go to :data:`FAST_LEVEL`
INCOMPRESSIBLE = 0.97
#: at :data:`FAST_LEVEL`, a chunk that compresses below this fraction goes back to the level
RECOMPRESSIBLE = 0.9
#: at :data:`FAST_LEVEL`, every PROBE_EVERY-th chunk is tried at the configured level again
PROBE_EVERY = 16
#: chunks smaller than this do not change the level (too few bytes to judge)
MIN_JUDGED = 64 << 10
#: bytes read at the start of each chunk of a piped stream to judge it: when they do not
#: compress (level 1, :data:`INCOMPRESSIBLE`), the rest of the chunk goes in as raw blocks
SAMPLE = 64 << 10
#: bytes spliced after one sample at most: the first incompressible sample lets the chunk
#: through, each following one twice as much, up to this (compressible bytes after random
#: ones cost at most this much space)
RAW_RUN = 16 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
RLIM_INFINITY = (1 << 64) - 1
FILE_MODE = 0o640
#: try O_TMPFILE first; tests turn this off to exercise the ``.#core…`` fallback
USE_O_TMPFILE = True
#: write zstd frames with O_DIRECT where the file system allows (:mod:`coredumpd.directout`);
#: tests turn this off to exercise the page-cache path
USE_O_DIRECT = True
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_ZERO_BLOCK = bytes(SPARSE_BLOCK)


@dataclass(frozen=True)
class StorageLimits:
    """Size limits in bytes (``coredump.conf`` semantics); ``keep_free``/``max_use`` ``None``
    = systemd's percentage-of-filesystem defaults, 0 = no check."""

    process_size_max: int
    external_size_max: int
    compress: bool = True
    keep_free: int | None = None
    max_use: int | None = None
    level: int = ZSTD_LEVEL


@dataclass(frozen=True)
class StoredCore:
    """What became of one core stream.

    :ivar path: the published file, or None when nothing was stored.
    :ivar state: ``present``, ``truncated`` or ``none`` (then ``reason`` says why).
    :ivar received: bytes read from the stream, head included (the whole stream: it is
        always drained).
    :ivar stored_bytes: bytes of core kept in the file (uncompressed).
    :ivar disk_size: bytes the file occupies on disk (``st_blocks * 512``).
    :ivar expected: ``max(p_offset + p_filesz)`` from the head, when known.
    :ivar reason: why the core is truncated or not stored, in a few words.
    :ivar spooled: the file was the daemon's spool (:mod:`coredumpd.spool`).
    """

    path: Path | None
    state: str
    received: int
    stored_bytes: int
    disk_size: int
    expected: int | None
    reason: str | None
    spooled: bool = False


# -- names ----------------------------------------------------------------------------------


def escape_comm(comm: bytes) -> str:
    """systemd's ``xescape(comm, "./ ")``: control bytes, bytes ≥ 127, ``\\`` and ``./ ``
    become ``\\xNN`` (lowercase hex); everything else stays."""
    out = []
    for byte in comm:
        if byte < 0x20 or byte >= 0x7F or byte in b"\\./ ":
            out.append(f"\\x{byte:02x}")
        else:
            out.append(chr(byte))
    return "".join(out)


def _boot_id(context: CrashContext) -> str:
    boot_id = context.boot_id
    if boot_id is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                boot_id = f.read().strip()
        except OSError as err:
            raise StorageError(f"no boot id for the core's name: {err}") from err
    return boot_id.replace("-", "").lower()


def core_filename(context: CrashContext, *, compress: bool) -> str:
    """``core.<comm>.<uid>.<boot_id>.<pid>.<usec>[.zst]``, as systemd-coredump names it."""
    missing = [name for name in ("comm", "uid", "pid", "timestamp") if getattr(context, name) is None]
    if missing:
        raise StorageError(f"cannot name the core: {', '.join(missing)} unknown")
    assert context.comm is not None
    comm = escape_comm(context.comm)[:120]  # stays far below NAME_MAX even for hostile comms
    suffix = ".zst" if compress else ""
    return f"core.{comm}.{context.uid}.{_boot_id(context)}.{context.pid}.{context.timestamp}{suffix}"


def _with_counter(name: str, n: int) -> str:
    """``core.….<usec>~N[.zst]``: a free name when the natural one is taken."""
    base, dot, ext = name.rpartition(".zst") if name.endswith(".zst") else (name, "", "")
    return f"{base}~{n}{dot}{ext}"


# -- the stream -----------------------------------------------------------------------------


class _Source:
    """Reads the rest of the core, from a raw fd or a file object, into the caller's buffers."""

    def __init__(self, rest: int | BinaryIO) -> None:
        self.rest = rest
        #: the fd when the stream is a pipe: its bytes can be spliced (:mod:`coredumpd.rawzstd`)
        self.pipe_fd: int | None = None
        if isinstance(rest, int):
            try:
                mode = os.fstat(rest).st_mode
            except OSError:
                return
            _grow_buffer(rest, mode)
            if stat.S_ISFIFO(mode):
                self.pipe_fd = rest

    def readinto(self, buf: bytearray | memoryview) -> int:
        if isinstance(self.rest, int):
            return rawzstd.read_waiting(self.rest, buf)
        readinto = getattr(self.rest, "readinto", None)
        if readinto is not None:
            n = readinto(buf)
            return n or 0
        data = self.rest.read(len(buf))
        buf[: len(data)] = data
        return len(data)


class _ReadAhead:
    """Empties a :class:`_Source` on its own thread into :data:`READ_AHEAD` reused buffers.

    :meth:`get` hands out ``(buffer, length, offered)`` in stream order, None at the end;
    the consumer gives each buffer back with :meth:`recycle`. ``done`` becomes true once the
    thread has read its last byte (EOF or an error in ``error``) and will never touch the
    stream again: from then on the task may be released, whatever is still queued.
    :meth:`close` (always call it) lets the thread read the rest to EOF without keeping it,
    and waits for it; ``received`` then counts every byte of the stream after the head,
    the discarded and the spliced ones included.

    With ``offer_raw``, each chunk starts with a :data:`SAMPLE`; when the sample does not
    compress, the item comes ``offered``: the stream is the consumer's until its
    :meth:`answer` says how many more bytes of the chunk it spliced away (and whether that
    reached EOF); the thread then goes on with the next chunk.
    """

    def __init__(self, source: _Source, depth: int = READ_AHEAD, *, offer_raw: bool = False) -> None:
        self.source = source
        self.done = False
        self.error: OSError | ValueError | None = None
        self.received = 0
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[bytearray, int, bool] | None] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[tuple[int, bool, bool]] = queue.SimpleQueue()
        self._offer_raw = offer_raw
        self._awaiting = False  # an offered item is out and not answered yet
        self._judge = zstandard.ZstdCompressor(level=1) if offer_raw else None
        self._discard = False
        self._ended = False
        for _ in range(depth):
            self._free.put(bytearray(CHUNK))
        self._thread = threading.Thread(target=self._run, name="core-reader", daemon=True)
        self._thread.start()

    def _read(self, view: memoryview, n: int, stop: int) -> tuple[int, bool]:
        """Fill ``view[n:stop]``; returns (new n, whether the stream ended). An error ends it
        too (in ``error``); what came before the error is kept. A short read is followed by
        the next at once: waiting for the pipe to fill (0.2 ms) made a 1 GiB constant core
        0.55-0.81 s instead of 0.36-0.52 s once its chunks needed no compressor."""
        try:
            while n < stop:
                got = self.source.readinto(view[n:stop])
                if got == 0:
                    return n, True
                n += got
        except (OSError, ValueError) as err:  # ValueError: a closed file object
            self.error = err
            return n, True
        return n, False

    def _incompressible(self, sample: memoryview) -> bool:
        assert self._judge is not None
        return len(self._judge.compress(sample)) >= len(sample) * INCOMPRESSIBLE

    def _run(self) -> None:
        try:
            end = False
            while not end:
                buf = self._free.get()
                view = memoryview(buf)
                n = 0
                if self._offer_raw and not self._discard:
                    n, end = self._read(view, 0, SAMPLE)
                    if n == SAMPLE and not end and self._incompressible(view[:n]):
                        view.release()
                        self.received += n
                        self._full.put((buf, n, True))
                        moved, end, again = self._answers.get()
                        self.received += moved
                        self._offer_raw = again
                        continue
                if not end:
                    n, end = self._read(view, n, len(buf))
                view.release()
                self.received += n
                if n and not self._discard:
                    self._full.put((buf, n, False))
                else:
                    self._free.put(buf)
        finally:
            self.done = True
            self._full.put(None)

    def get(self) -> tuple[bytearray, int, bool] | None:
        if self._ended:
            return None
        item = self._full.get()
        self._ended = item is None
        self._awaiting = item is not None and item[2]
        return item

    def answer(self, moved: int, eof: bool, *, again: bool = True) -> None:
        """For an offered item: ``moved`` more bytes of the stream were spliced away, ``eof``
        if that reached its end; ``again`` False stops the offers."""
        self._awaiting = False
        self._answers.put((moved, eof, again))

    def recycle(self, buf: bytearray) -> None:
        self._free.put(buf)

    def close(self) -> None:
        self._discard = True
        if self._awaiting:
            self.answer(0, False, again=False)
        while (item := self.get()) is not None:
            self.recycle(item[0])
            if item[2]:
                self.answer(0, False, again=False)
        self._thread.join()


def _grow_buffer(fd: int, mode: int) -> None:
    """Let the kernel run :data:`CHUNK` ahead of us: the pipe's size, or a socket's receive
    buffer (the kernel socket door); ``mode`` is the fd's ``st_mode``. Anything else, or a
    refusal: keep what we have.

    The size is a measured sweet spot, not a "more is better": a 1 GiB random crash through
    the daemon (``bench_pipeline.py --reps 3 --rounds 6``, sizes taking turns) was reaped in
    1.41-1.61 s with the kernel's 64 KiB pipe, 0.62-0.71 s at 512 KiB, 0.58-0.93 s at 1 MiB,
    but 2.60-2.78 s at 2 MiB, 1.56-2.77 s at 4 MiB and 2.6-5.0 s at 16 MiB: the kernel takes a
    page for every pipe buffer it fills, and past a few hundred pages in flight they no longer
    come back warm from the per-CPU free lists; a fresh page costs a host fault on these VMs."""
    import socket

    try:
        if stat.S_ISFIFO(mode):
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, CHUNK)
        elif stat.S_ISSOCK(mode):
            with socket.socket(fileno=os.dup(fd)) as sock:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, 33, CHUNK)  # SO_RCVBUFFORCE (root)
                except OSError:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CHUNK)
    except (OSError, AttributeError):
        pass


class _Sink(Protocol):
    size: int

    def write(self, data: bytes | bytearray, n: int) -> None: ...
    def finish(self) -> None: ...


def _write_all(fd: int, data: memoryview | bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _ZstdSink:
    """zstd frames; ``size`` = compressed bytes written.

    Every chunk is compressed at ``level`` until one comes out at least
    :data:`INCOMPRESSIBLE` of its size; the chunks after it go to a frame of
    :data:`FAST_LEVEL` until one compresses below :data:`RECOMPRESSIBLE` there, or a probe
    (every :data:`PROBE_EVERY`-th chunk, at ``level``) compresses again. Stretches the
    reader found incompressible go to raw frames (:meth:`write_raw`, :meth:`splice`,
    :mod:`coredumpd.rawzstd`). Each switch ends one frame and starts the next: concatenated
    frames are one valid ``.zst`` stream (``zstd -d``, libzstd's streaming decoder as
    coredumpctl uses it, :func:`open_core`). Compressed frames carry checksums. A chunk of
    one repeated byte becomes RLE blocks in a raw frame, without a compressor pass.
    """

    def __init__(self, fd: int, level: int, direct: DirectWriter | CachedWriter | None = None) -> None:
        self.fd = fd
        #: writes the file past the page cache (:mod:`coredumpd.directout`); else write(2)
        self.direct = direct
        self.size = 0
        self.frames = 0
        self._compressors = {
            level: zstandard.ZstdCompressor(level=level, write_checksum=True),
            FAST_LEVEL: zstandard.ZstdCompressor(level=FAST_LEVEL, write_checksum=True),
        }
        self.level = level
        self._kind: int | str | None = None  # the open frame: a level, RAW, or none
        self._cobj: zstandard.ZstdCompressionObj | None = None
        self._fast = False
        self._since_probe = 0
        self._repeated = rawzstd.RepeatedByte()

    def write(self, data: bytes | bytearray, n: int) -> None:
        byte = self._repeated(data, n)
        if byte is not None:  # zero pages, a constant fill: no compressor pass
            self._frame(RAW)
            self._out(rawzstd.rle_blocks(byte, n))
            return
        fast = self._fast and self._since_probe < PROBE_EVERY
        self._since_probe = self._since_probe + 1 if fast else 0
        cobj = self._frame(FAST_LEVEL if fast else self.level)
        assert cobj is not None
        out = self._out(cobj.compress(memoryview(data)[:n]))
        out += self._out(cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
        if n >= MIN_JUDGED:
            self._fast = out >= n * RECOMPRESSIBLE if fast else out >= n * INCOMPRESSIBLE

    def write_raw(self, data: bytes | bytearray, n: int) -> None:
        """``data[:n]`` stored as it is, in a raw frame."""
        self._frame(RAW)
        for part in rawzstd.raw_blocks(memoryview(data)[:n]):
            self._out(part)

    def splice(self, pipe: int, budget: int) -> rawzstd.Spliced:
        """Up to ``budget`` bytes moved from ``pipe`` into a raw frame: by splice(2), or read
        straight into the writer's buffers."""
        self._frame(RAW)
        if self.direct is not None:
            spliced = rawzstd.read_blocks(pipe, self.direct, budget)
        else:
            spliced = rawzstd.splice_blocks(pipe, self.fd, budget)
        self.size = spliced.end
        return spliced

    def finish(self) -> None:
        """End the last frame and cut the file to its size (a spool's older bytes may lie
        past it); with a direct writer, write its rest first."""
        self._frame(None)
        if self.direct is not None:
            self.direct.close()
        else:
            os.ftruncate(self.fd, self.size)

    def abort(self) -> None:
        """The file is thrown away: stop the direct writer, if any, without writing."""
        if self.direct is not None:
            self.direct.abort()

    def _frame(self, kind: int | str | None) -> zstandard.ZstdCompressionObj | None:
        """The compressor of a frame of ``kind`` (a level, :data:`RAW`), ending the current
        frame for another."""
        if self._kind is not None and kind != self._kind:
            if self._cobj is not None:
                self._out(self._cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
            else:
                self._out(rawzstd.FRAME_END)
            self._kind = self._cobj = None
        if self._kind is None and kind is not None:
            if kind == RAW:
                self._out(rawzstd.FRAME_HEADER)
            else:
                self._cobj = self._compressors[kind].compressobj()
            self._kind = kind
            self.frames += 1
        return self._cobj

    def _out(self, data: bytes | memoryview) -> int:
        if data:
            if self.direct is not None:
                self.direct.write(data)
            else:
                _write_all(self.fd, data)
            self.size += len(data)
        return len(data)


class _SparseSink:
    """Plain bytes; all-zero blocks become holes. ``size`` = logical file size."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = 0

    def write(self, data: bytes | bytearray, n: int) -> None:
        self.size = write_sparse(self.fd, data, n, self.size)

    def finish(self) -> None:
        os.ftruncate(self.fd, self.size)


def write_sparse(fd: int, data: bytes | bytearray, n: int, offset: int) -> int:
    """Write ``data[:n]`` at ``offset`` (the fd's current position), seeking over all-zero
    :data:`SPARSE_BLOCK` blocks; returns the new offset. The caller ftruncates at the end."""
    view = memoryview(data)
    start = 0  # start of the pending non-zero run
    for pos in range(0, n, SPARSE_BLOCK):
        end = min(pos + SPARSE_BLOCK, n)
        zero = _ZERO_BLOCK if end - pos == SPARSE_BLOCK else _ZERO_BLOCK[: end - pos]
        if data.startswith(zero, pos):  # startswith: a memcmp without a copy
            if start < pos:
                _write_all(fd, view[start:pos])
            os.lseek(fd, end - pos, os.SEEK_CUR)
            start = end
    if start < n:
        _write_all(fd, view[start:n])
    return offset + n


# -- the temp file --------------------------------------------------------------------------


@dataclass
class _Temp:
    dirfd: int
    fd: int
    name: str | None  # None: O_TMPFILE (nothing to clean up but the fd)
    spooled: bool = False  # the spool's file, taken for this core
    cached: int = 0  # bytes of it whose pages are in the page cache

    def discard(self) -> None:
        if self.name is not None:
            try:
                os.unlink(self.name, dir_fd=self.dirfd)
            except FileNotFoundError:
                pass
            self.name = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open_temp(dirfd: int, final_name: str, spool: Spool | None, guess: int | None) -> _Temp:
    """The file a core is written to: the spool when it takes the core, else a new one."""
    if spool is not None:
        taken = spool.take(dirfd, guess)
        if taken is not None:
            return _Temp(dirfd, taken.fd, taken.name, spooled=True, cached=taken.cached)
    flags = os.O_RDWR | os.O_CLOEXEC
    if USE_O_TMPFILE and hasattr(os, "O_TMPFILE"):
        try:
            return _Temp(dirfd, os.open(".", flags | os.O_TMPFILE, 0o600, dir_fd=dirfd), None)
        except OSError as err:
            if err.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    name = f".#{final_name}{secrets.token_hex(8)}"
    return _Temp(dirfd, os.open(name, flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dirfd), name)


def _link(temp: _Temp, name: str) -> str:
    """Give the temp file its final name without replacing anything; returns the name."""
    for n in range(1000):
        candidate = name if n == 0 else _with_counter(name, n)
        try:
            if temp.name is None:
                os.link(f"/proc/self/fd/{temp.fd}", candidate, dst_dir_fd=temp.dirfd,
                        follow_symlinks=True)
            else:
                os.link(temp.name, candidate, src_dir_fd=temp.dirfd, dst_dir_fd=temp.dirfd)
        except FileExistsError:
            continue
        if temp.name is not None:
            os.unlink(temp.name, dir_fd=temp.dirfd)
            temp.name = None
        return candidate
    raise StorageError(f"no free name for {name}")


# -- store ----------------------------------------------------------------------------------


def _write_failure(err: OSError) -> str:
    return "disk full" if err.errno in _DISK_FULL else f"write failed: {err.strerror}"


def _keep_limit(limits: StorageLimits, rlimit: int | None) -> tuple[int, str]:
    """How many bytes may be kept, and the name of the limit that decides it."""
    if limits.process_size_max >= limits.external_size_max:
        limit, what = limits.process_size_max, f"ProcessSizeMax={limits.process_size_max}"
    else:
        limit, what = limits.external_size_max, f"ExternalSizeMax={limits.external_size_max}"
    if rlimit is not None and rlimit != RLIM_INFINITY and rlimit < limit:
        limit, what = rlimit, f"RLIMIT_CORE={rlimit}"
    return limit, what


def _refusal(limits: StorageLimits, rlimit: int | None, directory: Path) -> str | None:
    if rlimit is not None and rlimit < os.sysconf("SC_PAGE_SIZE"):
        return f"RLIMIT_CORE={rlimit} disables core dumping"
    if max(limits.process_size_max, limits.external_size_max) == 0:
        return "ProcessSizeMax=0 and ExternalSizeMax=0 disable core storage"
    if limits.keep_free != 0:
        try:
            space = read_fs_space(directory)
        except OSError as err:
            return f"cannot use {directory}: {err.strerror}"
        keep_free = resolve_keep_free(limits.keep_free, space.size)
        if space.free < keep_free:
            return f"over KeepFree ({space.free} bytes free, KeepFree={keep_free})"
    return None


def _elf_layout(head: bytes) -> tuple[bool, bool]:
    """(64-bit, little-endian) from the core's ELF ident, else this machine's."""
    if head[:4] == b"\x7fELF" and len(head) > 5 and head[4] in (1, 2) and head[5] in (1, 2):
        return head[4] == 2, head[5] == 1
    return struct.calcsize("P") == 8, sys.byteorder == "little"


def _publish(temp: _Temp, context: CrashContext, head: bytes, name: str) -> str:
    fd = temp.fd
    os.fchmod(fd, FILE_MODE)
    if os.geteuid() == 0:
        os.fchown(fd, 0, 0)
    auxv = None
    if context.proc_auxv:
        is_64, little = _elf_layout(head)
        auxv = acl.parse_auxv(context.proc_auxv, is_64=is_64, little_endian=little)
    if acl.may_read_own_core(context.uid, context.dumpable, auxv):
        assert context.uid is not None
        acl.grant_read(fd, FILE_MODE, context.uid)
    for key, value in context.xattrs().items():
        try:
            os.setxattr(fd, key, value, os.XATTR_CREATE)
        except OSError as err:
            log.warning("failed to set xattr %s on %s, ignoring: %s", key, name, err.strerror)
            if err.errno in (errno.EOPNOTSUPP, errno.ENOSPC):
                break
    os.fsync(fd)
    final = _link(temp, name)
    os.fsync(temp.dirfd)
    return final


def store_core(directory: Path, context: CrashContext, head: bytes, rest: int | BinaryIO, *,
               expected: int | None, limits: StorageLimits, rlimit: int | None = None,
               on_received: Callable[[], None] | None = None,
               spool: Spool | None = None, stored_guess: int | None = None) -> StoredCore:
    """Store ``head`` + the rest of the stream as one file in ``directory``.

    ``rest`` (a raw fd or a binary file object) is read to EOF in every case; errors of
    the disk turn into ``state="none"`` with a reason, never into a lost stream.
    ``expected`` is the core's full size from its program headers, for the completeness
    check; ``rlimit`` is the process's soft RLIMIT_CORE (``%c``). A zstd core whose size on
    disk is guessed big (``stored_guess``, :mod:`coredumpd.estimate`) is written into
    ``spool``'s file when one is ready (:mod:`coredumpd.spool`), and a new spool is started
    after it.
    """
    source = _Source(rest)
    received = len(head)
    notified = False

    def eof() -> None:
        nonlocal notified
        if on_received is not None and not notified:
            notified = True
            on_received()

    def drain() -> str | None:
        nonlocal received
        buf = bytearray(CHUNK)
        try:
            while n := source.readinto(buf):
                received += n
        except OSError as err:
            return f"reading the core failed after {received} bytes: {err.strerror}"
        finally:
            eof()
        return None

    def nothing(reason: str) -> StoredCore:
        drain()
        return StoredCore(None, "none", received, 0, 0, expected, reason)

    refusal = _refusal(limits, rlimit, directory)
    if refusal is not None:
        return nothing(refusal)
    try:
        name = core_filename(context, compress=limits.compress)
    except StorageError as err:
        return nothing(str(err))
    try:
        dirfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        return nothing(f"cannot open {directory}: {err.strerror}")
    if not limits.compress:
        spool = None  # a sparse file's holes would show the spool's bytes
    try:
        try:
            temp = _open_temp(dirfd, name, spool, stored_guess)
        except OSError as err:
            return nothing(f"cannot create a file in {directory}: {err.strerror}")
        try:
            with pausing(spool):
                return _store(directory, temp, context, head, source, name, expected, limits,
                              rlimit, eof)
        finally:
            temp.discard()
    finally:
        os.close(dirfd)
        if spool is not None:
            spool.refill()


def _store(directory: Path, temp: _Temp, context: CrashContext, head: bytes, source: _Source,
           name: str, expected: int | None, limits: StorageLimits,
           rlimit: int | None, eof: Callable[[], None]) -> StoredCore:
    # zstd frames go past the page cache where the file system lets them (a sparse file's
    # holes need lseek, so it is written through the page cache), or into the cached pages of
    # a spool, nothing going to the disk before the task is released
    direct = None
    if limits.compress:
        if temp.cached:
            direct = CachedWriter(temp.fd, temp.cached)
        elif USE_O_DIRECT:
            direct = open_direct(temp.fd)
    zstd = _ZstdSink(temp.fd, limits.level, direct) if limits.compress else None
    sink: _Sink = zstd if zstd is not None else _SparseSink(temp.fd)
    # a piped stream into zstd frames: incompressible stretches go in as raw blocks
    pipe = source.pipe_fd if zstd is not None else None
    behind = WriteBehind(temp.fd, enabled=direct is None)
    max_keep, limit_name = _keep_limit(limits, rlimit)
    kept = 0
    dropped: str | None = None  # set when the file is abandoned: nothing will be stored
    read_error: str | None = None

    def drop(reason: str) -> None:
        nonlocal dropped
        dropped = reason
        behind.close()
        if zstd is not None:
            zstd.abort()
        temp.discard()  # give the space back at once

    def oversize() -> str | None:
        if sink.size > limits.external_size_max:
            return (f"core larger than ExternalSizeMax={limits.external_size_max} "
                    f"({sink.size} bytes on disk)")
        return None

    def wrote() -> None:
        behind.advance(sink.size)
        if (reason := oversize()) is not None:
            drop(reason)

    def keep(data: bytes | bytearray, n: int, *, raw: bool = False) -> None:
        nonlocal kept
        if dropped is not None or kept >= max_keep:
            return
        part = min(n, max_keep - kept)
        try:
            if raw:
                assert zstd is not None  # offers come only for zstd frames
                zstd.write_raw(data, part)
            else:
                sink.write(data, part)
        except OSError as err:
            drop(_write_failure(err))
            return
        kept += part
        wrote()

    def splice_rest(budget: int) -> tuple[int, bool]:
        """The rest of an offered chunk, spliced into the file; (bytes moved, EOF)."""
        nonlocal kept
        assert zstd is not None and pipe is not None  # offers come only then
        if dropped is not None or kept >= max_keep:
            return 0, False
        spliced = zstd.splice(pipe, min(budget, max_keep - kept))
        kept += spliced.moved
        if spliced.error is not None:
            drop(_write_failure(spliced.error))
        else:
            wrote()
        return spliced.moved, spliced.eof

    keep(head, len(head))
    reader = _ReadAhead(source, offer_raw=pipe is not None)
    run = CHUNK // 2  # bytes an offer may take: doubles while the samples stay incompressible
    try:
        try:
            while (item := reader.get()) is not None:
                if reader.done:
                    eof()  # the stream is all in: release the task, compress what is queued
                chunk, n, offered = item
                keep(chunk, n, raw=offered)
                reader.recycle(chunk)
                run = min(run * 2, RAW_RUN) if offered else CHUNK
                if offered:
                    moved, at_eof = splice_rest(run - n)
                    reader.answer(moved, at_eof, again=moved > 0 or at_eof)
        finally:
            reader.close()
            eof()
        if dropped is None:
            try:
                sink.finish()  # before the drain: the frame's end goes to the disk with the rest
            except OSError as err:
                drop(_write_failure(err))
    finally:
        behind.close(drain=dropped is None)
        if zstd is not None:
            zstd.abort()  # after finish(), nothing is left to stop; after an error, its thread
    received = len(head) + reader.received  # the reader counts spliced bytes too
    if reader.error is not None:
        why = getattr(reader.error, "strerror", None) or str(reader.error)
        read_error = f"reading the core failed after {received} bytes: {why}"

    if dropped is None:
        dropped = oversize()
    if dropped is not None:
        log.info("The core of pid %s will not be stored: %s.", context.pid, dropped)
        return StoredCore(None, "none", received, 0, 0, expected, dropped)

    reasons = []
    if kept < received:
        reasons.append(f"core larger than {limit_name}")
    if expected is not None and received < expected:
        reasons.append(f"stream ended after {received} of {expected} bytes")
    if read_error is not None:
        reasons.append(read_error)
    state = "truncated" if reasons else "present"
    try:
        final = _publish(temp, context, head, name)
        st = os.fstat(temp.fd)
        if temp.cached:  # written back by the fsync: give the pages to the next spool
            os.posix_fadvise(temp.fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError as err:
        reason = "disk full" if err.errno in _DISK_FULL else f"cannot publish {name}: {err.strerror}"
        log.warning("failed to publish the core of pid %s: %s", context.pid, reason)
        return StoredCore(None, "none", received, 0, 0, expected, reason)
    reason = "; ".join(reasons) or None
    if reason:
        log.info("The core of pid %s is truncated: %s.", context.pid, reason)
    return StoredCore(directory / final, state, received, kept, st.st_blocks * 512, expected,
                      reason, spooled=temp.spooled)


# -- read back ------------------------------------------------------------------------------


def open_core(path: Path) -> BinaryIO:
    """The core's bytes as a stream: decompressed for zstd files (by magic), plain otherwise."""
    f = open(path, "rb")
    try:
        magic = f.read(4)
        f.seek(0)
    except OSError:
        f.close()
        raise
    if magic == ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().stream_reader(  # type: ignore[return-value]
            f, read_size=CHUNK, read_across_frames=True, closefd=True)
    return f


def decompress_to(path: Path, out_path: Path, *, sparse: bool = True) -> int:
    """Write the core in ``path`` to ``out_path`` (mode 0600, replaced if present), with
    holes for all-zero blocks when ``sparse``. Returns its size in bytes."""
    buf = bytearray(CHUNK)
    total = 0
    try:
        with open_core(path) as src:
            fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                while n := src.readinto(buf):
                    if sparse:
                        total = write_sparse(fd, buf, n, total)
                    else:
                        _write_all(fd, memoryview(buf)[:n])
                        total += n
                os.ftruncate(fd, total)
            finally:
                os.close(fd)
    except zstandard.ZstdError as err:
        raise StorageError(f"corrupt compressed core: {err}", path) from err
    return total


