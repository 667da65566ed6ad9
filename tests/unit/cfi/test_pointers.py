import struct

import pytest

from unwinder.cfi.opcodes import DW_EH_PE
from unwinder.cfi.pointers import encoded_size, read_encoded
from unwinder.cfi.section import FrameSection
from unwinder.errors import CfiError

ADDR = 0x400000


def section(data: bytes, **kw) -> FrameSection:
    return FrameSection(".eh_frame", data, ADDR, data_base=0x500000, text_base=0x600000, **kw)


@pytest.mark.parametrize(
    "encoding, raw, value",
    [
        (DW_EH_PE.absptr, struct.pack("<Q", 0x1122334455667788), 0x1122334455667788),
        (DW_EH_PE.udata2, b"\xfe\xff", 0xFFFE),
        (DW_EH_PE.udata4, b"\xfe\xff\xff\xff", 0xFFFFFFFE),
        (DW_EH_PE.udata8, struct.pack("<Q", 2**64 - 2), 2**64 - 2),
        (DW_EH_PE.sdata2, b"\xfe\xff", 2**64 - 2),
        (DW_EH_PE.sdata4, b"\xfe\xff\xff\xff", 2**64 - 2),
        (DW_EH_PE.sdata8, struct.pack("<q", -2), 2**64 - 2),
        (DW_EH_PE.uleb128, b"\xe5\x8e\x26", 624485),
        (DW_EH_PE.sleb128, b"\x7e", 2**64 - 2),
    ],
)
def test_formats(encoding, raw, value):
    assert read_encoded(section(raw), 0, len(raw), encoding) == (value, len(raw))


def test_applications():
    raw = b"\0\0" + struct.pack("<i", -0x10)
    pcrel = read_encoded(section(raw), 2, 6, DW_EH_PE.pcrel | DW_EH_PE.sdata4)
    assert pcrel == (ADDR + 2 - 0x10, 6)
    datarel = read_encoded(section(raw), 2, 6, DW_EH_PE.datarel | DW_EH_PE.sdata4)
    assert datarel[0] == 0x500000 - 0x10
    textrel = read_encoded(section(raw), 2, 6, DW_EH_PE.textrel | DW_EH_PE.sdata4)
    assert textrel[0] == 0x600000 - 0x10
    funcrel = read_encoded(section(raw), 2, 6, DW_EH_PE.funcrel | DW_EH_PE.sdata4, func_base=0x7000)
    assert funcrel[0] == 0x7000 - 0x10


def test_aligned_pads_to_address_size():
    raw = b"\xaa" * 3 + bytes(5) + struct.pack("<Q", 0xDEAD)
    assert read_encoded(section(raw), 3, len(raw), DW_EH_PE.aligned) == (0xDEAD, 16)


def test_32bit_absptr():
    raw = struct.pack("<I", 0xFFFFFFF0)
    s = section(raw, address_size=4)
    assert read_encoded(s, 0, 4, DW_EH_PE.absptr) == (0xFFFFFFF0, 4)
    assert read_encoded(s, 0, 4, DW_EH_PE.pcrel | DW_EH_PE.sdata4)[0] == (ADDR - 16) & 0xFFFFFFFF


def test_big_endian():
    s = FrameSection(".eh_frame", b"\x00\x00\x01\x00", 0, big_endian=True)
    assert read_encoded(s, 0, 4, DW_EH_PE.udata4)[0] == 0x100


@pytest.mark.parametrize("encoding", [DW_EH_PE.omit, 0x05, 0x0D, 0x70 | 0x03])
def test_bad_encodings(encoding):
    with pytest.raises(CfiError):
        read_encoded(section(bytes(8)), 0, 8, encoding)


def test_truncated():
    with pytest.raises(CfiError):
        read_encoded(section(bytes(3)), 0, 3, DW_EH_PE.udata4)
    with pytest.raises(CfiError):
        read_encoded(section(bytes(8)), 6, 8, DW_EH_PE.udata4)


def test_encoded_size():
    assert encoded_size(0x1B, 8) == 4
    assert encoded_size(DW_EH_PE.absptr, 8) == 8
    assert encoded_size(DW_EH_PE.uleb128, 8) is None
    assert encoded_size(DW_EH_PE.aligned, 8) is None
