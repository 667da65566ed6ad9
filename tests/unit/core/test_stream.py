"""The stream reader: exactly the head, nothing more; truncation and limits."""

from __future__ import annotations

import io
import os
import threading

import pytest

from tests.support import elfbuild
from tests.support.elfbuild import CoreSpec, Segment
from tests.unit.core.test_reader import sample_spec
from unwinder.core import CoreReader, read_core_head
from unwinder.core.constants import PN_XNUM
from unwinder.errors import CorruptCore


class CountingStream(io.RawIOBase):
    """A stream that hands out at most ``chunk`` bytes per read and counts them."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self.data, self.pos, self.chunk = data, 0, chunk

    def read(self, size: int = -1) -> bytes:
        n = min(size, self.chunk)
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def test_reads_exactly_the_head_in_small_chunks() -> None:
    data = sample_spec().build()
    stream = CountingStream(data)
    head = read_core_head(stream)
    assert stream.pos == len(head.head) == head.core.head_size
    assert head.head == data[:len(head.head)]
    assert head.core == CoreReader(io.BytesIO(data)).core
    assert head.truncated_at == len(head.head)  # memory still to come


def test_reads_from_a_raw_fd() -> None:
    data = sample_spec().build()
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, data), os.close(w)))
    writer.start()
    try:
        head = read_core_head(r)
        rest = b""
        while chunk := os.read(r, 65536):
            rest += chunk
    finally:
        writer.join()
        os.close(r)
    assert head.head + rest == data


def test_extended_numbering_count_comes_from_the_note_offset() -> None:
    spec = CoreSpec(notes=[elfbuild.note(b"CORE", 1, elfbuild.prstatus_x86_64(7))],
                    segments=[Segment(0x10000 + i * 0x1000, 0x1000) for i in range(PN_XNUM)])
    head = read_core_head(io.BytesIO(spec.build()))
    assert len(head.core.phdrs) == PN_XNUM + 1
    assert head.core.threads[0].tid == 7


def test_stream_ending_inside_the_head() -> None:
    data = sample_spec().build()
    for cut in (0, 10, 64, 100, len(read_core_head(io.BytesIO(data)).head) - 1):
        with pytest.raises(CorruptCore, match="stream ended"):
            read_core_head(io.BytesIO(data[:cut]))


def test_head_larger_than_the_limit_is_refused() -> None:
    data = sample_spec().build()
    with pytest.raises(CorruptCore, match="limit"):
        read_core_head(io.BytesIO(data), max_head=512)
