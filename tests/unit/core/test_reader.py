"""The random-access reader on hand-built cores: model, memory semantics, malformed input."""

from __future__ import annotations

import io
import struct

import pytest

from tests.support import elfbuild
from tests.support.elfbuild import CoreSpec, Segment
from unwinder.core import CoreReader
from unwinder.core.constants import NT, PN_XNUM
from unwinder.errors import CorruptCore, FaultError

CORE, LINUX = b"CORE", b"LINUX"


def sample_spec() -> CoreSpec:
    return CoreSpec(
        notes=[
            elfbuild.note(CORE, 1, elfbuild.prstatus_x86_64(100, regs={"rip": 0x401000, "rsp": 0x7000})),
            elfbuild.note(CORE, 3, elfbuild.prpsinfo(100, b"prog", b"prog arg")),
            elfbuild.note(CORE, NT.SIGINFO, elfbuild.siginfo(11, 1, 0x10)),
            elfbuild.note(CORE, 6, elfbuild.auxv([(6, 4096)])),
            elfbuild.note(CORE, NT.FILE, elfbuild.file_note([(0x400000, 0x402000, 0, b"/prog")])),
            elfbuild.note(CORE, 2, bytes(512)),
            elfbuild.note(b"ACME", 0x99, b"vendor"),
            elfbuild.note(CORE, 1, elfbuild.prstatus_x86_64(101)),
            elfbuild.note(CORE, 2, bytes(512)),
            elfbuild.note(LINUX, NT.X86_XSAVE_LAYOUT, bytes(16)),
        ],
        segments=[
            Segment(0x7000, 0x2000, bytes(range(256)) * 32),      # fully dumped
            Segment(0x400000, 0x2000, b"\x7fELF" + bytes(4092)),  # header page only
            Segment(0x500000, 0x1000, b""),                       # not dumped
        ],
    )


def open_core(data: bytes, **kw) -> CoreReader:
    return CoreReader(io.BytesIO(data), **kw)


def test_model_groups_notes_by_thread() -> None:
    core = open_core(sample_spec().build()).core
    assert [t.tid for t in core.threads] == [100, 101]
    assert core.pid == 100
    assert core.prpsinfo.comm == b"prog"
    assert core.siginfo.si_addr == 0x10
    assert core.auxv.find(6) == 4096
    assert core.files.mappings[0].path == b"/prog"
    first = core.threads[0]
    assert first.prstatus.registers.pc == 0x401000
    assert first.fpregset == bytes(512)
    assert [(n.name, n.n_type) for n in first.notes] == [(CORE, 1), (CORE, 2), (b"ACME", 0x99)]
    assert [(n.name, n.n_type) for n in core.other_notes] == [(LINUX, NT.X86_XSAVE_LAYOUT)]
    assert core.crashing_thread is first
    assert core.find_thread(101) is core.threads[1] and core.find_thread(5) is None


def test_memory_semantics() -> None:
    reader = open_core(sample_spec().build())
    assert reader.read(0x7000, 4) == bytes([0, 1, 2, 3])
    assert reader.read(0x8FFE, 2) == bytes([254, 255])
    # partly dumped: the dumped page, then zeros up to p_memsz
    assert reader.read(0x400000, 4) == b"\x7fELF"
    assert reader.read(0x401000, 8) == bytes(8)
    with pytest.raises(FaultError) as err:
        open_core(sample_spec().build(), zero_fill=False).read(0x400FFC, 8)
    assert err.value.address == 0x401000
    # mapped but not dumped
    with pytest.raises(FaultError, match="not dumped") as err:
        reader.read(0x500010, 4)
    assert err.value.address == 0x500010
    # not mapped; a read running off the end of a segment reports the first bad address
    with pytest.raises(FaultError, match="not mapped"):
        reader.read(0x600000, 1)
    data, fault = reader.read_partial(0x8FF0, 32)
    assert data == bytes(range(240, 256)) and fault == 0x9000


def test_segments_in_any_file_order() -> None:
    spec = sample_spec()
    spec.segments.reverse()
    reader = open_core(spec.build())
    assert [p.p_vaddr for p in reader.core.loads] == [0x500000, 0x400000, 0x7000]
    assert reader.read(0x7000, 4) == bytes([0, 1, 2, 3])
    assert reader.find_segment(0x400100).p_vaddr == 0x400000


def test_truncated_file_reads_up_to_the_cut() -> None:
    data = sample_spec().build()
    reader = open_core(data[:-4096 - 100])  # cut inside the first segment's second page
    assert reader.truncated
    assert reader.core.expected_size == len(data)
    ok, fault = reader.read_partial(0x7000, 0x2000)
    assert fault is not None and len(ok) == fault - 0x7000
    with pytest.raises(FaultError, match="truncated"):
        reader.read(0x8FF0, 4)


def test_extended_numbering_from_section_header() -> None:
    spec = CoreSpec(notes=[elfbuild.note(CORE, 1, elfbuild.prstatus_x86_64(7))],
                    segments=[Segment(0x10000 + i * 0x1000, 0x1000) for i in range(PN_XNUM + 5)])
    spec.segments[-1] = Segment(spec.segments[-1].vaddr, 0x1000, b"\xab" * 0x1000)
    reader = open_core(spec.build())
    assert reader.core.ehdr.e_phnum == PN_XNUM
    assert len(reader.core.phdrs) == PN_XNUM + 6
    assert reader.read(spec.segments[-1].vaddr, 2) == b"\xab\xab"
    assert not reader.truncated


def test_unknown_machine_keeps_threads_raw() -> None:
    spec = sample_spec()
    spec.machine = 243  # RISC-V: not decoded here
    core = open_core(spec.build()).core
    assert core.arch is None
    assert [t.tid for t in core.threads] == [100, 101]
    assert core.threads[0].prstatus is None


def test_reader_from_path_and_context_manager(tmp_path) -> None:
    path = tmp_path / "core"
    path.write_bytes(sample_spec().build())
    with CoreReader(path) as reader:
        assert reader.read(0x7000, 1) == b"\0"


def _patch(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


GOOD = sample_spec().build()
NOTE_OFF = struct.unpack_from("<Q", GOOD, 64 + 8)[0]


@pytest.mark.parametrize(("data", "match"), [
    (b"", "truncated"),
    (b"\x7fELX" + GOOD[4:], "bad magic"),
    (_patch(GOOD, 4, "<B", 1), "ELF class 1"),
    (_patch(GOOD, 5, "<B", 2), "data encoding"),
    (_patch(GOOD, 16, "<H", 2), "not ET_CORE"),
    (_patch(GOOD, 54, "<H", 32), "e_phentsize"),
    (_patch(GOOD, 32, "<Q", 8), "overlaps"),
    (_patch(GOOD, 56, "<H", 60000), "run past"),
    (_patch(GOOD, 56, "<H", PN_XNUM), "PN_XNUM"),
    (_patch(GOOD, 64 + 32, "<Q", 2**40), "absurd|run past|runs past"),
    (_patch(GOOD, NOTE_OFF + 4, "<I", 2**31), "runs past"),
    (_patch(GOOD, NOTE_OFF + 4, "<I", 300), "NT_PRSTATUS of 300 bytes|runs past|malformed"),
    (_patch(GOOD, 64 + 56 + 32, "<Q", 0x3000), "p_filesz > p_memsz"),
])
def test_malformed_cores_raise_corrupt_core(data: bytes, match: str) -> None:
    with pytest.raises(CorruptCore, match=match):
        open_core(data)
