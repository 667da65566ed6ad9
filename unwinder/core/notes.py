"""Payloads of the notes in a Linux core: construct schemas, typed models, parse and build.

Each ``parse_*`` takes a note's descriptor bytes and returns a frozen dataclass; each
``build_*`` does the reverse, so ``build_x(parse_x(desc)) == desc`` for kernel-written notes.
Schemas read like the kernel's structs (``include/uapi/linux/elfcore.h``). They are never
``.compile()``d: compiled parsers skip checks on untrusted bytes. Every construct error is
turned into :class:`~unwinder.errors.CorruptCore` in :func:`_parse`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

from construct import (
    Array,
    Bytes,
    ConstructError,
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

from unwinder.core.arch import Arch
from unwinder.core.constants import AT
from unwinder.errors import CorruptCore

# -- schemas -------------------------------------------------------------------------------

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


def _parse(schema: Struct, desc: bytes, what: str, offset: int | None) -> Any:
    try:
        return schema.parse(desc)
    except (ConstructError, struct.error, OverflowError, ValueError, IndexError, MemoryError) as err:
        raise CorruptCore(offset, f"malformed {what} note: {err}") from err


# -- models --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registers:
    """General-purpose registers of one thread, in ``pr_reg`` order."""

    arch: Arch
    values: tuple[int, ...]

    def __getitem__(self, name: str) -> int:
        return self.values[self.arch.registers.index(name)]

    @property
    def pc(self) -> int:
        return self[self.arch.pc]

    @property
    def sp(self) -> int:
        return self[self.arch.sp]

    def as_dict(self) -> dict[str, int]:
        return dict(zip(self.arch.registers, self.values, strict=True))


@dataclass(frozen=True)
class Timeval:
    tv_sec: int
    tv_usec: int


@dataclass(frozen=True)
class PrStatus:
    """``NT_PRSTATUS``: one thread's status and registers. ``pr_pid`` is the tid as seen in
    the dumping process's pid namespace."""

    si_signo: int
    si_code: int
    si_errno: int
    pr_cursig: int
    pr_sigpend: int
    pr_sighold: int
    pr_pid: int
    pr_ppid: int
    pr_pgrp: int
    pr_sid: int
    pr_utime: Timeval
    pr_stime: Timeval
    pr_cutime: Timeval
    pr_cstime: Timeval
    registers: Registers
    pr_fpvalid: int


def parse_prstatus(desc: bytes, arch: Arch, offset: int | None = None) -> PrStatus:
    if len(desc) != arch.prstatus_size:
        raise CorruptCore(offset, f"NT_PRSTATUS of {len(desc)} bytes, {arch.name} uses {arch.prstatus_size}")
    c = _parse(prstatus_schema(len(arch.registers)), desc, "NT_PRSTATUS", offset)
    times = {k: Timeval(c[k].tv_sec, c[k].tv_usec) for k in ("pr_utime", "pr_stime", "pr_cutime", "pr_cstime")}
    return PrStatus(
        si_signo=c.si_signo, si_code=c.si_code, si_errno=c.si_errno, pr_cursig=c.pr_cursig,
        pr_sigpend=c.pr_sigpend, pr_sighold=c.pr_sighold, pr_pid=c.pr_pid, pr_ppid=c.pr_ppid,
        pr_pgrp=c.pr_pgrp, pr_sid=c.pr_sid, registers=Registers(arch, struct.unpack(f"<{len(arch.registers)}Q", c.pr_reg)),
        pr_fpvalid=c.pr_fpvalid, **times,
    )


def build_prstatus(status: PrStatus) -> bytes:
    arch = status.registers.arch
    times = {k: dict(tv_sec=v.tv_sec, tv_usec=v.tv_usec) for k, v in (
        ("pr_utime", status.pr_utime), ("pr_stime", status.pr_stime),
        ("pr_cutime", status.pr_cutime), ("pr_cstime", status.pr_cstime))}
    return prstatus_schema(len(arch.registers)).build(dict(
        si_signo=status.si_signo, si_code=status.si_code, si_errno=status.si_errno,
        pr_cursig=status.pr_cursig, pr_sigpend=status.pr_sigpend, pr_sighold=status.pr_sighold,
        pr_pid=status.pr_pid, pr_ppid=status.pr_ppid, pr_pgrp=status.pr_pgrp, pr_sid=status.pr_sid,
        pr_reg=struct.pack(f"<{len(arch.registers)}Q", *status.registers.values), pr_fpvalid=status.pr_fpvalid, **times,
    ))


def peek_prstatus_tid(desc: bytes) -> int | None:
    """``pr_pid`` of an ``NT_PRSTATUS`` of any 64-bit architecture (same offset everywhere)."""
    if len(desc) < 36:
        return None
    return int.from_bytes(desc[32:36], "little", signed=True)


