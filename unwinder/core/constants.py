"""ELF constants used by Linux core files, named as in ``<elf.h>`` and the kernel."""

from __future__ import annotations

from enum import IntEnum, IntFlag


class ELFCLASS(IntEnum):
    NONE = 0
    ELF32 = 1
    ELF64 = 2


class ELFDATA(IntEnum):
    NONE = 0
    LSB = 1
    MSB = 2


class ET(IntEnum):
    NONE = 0
    REL = 1
    EXEC = 2
    DYN = 3
    CORE = 4


class EM(IntEnum):
    X86_64 = 62
    AARCH64 = 183


class PT(IntEnum):
    NULL = 0
    LOAD = 1
    DYNAMIC = 2
    INTERP = 3
    NOTE = 4
    PHDR = 6
    GNU_EH_FRAME = 0x6474E550
    GNU_STACK = 0x6474E551
    AARCH64_MEMTAG_MTE = 0x70000002


class PF(IntFlag):
    X = 1
    W = 2
    R = 4


class NT(IntEnum):
    """Note types of core files (name ``CORE`` or ``LINUX``)."""

    PRSTATUS = 1
    PRFPREG = 2
    PRPSINFO = 3
    AUXV = 6
    X86_IOPERM = 0x201
    X86_XSTATE = 0x202
    X86_SHSTK = 0x204
    X86_XSAVE_LAYOUT = 0x205
    ARM_TLS = 0x401
    ARM_HW_BREAK = 0x402
    ARM_HW_WATCH = 0x403
    ARM_SYSTEM_CALL = 0x404
    ARM_SVE = 0x405
    ARM_PAC_MASK = 0x406
    ARM_TAGGED_ADDR_CTRL = 0x409
    ARM_PAC_ENABLED_KEYS = 0x40A
    SIGINFO = 0x53494749
    FILE = 0x46494C45


#: ``NT_FPREGSET`` is the name gdb and readelf use for note type 2.
NT_FPREGSET = NT.PRFPREG


class AT(IntEnum):
    """Auxiliary vector keys (``<elf.h>``)."""

    NULL = 0
    IGNORE = 1
    EXECFD = 2
    PHDR = 3
    PHENT = 4
    PHNUM = 5
    PAGESZ = 6
    BASE = 7
    FLAGS = 8
    ENTRY = 9
    NOTELF = 10
    UID = 11
    EUID = 12
    GID = 13
    EGID = 14
    PLATFORM = 15
    HWCAP = 16
    CLKTCK = 17
    SECURE = 23
    BASE_PLATFORM = 24
    RANDOM = 25
    HWCAP2 = 26
    RSEQ_FEATURE_SIZE = 27
    RSEQ_ALIGN = 28
    HWCAP3 = 29
    HWCAP4 = 30
    EXECFN = 31
    SYSINFO = 32
    SYSINFO_EHDR = 33
    MINSIGSTKSZ = 51


#: ``e_phnum`` value meaning "the real count is in section header 0's ``sh_info``".
PN_XNUM = 0xFFFF

ELF_MAGIC = b"\x7fELF"
EHDR64_SIZE = 64
PHDR64_SIZE = 56
SHDR64_SIZE = 64
NOTE_ALIGN = 4

#: Process-wide notes; every other note before the first ``NT_PRSTATUS`` of the next thread
#: belongs to the current thread.
PROCESS_NOTES = frozenset({NT.PRPSINFO, NT.SIGINFO, NT.AUXV, NT.FILE})
#: Notes the kernel writes once, after all threads (``elf_core_write_extra_notes``-style).
TRAILING_NOTES = frozenset({NT.X86_XSAVE_LAYOUT})
