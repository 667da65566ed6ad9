"""Each DW_CFA instruction, through a real CIE + FDE and CfiSource.find_row."""

import struct

import pytest

from tests.unit.cfi.cfi_builder import FrameBuilder, block, sleb, uleb
from unwinder.cfi.rules import CfaRule, RegisterRule, RuleKind
from unwinder.cfi.section import FrameSection
from unwinder.cfi.source import CfiSource
from unwinder.errors import CfiError

PC = 0x1000
CIE_INIT = b"\x0c\x07\x08\x90\x01"  # def_cfa r7+8; offset r16 at cfa-8


def source(fde_instructions: bytes, *, cie_instructions: bytes = CIE_INIT, arch="x86_64",
           code_align: int = 1, data_align: int = -8, augmentation: bytes = b"zR",
           length: int = 0x100, is_eh: bool = True) -> CfiSource:
    b = FrameBuilder(is_eh=is_eh)
    cie = b.cie(instructions=cie_instructions, code_align=code_align, data_align=data_align,
                augmentation=augmentation if is_eh else b"", ra=16 if arch == "x86_64" else 30)
    b.fde(cie, PC, length, fde_instructions, aug_data=b"" if is_eh else None)
    section = FrameSection(".eh_frame" if is_eh else ".debug_frame", b.terminate().build(),
                           b.address if is_eh else 0, is_eh=is_eh)
    return CfiSource(section, arch=arch)


def rule(kind, value=0, expression=b""):
    return RegisterRule(kind, value, expression)


def test_cie_initial_rules_apply():
    row = source(b"").find_row(PC)
    assert row.cfa == CfaRule(7, 8, None)
    assert dict(row.registers) == {16: rule(RuleKind.OFFSET, -8)}
    assert (row.start, row.end, row.return_address_column) == (PC, PC + 0x100, 16)
    assert not row.signal_frame and not row.pac_signed_ra


def test_advance_loc_family_and_row_bounds():
    prog = (b"\x41" + b"\x0e\x10"  # advance 1; def_cfa_offset 16
            + b"\x02\x03" + b"\x0e\x18"  # advance_loc1 3; def_cfa_offset 24
            + b"\x03" + struct.pack("<H", 0x10) + b"\x0e\x20"  # advance_loc2 16
            + b"\x04" + struct.pack("<I", 0x20) + b"\x0e\x28")  # advance_loc4 32
    s = source(prog)
    expect = [(PC, PC + 1, 8), (PC + 1, PC + 4, 16), (PC + 4, PC + 0x14, 24),
              (PC + 0x14, PC + 0x34, 32), (PC + 0x34, PC + 0x100, 40)]
    for start, end, offset in expect:
        for pc in (start, end - 1):
            row = s.find_row(pc)
            assert (row.start, row.end, row.cfa.offset) == (start, end, offset), hex(pc)


def test_code_alignment_factor():
    s = source(b"\x42\x0e\x10", code_align=4)  # advance 2*4
    assert s.find_row(PC + 7).cfa.offset == 8
    assert s.find_row(PC + 8).cfa.offset == 16


def test_set_loc():
    prog = b"\x01" + struct.pack("<Q", PC + 0x20) + b"\x0e\x10"
    s = source(prog, augmentation=b"zR", is_eh=False)
    assert s.find_row(PC + 0x1F).cfa.offset == 8
    assert s.find_row(PC + 0x20).cfa.offset == 16


def test_set_loc_backwards_is_an_error():
    prog = b"\x41\x01" + struct.pack("<Q", PC) + b"\x0e\x10"
    with pytest.raises(CfiError):
        source(prog, is_eh=False).find_row(PC + 5)


