"""One CFI section in memory: its bytes, the link-time address they sit at, and how to read it.

Everything else in :mod:`unwinder.cfi` reads through this record, so that ``.eh_frame``,
``.eh_frame_hdr`` and ``.debug_frame`` differ only in the flags set here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
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

    name: str
    data: bytes
    address: int = 0
    is_eh: bool = True
    address_size: int = 8
    big_endian: bool = False
    data_base: int = 0
    text_base: int = 0
    #: ``struct`` byte-order prefix derived from ``big_endian``
    endian: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "endian", ">" if self.big_endian else "<")

    @property
    def size(self) -> int:
        return len(self.data)

    def unpack(self, fmt: str, pos: int) -> tuple:
        """``struct.unpack_from`` with this section's byte order; callers bounds-check first."""
        return struct.unpack_from(self.endian + fmt, self.data, pos)
