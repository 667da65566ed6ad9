"""``DW_EH_PE_*`` encoded pointers, as found in ``.eh_frame`` and ``.eh_frame_hdr``.

Our own: pyelftools only decodes ``absptr`` and ``pcrel`` FDE addresses (``datarel`` and
``textrel`` assert), and does not read ``.eh_frame_hdr`` at all.
"""

from __future__ import annotations

import struct

from unwinder.cfi.opcodes import DW_EH_PE
from unwinder.cfi.section import FrameSection
from unwinder.errors import CfiError
from unwinder.leb128 import read_sleb128, read_uleb128

#: fixed-size formats: low nibble -> (struct code, size); 0x0 and 0x8 depend on address size
_FIXED = {
    DW_EH_PE.udata2: ("H", 2),
    DW_EH_PE.udata4: ("I", 4),
    DW_EH_PE.udata8: ("Q", 8),
    DW_EH_PE.sdata2: ("h", 2),
    DW_EH_PE.sdata4: ("i", 4),
    DW_EH_PE.sdata8: ("q", 8),
}
_SIGNED_ABSPTR = 0x08


def encoded_size(encoding: int, address_size: int) -> int | None:
    """Bytes taken by a fixed-size encoding; None for LEB128 formats and ``aligned``."""
    fmt = encoding & 0x0F
    if fmt in _FIXED:
        return _FIXED[fmt][1]
    if fmt in (DW_EH_PE.absptr, _SIGNED_ABSPTR) and encoding & 0x70 != DW_EH_PE.aligned:
        return address_size
    return None


def read_encoded(
    section: FrameSection, pos: int, end: int, encoding: int, *, func_base: int = 0
) -> tuple[int, int]:
    """Decode the pointer encoded with ``encoding`` at ``section.data[pos:end]``.

    The ``indirect`` bit is left to the caller (the value returned is the address of the
    pointer then); only personality routines use it, and unwinding just skips them.

    :returns: ``(value, position after the encoding)``, the value wrapped to the address size.
    :raises CfiError: ``omit``, an unknown format or base, or truncated data.
    """
    if encoding == DW_EH_PE.omit:
        raise CfiError("read of an omitted (0xff) pointer", pos)
    data = section.data
    size = section.address_size
    start = pos
    application = encoding & 0x70
    if application == DW_EH_PE.aligned:
        address = section.address + pos
        pos += -address % size
        start = pos
        encoding = DW_EH_PE.absptr
        application = 0
    fmt = encoding & 0x0F
    if fmt in _FIXED:
        code, width = _FIXED[fmt]
    elif fmt == DW_EH_PE.absptr:
        code, width = ("Q", 8) if size == 8 else ("I", 4)
    elif fmt == _SIGNED_ABSPTR:
        code, width = ("q", 8) if size == 8 else ("i", 4)
    elif fmt == DW_EH_PE.uleb128:
        value, pos = read_uleb128(data, pos, end)
        width = 0
    elif fmt == DW_EH_PE.sleb128:
        value, pos = read_sleb128(data, pos, end)
        width = 0
    else:
        raise CfiError(f"unknown pointer format {encoding:#x}", pos)
    if width:
        if pos + width > end or pos < 0:
            raise CfiError(f"pointer ({encoding:#x}) runs past the end", pos)
        (value,) = struct.unpack_from(section.endian + code, data, pos)
        pos += width
    if application:
        if application == DW_EH_PE.pcrel:
            value += section.address + start
        elif application == DW_EH_PE.datarel:
            value += section.data_base
        elif application == DW_EH_PE.textrel:
            value += section.text_base
        elif application == DW_EH_PE.funcrel:
            value += func_base
        else:
            raise CfiError(f"unknown pointer application {encoding:#x}", start)
    return value & ((1 << (8 * size)) - 1), pos
