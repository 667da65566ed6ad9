"""Decoding ``DW_CFA_*`` instructions into small tuples, lazily, up to the pc asked for.

Our own rather than pyelftools' instruction parser (construct per instruction, ~25x slower).
A :class:`Program` holds the decoded operations of one CIE or FDE with the alignment factors
already applied. It decodes only until an instruction moves the location past the pc being
looked up and resumes from there when a later pc is asked for, so a cold lookup costs about
half an FDE and a cached FDE costs nothing to decode again.

Decoded operations (first element of each tuple):

====================  ============================================================
``ADVANCE, delta``    ``advance_loc*`` (delta in bytes)
``SET_LOC, address``  ``set_loc``
``DEF_CFA, reg, off`` ``def_cfa``, ``def_cfa_sf``
``CFA_REG, reg``      ``def_cfa_register``
``CFA_OFF, off``      ``def_cfa_offset``, ``def_cfa_offset_sf``
``CFA_EXPR, bytes``   ``def_cfa_expression``
``RULE, reg, rule``   every instruction that sets one register's rule
``RESTORE, reg``      ``restore``, ``restore_extended``
``REMEMBER``          ``remember_state``
``RESTORE_STATE``     ``restore_state``
``NEGATE_RA``         ``AARCH64_negate_ra_state`` (aarch64 only)
``INVALID, why, at``  undecodable bytes: an error only if execution gets this far
====================  ============================================================

``nop`` and ``GNU_args_size`` (the caller's outgoing argument area, irrelevant to unwinding)
are dropped. Opcodes are compared as plain ints here: ``IntEnum`` attribute lookups in this
loop cost more than the decoding itself.
"""

from __future__ import annotations

import struct

from unwinder.cfi.opcodes import DW_CFA, DW_EH_PE
from unwinder.cfi.pointers import read_encoded
from unwinder.cfi.rules import RegisterRule, RuleKind
from unwinder.cfi.section import FrameSection
from unwinder.errors import CfiError
from unwinder.leb128 import read_sleb128, read_uleb128

ADVANCE, SET_LOC, DEF_CFA, CFA_REG, CFA_OFF, CFA_EXPR = range(6)
RULE, RESTORE, REMEMBER, RESTORE_STATE, NEGATE_RA, INVALID = range(6, 12)

#: more instructions than this in one entry is garbage (libc's longest FDE has ~300)
MAX_INSTRUCTIONS = 1 << 16
#: highest DWARF register number accepted (x86_64 and aarch64 stay below 128)
MAX_REGISTER = 4096

Op = tuple

_OFFSET, _VAL_OFFSET, _REGISTER = RuleKind.OFFSET, RuleKind.VAL_OFFSET, RuleKind.REGISTER
_UNDEFINED = RegisterRule(RuleKind.UNDEFINED)
_SAME_VALUE = RegisterRule(RuleKind.SAME_VALUE)
_rule_cache: dict[tuple[int, int], RegisterRule] = {}

# opcodes as plain ints for the decoding loop
_ADVANCE_LOC, _OFFSET_OP, _RESTORE_OP = int(DW_CFA.advance_loc), int(DW_CFA.offset), 0xC0
_DEF_CFA_OFFSET, _NOP, _ARGS_SIZE = 0x0E, 0x00, 0x2E
_REMEMBER, _RESTORE_STATE, _DEF_CFA, _DEF_CFA_REGISTER = 0x0A, 0x0B, 0x0C, 0x0D
_ADVANCE_WIDTHS = {0x02: ("B", 1), 0x03: ("H", 2), 0x04: ("I", 4), 0x1D: ("Q", 8)}


def _rule(kind: RuleKind, value: int) -> RegisterRule:
    """Interned offset/register rules: a few hundred distinct ones cover a whole library."""
    key = (kind, value)
    rule = _rule_cache.get(key)
    if rule is None:
        if len(_rule_cache) > 4096:
            _rule_cache.clear()
        rule = _rule_cache[key] = RegisterRule(kind, value)
    return rule


def _register(value: int, pos: int) -> int:
    if value > MAX_REGISTER:
        raise CfiError(f"register number {value} out of range", pos)
    return value


