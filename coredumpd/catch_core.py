"""Core assembly: a :class:`~coredumpd.catch_collect.ProcessDump` and the process's memory into an
ELF core the way Linux writes one (``fs/binfmt_elf.c``), through :mod:`unwinder.core`.

Notes in ``write_note_info()``'s order: the dumping thread's ``NT_PRSTATUS``, then
``NT_PRPSINFO``, ``NT_SIGINFO``, ``NT_AUXV``, ``NT_FILE``, then its ``NT_PRFPREG`` and
``NT_X86_XSTATE``; each other thread's ``NT_PRSTATUS`` and regsets. ``NT_X86_XSAVE_LAYOUT`` is
left out (it needs CPUID; gdb falls back to its own size table). Memory that no method can read
(``[vvar]`` pages, a racing ``munmap``) is written as zeros and counted.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import BinaryIO

from coredumpd.catch_collect import ProcessDump, ThreadDump
from procfs.errors import MemoryFault
from procfs.memory import OK, ProcessMemory
from unwinder.core import Note, layout_core, write_core
from unwinder.core.arch import find_arch
from unwinder.core.constants import EM, NT, PT
from unwinder.core.elfstructs import Elf64_Phdr
from unwinder.core.model import CORE, LINUX, CoreFile
from unwinder.core.notes import (
    FileMapping,
    FileNote,
    PrPsInfo,
    PrStatus,
    Registers,
    Timeval,
    build_file_note,
    build_prpsinfo,
    build_prstatus,
)

PAGE_SIZE = 4096
STACK_KEEP = 64 * 1024
"""Bytes below the lowest stack pointer still read when reading word by word."""
MACHINES = {"x86_64": EM.X86_64, "aarch64": EM.AARCH64, "arm64": EM.AARCH64}
DELETED = b" (deleted)"
_STATES = b"RSDTZW"


def _ticks_to_timeval(ticks: int) -> Timeval:
    hz = os.sysconf("SC_CLK_TCK")
    return Timeval(ticks // hz, (ticks % hz) * 1_000_000 // hz)


def _prstatus(dump: ProcessDump, thread: ThreadDump) -> PrStatus:
    arch = find_arch(MACHINES[dump.machine])
    assert arch is not None
    values = tuple(thread.registers.values[name] for name in arch.registers)
    st = thread.stat
    zero = Timeval(0, 0)
    return PrStatus(
        si_signo=dump.signo, si_code=0, si_errno=0, pr_cursig=dump.signo,
        pr_sigpend=thread.sigpend, pr_sighold=thread.sighold, pr_pid=thread.tid,
        pr_ppid=st.ppid if st else 0, pr_pgrp=st.pgrp if st else 0,
        pr_sid=st.session if st else 0,
        pr_utime=_ticks_to_timeval(st.utime) if st else zero,
        pr_stime=_ticks_to_timeval(st.stime) if st else zero,
        pr_cutime=_ticks_to_timeval(st.get("cutime") or 0) if st else zero,
        pr_cstime=_ticks_to_timeval(st.get("cstime") or 0) if st else zero,
        registers=Registers(arch, values), pr_fpvalid=1 if thread.fpregs else 0,
    )


def _prpsinfo(dump: ProcessDump) -> PrPsInfo:
    st = dump.leader_stat
    letter = st.state[:1] if st is not None else b"R"
    state = _STATES.find(b"T" if letter == b"t" else letter)
    state = max(state, 0)
    return PrPsInfo(
        pr_state=state, pr_sname=_STATES[state], pr_zomb=int(letter == b"Z"),
        pr_nice=(st.get("nice") or 0) if st else 0, pr_flag=st.flags if st else 0,
        pr_uid=dump.uid, pr_gid=dump.gid, pr_pid=dump.pid, pr_ppid=st.ppid if st else 0,
        pr_pgrp=st.pgrp if st else 0, pr_sid=st.session if st else 0,
        pr_fname=dump.comm[:15].ljust(16, b"\0"), pr_psargs=dump.psargs[:79].ljust(80, b"\0"),
    )


def _file_note(dump: ProcessDump) -> FileNote:
    """``NT_FILE``: every VMA with a file, in address order, `` (deleted)`` kept."""
    mappings = tuple(
        FileMapping(m.start, m.end, m.offset, m.path + (DELETED if m.deleted else b""))
        for m in sorted(dump.maps, key=lambda m: m.start)
        if m.inode != 0 and m.path.startswith(b"/"))
    return FileNote(PAGE_SIZE, mappings)


def _regset_notes(thread: ThreadDump) -> list[Note]:
    notes = []
    if thread.fpregs:
        notes.append(Note(CORE, NT.PRFPREG, thread.fpregs))
    if thread.xstate:
        notes.append(Note(LINUX, NT.X86_XSTATE, thread.xstate))
    return notes


def build_core_notes(dump: ProcessDump) -> list[Note]:
    """The notes of ``dump`` in the kernel's order."""
    notes: list[Note] = []
    for index, thread in enumerate(dump.threads):
        notes.append(Note(CORE, NT.PRSTATUS, build_prstatus(_prstatus(dump, thread))))
        if index == 0:
            notes.append(Note(CORE, NT.PRPSINFO, build_prpsinfo(_prpsinfo(dump))))
            if dump.siginfo is not None:
                notes.append(Note(CORE, NT.SIGINFO, dump.siginfo))
            if dump.auxv:
                notes.append(Note(CORE, NT.AUXV, dump.auxv))
            notes.append(Note(CORE, NT.FILE, build_file_note(_file_note(dump))))
        notes += _regset_notes(thread)
    return notes