def test_offset_rules():
    prog = (b"\x83\x02"  # offset r3, 2*-8
            + b"\x05\x11\x03"  # offset_extended r17, 3*-8
            + b"\x11\x12" + sleb(2)  # offset_extended_sf r18, 2*-8
            + b"\x11\x13" + sleb(-2)  # offset_extended_sf r19, -2*-8
            + b"\x2f\x14\x01")  # GNU_negative_offset_extended r20, -(1*-8)
    regs = source(prog).find_row(PC).registers
    assert regs[3] == rule(RuleKind.OFFSET, -16)
    assert regs[17] == rule(RuleKind.OFFSET, -24)
    assert regs[18] == rule(RuleKind.OFFSET, -16)
    assert regs[19] == rule(RuleKind.OFFSET, 16)
    assert regs[20] == rule(RuleKind.OFFSET, 8)


def test_val_offset_register_undefined_same_value():
    prog = (b"\x14\x03\x02"  # val_offset r3, 2*-8
            + b"\x15\x04" + sleb(-1)  # val_offset_sf r4, -1*-8
            + b"\x09\x05\x06"  # register r5 in r6
            + b"\x07\x10"  # undefined r16
            + b"\x08\x0c")  # same_value r12
    regs = source(prog).find_row(PC).registers
    assert regs[3] == rule(RuleKind.VAL_OFFSET, -16)
    assert regs[4] == rule(RuleKind.VAL_OFFSET, 8)
    assert regs[5] == rule(RuleKind.REGISTER, 6)
    assert regs[16] == rule(RuleKind.UNDEFINED)
    assert regs[12] == rule(RuleKind.SAME_VALUE)


def test_expressions():
    cfa_expr = b"\x77\xa0\x01\x06"  # breg7 160; deref
    reg_expr = b"\x77\x28"  # breg7 40
    prog = (b"\x0f" + block(cfa_expr) + b"\x10\x08" + block(reg_expr)
            + b"\x16\x09" + block(b"\x31"))
    row = source(prog).find_row(PC)
    assert row.cfa == CfaRule(None, 0, cfa_expr)
    assert row.registers[8] == rule(RuleKind.EXPRESSION, 0, reg_expr)
    assert row.registers[9] == rule(RuleKind.VAL_EXPRESSION, 0, b"\x31")


def test_def_cfa_variants():
    s = source(b"\x41\x0c\x06\x10"  # def_cfa r6+16
               + b"\x41\x0d\x03"  # def_cfa_register r3 (keeps 16)
               + b"\x41\x12\x04" + sleb(-3)  # def_cfa_sf r4, -3*-8 = 24 (data factor!)
               + b"\x41\x13" + sleb(-4)  # def_cfa_offset_sf -4*-8 = 32
               + b"\x41\x0e\x28")  # def_cfa_offset 40 (not factored)
    assert s.find_row(PC + 1).cfa == CfaRule(6, 16, None)
    assert s.find_row(PC + 2).cfa == CfaRule(3, 16, None)
    assert s.find_row(PC + 3).cfa == CfaRule(4, 24, None)
    assert s.find_row(PC + 4).cfa == CfaRule(4, 32, None)
    assert s.find_row(PC + 5).cfa == CfaRule(4, 40, None)


def test_remember_restore_state_including_cfa():
    prog = (b"\x41\x0e\x10\x86\x02"  # +1: cfa 16, r6 at cfa-16
            + b"\x41\x0a"  # +2: remember
            + b"\x0e\x08\xc6"  # cfa 8, restore r6 (no CIE rule: removed)
            + b"\x41\x0b")  # +3: restore_state
    s = source(prog)
    assert 6 in s.find_row(PC + 1).registers
    row = s.find_row(PC + 2)
    assert row.cfa.offset == 8 and 6 not in row.registers
    row = s.find_row(PC + 3)
    assert row.cfa.offset == 16 and row.registers[6] == rule(RuleKind.OFFSET, -16)


def test_nested_remember_state():
    prog = b"\x0a\x0e\x10\x0a\x0e\x18\x41\x0b\x41\x0b"
    s = source(prog)
    assert [s.find_row(PC + i).cfa.offset for i in range(3)] == [24, 16, 8]


