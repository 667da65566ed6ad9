import struct

import pytest

from tests.unit.cfi.cfi_builder import FrameBuilder, uleb
from unwinder.cfi.entries import parse_cie, parse_entry_header, parse_fde
from unwinder.cfi.section import FrameSection
from unwinder.errors import CfiError


def eh(builder: FrameBuilder) -> FrameSection:
    return FrameSection(".eh_frame", builder.build(), builder.address)


def debug(builder: FrameBuilder) -> FrameSection:
    return FrameSection(".debug_frame", builder.build(), 0, is_eh=False)


def test_cie_fields():
    b = FrameBuilder()
    off = b.cie(version=3, augmentation=b"zR", code_align=4, data_align=-4, ra=30)
    cie = parse_cie(eh(b), off)
    assert (cie.version, cie.code_alignment, cie.data_alignment) == (3, 4, -4)
    assert cie.return_address_column == 30
    assert cie.fde_encoding == 0x1B and cie.has_augmentation_data and not cie.signal_frame


def test_cie_augmentation_plr_s_b_g():
    b = FrameBuilder()
    # P: personality with indirect|pcrel|sdata4 (0x9b), L: lsda pcrel|sdata4, R: pcrel|sdata4
    aug = b"\x9b" + struct.pack("<i", 0x1234) + b"\x1b" + b"\x1b"
    off = b.cie(augmentation=b"zPLRSBG", aug_data=aug)
    cie = parse_cie(eh(b), off)
    assert cie.signal_frame and cie.lsda_encoding == 0x1B and cie.fde_encoding == 0x1B


def test_cie_aligned_personality():
    b = FrameBuilder()
    # P with DW_EH_PE_aligned: padding to 8 from the absolute address, then a u64
    # the pointer field sits at 0x10000 + 18 (length, id, version, "zPR\0", 3 factors,
    # aug length, P's encoding byte), so 6 bytes of padding reach 0x10018
    off = b.cie(augmentation=b"zPR", aug_data=b"\x50" + bytes(6) + bytes(8) + b"\x03")
    cie = parse_cie(eh(b), off)
    assert cie.fde_encoding == 0x03


def test_unknown_letter_stops_but_z_skips():
    b = FrameBuilder()
    off = b.cie(augmentation=b"zRX", aug_data=b"\x03\xff\xff")
    cie = parse_cie(eh(b), off)
    assert cie.fde_encoding == 0x03
    start, end = cie.instructions
    assert eh(b).data[start] == 0x0C  # instructions start after all augmentation data


def test_unknown_augmentation_without_z():
    b = FrameBuilder()
    off = b.cie(augmentation=b"xyz")
    with pytest.raises(CfiError):
        parse_cie(eh(b), off)


@pytest.mark.parametrize("version", [0, 2, 5, 255])
def test_bad_version(version):
    b = FrameBuilder()
    off = b.cie(version=version)
    with pytest.raises(CfiError):
        parse_cie(eh(b), off)


def test_debug_frame_v4_cie_and_fde():
    b = FrameBuilder(is_eh=False)
    off = b.cie(version=4, augmentation=b"", v4_sizes=b"\x08\x00", ra=16)
    fde_off = b.fde(off, 0x401000, 0x20, aug_data=None)
    section = debug(b)
    cie = parse_cie(section, off)
    assert cie.address_size == 8 and cie.version == 4 and not cie.has_augmentation_data
    fde = parse_fde(section, fde_off, lambda o: parse_cie(section, o))
    assert (fde.pc_begin, fde.pc_end) == (0x401000, 0x401020)


def test_debug_frame_bad_address_size():
    b = FrameBuilder(is_eh=False)
    off = b.cie(version=4, augmentation=b"", v4_sizes=b"\x03\x00")
    with pytest.raises(CfiError):
        parse_cie(debug(b), off)


def test_64bit_lengths_both_sections():
    for is_eh in (True, False):
        b = FrameBuilder(is_eh=is_eh)
        cie_off = b.cie(is_64=True, augmentation=b"zR" if is_eh else b"")
        fde_off = b.fde(cie_off, 0x2000, 0x10, is_64=True, aug_data=b"" if is_eh else None)
        section = eh(b) if is_eh else debug(b)
        header = parse_entry_header(section, fde_off)
        assert header.is_64 and not header.is_cie and header.cie_offset == cie_off
        fde = parse_fde(section, fde_off, lambda o, s=section: parse_cie(s, o))
        assert (fde.pc_begin, fde.pc_end) == (0x2000, 0x2010)


def test_ids_and_cie_pointers():
    b = FrameBuilder()
    cie_off = b.cie()
    fde_off = b.fde(cie_off, 0x10100, 8)
    header = parse_entry_header(eh(b), fde_off)
    assert header.cie_offset == cie_off and not header.is_cie
    assert parse_entry_header(eh(b), cie_off).is_cie
    assert parse_entry_header(FrameSection("x", bytes(8)), 0) is None  # terminator


def test_fde_pc_begin_pcrel():
    b = FrameBuilder(address=0x7000)
    cie_off = b.cie()
    fde_off = b.fde(cie_off, 0x1234, 0x56)
    section = eh(b)
    fde = parse_fde(section, fde_off, lambda o: parse_cie(section, o))
    assert (fde.pc_begin, fde.pc_end) == (0x1234, 0x1234 + 0x56)


def test_fde_absptr_encoding():
    b = FrameBuilder()
    cie_off = b.cie(aug_data=b"\x00")
    fde_off = b.fde(cie_off, 0, 0, raw_addresses=struct.pack("<QQ", 0x9000, 0x40))
    section = eh(b)
    fde = parse_fde(section, fde_off, lambda o: parse_cie(section, o))
    assert (fde.pc_begin, fde.pc_end) == (0x9000, 0x9040)


@pytest.mark.parametrize(
    "raw",
    [
        struct.pack("<I", 100) + bytes(8),  # length past the end
        struct.pack("<II", 8, 0x1000) + bytes(4),  # CIE pointer before the section
        struct.pack("<IQ", 0xFFFFFFFF, 2**63),  # 64-bit length past the end
        struct.pack("<I", 0xFFFFFFF5) + bytes(8),  # reserved length
        struct.pack("<I", 2),  # shorter than the id
        b"\x08\x00",  # truncated length field
    ],
)
def test_malformed_headers(raw):
    section = FrameSection(".eh_frame", raw, 0)
    with pytest.raises(CfiError):
        parse_entry_header(section, 0)


def test_fde_pointing_at_fde_instead_of_cie():
    b = FrameBuilder()
    cie_off = b.cie()
    fde1 = b.fde(cie_off, 0x100, 8)
    data = bytearray(b.build())
    second = len(data)
    data += struct.pack("<II", 12, second + 4 - fde1) + bytes(4) + uleb(0) + bytes(3)
    section = FrameSection(".eh_frame", bytes(data), b.address)
    with pytest.raises(CfiError):
        parse_fde(section, second, lambda o: parse_cie(section, o))
