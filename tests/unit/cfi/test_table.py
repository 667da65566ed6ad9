"""CfiTable: hdr index, header-scan fallbacks, gaps, .debug_frame as second source, from_elf."""

import io
import struct

import pytest
from elftools.elf.elffile import ELFFile

from tests.unit.cfi.cfi_builder import FrameBuilder, eh_frame_hdr
from unwinder.cfi import CfiTable
from unwinder.cfi.elfsource import FrameSections
from unwinder.cfi.hdr import build_hdr_index, parse_eh_frame_hdr
from unwinder.cfi.section import FrameSection
from unwinder.errors import CfiError

EH_ADDR = 0x3000
HDR_ADDR = 0x2000
#: (start, length, def_cfa_offset) of each FDE; 0x1100..0x1200 is a gap
FUNCS = [(0x1000, 0x100, 16), (0x1200, 0x40, 24), (0x1240, 0x10, 32)]


def build_eh_frame() -> tuple[bytes, list[tuple[int, int]]]:
    b = FrameBuilder(address=EH_ADDR)
    cie = b.cie()
    table = []
    for start, length, offset in FUNCS:
        fde = b.fde(cie, start, length, bytes([0x0E, offset]))
        table.append((start, EH_ADDR + fde))
    return b.terminate().build(), table


def sections(*, table_enc=0x3B, hdr=True, debug_frame: bytes | None = None) -> FrameSections:
    data, table = build_eh_frame()
    eh = FrameSection(".eh_frame", data, EH_ADDR)
    hdr_section = parsed = None
    if hdr:
        raw = eh_frame_hdr(HDR_ADDR, EH_ADDR, table, table_enc=table_enc)
        hdr_section = FrameSection(".eh_frame_hdr", raw, HDR_ADDR, data_base=HDR_ADDR)
        parsed = parse_eh_frame_hdr(hdr_section)
    debug = None
    if debug_frame is not None:
        debug = FrameSection(".debug_frame", debug_frame, 0, is_eh=False)
    return FrameSections(hdr_section, parsed, eh, debug)


def debug_frame_bytes(funcs) -> bytes:
    b = FrameBuilder(is_eh=False)
    cie = b.cie(version=3, augmentation=b"")
    for start, length, offset in funcs:
        b.fde(cie, start, length, bytes([0x0E, offset]), aug_data=None)
    return b.build()


def check_lookups(table: CfiTable) -> None:
    for start, length, offset in FUNCS:
        for pc in (start, start + length - 1):
            row = table.find_row(pc)
            assert row is not None and row.cfa.offset == offset, hex(pc)
            assert (row.start, row.end) == (start, start + length)
    for pc in (0, 0xFFF, 0x1100, 0x11FF, 0x1250, 2**64 - 1):
        assert table.find_row(pc) is None, hex(pc)


@pytest.mark.parametrize("table_enc", [0x3B, 0x04, 0xFF])
def test_hdr_encodings_and_missing_table(table_enc):
    table = CfiTable.from_sections(sections(table_enc=table_enc), arch="x86_64")
    assert len(table.eh_frame.index) == 3
    check_lookups(table)


def test_no_hdr_scans_eh_frame():
    check_lookups(CfiTable.from_sections(sections(hdr=False), arch="x86_64"))


def test_hdr_index_is_relative_and_unlooped():
    s = sections()
    index = build_hdr_index(s.eh_frame_hdr, s.hdr)
    assert index.pc_bias == HDR_ADDR
    assert list(index.starts) == [start - HDR_ADDR for start, _, _ in FUNCS]


def test_hdr_table_past_the_end_falls_back_to_scan():
    s = sections()
    raw = s.eh_frame_hdr.data[:-4]
    hdr_section = FrameSection(".eh_frame_hdr", raw, HDR_ADDR, data_base=HDR_ADDR)
    s = FrameSections(hdr_section, parse_eh_frame_hdr(hdr_section), s.eh_frame, None)
    check_lookups(CfiTable.from_sections(s, arch="x86_64"))


