"""Raw zstd frames: headers built by hand decode with libzstd; a pipe spliced into a file as
raw blocks decodes to exactly the bytes written into the pipe."""

from __future__ import annotations

import errno
import os
import random
import threading
from pathlib import Path

import pytest
import zstandard

from coredumpd import rawzstd
from coredumpd.rawzstd import (
    BLOCK_MAX,
    FRAME_END,
    FRAME_HEADER,
    RepeatedByte,
    block_header,
    raw_blocks,
    rle_blocks,
)


def decode(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def test_block_header_layout() -> None:
    assert block_header(0, last=True) == b"\x01\x00\x00"
    assert block_header(1) == b"\x08\x00\x00"
    assert block_header(BLOCK_MAX) == (BLOCK_MAX << 3).to_bytes(3, "little")
    with pytest.raises(ValueError):
        block_header(BLOCK_MAX + 1)


@pytest.mark.parametrize("size", [0, 1, 4095, BLOCK_MAX, BLOCK_MAX + 1, 3 * BLOCK_MAX + 17])
def test_hand_made_frame_decodes(size: int) -> None:
    data = random.Random(size).randbytes(size)
    frame = FRAME_HEADER + b"".join(bytes(p) for p in raw_blocks(data)) + FRAME_END
    assert decode(frame) == data
    assert len(frame) == len(data) + 6 + 3 * -(-size // BLOCK_MAX) + 3


def test_frames_concatenate_with_compressed_ones() -> None:
    raw = os.urandom(200_000)
    text = b"abc" * 50_000
    compressed = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(text)
    frame = FRAME_HEADER + b"".join(bytes(p) for p in raw_blocks(raw)) + FRAME_END
    blob = compressed + frame + compressed
    reader = zstandard.ZstdDecompressor().stream_reader(blob, read_across_frames=True)
    assert reader.read() == text + raw + text


@pytest.mark.parametrize("size", [1, 4095, BLOCK_MAX, BLOCK_MAX + 1, 8 * BLOCK_MAX + 17])
@pytest.mark.parametrize("byte", [0, 0x5A, 0xFF])
def test_rle_blocks_decode(size: int, byte: int) -> None:
    blocks = rle_blocks(byte, size)
    assert len(blocks) == 4 * -(-size // BLOCK_MAX)  # a header and one byte a block
    frame = FRAME_HEADER + blocks + b"".join(bytes(p) for p in raw_blocks(b"tail")) + FRAME_END
    assert decode(frame) == bytes((byte,)) * size + b"tail"


def test_repeated_byte_tells_runs_from_everything_else() -> None:
    repeated = RepeatedByte()
    run = bytearray(b"\x5a") * (1 << 20)
    assert repeated(run, len(run)) == 0x5A
    assert repeated(run, 10) == 0x5A  # a prefix: n, not the buffer's length, counts
    assert repeated(bytearray(1 << 20), 1 << 20) == 0  # another byte: a new run
    assert repeated(run, 0) is None
    for where in (0, 1, 4095, 4096, 500_000, len(run) - 2, len(run) - 1):
        spoiled = bytearray(run)
        spoiled[where] ^= 1
        assert repeated(spoiled, len(spoiled)) is None, where
        assert repeated(spoiled, where) == (0x5A if where else None)  # before the spoiled byte
    assert repeated(bytearray(b"a") * 5000 + bytearray(b"a"), 5001) == ord("a")
    assert repeated(bytearray(b"\x5a") * (3 << 20), 3 << 20) == 0x5A  # longer than the run kept


def feed(data: bytes) -> tuple[int, threading.Thread]:
    r, w = os.pipe()

    def run() -> None:
        with open(w, "wb", buffering=0) as f:
            for i in range(0, len(data), 4096):  # a page at a time, as the kernel writes
                f.write(data[i:i + 4096])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return r, thread


def rest_of(r: int, thread: threading.Thread) -> bytes:
    """What is left in the pipe ``r`` that ``thread`` feeds; closes it."""
    rest = b""
    while chunk := os.read(r, 1 << 20):
        rest += chunk
    thread.join()
    os.close(r)
    return rest


@pytest.mark.parametrize("budget", [1, 5000, BLOCK_MAX, 3 << 20])
def test_splice_blocks_moves_budget_then_stops(tmp_path: Path, budget: int) -> None:
    data = os.urandom(1 << 20)
    r, thread = feed(data)
    with open(tmp_path / "out", "w+b", buffering=0) as out:
        out.write(FRAME_HEADER)
        spliced = rawzstd.splice_blocks(r, out.fileno(), budget)
        assert spliced.error is None
        assert spliced.moved == min(budget, len(data)) and spliced.eof == (budget > len(data))
        assert out.tell() == spliced.end
        out.write(FRAME_END)
        out.seek(0)
        assert decode(out.read()) == data[:spliced.moved]
    assert rest_of(r, thread) == data[spliced.moved:]  # nothing beyond the budget was taken


def test_a_refused_write_is_reported_not_raised(tmp_path: Path) -> None:
    data = b"x" * 10000
    r, thread = feed(data)
    path = tmp_path / "ro"
    path.write_bytes(b"head")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, 4, os.SEEK_SET)
        spliced = rawzstd.splice_blocks(r, fd, len(data))
        assert spliced.moved == 0 and spliced.end == 4 and not spliced.eof
        assert spliced.error is not None and spliced.error.errno == errno.EBADF
        assert os.lseek(fd, 0, os.SEEK_CUR) == 4
    finally:
        os.close(fd)
    left = b""
    while chunk := os.read(r, 65536):
        left += chunk
    thread.join()
    os.close(r)
    assert left == data  # the pipe still holds all of it


class SmallBuffers(rawzstd.BlockOutput):
    """A :class:`rawzstd.BlockOutput` whose buffers are ``segment`` bytes: blocks land across
    their ends and through the bounce buffer."""

    read_wait = 0.0

    def __init__(self, segment: int) -> None:
        self.segment = segment
        self.done = bytearray()
        self.buf = bytearray(segment)
        self.fill = 0
        self.size = 0

    def reserve(self, most: int) -> memoryview:
        if self.fill == self.segment:
            self.done += self.buf
            self.fill = 0
        return memoryview(self.buf)[self.fill:self.fill + min(most, self.segment - self.fill)]

    def commit(self, n: int) -> None:
        self.fill += n
        self.size += n

    def bytes(self) -> bytes:
        return bytes(self.done + self.buf[:self.fill])


@pytest.mark.parametrize("segment", [3 + 4096 + 100, 70_000, 2 << 20])
@pytest.mark.parametrize("budget", [1, 5000, BLOCK_MAX + 1, 3 << 20])
def test_read_blocks_moves_budget_into_buffers_of_any_size(segment: int, budget: int) -> None:
    data = os.urandom(1 << 20)
    r, thread = feed(data)
    out = SmallBuffers(segment)
    spliced = rawzstd.read_blocks(r, out, budget)
    assert spliced.error is None and spliced.end == out.size == len(out.bytes())
    assert spliced.moved == min(budget, len(data)) and spliced.eof == (budget > len(data))
    assert decode(FRAME_HEADER + out.bytes() + FRAME_END) == data[:spliced.moved]
    assert rest_of(r, thread) == data[spliced.moved:]  # nothing beyond the budget was taken
