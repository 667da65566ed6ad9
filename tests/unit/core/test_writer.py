"""Layout and writer on synthetic cores: parse(write(model)) == model, sparse files, pipes."""

from __future__ import annotations

import io
import os

import pytest

from tests.unit.core.test_reader import sample_spec
from unwinder.core import CoreReader, layout_core, read_core_head, write_core
from unwinder.core.constants import PN_XNUM, PT
from unwinder.core.elfstructs import Elf64_Phdr


class PatternMemory:
    """Memory whose byte at address a is a & 0xff, with zero pages at 0x20000..0x30000."""

    def read(self, address: int, size: int) -> bytes:
        return bytes(0 if 0x20000 <= a < 0x30000 else a & 0xFF for a in range(address, address + size))


def load(vaddr: int, memsz: int, filesz: int) -> Elf64_Phdr:
    return Elf64_Phdr(PT.LOAD, 6, 0, vaddr, 0, filesz, memsz, 0)


def test_round_trip_from_a_parsed_core() -> None:
    data = sample_spec().build()
    reader = CoreReader(io.BytesIO(data))
    core = reader.core
    again = layout_core(core.ehdr.e_machine, core.notes, core.phdrs[1:])
    out = io.BytesIO()
    write_core(out, again, reader)
    assert CoreReader(io.BytesIO(out.getvalue())).core == again == core
    assert out.getvalue() == data


def test_written_file_is_sparse_and_pipe_gets_zeros(tmp_path) -> None:
    core0 = CoreReader(io.BytesIO(sample_spec().build())).core
    segments = [load(0x10000, 0x30000, 0x30000), load(0x80000, 0x1000, 0)]
    core = layout_core(62, core0.notes, segments)
    path = tmp_path / "sparse.core"
    with open(path, "wb") as f:
        size = write_core(f, core, PatternMemory())
    assert size == path.stat().st_size == core.expected_size
    assert path.stat().st_blocks * 512 < size - 0x10000 + 0x1000  # the zero pages are holes
    reader = CoreReader(path)
    assert reader.read(0x10000, 4) == bytes([0, 1, 2, 3])
    assert reader.read(0x20000, 16) == bytes(16)
    assert reader.read(0x3FFFF, 1) == b"\xff"
    r, w = os.pipe()
    with os.fdopen(w, "wb") as pipe_out, os.fdopen(r, "rb") as pipe_in:
        import threading
        got = []
        t = threading.Thread(target=lambda: got.append(pipe_in.read()))
        t.start()
        write_core(pipe_out, core, PatternMemory())
        pipe_out.close()
        t.join()
    assert got[0] == path.read_bytes()


def test_extended_numbering_written_and_read_back() -> None:
    notes = CoreReader(io.BytesIO(sample_spec().build())).core.notes
    segments = [load(0x100000 + i * 0x1000, 0x1000, 0x1000 if i % 10000 == 0 else 0)
                for i in range(PN_XNUM + 2)]
    core = layout_core(62, notes, segments)
    assert core.ehdr.e_phnum == PN_XNUM and len(core.phdrs) == PN_XNUM + 3
    out = io.BytesIO()
    write_core(out, core, PatternMemory())
    data = out.getvalue()
    assert CoreReader(io.BytesIO(data)).core == core
    assert read_core_head(io.BytesIO(data)).core == core
    assert CoreReader(io.BytesIO(data)).read(0x100000 + 10000 * 0x1000, 2) == b"\x00\x01"


def test_layout_refuses_inconsistent_segments() -> None:
    with pytest.raises(ValueError):
        layout_core(62, [], [load(0x1000, 0x1000, 0x2000)])
    with pytest.raises(ValueError):
        layout_core(62, [], [Elf64_Phdr(PT.NOTE, 0, 0, 0, 0, 0, 0, 4)])


def test_short_memory_source_is_an_error() -> None:
    class Short:
        def read(self, address: int, size: int) -> bytes:
            return bytes(size - 1)

    core = layout_core(62, [], [load(0x1000, 0x1000, 0x1000)])
    with pytest.raises(ValueError, match="returned"):
        write_core(io.BytesIO(), core, Short())