def layout_dump(dump: ProcessDump) -> CoreFile:
    """Headers and notes of the core: one ``PT_LOAD`` per VMA in address order."""
    segments = [
        Elf64_Phdr(PT.LOAD, s.p_flags, 0, s.mapping.start, 0, s.filesz,
                   s.mapping.end - s.mapping.start, PAGE_SIZE)
        for s in dump.segments
    ]
    return layout_core(MACHINES[dump.machine], build_core_notes(dump), segments,
                       page_size=PAGE_SIZE)


class ZeroFilledMemory:
    """``read(address, size)`` of exactly ``size`` bytes for the core writer: what no method can
    read becomes zeros, a page at a time. Counts the methods that produced bytes."""

    def __init__(self, memory: ProcessMemory, skip: Sequence[tuple[int, int]] = ()) -> None:
        self.memory = memory
        self.skip = sorted(skip)
        self.unreadable = 0
        self.skipped = 0
        self.used: Counter[str] = Counter()

    def _skipped_until(self, at: int) -> int | None:
        for start, end in self.skip:
            if start <= at < end:
                return end
        return None

    def read(self, address: int, size: int, /) -> bytes:
        out = bytearray()
        while len(out) < size:
            at = address + len(out)
            end = self._skipped_until(at)
            if end is not None:
                gap = min(end - at, size - len(out))
                out += bytes(gap)
                self.skipped += gap
                continue
            want = size - len(out)
            for start, _ in self.skip:
                if at < start < at + want:
                    want = start - at
            try:
                result = self.memory.read(at, want)
            except MemoryFault:
                data, fault = b"", at
            else:
                data, fault = result.data, result.fault_address
                if result.method is not None and data:
                    self.used[str(result.method)] += len(data)
            out += data
            if fault is not None and len(out) < size:
                gap = min(PAGE_SIZE - fault % PAGE_SIZE, size - len(out))
                out += bytes(gap)
                self.unreadable += gap
        return bytes(out)

    def describe(self) -> str:
        """The method that read the most bytes and why the methods before it failed, e.g.
        ``"ptrace (mem: masked…; process_vm_readv: not tried)"``."""
        main = self.used.most_common(1)[0][0] if self.used else "none"
        failed = [f"{m}: {why}" for m, why in self.memory.methods_tried.items()
                  if why != OK and str(m) != main]
        others = [m for m in self.used if m != main]
        text = main
        if others:
            text += " + " + ", ".join(others)
        if failed:
            text += " (" + "; ".join(failed) + ")"
        return text


def dead_stack(dump: ProcessDump, keep: int = STACK_KEEP) -> list[tuple[int, int]]:
    """The parts of stack VMAs more than ``keep`` bytes below every thread's stack pointer:
    dead frames, skipped when the only way to read is word by word (``PTRACE_PEEKDATA``, where
    gVisor pre-sizes the main stack at 8 MiB and reading it costs half a minute)."""
    out = []
    for m in dump.maps:
        sps = [t.registers.sp for t in dump.threads if m.start <= t.registers.sp < m.end]
        if sps:
            floor = (min(sps) - keep) & ~(PAGE_SIZE - 1)
            if floor > m.start:
                out.append((m.start, floor))
    return out


def write_dump(out: BinaryIO, dump: ProcessDump, memory: ProcessMemory,
               skip: Sequence[tuple[int, int]] = ()) -> tuple[int, ZeroFilledMemory]:
    """Write ``dump``'s core to ``out`` (sparse when seekable); ``skip`` ranges are zeros.

    :returns: the core's size in bytes and the memory adapter (methods used, bytes zero-filled).
    """
    source = ZeroFilledMemory(memory, skip)
    size = write_core(out, layout_dump(dump), source)
    return size, source
