"""Stretches of a core the compressor need not see: zstd raw and RLE blocks.

Compressing random bytes gains nothing and costs two copies through user space (pipe →
buffer → compressor → file) plus the compressor's pass over them. A zstd frame may hold raw
blocks: a 3-byte header, then the bytes as they are (RFC 8878 §3.1.1.2). So once a sample
shows a stretch does not compress, its bytes go from the pipe to the file with splice(2),
one copy inside the kernel, and each block's header is written in front of it afterwards.

A stretch of one repeated byte (zero pages, a constant fill) needs no compressor either: an
RLE block (Block_Type 1) is a 3-byte header and the byte, for up to 128 KiB of it.

These frames carry no content checksum (xxh64 would need the bytes in user space; the
compressed frames around them keep theirs). Every zstd decoder reads them: ``zstd -d``,
libzstd's streaming decoder as coredumpctl uses it, :func:`coredumpd.storage.open_core`.

Where the file is written past the page cache (:mod:`coredumpd.directout`), splice cannot
reach it: :func:`read_blocks` reads the pipe straight into the writer's buffers instead, one
copy as well.

Header building is pure; :func:`splice_blocks` and :func:`read_blocks` are the I/O.
"""

from __future__ import annotations

import os
import select
import time
from typing import NamedTuple

MAGIC = b"\x28\xb5\x2f\xfd"
#: Block_Maximum_Size: no block may be larger, whatever the window
BLOCK_MAX = 128 << 10
#: Window_Descriptor for a 128 KiB window (exponent 7, mantissa 0): windowLog 17 = BLOCK_MAX
_WINDOW_128K = 7 << 3
#: Frame_Header_Descriptor 0: no content size, not single-segment, no checksum, no dictionary
FRAME_HEADER = MAGIC + bytes((0x00, _WINDOW_128K))
#: a splice or read shorter than this found the pipe nearly empty: wait before the next one,
#: so the kernel (which writes a core a page at a time) fills it and blocks stay large. (Only
#: here, for raw stretches: the reader of compressible chunks, ``storage._ReadAhead``, must not
#: wait, a constant core got slower with it.)
SHORT = 32 << 10
SHORT_WAIT = 0.0002


#: Block_Type values (RFC 8878 §3.1.1.2.2)
RAW_BLOCK = 0
RLE_BLOCK = 1


def block_header(size: int, *, last: bool = False, kind: int = RAW_BLOCK) -> bytes:
    """The 3-byte header of a raw (or ``kind``) block of ``size`` bytes."""
    if not 0 <= size <= BLOCK_MAX:
        raise ValueError(f"block of {size} bytes (at most {BLOCK_MAX})")
    return ((size << 3) | (kind << 1) | int(last)).to_bytes(3, "little")


#: ends a raw frame: an empty last block
FRAME_END = block_header(0, last=True)


def raw_blocks(data: bytes | bytearray | memoryview) -> list[bytes | memoryview]:
    """``data`` as raw blocks (headers and views into ``data``), without the frame around."""
    view = memoryview(data)
    out: list[bytes | memoryview] = []
    for start in range(0, len(view), BLOCK_MAX):
        part = view[start:start + BLOCK_MAX]
        out += [block_header(len(part)), part]
    return out


def rle_blocks(byte: int, size: int) -> bytes:
    """``size`` repetitions of ``byte`` as RLE blocks, without the frame around."""
    whole, rest = divmod(size, BLOCK_MAX)
    out = (block_header(BLOCK_MAX, kind=RLE_BLOCK) + bytes((byte,))) * whole
    if rest:
        out += block_header(rest, kind=RLE_BLOCK) + bytes((byte,))
    return out


class RepeatedByte:
    """Tells whether a buffer is one byte repeated, at memcmp speed (~25 µs a MiB: it compares
    against a run of that byte kept from the last time; a memoryview comparison is 60x
    slower, counting the byte 20x)."""

    PROBE = 4096

    def __init__(self) -> None:
        self._run = b""

    def __call__(self, data: bytes | bytearray, n: int) -> int | None:
        """The byte ``data[:n]`` is made of, or None."""
        if n == 0 or data[0] != data[n - 1]:
            return None
        byte = data[0]
        if len(self._run) < n or self._run[0] != byte:
            probe = min(n, self.PROBE)
            if not data.startswith(bytes((byte,)) * probe):
                return None  # not worth a new run
            self._run = bytes((byte,)) * max(n, len(self._run))
        return byte if data.startswith(memoryview(self._run)[:n]) else None


class Spliced(NamedTuple):
    """What :func:`splice_blocks` did: ``moved`` bytes of core, the file position ``end``
    after the last whole block, whether the pipe reached ``eof``, and the ``error`` that
    stopped it (the caller cannot tell which end failed; what was moved is in the file)."""

    moved: int
    end: int
    eof: bool
    error: OSError | None


