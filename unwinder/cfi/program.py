"""Running CFA programs: the CIE's initial instructions once, an FDE's up to one pc.

Our own rather than pyelftools' ``get_decoded()``, which builds the whole table of an FDE
(every row, deep-copied), crashes on ``DW_CFA_GNU_args_size`` and scales ``def_cfa_sf`` by the
code alignment factor. Here the operations decoded by :mod:`unwinder.cfi.decode` are executed
until the first row past the pc, and only that row is built.

``remember_state`` saves the CFA rule and the RA-signing state along with the register rules,
as libgcc, gdb and elfutils do (DWARF 5 §6.4.2.4 names "the set of rules for every register";
the CFA is one of them).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

from unwinder.cfi.decode import (
    ADVANCE,
    CFA_EXPR,
    CFA_OFF,
    CFA_REG,
    DEF_CFA,
    INVALID,
    NEGATE_RA,
    REMEMBER,
    RESTORE,
    RESTORE_STATE,
    RULE,
    SET_LOC,
    Program,
)
from unwinder.cfi.rules import CfaRule, CfiRow, RegisterRule
from unwinder.errors import CfiError

#: depth of the remember_state stack
MAX_STATE_STACK = 256


class InitialState(NamedTuple):
    """The rules after a CIE's initial instructions: the start of every FDE's program."""

    cfa: CfaRule
    registers: MappingProxyType
    pac_signed_ra: bool


_NO_CFA = CfaRule(None, 0, None)


def run_initial(program: Program) -> InitialState:
    """Run a CIE's initial instructions to the end (location operations are ignored).

    :raises CfiError: the instructions are malformed.
    """
    ops = program.ensure(None)
    cfa, registers, pac = _execute(ops, _NO_CFA, {}, False, {}, None, 0, 0)[:3]
    return InitialState(cfa, MappingProxyType(registers), pac)


def run_to_pc(
    program: Program,
    initial: InitialState,
    *,
    pc: int,
    pc_begin: int,
    pc_end: int,
    return_address_column: int,
    signal_frame: bool,
) -> CfiRow:
    """Run an FDE's instructions from ``initial`` up to the row containing ``pc``.

    :param pc: a link-time address in ``[pc_begin, pc_end)``.
    :raises CfiError: malformed instructions before the row, ``restore_state`` with nothing
        remembered, ``set_loc`` going backwards, a too deep state stack.
    """
    cfa, registers, pac, start, end = _execute(
        program.ensure(pc), initial.cfa, dict(initial.registers), initial.pac_signed_ra,
        initial.registers, pc, pc_begin, pc_end,
    )
    return CfiRow(
        start=start,
        end=end,
        cfa=cfa,
        registers=MappingProxyType(registers),
        return_address_column=return_address_column,
        signal_frame=signal_frame,
        pac_signed_ra=pac,
    )


def _execute(
    ops: list,
    cfa: CfaRule,
    registers: dict[int, RegisterRule],
    pac: bool,
    cie_registers,
    pc: int | None,
    loc: int,
    end: int,
) -> tuple[CfaRule, dict[int, RegisterRule], bool, int, int]:
    """The interpreter; ``pc`` None runs every operation and ignores locations."""
    stack: list[tuple[CfaRule, dict[int, RegisterRule], bool]] = []
    for op in ops:
        code = op[0]
        if code == RULE:
            registers[op[1]] = op[2]
        elif code == CFA_OFF:
            if cfa.expression is None:
                cfa = CfaRule(cfa.register, op[1], None)
        elif code == ADVANCE:
            if pc is not None:
                new = loc + op[1]
                if new > pc:
                    return cfa, registers, pac, loc, min(new, end)
                loc = new
        elif code == DEF_CFA:
            cfa = CfaRule(op[1], op[2], None)
        elif code == CFA_REG:
            cfa = CfaRule(op[1], cfa.offset if cfa.expression is None else 0, None)
        elif code == RESTORE:
            rule = cie_registers.get(op[1])
            if rule is None:
                registers.pop(op[1], None)
            else:
                registers[op[1]] = rule
        elif code == REMEMBER:
            if len(stack) >= MAX_STATE_STACK:
                raise CfiError("remember_state stack too deep")
            stack.append((cfa, registers.copy(), pac))
        elif code == RESTORE_STATE:
            if not stack:
                raise CfiError("restore_state without remember_state")
            cfa, registers, pac = stack.pop()
        elif code == CFA_EXPR:
            cfa = CfaRule(None, 0, op[1])
        elif code == SET_LOC:
            if pc is not None:
                new = op[1]
                if new < loc:
                    raise CfiError(f"set_loc {new:#x} goes backwards from {loc:#x}")
                if new > pc:
                    return cfa, registers, pac, loc, min(new, end)
                loc = new
        elif code == NEGATE_RA:
            pac = not pac
        elif code == INVALID:
            raise CfiError(op[1], op[2])
    return cfa, registers, pac, loc, end
