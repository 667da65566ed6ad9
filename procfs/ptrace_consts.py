"""ptrace(2) constants as they appear in ``<linux/ptrace.h>`` and ``<linux/elf.h>``.

The request numbers are the architecture-independent ones (x86_64 and aarch64 share them);
``PTRACE_GETREGS`` and friends are deliberately absent: aarch64 never had them, so every
register read goes through ``PTRACE_GETREGSET``.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class PtraceRequest(IntEnum):
    """``enum __ptrace_request``: the first argument of ptrace(2)."""

    TRACEME = 0
    PEEKTEXT = 1
    PEEKDATA = 2
    PEEKUSER = 3
    POKETEXT = 4
    POKEDATA = 5
    CONT = 7
    KILL = 8
    SINGLESTEP = 9
    ATTACH = 16
    DETACH = 17
    SYSCALL = 24
    SETOPTIONS = 0x4200
    GETEVENTMSG = 0x4201
    GETSIGINFO = 0x4202
    SETSIGINFO = 0x4203
    GETREGSET = 0x4204
    SETREGSET = 0x4205
    SEIZE = 0x4206
    INTERRUPT = 0x4207
    LISTEN = 0x4208
    PEEKSIGINFO = 0x4209


class PtraceOptions(IntFlag):
    """``PTRACE_O_*``: options given to ``PTRACE_SEIZE`` or ``PTRACE_SETOPTIONS``."""

    TRACESYSGOOD = 0x01
    TRACEFORK = 0x02
    TRACEVFORK = 0x04
    TRACECLONE = 0x08
    TRACEEXEC = 0x10
    TRACEVFORKDONE = 0x20
    TRACEEXIT = 0x40
    TRACESECCOMP = 0x80
    EXITKILL = 0x100000
    SUSPEND_SECCOMP = 0x200000


class PtraceEvent(IntEnum):
    """``PTRACE_EVENT_*``: bits 16..23 of a wait status for an event stop."""

    FORK = 1
    VFORK = 2
    CLONE = 3
    EXEC = 4
    VFORK_DONE = 5
    EXIT = 6
    SECCOMP = 7
    STOP = 128


class NT(IntEnum):
    """ELF note types used as the regset selector of ``PTRACE_GETREGSET``."""

    PRSTATUS = 1
    PRFPREG = 2  # NT_FPREGSET: FXSAVE (512 B) on x86_64, user_fpsimd_state (528 B) on aarch64
    X86_XSTATE = 0x202
    ARM_TLS = 0x401
    ARM_HW_BREAK = 0x402
    ARM_HW_WATCH = 0x403
    ARM_SYSTEM_CALL = 0x404
    ARM_SVE = 0x405
    ARM_PAC_MASK = 0x406


WALL = 0x40000000
"""``__WALL`` for waitpid(2): wait for every child, threads and clone children included."""
