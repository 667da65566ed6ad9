"""One CFI section in memory: its bytes, the link-time address they sit at, and how to read it.

Everything else in :mod:`unwinder.cfi` reads through this record, so that ``.eh_frame``,
``.eh_frame_hdr`` and ``.debug_frame`` differ only in the flags set here.
"""

from __future__ import annotations

import struct


class FrameSection:
    """The bytes of ``.eh_frame``, ``.eh_frame_hdr`` or ``.debug_frame``.

    :ivar name: section name, for messages.
    :ivar data: the section contents (decompressed), untrusted.
    :ivar address: link-time virtual address of ``data[0]``; the base of ``DW_EH_PE_pcrel``.
        Meaningless (0) for ``.debug_frame``, which is not loaded.
    :ivar is_eh: ``.eh_frame`` rules (CIE id 0, relative CIE pointers, augmentation-driven
        pointer encodings) rather than ``.debug_frame`` rules.
    :ivar address_size: bytes in a target address (4 or 8).
    :ivar big_endian: byte order of the target.
    :ivar data_base: base of ``DW_EH_PE_datarel``: the ``.eh_frame_hdr`` address for the hdr,
        0 for ``.eh_frame`` on x86_64/aarch64 (libgcc's ``dbase`` is only set on i386 & co).
    :ivar text_base: base of ``DW_EH_PE_textrel`` (libgcc uses 0 on these architectures too).
    """

    __slots__ = ("name", "data", "address", "is_eh", "address_size", "big_endian", "data_base",
                 "text_base", "endian")

    def __init__(self, name: str, data: bytes, address: int = 0, is_eh: bool = True,
                 address_size: int = 8, big_endian: bool = False, data_base: int = 0,
                 text_base: int = 0) -> None:
        self.name = name
        self.data = data
        self.address = address
        self.is_eh = is_eh
        self.address_size = address_size
        self.big_endian = big_endian
        self.data_base = data_base
        self.text_base = text_base
        #: ``struct`` byte-order prefix derived from ``big_endian``
        self.endian = ">" if big_endian else "<"

    def __repr__(self) -> str:
        return f"FrameSection({self.name!r}, {self.size} bytes at {self.address:#x})"

    @property
    def size(self) -> int:
        return len(self.data)

    def unpack(self, fmt: str, pos: int) -> tuple:
        """``struct.unpack_from`` with this section's byte order; callers bounds-check first."""
        return struct.unpack_from(self.endian + fmt, self.data, pos)
