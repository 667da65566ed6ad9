"""DWARF constants used by call frame information: ``DW_CFA_*``, ``DW_OP_*`` and ``DW_EH_PE_*``.

Values are from DWARF 5 §7.23/§7.7.1, the LSB "Exception Frames" chapter and binutils'
``include/dwarf2.def``. Kept as our own enums (not pyelftools' dicts) so the decoders can use
them in tables keyed by opcode.
"""

from __future__ import annotations

from enum import IntEnum


class DW_CFA(IntEnum):  # noqa: N801 - the spec's spelling
    """Call frame instructions. The first three carry an operand in their low 6 bits."""

    advance_loc = 0x40
    offset = 0x80
    restore = 0xC0
    nop = 0x00
    set_loc = 0x01
    advance_loc1 = 0x02
    advance_loc2 = 0x03
    advance_loc4 = 0x04
    offset_extended = 0x05
    restore_extended = 0x06
    undefined = 0x07
    same_value = 0x08
    register = 0x09
    remember_state = 0x0A
    restore_state = 0x0B
    def_cfa = 0x0C
    def_cfa_register = 0x0D
    def_cfa_offset = 0x0E
    def_cfa_expression = 0x0F
    expression = 0x10
    offset_extended_sf = 0x11
    def_cfa_sf = 0x12
    def_cfa_offset_sf = 0x13
    val_offset = 0x14
    val_offset_sf = 0x15
    val_expression = 0x16
    MIPS_advance_loc8 = 0x1D
    GNU_window_save = 0x2D
    #: the same value as ``GNU_window_save``; meaningful only on aarch64
    AARCH64_negate_ra_state = 0x2D
    GNU_args_size = 0x2E
    GNU_negative_offset_extended = 0x2F


class DW_EH_PE(IntEnum):  # noqa: N801
    """Pointer encodings: the low nibble is the format, bits 4-6 the base, 0x80 indirect."""

    absptr = 0x00
    uleb128 = 0x01
    udata2 = 0x02
    udata4 = 0x03
    udata8 = 0x04
    sleb128 = 0x09
    sdata2 = 0x0A
    sdata4 = 0x0B
    sdata8 = 0x0C
    pcrel = 0x10
    textrel = 0x20
    datarel = 0x30
    funcrel = 0x40
    aligned = 0x50
    indirect = 0x80
    omit = 0xFF


class DW_OP(IntEnum):  # noqa: N801
    """DWARF expression operations (the ones an unwinder meets, plus what it must reject)."""

    addr = 0x03
    deref = 0x06
    const1u = 0x08
    const1s = 0x09
    const2u = 0x0A
    const2s = 0x0B
    const4u = 0x0C
    const4s = 0x0D
    const8u = 0x0E
    const8s = 0x0F
    constu = 0x10
    consts = 0x11
    dup = 0x12
    drop = 0x13
    over = 0x14
    pick = 0x15
    swap = 0x16
    rot = 0x17
    xderef = 0x18
    abs = 0x19
    and_ = 0x1A
    div = 0x1B
    minus = 0x1C
    mod = 0x1D
    mul = 0x1E
    neg = 0x1F
    not_ = 0x20
    or_ = 0x21
    plus = 0x22
    plus_uconst = 0x23
    shl = 0x24
    shr = 0x25
    shra = 0x26
    xor = 0x27
    bra = 0x28
    eq = 0x29
    ge = 0x2A
    gt = 0x2B
    le = 0x2C
    lt = 0x2D
    ne = 0x2E
    skip = 0x2F
    lit0 = 0x30
    lit31 = 0x4F
    reg0 = 0x50
    reg31 = 0x6F
    breg0 = 0x70
    breg31 = 0x8F
    regx = 0x90
    fbreg = 0x91
    bregx = 0x92
    piece = 0x93
    deref_size = 0x94
    xderef_size = 0x95
    nop = 0x96
    push_object_address = 0x97
    call2 = 0x98
    call4 = 0x99
    call_ref = 0x9A
    form_tls_address = 0x9B
    call_frame_cfa = 0x9C
    bit_piece = 0x9D
    implicit_value = 0x9E
    stack_value = 0x9F
