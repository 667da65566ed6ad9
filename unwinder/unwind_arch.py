"""What the unwinder must know about an architecture beyond DWARF: register numbers, the ABI's
callee-saved set, how a frame-pointer record looks, the signal trampoline's code and the
layout of the ``ucontext`` it leaves on the stack, and which bits of a return address are real.

Sources: the psABIs; gdb ``amd64_linux_sc_reg_offset``; libunwind ``ucontext_i.h``;
``research/unwinding.md`` §1.4 and §5.
"""

from __future__ import annotations

from typing import NamedTuple

from unwinder.core.arch import Arch


class UnwindArch(NamedTuple):
    name: str
    #: prstatus register name -> DWARF register number
    dwarf_numbers: dict[str, int]
    sp: int
    fp: int
    #: column holding the return address in CFI (and the pc of the caller)
    ra: int
    #: registers a callee must preserve: they keep their value in the caller unless CFI says
    callee_saved: frozenset[int]
    #: the return address is pushed on the stack by the call (x86) or kept in a register (arm)
    ra_on_stack: bool
    #: signal trampoline code, and the byte offsets into it at which a pc may sit
    sigreturn_code: bytes
    sigreturn_pc_offsets: tuple[int, ...]
    #: offset from the trampoline frame's SP to ``uc_mcontext`` register slots: DWARF number ->
    #: offset, plus where the interrupted pc is
    sigcontext_registers: dict[int, int]
    sigcontext_pc: int
    #: mask applied to return addresses (aarch64 PAC bits live above the 48-bit user VA)
    pc_mask: int = (1 << 64) - 1

    def registers_from_prstatus(self, values: dict[str, int]) -> dict[int, int]:
        return {self.dwarf_numbers[name]: value for name, value in values.items()
                if name in self.dwarf_numbers}


_X86_64_DWARF = {"rax": 0, "rdx": 1, "rcx": 2, "rbx": 3, "rsi": 4, "rdi": 5, "rbp": 6, "rsp": 7,
                 **{f"r{i}": i for i in range(8, 16)}}
# uc_mcontext.gregs starts 40 bytes into the ucontext at the trampoline's SP; order
# r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip.
_X86_64_GREGS = ["r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx",
                 "rdx", "rax", "rcx", "rsp"]

X86_64 = UnwindArch(
    name="x86_64",
    dwarf_numbers=_X86_64_DWARF,
    sp=7,
    fp=6,
    ra=16,
    callee_saved=frozenset({3, 6, 12, 13, 14, 15}),  # rbx rbp r12-r15
    ra_on_stack=True,
    sigreturn_code=bytes.fromhex("48c7c00f0000000f05"),  # mov $15,%rax; syscall
    sigreturn_pc_offsets=(0, 7),
    sigcontext_registers={_X86_64_DWARF[n]: 40 + 8 * i for i, n in enumerate(_X86_64_GREGS)},
    sigcontext_pc=40 + 8 * 16,
)

# aarch64 rt_sigframe: siginfo (128) then ucontext; uc_mcontext at +0xb0 in the ucontext;
# sigcontext: fault_address (8) then regs[31], sp, pc.
_A64_MCONTEXT = 128 + 0xB0
AARCH64 = UnwindArch(
    name="aarch64",
    dwarf_numbers={**{f"x{i}": i for i in range(31)}, "sp": 31},
    sp=31,
    fp=29,
    ra=30,
    callee_saved=frozenset({*range(19, 31)}),
    ra_on_stack=False,
    sigreturn_code=bytes.fromhex("681180d2010000d4"),  # mov x8,#139; svc #0
    sigreturn_pc_offsets=(0, 4),
    sigcontext_registers={**{i: _A64_MCONTEXT + 8 + 8 * i for i in range(31)},
                          31: _A64_MCONTEXT + 8 + 8 * 31},
    sigcontext_pc=_A64_MCONTEXT + 8 + 8 * 32,
    pc_mask=(1 << 48) - 1,
)

_BY_NAME = {X86_64.name: X86_64, AARCH64.name: AARCH64}


def unwind_arch_for(arch: Arch) -> UnwindArch | None:
    return _BY_NAME.get(arch.name)