@dataclass(frozen=True)
class PrPsInfo:
    """``NT_PRPSINFO``: process-wide info. uid/gid are in the task's own user namespace."""

    pr_state: int
    pr_sname: int
    pr_zomb: int
    pr_nice: int
    pr_flag: int
    pr_uid: int
    pr_gid: int
    pr_pid: int
    pr_ppid: int
    pr_pgrp: int
    pr_sid: int
    pr_fname: bytes
    pr_psargs: bytes

    @property
    def comm(self) -> bytes:
        """The thread-group leader's comm (attacker-chosen bytes, up to 15)."""
        return self.pr_fname.split(b"\0", 1)[0]

    @property
    def psargs(self) -> bytes:
        """argv joined by spaces, truncated to 79 bytes by the kernel."""
        return self.pr_psargs.split(b"\0", 1)[0]


def parse_prpsinfo(desc: bytes, offset: int | None = None) -> PrPsInfo:
    c = _parse(PrPsInfoSchema, desc, "NT_PRPSINFO", offset)
    return PrPsInfo(**{k: v for k, v in c.items() if not k.startswith("_")})


def build_prpsinfo(info: PrPsInfo) -> bytes:
    return PrPsInfoSchema.build(info.__dict__)


#: Signals whose siginfo carries a fault address (``si_addr``) when ``si_code > 0``.
FAULT_SIGNALS = frozenset({4, 5, 7, 8, 11})  # SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV


@dataclass(frozen=True)
class SigInfo:
    """``NT_SIGINFO``: the userspace ``siginfo_t`` of the fatal signal (128 bytes)."""

    si_signo: int
    si_errno: int
    si_code: int
    sifields: bytes

    @property
    def si_addr(self) -> int | None:
        """The faulting address, for SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP raised by the CPU."""
        if self.si_signo in FAULT_SIGNALS and self.si_code > 0:
            return int.from_bytes(self.sifields[0:8], "little")
        return None

    @property
    def si_pid(self) -> int | None:
        """Sender pid for user-sent signals (``si_code <= 0``: kill, tkill, sigqueue)."""
        if self.si_code <= 0:
            return int.from_bytes(self.sifields[0:4], "little", signed=True)
        return None

    @property
    def si_uid(self) -> int | None:
        if self.si_code <= 0:
            return int.from_bytes(self.sifields[4:8], "little")
        return None


def parse_siginfo(desc: bytes, offset: int | None = None) -> SigInfo:
    c = _parse(SigInfoSchema, desc, "NT_SIGINFO", offset)
    return SigInfo(c.si_signo, c.si_errno, c.si_code, c.sifields)


def build_siginfo(info: SigInfo) -> bytes:
    return SigInfoSchema.build(dict(si_signo=info.si_signo, si_errno=info.si_errno,
                                    si_code=info.si_code, sifields=info.sifields))


@dataclass(frozen=True)
class Auxv:
    """``NT_AUXV``: ``(a_type, a_val)`` pairs up to and including ``AT_NULL``."""

    entries: tuple[tuple[int, int], ...]

    def find(self, key: AT | int) -> int | None:
        for a_type, a_val in self.entries:
            if a_type == key:
                return a_val
        return None


def parse_auxv(desc: bytes, offset: int | None = None) -> Auxv:
    if len(desc) % 16:
        raise CorruptCore(offset, f"NT_AUXV of {len(desc)} bytes is not a whole number of entries")
    c = _parse(AuxvSchema, desc, "NT_AUXV", offset)
    return Auxv(tuple((e.a_type, e.a_val) for e in c.entries))


def build_auxv(auxv: Auxv) -> bytes:
    return AuxvSchema.build(dict(entries=[dict(a_type=t, a_val=v) for t, v in auxv.entries]))


@dataclass(frozen=True)
class FileMapping:
    """One file-backed mapping of ``NT_FILE``: ``[start, end)`` maps ``path`` from byte
    ``offset``. ``path`` is relative to the dumping task's root, with `` (deleted)``
    appended by the kernel for unlinked files."""

    start: int
    end: int
    offset: int
    path: bytes


@dataclass(frozen=True)
class FileNote:
    page_size: int
    mappings: tuple[FileMapping, ...]


def parse_file_note(desc: bytes, offset: int | None = None) -> FileNote:
    if len(desc) < 16:
        raise CorruptCore(offset, "NT_FILE shorter than its header")
    count, page_size = struct.unpack_from("<QQ", desc)
    if 16 + count * 25 > len(desc):  # 24 bytes of range + at least a NUL per entry
        raise CorruptCore(offset, f"NT_FILE claims {count} entries in {len(desc)} bytes")
    if page_size == 0 and count:
        raise CorruptCore(offset, "NT_FILE with page size 0")
    c = _parse(FileNoteSchema, desc, "NT_FILE", offset)
    mappings = tuple(
        FileMapping(e.start, e.end, e.file_ofs * page_size, name)
        for e, name in zip(c.entries, c.names, strict=True)
    )
    return FileNote(page_size, mappings)


def build_file_note(note: FileNote) -> bytes:
    ps = note.page_size
    for m in note.mappings:
        if ps == 0 or m.offset % ps:
            raise ValueError(f"NT_FILE offset {m.offset:#x} is not a multiple of page size {ps}")
    return FileNoteSchema.build(dict(
        count=len(note.mappings), page_size=ps,
        entries=[dict(start=m.start, end=m.end, file_ofs=m.offset // ps) for m in note.mappings],
        names=[m.path for m in note.mappings],
    ))
