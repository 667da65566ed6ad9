"""``/proc/<pid>/auxv``: the ELF auxiliary vector, native-endian ``(type, value)`` word pairs
ending with ``AT_NULL``. Words are 8 bytes for 64-bit processes, 4 for compat ones.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from enum import IntEnum


class AT(IntEnum):
    """``AT_*`` auxv types (``include/uapi/linux/auxvec.h`` and the arch headers)."""

    NULL = 0
    IGNORE = 1
    EXECFD = 2
    PHDR = 3
    PHENT = 4
    PHNUM = 5
    PAGESZ = 6
    BASE = 7
    FLAGS = 8
    ENTRY = 9
    NOTELF = 10
    UID = 11
    EUID = 12
    GID = 13
    EGID = 14
    PLATFORM = 15
    HWCAP = 16
    CLKTCK = 17
    SECURE = 23
    BASE_PLATFORM = 24
    RANDOM = 25
    HWCAP2 = 26
    RSEQ_FEATURE_SIZE = 27
    RSEQ_ALIGN = 28
    HWCAP3 = 29
    HWCAP4 = 30
    EXECFN = 31
    SYSINFO = 32
    SYSINFO_EHDR = 33
    MINSIGSTKSZ = 51


@dataclass(frozen=True)
class Auxv:
    """Entries before ``AT_NULL``; ``complete`` is False when no ``AT_NULL`` was found
    (truncated data; a trailing partial pair is dropped)."""

    entries: tuple[tuple[int, int], ...]
    complete: bool

    def find(self, kind: AT | int) -> int | None:
        """The value of the first entry of type ``kind``, or ``None``."""
        for key, value in self.entries:
            if key == kind:
                return value
        return None


def parse_auxv(data: bytes, word_size: int = 8, byteorder: str = sys.byteorder) -> Auxv:
    """Parse ``auxv`` bytes; ``word_size`` 8 (64-bit process) or 4 (32-bit compat process)."""
    code = {8: "Q", 4: "I"}[word_size]
    pair = struct.Struct(("<" if byteorder == "little" else ">") + code * 2)
    entries = []
    for key, value in pair.iter_unpack(data[: len(data) - len(data) % pair.size]):
        if key == AT.NULL:
            return Auxv(tuple(entries), True)
        entries.append((key, value))
    return Auxv(tuple(entries), False)
