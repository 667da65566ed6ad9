"""Payloads of the notes in a Linux core: typed models, parse and build.

Each ``parse_*`` takes a note's descriptor bytes and returns a NamedTuple; each
``build_*`` does the reverse, so ``build_x(parse_x(desc)) == desc`` for kernel-written notes.
The layouts are the construct schemas of :mod:`unwinder.core.noteschemas` (the kernel's
structs, ``include/uapi/linux/elfcore.h``), which ``build_*`` use. ``parse_*`` read the same
layouts with :mod:`struct`, our own: every core opened decodes these notes, and importing
construct would cost a third of a warm ``coredumpd backtrace``; the unit tests check that both
read every input alike. Malformed payloads raise :class:`~unwinder.errors.CorruptCore`.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from unwinder.core.arch import Arch
from unwinder.core.constants import AT
from unwinder.errors import CorruptCore

# -- layouts (as noteschemas; a trailing byte more or less is malformed, as ``Terminated``) --

#: ``struct elf_prstatus`` up to ``pr_reg``: signal info, pending/held sets, ids, 4 timevals
_PRSTATUS_HEAD = struct.Struct("<iiih2xQQiiiiqqqqqqqq")
#: after ``pr_reg``: ``pr_fpvalid`` and padding
_PRSTATUS_TAIL = struct.Struct("<i4x")
_PRPSINFO = struct.Struct("<bBBb4xQIIiiii16s80s")
_SIGINFO = struct.Struct("<iii4x112s")
_AUXV_ENTRY = struct.Struct("<QQ")
_FILE_HEAD = struct.Struct("<QQ")


def _malformed(what: str, offset: int | None, size: int, expected: int) -> CorruptCore:
    return CorruptCore(offset, f"malformed {what} note: {size} bytes, the layout has {expected}")


# -- models --------------------------------------------------------------------------------


class Registers(NamedTuple):
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


class Timeval(NamedTuple):
    tv_sec: int
    tv_usec: int


class PrStatus(NamedTuple):
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
    nregs = len(arch.registers)  # arch.prstatus_size is head + 8 * nregs + tail
    (si_signo, si_code, si_errno, pr_cursig, pr_sigpend, pr_sighold, pr_pid, pr_ppid, pr_pgrp,
     pr_sid, *times) = _PRSTATUS_HEAD.unpack_from(desc)
    registers = struct.unpack_from(f"<{nregs}Q", desc, _PRSTATUS_HEAD.size)
    (pr_fpvalid,) = _PRSTATUS_TAIL.unpack_from(desc, _PRSTATUS_HEAD.size + 8 * nregs)
    utime, stime, cutime, cstime = (Timeval(times[i], times[i + 1]) for i in range(0, 8, 2))
    return PrStatus(
        si_signo=si_signo, si_code=si_code, si_errno=si_errno, pr_cursig=pr_cursig,
        pr_sigpend=pr_sigpend, pr_sighold=pr_sighold, pr_pid=pr_pid, pr_ppid=pr_ppid,
        pr_pgrp=pr_pgrp, pr_sid=pr_sid, pr_utime=utime, pr_stime=stime, pr_cutime=cutime,
        pr_cstime=cstime, registers=Registers(arch, registers), pr_fpvalid=pr_fpvalid,
    )


def build_prstatus(status: PrStatus) -> bytes:
    from unwinder.core.noteschemas import prstatus_schema

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


class PrPsInfo(NamedTuple):
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
    if len(desc) != _PRPSINFO.size:
        raise _malformed("NT_PRPSINFO", offset, len(desc), _PRPSINFO.size)
    return PrPsInfo(*_PRPSINFO.unpack(desc))


def build_prpsinfo(info: PrPsInfo) -> bytes:
    from unwinder.core.noteschemas import PrPsInfoSchema

    return PrPsInfoSchema.build(info._asdict())


#: Signals whose siginfo carries a fault address (``si_addr``) when ``si_code > 0``.
FAULT_SIGNALS = frozenset({4, 5, 7, 8, 11})  # SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV


class SigInfo(NamedTuple):
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
    if len(desc) != _SIGINFO.size:
        raise _malformed("NT_SIGINFO", offset, len(desc), _SIGINFO.size)
    return SigInfo(*_SIGINFO.unpack(desc))


def build_siginfo(info: SigInfo) -> bytes:
    from unwinder.core.noteschemas import SigInfoSchema

    return SigInfoSchema.build(dict(si_signo=info.si_signo, si_errno=info.si_errno,
                                    si_code=info.si_code, sifields=info.sifields))


class Auxv(NamedTuple):
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
    return Auxv(tuple(_AUXV_ENTRY.iter_unpack(desc)))


def build_auxv(auxv: Auxv) -> bytes:
    from unwinder.core.noteschemas import AuxvSchema

    return AuxvSchema.build(dict(entries=[dict(a_type=t, a_val=v) for t, v in auxv.entries]))


class FileMapping(NamedTuple):
    """One file-backed mapping of ``NT_FILE``: ``[start, end)`` maps ``path`` from byte
    ``offset``. ``path`` is relative to the dumping task's root, with `` (deleted)``
    appended by the kernel for unlinked files."""

    start: int
    end: int
    offset: int
    path: bytes


class FileNote(NamedTuple):
    page_size: int
    mappings: tuple[FileMapping, ...]


def parse_file_note(desc: bytes, offset: int | None = None) -> FileNote:
    if len(desc) < 16:
        raise CorruptCore(offset, "NT_FILE shorter than its header")
    count, page_size = _FILE_HEAD.unpack_from(desc)
    if 16 + count * 25 > len(desc):  # 24 bytes of range + at least a NUL per entry
        raise CorruptCore(offset, f"NT_FILE claims {count} entries in {len(desc)} bytes")
    if page_size == 0 and count:
        raise CorruptCore(offset, "NT_FILE with page size 0")
    entries = struct.unpack_from(f"<{3 * count}Q", desc, _FILE_HEAD.size)
    data = bytes(desc)
    names = []
    pos = _FILE_HEAD.size + 24 * count
    for _ in range(count):
        end = data.find(b"\0", pos)
        if end < 0:
            raise CorruptCore(offset, f"malformed NT_FILE note: name {len(names)} has no NUL")
        names.append(data[pos:end])
        pos = end + 1
    # anything after the last name is ignored, as the kernel's readers do
    mappings = tuple(
        FileMapping(entries[3 * i], entries[3 * i + 1], entries[3 * i + 2] * page_size, name)
        for i, name in enumerate(names)
    )
    return FileNote(page_size, mappings)


def build_file_note(note: FileNote) -> bytes:
    ps = note.page_size
    from unwinder.core.noteschemas import FileNoteSchema

    for m in note.mappings:
        if ps == 0 or m.offset % ps:
            raise ValueError(f"NT_FILE offset {m.offset:#x} is not a multiple of page size {ps}")
    return FileNoteSchema.build(dict(
        count=len(note.mappings), page_size=ps,
        entries=[dict(start=m.start, end=m.end, file_ofs=m.offset // ps) for m in note.mappings],
        names=[m.path for m in note.mappings],
    ))