def _block(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    length, pos = read_uleb128(data, pos, end)
    if pos + length > end:
        raise CfiError("expression block past the end of the entry", pos)
    return bytes(data[pos : pos + length]), pos + length


class Program:
    """The instructions of one CIE or FDE, decoded on demand.

    :param section: the section holding the instructions.
    :param start: section offset of the first instruction.
    :param end: section offset just past the last one.
    :param pc_begin: location of the first row (the FDE's start; 0 for a CIE).
    :param fde_encoding: encoding of ``DW_CFA_set_loc`` operands in ``.eh_frame``; ignored
        for ``.debug_frame``, where they are plain addresses.
    :param arch: ``"x86_64"`` or ``"aarch64"``; opcode 0x2d means negate_ra_state only on
        aarch64 (it is SPARC's GNU_window_save elsewhere).
    """

    __slots__ = ("ops", "_section", "_pos", "_end", "_loc", "_code_alignment",
                 "_data_alignment", "_fde_encoding", "_aarch64", "done")

    def __init__(
        self, section: FrameSection, start: int, end: int, *, pc_begin: int = 0,
        code_alignment: int, data_alignment: int, fde_encoding: int, arch: str,
    ) -> None:
        self.ops: list[Op] = []
        self._section = section
        self._pos = start
        self._end = end
        self._loc = pc_begin
        self._code_alignment = code_alignment
        self._data_alignment = data_alignment
        self._fde_encoding = fde_encoding if section.is_eh else DW_EH_PE.absptr
        self._aarch64 = arch == "aarch64"
        #: every instruction is decoded
        self.done = start >= end

    def ensure(self, pc: int | None) -> list[Op]:
        """Decode until an instruction moves the location past ``pc`` (None: to the end).

        Malformed bytes end the decoding with an ``INVALID`` operation, so that rows before
        them stay usable (libgcc also stops interpreting at the pc).
        """
        if not self.done and (pc is None or self._loc <= pc):
            try:
                self._decode(pc)
            except CfiError as err:
                self.ops.append((INVALID, err.reason, err.offset))
                self.done = True
        return self.ops

    def _decode(self, until: int | None) -> None:  # noqa: C901 - one flat dispatch
        data = self._section.data
        end = self._end
        pos = self._pos
        loc = self._loc
        ops = self.ops
        append = ops.append
        code_alignment = self._code_alignment
        data_alignment = self._data_alignment
        try:
            while pos < end:
                if len(ops) >= MAX_INSTRUCTIONS:
                    raise CfiError("too many CFA instructions", pos)
                opcode = data[pos]
                pos += 1
                high = opcode & 0xC0
                if high == _ADVANCE_LOC:
                    delta = (opcode & 0x3F) * code_alignment
                    append((ADVANCE, delta))
                    loc += delta
                    if until is not None and loc > until:
                        break
                elif high == _OFFSET_OP:
                    value = data[pos] if pos < end else 0x80
                    if value < 0x80:
                        pos += 1
                    else:
                        value, pos = read_uleb128(data, pos, end)
                    append((RULE, opcode & 0x3F, _rule(_OFFSET, value * data_alignment)))
                elif high == _RESTORE_OP:
                    append((RESTORE, opcode & 0x3F))
                elif opcode == _DEF_CFA_OFFSET:
                    value = data[pos] if pos < end else 0x80
                    if value < 0x80:
                        pos += 1
                    else:
                        value, pos = read_uleb128(data, pos, end)
                    append((CFA_OFF, value))
                elif opcode == _NOP:
                    pass
                elif opcode == _REMEMBER:
                    append((REMEMBER,))
                elif opcode == _RESTORE_STATE:
                    append((RESTORE_STATE,))
                elif opcode == _ARGS_SIZE:
                    _, pos = read_uleb128(data, pos, end)
                elif opcode == _DEF_CFA:
                    reg, pos = read_uleb128(data, pos, end)
                    value, pos = read_uleb128(data, pos, end)
                    append((DEF_CFA, _register(reg, pos), value))
                elif opcode == _DEF_CFA_REGISTER:
                    reg, pos = read_uleb128(data, pos, end)
                    append((CFA_REG, _register(reg, pos)))
                elif opcode in _ADVANCE_WIDTHS:
                    code, width = _ADVANCE_WIDTHS[opcode]
                    if pos + width > end:
                        raise CfiError("truncated advance_loc", pos)
                    (delta,) = struct.unpack_from(self._section.endian + code, data, pos)
                    pos += width
                    delta *= code_alignment
                    append((ADVANCE, delta))
                    loc += delta
                    if until is not None and loc > until:
                        break
                elif opcode == DW_CFA.set_loc:
                    loc, pos = read_encoded(self._section, pos, end, self._fde_encoding)
                    append((SET_LOC, loc))
                    if until is not None and loc > until:
                        break
                else:
                    pos = self._decode_rare(opcode, pos)
        finally:
            self._pos = pos
            self._loc = loc
            self.done = pos >= end

    def _decode_rare(self, opcode: int, pos: int) -> int:
        """The instructions producers seldom emit; returns the position after the operands."""
        data = self._section.data
        end = self._end
        append = self.ops.append
        factor = self._data_alignment
        if opcode in (DW_CFA.offset_extended, DW_CFA.val_offset):
            reg, pos = read_uleb128(data, pos, end)
            value, pos = read_uleb128(data, pos, end)
            kind = _OFFSET if opcode == DW_CFA.offset_extended else _VAL_OFFSET
            append((RULE, _register(reg, pos), _rule(kind, value * factor)))
        elif opcode in (DW_CFA.offset_extended_sf, DW_CFA.val_offset_sf):
            reg, pos = read_uleb128(data, pos, end)
            value, pos = read_sleb128(data, pos, end)
            kind = _OFFSET if opcode == DW_CFA.offset_extended_sf else _VAL_OFFSET
            append((RULE, _register(reg, pos), _rule(kind, value * factor)))
        elif opcode == DW_CFA.GNU_negative_offset_extended:
            reg, pos = read_uleb128(data, pos, end)
            value, pos = read_uleb128(data, pos, end)
            append((RULE, _register(reg, pos), _rule(_OFFSET, -value * factor)))
        elif opcode == DW_CFA.restore_extended:
            reg, pos = read_uleb128(data, pos, end)
            append((RESTORE, _register(reg, pos)))
        elif opcode in (DW_CFA.undefined, DW_CFA.same_value):
            reg, pos = read_uleb128(data, pos, end)
            rule = _UNDEFINED if opcode == DW_CFA.undefined else _SAME_VALUE
            append((RULE, _register(reg, pos), rule))
        elif opcode == DW_CFA.register:
            reg, pos = read_uleb128(data, pos, end)
            other, pos = read_uleb128(data, pos, end)
            append((RULE, _register(reg, pos), _rule(_REGISTER, _register(other, pos))))
        elif opcode == DW_CFA.def_cfa_sf:  # factored by the DATA alignment factor
            reg, pos = read_uleb128(data, pos, end)
            value, pos = read_sleb128(data, pos, end)
            append((DEF_CFA, _register(reg, pos), value * factor))
        elif opcode == DW_CFA.def_cfa_offset_sf:
            value, pos = read_sleb128(data, pos, end)
            append((CFA_OFF, value * factor))
        elif opcode == DW_CFA.def_cfa_expression:
            expression, pos = _block(data, pos, end)
            append((CFA_EXPR, expression))
        elif opcode in (DW_CFA.expression, DW_CFA.val_expression):
            reg, pos = read_uleb128(data, pos, end)
            expression, pos = _block(data, pos, end)
            kind = RuleKind.EXPRESSION if opcode == DW_CFA.expression else RuleKind.VAL_EXPRESSION
            append((RULE, _register(reg, pos), RegisterRule(kind, 0, expression)))
        elif opcode == DW_CFA.AARCH64_negate_ra_state and self._aarch64:
            append((NEGATE_RA,))
        else:
            arch = "aarch64" if self._aarch64 else "x86_64"
            raise CfiError(f"unknown CFA instruction {opcode:#04x} for {arch}", pos - 1)
        return pos
