import struct

import pytest

from tests.unit.cfi.cfi_builder import sleb, uleb
from unwinder.cfi.expr import RegisterLocationError, evaluate
from unwinder.errors import CfiError, FaultError

M = 2**64
REGS = {7: 0x7FFC0000, 16: 0x401005, 6: 0x1000}
MEMORY = {0x7FFC0000 + 160: 0x7FFB0000, 0x2000: 0x1122334455667788}


def regs(n):
    return REGS[n]


def read(addr):
    if addr not in MEMORY:
        raise FaultError(addr, "unmapped")
    return MEMORY[addr]


def ev(expr: bytes, **kw) -> int:
    return evaluate(expr, registers=kw.pop("registers", regs), read_word=read, **kw)


def test_glibc_plt_expression():
    # DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and; DW_OP_lit11; DW_OP_ge;
    # DW_OP_lit3; DW_OP_shl; DW_OP_plus
    expr = b"\x77\x08\x80\x00\x3f\x1a\x3b\x2a\x33\x24\x22"
    rsp = REGS[7]
    for rip, extra in ((0x401005, 0), (0x40100A, 0), (0x40100B, 8), (0x40100F, 8)):
        registers = {7: rsp, 16: rip}.__getitem__
        assert ev(expr, registers=registers) == rsp + 8 + extra


def test_restore_rt_cfa_expression():
    assert ev(b"\x77\xa0\x01\x06") == 0x7FFB0000  # breg7 160; deref


def test_register_rule_expression_with_cfa_pushed():
    assert ev(b"\x23\x10", initial_stack=[0x5000]) == 0x5010  # plus_uconst 16


@pytest.mark.parametrize(
    "expr, value",
    [
        (b"\x30", 0), (b"\x4f", 31),
        (b"\x08\xff", 255), (b"\x09\xff", M - 1),
        (b"\x0a" + struct.pack("<H", 0xFFFE), 0xFFFE), (b"\x0b" + struct.pack("<h", -2), M - 2),
        (b"\x0c" + struct.pack("<I", 7), 7), (b"\x0d" + struct.pack("<i", -7), M - 7),
        (b"\x0e" + struct.pack("<Q", 2**63), 2**63), (b"\x0f" + struct.pack("<q", -1), M - 1),
        (b"\x10" + uleb(300), 300), (b"\x11" + sleb(-300), M - 300),
        (b"\x03" + struct.pack("<Q", 0xDEADBEEF), 0xDEADBEEF),
        (b"\x35\x12\x22", 10),  # lit5 dup plus
        (b"\x35\x36\x13", 5),  # drop
        (b"\x35\x36\x14", 5),  # over
        (b"\x35\x36\x37\x15\x02", 5),  # pick 2
        (b"\x35\x36\x16", 5),  # swap
        (b"\x31\x32\x33\x17", 2),  # rot: 1 2 3 -> 3 1 2 (top 2)
        (b"\x31\x32\x33\x17\x13", 1),
        (b"\x31\x32\x33\x17\x13\x13", 3),
        (b"\x11" + sleb(-5) + b"\x19", 5),  # abs
        (b"\x3c\x3a\x1a", 8),  # and
        (b"\x11" + sleb(-7) + b"\x32\x1b", M - 3),  # div is signed, truncates toward 0
        (b"\x3a\x33\x1c", 7),  # minus
        (b"\x3a\x33\x1d", 1),  # mod
        (b"\x3a\x33\x1e", 30),  # mul
        (b"\x33\x1f", M - 3),  # neg
        (b"\x30\x20", M - 1),  # not
        (b"\x3a\x35\x21", 15),  # or
        (b"\x31\x34\x24", 16),  # shl
        (b"\x11" + sleb(-16) + b"\x32\x25", (M - 16) >> 2),  # shr is logical
        (b"\x11" + sleb(-16) + b"\x32\x26", M - 4),  # shra is arithmetic
        (b"\x3a\x33\x27", 9),  # xor
        (b"\x33\x33\x29", 1), (b"\x33\x34\x2e", 1),  # eq ne
        (b"\x11" + sleb(-1) + b"\x31\x2a", 0),  # ge: -1 >= 1 is false (signed)
        (b"\x32\x31\x2b", 1), (b"\x31\x32\x2c", 1), (b"\x11" + sleb(-1) + b"\x30\x2d", 1),
        (b"\x2f\x01\x00\x31\x32", 2),  # skip over lit1
        (b"\x31\x28\x01\x00\x33\x34", 4),  # bra taken
        (b"\x30\x28\x01\x00\x33\x34", 4),  # bra not taken: lit3 then lit4 on top
        (b"\x30\x28\x01\x00\x33", 3),
        (b"\x96\x33", 3),  # nop
        (b"\x76\x10", 0x1010),  # breg6 16
        (b"\x92\x06" + sleb(-16), 0x1000 - 16),  # bregx r6 -16
        (b"\x0c\x00\x20\x00\x00\x06", 0x1122334455667788),  # deref
        (b"\x0c\x00\x20\x00\x00\x94\x02", 0x7788),  # deref_size 2
        (b"\x33\x9f\x34", 3),  # stack_value ends the expression
    ],
)
def test_operations(expr, value):
    assert ev(expr) == value


def test_backward_branch_loop_is_capped():
    with pytest.raises(CfiError, match="steps"):
        ev(b"\x2f\xfd\xff")  # skip -3: itself, forever


def test_bounded_loop_terminates():
    # counter 3, loop: lit1 minus dup bra back -> ends at 0
    assert ev(b"\x33\x31\x1c\x12\x28\xfa\xff") == 0


@pytest.mark.parametrize(
    "expr",
    [
        b"", b"\x22", b"\x31\x22", b"\x13", b"\x31\x32\x17", b"\x16\x30",  # underflow / empty
        b"\x31\x30\x1b", b"\x31\x30\x1d",  # division by zero
        b"\x0c\x00", b"\x03\x00", b"\x2f\x00", b"\x94", b"\x15",  # truncated operands
        b"\x31\x94\x09", b"\x31\x94\x00",  # bad deref sizes
        b"\x2f\x10\x00", b"\x2f\x00\x80",  # branch outside
        b"\x9c", b"\x91\x00", b"\x99\x00\x00\x00\x00", b"\xe0", b"\x93\x08", b"\xff",
        b"\x30\x15\x05",  # pick below the stack
        b"\x77" + b"\x80" * 30,  # overlong LEB
    ],
)
def test_errors_are_cfi_errors(expr):
    with pytest.raises(CfiError):
        ev(expr)


def test_register_location_is_reported():
    with pytest.raises(RegisterLocationError) as info:
        ev(b"\x56")
    assert info.value.register == 6
    with pytest.raises(RegisterLocationError) as info:
        ev(b"\x90\x21")
    assert info.value.register == 33


def test_callback_errors():
    with pytest.raises(FaultError):
        ev(b"\x31\x06")  # our own errors pass through
    with pytest.raises(CfiError):
        ev(b"\x7f\x00")  # breg15: KeyError from the callback becomes CfiError
    with pytest.raises(CfiError):
        evaluate(b"\x31\x06", registers=regs, read_word=lambda a: {}[a])


def test_stack_overflow_is_capped():
    with pytest.raises(CfiError):
        ev(b"\x30" * 2000, max_steps=10_000)


def test_address_size_4_wraps():
    assert ev(b"\x30\x31\x1c", address_size=4) == 2**32 - 1
    assert ev(b"\x03\x78\x56\x34\x12", address_size=4) == 0x12345678