def splice_blocks(src: int, dst: int, budget: int) -> Spliced:
    """Move up to ``budget`` bytes from the pipe ``src`` to ``dst`` at its file position, as
    raw blocks, and leave the position at the end of the last whole block.

    Each block is spliced after a 3-byte gap that its header fills once its size is known.
    """
    pos = os.lseek(dst, 0, os.SEEK_CUR)
    moved = 0
    try:
        while moved < budget:
            try:
                n = os.splice(src, dst, min(BLOCK_MAX, budget - moved), offset_dst=pos + 3)
            except BlockingIOError:
                select.select([src], [], [])
                continue
            if n == 0:
                return Spliced(moved, pos, True, None)
            os.pwrite(dst, block_header(n), pos)
            pos += 3 + n
            moved += n
            if n < SHORT:
                time.sleep(SHORT_WAIT)
    except OSError as err:
        return Spliced(moved, pos, False, err)
    finally:
        os.lseek(dst, pos, os.SEEK_SET)
    return Spliced(moved, pos, False, None)


class BlockOutput:
    """Where :func:`read_blocks` puts blocks: buffers it reads into in place
    (:meth:`reserve`, then :meth:`commit` what was filled), and :meth:`write` copying through
    them. :class:`coredumpd.directout.DirectWriter` and ``CachedWriter`` are ones."""

    size: int
    #: seconds :func:`read_blocks` waits after a read shorter than :data:`SHORT` (0: never),
    #: so the pipe fills and blocks stay large: right where the output is slower than the
    #: pipe (the disk), wrong where it keeps pace (the kernel would block on a full pipe)
    read_wait: float = SHORT_WAIT

    def reserve(self, most: int) -> memoryview:
        """Room for up to ``most`` bytes in the current buffer (never empty)."""
        raise NotImplementedError

    def commit(self, n: int) -> None:
        """``n`` bytes of the last :meth:`reserve` are the output's next bytes."""
        raise NotImplementedError

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:
            with self.reserve(len(view)) as room:
                n = len(room)
                room[:] = view[:n]
            self.commit(n)
            view = view[n:]


#: a block is read in place only with at least this much room left in the output's buffer;
#: with less, it goes through a bounce buffer (once per buffer at most)
MIN_IN_PLACE = 4096


def read_blocks(src: int, out: BlockOutput, budget: int) -> Spliced:
    """Move up to ``budget`` bytes from the pipe ``src`` into ``out`` as raw blocks, each read
    in place after a 3-byte gap its header fills once its size is known. ``end`` is
    ``out.size`` afterwards. After a read shorter than :data:`SHORT`, waits
    ``out.read_wait`` seconds (asked a buffer at a time: it may change when ``out`` does).

    The reads are many and small (the kernel writes a core a page at a time, and a reader
    that keeps up finds 8-16 KiB at each read), so the loop is kept lean: one
    :meth:`~BlockOutput.reserve` and one :meth:`~BlockOutput.commit` a buffer, not a block."""
    moved = 0
    bounce: bytearray | None = None
    readv = os.readv
    try:
        while moved < budget:
            left = budget - moved
            room = out.reserve(left + 3 * (left // BLOCK_MAX + 1))
            wait = out.read_wait
            size, pos, eof, cramped = len(room), 0, False, False
            try:
                while moved < budget:
                    want = min(BLOCK_MAX, budget - moved, size - pos - 3)
                    if want < min(budget - moved, MIN_IN_PLACE):
                        cramped = True
                        break
                    try:
                        n = readv(src, [room[pos + 3:pos + 3 + want]])
                    except BlockingIOError:
                        select.select([src], [], [])
                        continue
                    if n == 0:
                        eof = True
                        break
                    room[pos:pos + 3] = (n << 3).to_bytes(3, "little")  # raw, not the last
                    pos += 3 + n
                    moved += n
                    if wait and n < SHORT:
                        time.sleep(wait)
            finally:
                room.release()
                if pos:
                    out.commit(pos)
            if eof:
                return Spliced(moved, out.size, True, None)
            if cramped and pos == 0:  # the buffer's last few bytes: one block through a bounce
                bounce = bounce if bounce is not None else bytearray(BLOCK_MAX)
                with memoryview(bounce) as view:
                    n = read_waiting(src, view[:min(BLOCK_MAX, budget - moved)])
                    if n == 0:
                        return Spliced(moved, out.size, True, None)
                    out.write(block_header(n))
                    out.write(view[:n])
                moved += n
    except OSError as err:
        return Spliced(moved, out.size, False, err)
    return Spliced(moved, out.size, False, None)


def read_waiting(src: int, view: bytearray | memoryview) -> int:
    """``readv`` into ``view``; on a non-blocking fd with nothing to read, waits for data
    (0 is EOF, as always)."""
    while True:
        try:
            return os.readv(src, [view])
        except BlockingIOError:
            select.select([src], [], [])
