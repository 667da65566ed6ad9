"""Construct schemas of the note payloads of a Linux core, as the kernel's structs read.

They define the bytes :mod:`unwinder.core.notes` builds (``build_*``); its ``parse_*`` read the
same layouts with :mod:`struct` (construct costs ~15 ms to import, a third of a warm
``coredumpd backtrace``), and the unit tests check both agree. Never ``.compile()``d: compiled
parsers skip checks on untrusted bytes. Layouts: ``include/uapi/linux/elfcore.h``.
"""

from __future__ import annotations

from functools import cache

from construct import (
    Array,
    Bytes,
    GreedyBytes,
    GreedyRange,
    Int8sl,
    Int8ul,
    Int16sl,
    Int32sl,
    Int32ul,
    Int64sl,
    Int64ul,
    NullTerminated,
    Padding,
    Struct,
    Terminated,
    this,
)

TimevalSchema = Struct("tv_sec" / Int64sl, "tv_usec" / Int64sl)


@cache
def prstatus_schema(nregs: int) -> Struct:
    """``struct elf_prstatus`` for an architecture with ``nregs`` u64 registers.

    ``pr_reg`` stays bytes here (decoded with :mod:`struct`): construct's ``Array`` of integers
    costs ~150 µs per thread, too slow for the stream head of a process with many threads.
    """
    return Struct(
        "si_signo" / Int32sl,
        "si_code" / Int32sl,
        "si_errno" / Int32sl,
        "pr_cursig" / Int16sl,
        Padding(2),
        "pr_sigpend" / Int64ul,
        "pr_sighold" / Int64ul,
        "pr_pid" / Int32sl,
        "pr_ppid" / Int32sl,
        "pr_pgrp" / Int32sl,
        "pr_sid" / Int32sl,
        "pr_utime" / TimevalSchema,
        "pr_stime" / TimevalSchema,
        "pr_cutime" / TimevalSchema,
        "pr_cstime" / TimevalSchema,
        "pr_reg" / Bytes(8 * nregs),
        "pr_fpvalid" / Int32sl,
        Padding(4),
        Terminated,
    )


PrPsInfoSchema = Struct(
    "pr_state" / Int8sl,
    "pr_sname" / Int8ul,
    "pr_zomb" / Int8ul,
    "pr_nice" / Int8sl,
    Padding(4),
    "pr_flag" / Int64ul,
    "pr_uid" / Int32ul,
    "pr_gid" / Int32ul,
    "pr_pid" / Int32sl,
    "pr_ppid" / Int32sl,
    "pr_pgrp" / Int32sl,
    "pr_sid" / Int32sl,
    "pr_fname" / Bytes(16),
    "pr_psargs" / Bytes(80),
    Terminated,
)

SigInfoSchema = Struct(
    "si_signo" / Int32sl,
    "si_errno" / Int32sl,
    "si_code" / Int32sl,
    Padding(4),
    "sifields" / Bytes(112),
    Terminated,
)

AuxvSchema = Struct(
    "entries" / GreedyRange(Struct("a_type" / Int64ul, "a_val" / Int64ul)),
    Terminated,
)

FileNoteSchema = Struct(
    "count" / Int64ul,
    "page_size" / Int64ul,
    "entries" / Array(this.count, Struct("start" / Int64ul, "end" / Int64ul, "file_ofs" / Int64ul)),
    "names" / Array(this.count, NullTerminated(GreedyBytes)),
    # Anything after the last name is ignored, as the kernel's readers do.
)
