"""Build ``.eh_frame``/``.debug_frame``/``.eh_frame_hdr`` bytes for tests (plain struct.pack).

Independent of :mod:`unwinder.cfi`, so tests check the decoder against bytes it did not make.
"""

from __future__ import annotations

import struct


def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def block(expression: bytes) -> bytes:
    return uleb(len(expression)) + expression


class FrameBuilder:
    """Lays out CIEs and FDEs one after another at link-time ``address``."""

    def __init__(self, address: int = 0x10000, *, is_eh: bool = True) -> None:
        self.address = address
        self.is_eh = is_eh
        self.data = bytearray()

    def _entry(self, body_after_id: bytes, entry_id: int, *, is_64: bool = False) -> int:
        offset = len(self.data)
        if is_64:
            id_bytes = struct.pack("<I" if self.is_eh else "<Q", entry_id)
            length = len(id_bytes) + len(body_after_id)
            self.data += struct.pack("<IQ", 0xFFFFFFFF, length) + id_bytes + body_after_id
        else:
            self.data += struct.pack("<II", 4 + len(body_after_id), entry_id) + body_after_id
        return offset

    def cie(
        self,
        *,
        version: int = 1,
        augmentation: bytes = b"zR",
        code_align: int = 1,
        data_align: int = -8,
        ra: int = 16,
        aug_data: bytes = b"\x1b",
        instructions: bytes = b"\x0c\x07\x08\x90\x01",  # def_cfa rsp+8; offset r16 at cfa-8
        v4_sizes: bytes = b"\x08\x00",
        is_64: bool = False,
    ) -> int:
        body = bytes([version]) + augmentation + b"\0"
        if version >= 4:
            body += v4_sizes
        body += uleb(code_align) + sleb(data_align)
        body += bytes([ra]) if version == 1 else uleb(ra)
        if augmentation.startswith(b"z"):
            body += uleb(len(aug_data)) + aug_data
        body += instructions
        body += bytes(-(len(body) + 8) % 8) if self.is_eh else b""
        cie_id = 0 if self.is_eh else (0xFFFFFFFFFFFFFFFF if is_64 else 0xFFFFFFFF)
        return self._entry(body, cie_id, is_64=is_64)

    def fde(
        self,
        cie: int,
        pc_begin: int,
        pc_range: int,
        instructions: bytes = b"",
        *,
        aug_data: bytes | None = b"",
        raw_addresses: bytes | None = None,
        is_64: bool = False,
    ) -> int:
        offset = len(self.data)
        id_pos = offset + (12 if is_64 else 4)
        body_pos = id_pos + (8 if is_64 and not self.is_eh else 4)
        if raw_addresses is not None:
            addresses = raw_addresses
        elif self.is_eh:  # pcrel|sdata4
            addresses = struct.pack("<iI", pc_begin - (self.address + body_pos), pc_range)
        else:
            addresses = struct.pack("<QQ", pc_begin, pc_range)
        body = addresses
        if aug_data is not None:
            body += uleb(len(aug_data)) + aug_data
        body += instructions
        entry_id = id_pos - cie if self.is_eh else cie
        return self._entry(body, entry_id, is_64=is_64)

    def terminate(self) -> FrameBuilder:
        self.data += b"\0\0\0\0"
        return self

    def build(self) -> bytes:
        return bytes(self.data)


def eh_frame_hdr(
    address: int,
    eh_frame_address: int,
    table: list[tuple[int, int]],
    *,
    table_enc: int = 0x3B,
    count_enc: int = 0x03,
) -> bytes:
    """``table`` holds (start pc, FDE address) pairs, absolute."""
    out = bytearray(struct.pack("<BBBB", 1, 0x1B, count_enc, table_enc))
    out += struct.pack("<i", eh_frame_address - (address + 4))
    if count_enc == 0xFF or table_enc == 0xFF:
        return bytes(out)
    out += struct.pack("<I", len(table))
    for start, fde in table:
        if table_enc == 0x3B:
            out += struct.pack("<ii", start - address, fde - address)
        elif table_enc == 0x04:  # udata8 absolute
            out += struct.pack("<QQ", start, fde)
        else:
            raise ValueError(table_enc)
    return bytes(out)
