"""MiniDebugInfo (``.gnu_debugdata``): an xz-compressed ELF holding the static functions.

Fedora and RHEL strip binaries to ``.dynsym`` and add this section, whose ``.symtab`` lists
the functions missing from ``.dynsym``; both tables are used together. The inner file is parsed
in memory (:class:`~unwinder.elffile.ElfFile`); decompression is capped so a crafted stream cannot exhaust memory.
"""

from __future__ import annotations

import lzma
from io import BytesIO

from unwinder.elffile import ElfFile
from unwinder.errors import SymbolError
from unwinder.symbols.elfguard import guard
from unwinder.symbols.sections import MAX_SECTION_SIZE, read_section

#: the inner ELF is a symbol table only; anything bigger is not MiniDebugInfo
MAX_INNER_SIZE = MAX_SECTION_SIZE // 4


def load_minidebuginfo(elffile: ElfFile) -> ElfFile | None:
    """The ELF file inside ``.gnu_debugdata``, ``None`` when the section is absent."""
    with guard(".gnu_debugdata"):
        packed = read_section(elffile, ".gnu_debugdata")
        if packed is None:
            return None
        decompressor = lzma.LZMADecompressor()
        inner = decompressor.decompress(packed, max_length=MAX_INNER_SIZE)
        if not decompressor.eof:
            raise SymbolError(".gnu_debugdata: truncated or larger than "
                              f"{MAX_INNER_SIZE} bytes")
        return ElfFile(BytesIO(inner))
