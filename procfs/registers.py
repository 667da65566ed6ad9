"""Pure decoding of the general-purpose register set (``NT_PRSTATUS`` regset) per architecture.

``PTRACE_GETREGSET(NT_PRSTATUS)`` returns the bare ``user_regs_struct`` (x86_64, 27 × u64,
216 B) or ``user_pt_regs`` (aarch64, 34 × u64, 272 B) — the same bytes a core file keeps in
``elf_prstatus.pr_reg`` at offset 112.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from types import MappingProxyType

from procfs.errors import ParseError, ProcfsError

X86_64_REGISTERS: tuple[str, ...] = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
    "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
    "fs_base", "gs_base", "ds", "es", "fs", "gs",
)  # fmt: skip
"""Field order of x86_64 ``struct user_regs_struct`` (``arch/x86/include/asm/user_64.h``)."""

AARCH64_REGISTERS: tuple[str, ...] = (*(f"x{i}" for i in range(31)), "sp", "pc", "pstate")
"""Field order of aarch64 ``struct user_pt_regs`` (``arch/arm64/include/uapi/asm/ptrace.h``)."""

REGISTER_NAMES: dict[str, tuple[str, ...]] = {
    "x86_64": X86_64_REGISTERS,
    "aarch64": AARCH64_REGISTERS,
}
"""Register names per architecture, as ``platform.machine()`` spells it on Linux."""

# Which name plays which role, for code that is architecture-neutral.
_PC = {"x86_64": "rip", "aarch64": "pc"}
_SP = {"x86_64": "rsp", "aarch64": "sp"}


def normalize_machine(machine: str) -> str:
    """``platform.machine()`` → the key used here (``arm64`` is Apple's name for aarch64)."""
    return "aarch64" if machine in ("aarch64", "arm64") else machine


@dataclass(frozen=True)
class Registers:
    """General-purpose registers of one thread.

    ``raw`` holds the kernel's bytes unchanged (usable as ``pr_reg`` of a core); ``values`` maps
    each register name to its unsigned 64-bit value, in the kernel's field order.
    """

    machine: str
    raw: bytes
    values: MappingProxyType[str, int] = field(repr=False)

    @property
    def pc(self) -> int:
        """The program counter (``rip``/``pc``), a virtual address."""
        return self.values[_PC[self.machine]]

    @property
    def sp(self) -> int:
        """The stack pointer (``rsp``/``sp``), a virtual address."""
        return self.values[_SP[self.machine]]

    def __getitem__(self, name: str) -> int:
        return self.values[name]


def decode_registers(raw: bytes, machine: str) -> Registers:
    """Decode a ``user_regs_struct``/``user_pt_regs`` blob (little-endian u64 fields).

    :param raw: exactly the bytes of the regset (216 B on x86_64, 272 B on aarch64).
    :param machine: ``x86_64`` or ``aarch64`` (``arm64`` accepted).
    :raises ProcfsError: unknown architecture; :class:`ParseError` for a blob of the wrong size.
    """
    machine = normalize_machine(machine)
    names = REGISTER_NAMES.get(machine)
    if names is None:
        raise ProcfsError(f"no register layout for architecture {machine!r}")
    if len(raw) != 8 * len(names):
        raise ParseError("registers", f"{machine} set is {8 * len(names)} bytes, got {len(raw)}")
    words = struct.unpack(f"<{len(names)}Q", raw)
    return Registers(machine, bytes(raw), MappingProxyType(dict(zip(names, words, strict=True))))


def regset_size(machine: str) -> int:
    """Size in bytes of the general-purpose regset of ``machine``."""
    names = REGISTER_NAMES.get(normalize_machine(machine))
    if names is None:
        raise ProcfsError(f"no register layout for architecture {machine!r}")
    return 8 * len(names)
