"""The result of a CFI lookup: how to recover the CFA and each register at one pc.

Plain frozen records; the decoder in :mod:`unwinder.cfi.program` builds them, the unwinder
consumes them. Register numbers are DWARF numbers (x86_64: 0-16, with 16 the return address
"rip" column; aarch64: x0-x30 = 0-30, sp = 31).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType
from typing import NamedTuple


class RuleKind(IntEnum):
    """DWARF 5 §6.4.1 register rules."""

    #: the register has no recoverable value in the caller (for the RA column: end of stack)
    UNDEFINED = 0
    #: the caller's value is the callee's value
    SAME_VALUE = 1
    #: saved at address CFA + ``value``
    OFFSET = 2
    #: the value is CFA + ``value``
    VAL_OFFSET = 3
    #: saved in register ``value``
    REGISTER = 4
    #: saved at the address computed by ``expression`` (CFA pushed first)
    EXPRESSION = 5
    #: the value is computed by ``expression`` (CFA pushed first)
    VAL_EXPRESSION = 6


class RegisterRule(NamedTuple):
    """How to recover one register of the caller.

    :ivar kind: the rule.
    :ivar value: byte offset from the CFA (``OFFSET``/``VAL_OFFSET``, already multiplied by
        the data alignment factor) or a DWARF register number (``REGISTER``); 0 otherwise.
    :ivar expression: DWARF expression bytes (``EXPRESSION``/``VAL_EXPRESSION``).
    """

    kind: RuleKind
    value: int = 0
    expression: bytes = b""


class CfaRule(NamedTuple):
    """How to compute the canonical frame address: ``register + offset`` or an expression.

    Exactly one form is set: ``register`` (with ``offset``, in bytes) or ``expression``
    (with ``register`` None and ``offset`` 0). A CIE that never defines the CFA leaves
    ``register`` None and ``expression`` None: such a row cannot be used to unwind.
    """

    register: int | None
    offset: int
    expression: bytes | None = None


class CfiRow(NamedTuple):
    """The unwind rules that hold for every pc in ``[start, end)``.

    :ivar start: first pc of the row, a link-time address of the module.
    :ivar end: first pc after the row (the next row's start or the FDE's end).
    :ivar cfa: the CFA rule.
    :ivar registers: explicit rules only, keyed by DWARF register number; a register missing
        here follows the ABI's default (callee-saved: same value, others: undefined).
    :ivar return_address_column: DWARF register holding the return address (x86_64 16,
        aarch64 30).
    :ivar signal_frame: the CIE has the ``S`` augmentation: this is a signal trampoline, the
        caller's pc is exact (no pc-1 rule).
    :ivar pac_signed_ra: aarch64 only: the return address is PAC-signed at this pc (the
        ``DW_CFA_AARCH64_negate_ra_state`` toggles up to here were odd).
    """

    start: int
    end: int
    cfa: CfaRule
    registers: Mapping[int, RegisterRule]
    return_address_column: int
    signal_frame: bool
    pac_signed_ra: bool = False

    def __hash__(self) -> int:  # the registers' mapping is not hashable: rows hash without it
        return hash((self.start, self.end, self.cfa, self.return_address_column,
                     self.signal_frame, self.pac_signed_ra))

    @property
    def return_address_rule(self) -> RegisterRule | None:
        """The rule of the return-address column, None when it has no explicit rule."""
        return self.registers.get(self.return_address_column)


EMPTY_REGISTERS: Mapping[int, RegisterRule] = MappingProxyType({})
