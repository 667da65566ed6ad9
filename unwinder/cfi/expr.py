"""DWARF expressions in CFI (DWARF 5 §2.5): the stack machine that computes CFAs and addresses.

Our own: pyelftools' ``DWARFExprParser`` only parses expressions into op lists. This evaluates
what gcc, glibc and the kernel emit in CFI -- the PLT stub CFA
(``breg7 8; breg16 0; lit15; and; lit11; ge; lit3; shl; plus``), ``__restore_rt``'s
``breg7 160; deref`` -- and the rest of the DWARF 5 arithmetic, with every operand, branch and
memory access checked. Values are unsigned, wrapped to the address size; comparisons and
``div`` are signed, as the spec requires for the generic type.

Operations that need context an unwinder has no use for (``fbreg``, ``call*``, TLS, object
addresses, pieces, typed and GNU extension ops) raise :class:`CfiError`. ``DW_OP_reg*`` names a
register *location*, which is not a value: it raises :class:`RegisterLocationError`, carrying
the register number, so a caller evaluating a ``val_expression`` may take the register's value
instead.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from unwinder.cfi.opcodes import DW_OP
from unwinder.errors import CfiError, UnwindError
from unwinder.leb128 import read_sleb128, read_uleb128

#: deepest stack allowed (elfutils allows 0x100 for its own reasons; anything deep is garbage)
MAX_STACK = 1024


class RegisterLocationError(CfiError):
    """The expression is a register location description (``DW_OP_reg*``), not a value.

    :ivar register: the DWARF register number named.
    """

    def __init__(self, register: int, offset: int) -> None:
        self.register = register
        super().__init__(f"register location DW_OP_reg {register} is not a value", offset)


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


_BINARY: dict[int, Callable[[int, int, int], int]] = {
    # (a, b, bits) with a the second entry and b the top of the stack
    DW_OP.and_: lambda a, b, bits: a & b,
    DW_OP.minus: lambda a, b, bits: a - b,
    DW_OP.mul: lambda a, b, bits: a * b,
    DW_OP.or_: lambda a, b, bits: a | b,
    DW_OP.plus: lambda a, b, bits: a + b,
    DW_OP.shl: lambda a, b, bits: a << b if b < bits else 0,
    DW_OP.shr: lambda a, b, bits: a >> b if b < bits else 0,
    DW_OP.shra: lambda a, b, bits: _signed(a, bits) >> min(b, bits),
    DW_OP.xor: lambda a, b, bits: a ^ b,
    DW_OP.eq: lambda a, b, bits: int(a == b),
    DW_OP.ne: lambda a, b, bits: int(a != b),
    DW_OP.ge: lambda a, b, bits: int(_signed(a, bits) >= _signed(b, bits)),
    DW_OP.gt: lambda a, b, bits: int(_signed(a, bits) > _signed(b, bits)),
    DW_OP.le: lambda a, b, bits: int(_signed(a, bits) <= _signed(b, bits)),
    DW_OP.lt: lambda a, b, bits: int(_signed(a, bits) < _signed(b, bits)),
}

#: fixed-size constants: opcode -> (struct code, size)
_CONSTANTS = {
    DW_OP.const1u: ("B", 1), DW_OP.const1s: ("b", 1),
    DW_OP.const2u: ("<H", 2), DW_OP.const2s: ("<h", 2),
    DW_OP.const4u: ("<I", 4), DW_OP.const4s: ("<i", 4),
    DW_OP.const8u: ("<Q", 8), DW_OP.const8s: ("<q", 8),
}


def evaluate(
    expression: bytes,
    *,
    registers: Callable[[int], int],
    read_word: Callable[[int], int],
    initial_stack: Sequence[int] = (),
    address_size: int = 8,
    max_steps: int = 4096,
) -> int:
    """Run a DWARF expression and return the value on top of the stack.

    :param expression: the expression bytes (from a CFA or register rule).
    :param registers: returns the value of a DWARF register, or raises (an
        :class:`UnwindError` passes through; ``LookupError``/``ValueError`` become
        :class:`CfiError`).
    :param read_word: reads an address-sized little-endian word, or raises likewise.
    :param initial_stack: pushed first, bottom first (the CFA for register rules).
    :param address_size: bytes in an address; results wrap to it.
    :param max_steps: operations executed before giving up (backward branches can loop).
    :returns: the unsigned result.
    :raises CfiError: malformed or unsupported expressions, stack underflow or overflow, too
        many steps, division by zero.
    """
    bits = 8 * address_size
    mask = (1 << bits) - 1
    stack = [value & mask for value in initial_stack]
    push = stack.append
    end = len(expression)
    pos = 0
    steps = 0
    data = expression
    try:
        while pos < end:
            steps += 1
            if steps > max_steps:
                raise CfiError(f"expression exceeds {max_steps} steps", pos)
            if len(stack) > MAX_STACK:
                raise CfiError("expression stack overflow", pos)
            op_pos = pos
            op = data[pos]
            pos += 1
            if DW_OP.lit0 <= op <= DW_OP.lit31:
                push(op - DW_OP.lit0)
            elif DW_OP.breg0 <= op <= DW_OP.breg31:
                offset, pos = read_sleb128(data, pos, end)
                push((_register(registers, op - DW_OP.breg0, op_pos) + offset) & mask)
            elif op in _BINARY:
                b = stack.pop()
                a = stack.pop()
                push(_BINARY[op](a, b, bits) & mask)
            elif op == DW_OP.deref:
                push(_read(read_word, stack.pop(), op_pos) & mask)
            elif op == DW_OP.deref_size:
                _need(pos + 1, end, op_pos)
                size = data[pos]
                pos += 1
                if not 1 <= size <= address_size:
                    raise CfiError(f"deref_size {size}", op_pos)
                push(_read(read_word, stack.pop(), op_pos) & ((1 << (8 * size)) - 1))
            elif op == DW_OP.bregx:
                reg, pos = read_uleb128(data, pos, end)
                offset, pos = read_sleb128(data, pos, end)
                push((_register(registers, reg, op_pos) + offset) & mask)
            elif op == DW_OP.plus_uconst:
                value, pos = read_uleb128(data, pos, end)
                push((stack.pop() + value) & mask)
            elif op in _CONSTANTS:
                code, width = _CONSTANTS[op]
                _need(pos + width, end, op_pos)
                (value,) = struct.unpack_from(code, data, pos)
                pos += width
                push(value & mask)
            elif op == DW_OP.constu:
                value, pos = read_uleb128(data, pos, end)
                push(value & mask)
            elif op == DW_OP.consts:
                value, pos = read_sleb128(data, pos, end)
                push(value & mask)
            elif op == DW_OP.addr:
                _need(pos + address_size, end, op_pos)
                value = int.from_bytes(data[pos : pos + address_size], "little")
                pos += address_size
                push(value)
            elif op == DW_OP.dup:
                push(stack[-1])
            elif op == DW_OP.drop:
                stack.pop()
            elif op == DW_OP.over:
                push(stack[-2])
            elif op == DW_OP.pick:
                _need(pos + 1, end, op_pos)
                index = data[pos]
                pos += 1
                if index >= len(stack):
                    raise CfiError(f"pick {index} below the stack", op_pos)
                push(stack[-1 - index])
            elif op == DW_OP.swap:
                stack[-1], stack[-2] = stack[-2], stack[-1]
            elif op == DW_OP.rot:
                stack[-1], stack[-2], stack[-3] = stack[-2], stack[-3], stack[-1]
            elif op == DW_OP.abs:
                push(abs(_signed(stack.pop(), bits)) & mask)
            elif op == DW_OP.neg:
                push(-_signed(stack.pop(), bits) & mask)
            elif op == DW_OP.not_:
                push(~stack.pop() & mask)
            elif op in (DW_OP.div, DW_OP.mod):
                b = stack.pop()
                a = stack.pop()
                if b == 0:
                    raise CfiError("division by zero", op_pos)
                if op == DW_OP.mod:
                    push(a % b)
                else:
                    sa, sb = _signed(a, bits), _signed(b, bits)
                    quotient = abs(sa) // abs(sb)
                    push((quotient if (sa < 0) == (sb < 0) else -quotient) & mask)
            elif op in (DW_OP.skip, DW_OP.bra):
                _need(pos + 2, end, op_pos)
                (delta,) = struct.unpack_from("<h", data, pos)
                pos += 2
                if op == DW_OP.skip or stack.pop() != 0:
                    pos += delta
                    if not 0 <= pos <= end:
                        raise CfiError(f"branch to {pos} outside the expression", op_pos)
            elif op == DW_OP.nop:
                pass
            elif op == DW_OP.stack_value:
                break
            elif DW_OP.reg0 <= op <= DW_OP.reg31:
                raise RegisterLocationError(op - DW_OP.reg0, op_pos)
            elif op == DW_OP.regx:
                reg, pos = read_uleb128(data, pos, end)
                raise RegisterLocationError(reg, op_pos)
            elif op == DW_OP.call_frame_cfa:
                raise CfiError("DW_OP_call_frame_cfa inside call frame information", op_pos)
            else:
                raise CfiError(f"unsupported DWARF operation {op:#04x}", op_pos)
    except IndexError as err:  # a pop or peek below the bottom of the stack
        raise CfiError("expression stack underflow", op_pos) from err
    if not stack:
        raise CfiError("expression leaves an empty stack", pos)
    return stack[-1] & mask


def _need(required_end: int, end: int, pos: int) -> None:
    if required_end > end:
        raise CfiError("truncated expression operand", pos)


def _register(registers: Callable[[int], int], number: int, pos: int) -> int:
    try:
        return registers(number)
    except UnwindError:
        raise
    except (LookupError, ValueError) as err:
        raise CfiError(f"register {number} unavailable: {err!r}", pos) from err


def _read(read_word: Callable[[int], int], address: int, pos: int) -> int:
    try:
        return read_word(address)
    except UnwindError:
        raise
    except (LookupError, ValueError, OSError) as err:
        raise CfiError(f"cannot read memory at {address:#x}: {err!r}", pos) from err