def test_restore_state_without_remember():
    with pytest.raises(CfiError):
        source(b"\x0b").find_row(PC)


def test_restore_returns_cie_initial_rule():
    prog = b"\x90\x03\x41\xd0\x41\x06\x10"  # offset r16 -24; +1 restore r16; +1 restore_ext
    s = source(prog)
    assert s.find_row(PC).registers[16] == rule(RuleKind.OFFSET, -24)
    assert s.find_row(PC + 1).registers[16] == rule(RuleKind.OFFSET, -8)
    assert s.find_row(PC + 2).registers[16] == rule(RuleKind.OFFSET, -8)


def test_gnu_args_size_and_nop_are_ignored():
    row = source(b"\x2e\x10\x00\x00\x2e\x80\x01").find_row(PC)
    assert row.cfa == CfaRule(7, 8, None)


def test_cie_advance_is_ignored_and_signal_flag():
    s = source(b"", cie_instructions=b"\x44" + CIE_INIT, augmentation=b"zRS")
    row = s.find_row(PC)
    assert row.signal_frame and row.cfa == CfaRule(7, 8, None)


def test_aarch64_negate_ra_state():
    cie = b"\x0c\x1f\x00"  # def_cfa sp+0
    prog = b"\x2d\x41\x2d\x41\x2d"
    s = source(prog, cie_instructions=cie, arch="aarch64", data_align=-8)
    assert [s.find_row(PC + i).pac_signed_ra for i in range(3)] == [True, False, True]
    assert s.find_row(PC).return_address_column == 30


def test_negate_ra_state_and_state_stack():
    prog = b"\x2d\x0a\x2d\x41\x0b"
    s = source(prog, cie_instructions=b"\x0c\x1f\x00", arch="aarch64")
    assert s.find_row(PC).pac_signed_ra is False
    assert s.find_row(PC + 1).pac_signed_ra is True


def test_0x2d_is_unknown_on_x86_64():
    with pytest.raises(CfiError):
        source(b"\x2d").find_row(PC)


@pytest.mark.parametrize(
    "prog",
    [
        b"\x3f",  # unknown opcode
        b"\x0c\x07",  # truncated def_cfa
        b"\x0f\x10\x77",  # expression block past the end
        b"\x03\x01",  # truncated advance_loc2
        b"\x07" + uleb(10**6),  # register number out of range
        b"\x0a" * 300,  # remember_state stack too deep
    ],
)
def test_malformed_programs(prog):
    with pytest.raises(CfiError):
        source(prog).find_row(PC)


def test_pc_outside_fde_and_gap():
    s = source(b"", length=0x10)
    assert s.find_row(PC - 1) is None
    assert s.find_row(PC + 0x10) is None
    assert s.find_row(PC + 0xF) is not None


def test_program_runs_only_up_to_pc():
    # an invalid instruction after the row that holds the pc is never reached
    s = source(b"\x0e\x10\x44\x3f")
    assert s.find_row(PC + 3).cfa.offset == 16
    with pytest.raises(CfiError):
        s.find_row(PC + 4)


def test_fde_cache_reuses_decoded_program():
    s = source(b"\x0e\x10")
    s.find_row(PC)
    s.find_row(PC + 1)
    info = s._load_fde.cache_info()
    assert info.hits == 1 and info.misses == 1


def test_decoding_is_lazy_and_resumes():
    prog = b"".join(bytes([0x41, 0x0E, 4 * (i + 2)]) for i in range(20))
    s = source(prog)
    s.find_row(PC)
    program = s._load_fde(s.index.find(PC))[1]
    assert not program.done and len(program.ops) == 1  # stopped at the first advance
    assert s.find_row(PC + 5).cfa.offset == 4 * 6
    assert not program.done
    assert s.find_row(PC + 0xFF).cfa.offset == 4 * 21
    assert program.done and len(program.ops) == 40
    assert s.find_row(PC + 3).cfa.offset == 4 * 4  # earlier pcs reuse the decoded prefix