def test_debug_frame_answers_gaps_of_eh_frame():
    debug = debug_frame_bytes([(0x1100, 0x100, 48), (0x1000, 0x100, 99)])
    table = CfiTable.from_sections(sections(debug_frame=debug), arch="x86_64")
    assert table.find_row(0x1000).cfa.offset == 16  # .eh_frame wins
    assert table.find_row(0x1180).cfa.offset == 48  # gap filled by .debug_frame
    assert table.find_row(0x1250) is None


def test_debug_frame_only():
    s = FrameSections(None, None, None, FrameSection(
        ".debug_frame", debug_frame_bytes(FUNCS), 0, is_eh=False))
    check_lookups(CfiTable.from_sections(s, arch="x86_64"))


def test_debug_frame_skips_discarded_fdes():
    debug = debug_frame_bytes([(0, 0x100, 8), (0x1000, 0x100, 16)])
    table = CfiTable.from_sections(
        FrameSections(None, None, None, FrameSection(".debug_frame", debug, 0, is_eh=False)),
        arch="x86_64")
    assert len(table.debug_frame.index) == 1
    assert table.find_row(0x50) is None


def test_malformed_fde_raises_or_falls_back():
    data, table = build_eh_frame()
    corrupt = bytearray(data)
    fde_offset = table[1][1] - EH_ADDR
    corrupt[fde_offset + 4 : fde_offset + 8] = struct.pack("<I", 0x7FFFFFF0)  # bad CIE ptr
    eh = FrameSection(".eh_frame", bytes(corrupt), EH_ADDR)
    hdr_section = FrameSection(".eh_frame_hdr", eh_frame_hdr(HDR_ADDR, EH_ADDR, table),
                               HDR_ADDR, data_base=HDR_ADDR)
    s = FrameSections(hdr_section, parse_eh_frame_hdr(hdr_section), eh, None)
    table_only_eh = CfiTable.from_sections(s, arch="x86_64")
    assert table_only_eh.find_row(0x1000).cfa.offset == 16
    with pytest.raises(CfiError):
        table_only_eh.find_row(0x1200)
    s = FrameSections(s.eh_frame_hdr, s.hdr, eh, FrameSection(
        ".debug_frame", debug_frame_bytes([(0x1200, 0x40, 64)]), 0, is_eh=False))
    assert CfiTable.from_sections(s, arch="x86_64").find_row(0x1200).cfa.offset == 64


def test_no_cfi_at_all():
    assert CfiTable.from_sections(FrameSections(None, None, None, None), arch="x86_64") is None


def test_unknown_arch():
    with pytest.raises(ValueError):
        CfiTable(arch="riscv64")


def memory_image(*, with_hdr: bool = True) -> bytes:
    """A section-less ELF as read from memory (like the vDSO): PT_LOAD + PT_GNU_EH_FRAME."""
    data, table = build_eh_frame()
    hdr = eh_frame_hdr(HDR_ADDR, EH_ADDR, table)
    image = bytearray(EH_ADDR + len(data))
    image[HDR_ADDR : HDR_ADDR + len(hdr)] = hdr
    image[EH_ADDR:] = data
    phdrs = [struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, len(image), len(image), 0x1000)]
    if with_hdr:
        phdrs.append(struct.pack("<IIQQQQQQ", 0x6474E550, 4, HDR_ADDR, HDR_ADDR, HDR_ADDR,
                                 len(hdr), len(hdr), 4))
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, bytes(7), 3, 62,
                       1, 0, 64, 0, 0, 64, 56, len(phdrs), 64, 0, 0)
    head = ehdr + b"".join(phdrs)
    image[: len(head)] = head
    return bytes(image)


def test_from_elf_sectionless_memory_image():
    table = CfiTable.from_elf(ELFFile(io.BytesIO(memory_image())), arch="x86_64")
    assert table is not None and table.eh_frame.section.address == EH_ADDR
    check_lookups(table)


def test_from_elf_without_anything():
    assert CfiTable.from_elf(ELFFile(io.BytesIO(memory_image(with_hdr=False))),
                             arch="x86_64") is None
