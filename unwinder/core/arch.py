"""Register layouts of ``NT_PRSTATUS`` per architecture.

``elf_prstatus`` is the same on every 64-bit Linux architecture up to ``pr_reg`` (offset 112);
``pr_reg`` is the architecture's ``user_regs_struct`` (x86_64) or ``user_pt_regs`` (aarch64),
followed by ``pr_fpvalid`` and padding to 8 bytes.
"""

from __future__ import annotations

from typing import NamedTuple

from unwinder.core.constants import EM


class Arch(NamedTuple):
    """What the core parser needs to know about one architecture."""

    name: str
    machine: EM
    #: register names in ``pr_reg`` order (each a u64)
    registers: tuple[str, ...]
    pc: str
    sp: str
    #: register holding the frame pointer by convention
    fp: str

    @property
    def prstatus_size(self) -> int:
        """Size of ``struct elf_prstatus`` in bytes."""
        return 112 + 8 * len(self.registers) + 8


X86_64 = Arch(
    name="x86_64",
    machine=EM.X86_64,
    registers=(
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
        "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
        "fs_base", "gs_base", "ds", "es", "fs", "gs",
    ),
    pc="rip",
    sp="rsp",
    fp="rbp",
)

AARCH64 = Arch(
    name="aarch64",
    machine=EM.AARCH64,
    registers=(*(f"x{i}" for i in range(31)), "sp", "pc", "pstate"),
    pc="pc",
    sp="sp",
    fp="x29",
)

ARCHES: dict[int, Arch] = {X86_64.machine: X86_64, AARCH64.machine: AARCH64}


def find_arch(machine: int) -> Arch | None:
    """The layout for ELF ``e_machine``, or None when this package does not know it."""
    return ARCHES.get(machine)
