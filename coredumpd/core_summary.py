"""A summary of a parsed core for people: who crashed, with what, and where each thread was.

Pure: a :class:`~unwinder.core.CoreFile` in, a frozen :class:`CoreSummary` out. Program
counters are placed in the file-backed mapping that holds them (``module+offset`` from the
module's lowest mapping, as systemd-coredump's stack traces print unsymbolised frames); the
unwinder adds symbols.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from coredumpd.signals import si_code_name, signal_name
from unwinder.core import CoreFile
from unwinder.core.notes import FileMapping


@dataclass(frozen=True)
class ThreadSummary:
    tid: int
    crashed: bool
    pc: int
    sp: int
    location: str  # "module+0xoffset", or "?" when the pc is in no file mapping


@dataclass(frozen=True)
class ModuleSummary:
    path: bytes
    start: int
    end: int
    mappings: int


@dataclass(frozen=True)
class CoreSummary:
    pid: int | None
    comm: bytes
    psargs: bytes
    uid: int | None
    gid: int | None
    signal: str
    si_code: str
    fault_address: int | None
    arch: str
    threads: tuple[ThreadSummary, ...]
    modules: tuple[ModuleSummary, ...]
    segments: int
    dumped_bytes: int
    core_bytes: int


def summarize_core(core: CoreFile) -> CoreSummary:
    """Summarise ``core`` (threads in the kernel's order: the crashing one first)."""
    mappings = core.files.mappings if core.files else ()
    bases = _module_bases(mappings)
    threads = []
    for index, thread in enumerate(core.threads):
        regs = thread.prstatus.registers if thread.prstatus else None
        pc = regs.pc if regs else 0
        threads.append(ThreadSummary(thread.tid, index == 0, pc, regs.sp if regs else 0,
                                     _locate(pc, mappings, bases)))
    info = core.siginfo
    signo = _signal_number(core)
    return CoreSummary(
        pid=core.pid,
        comm=core.prpsinfo.comm if core.prpsinfo else b"",
        psargs=core.prpsinfo.psargs if core.prpsinfo else b"",
        uid=core.prpsinfo.pr_uid if core.prpsinfo else None,
        gid=core.prpsinfo.pr_gid if core.prpsinfo else None,
        signal=signal_name(signo),
        si_code=si_code_name(signo, info.si_code) if info else "",
        fault_address=info.si_addr if info else None,
        arch=core.arch.name if core.arch else f"e_machine {core.ehdr.e_machine}",
        threads=tuple(threads),
        modules=_modules(mappings),
        segments=len(core.loads),
        dumped_bytes=sum(p.p_filesz for p in core.loads),
        core_bytes=core.expected_size,
    )


def _signal_number(core: CoreFile) -> int:
    if core.siginfo is not None:
        return core.siginfo.si_signo
    first = core.crashing_thread
    return first.prstatus.pr_cursig if first is not None and first.prstatus is not None else 0


def _module_bases(mappings: tuple[FileMapping, ...]) -> dict[bytes, int]:
    bases: dict[bytes, int] = {}
    for m in mappings:
        bases[m.path] = min(bases.get(m.path, m.start), m.start)
    return bases


def _locate(pc: int, mappings: tuple[FileMapping, ...], bases: dict[bytes, int]) -> str:
    for m in mappings:
        if m.start <= pc < m.end:
            name = os.path.basename(m.path).decode(errors="backslashreplace")
            return f"{name}+{pc - bases[m.path]:#x}"
    return "?"


def _modules(mappings: tuple[FileMapping, ...]) -> tuple[ModuleSummary, ...]:
    order: dict[bytes, list[FileMapping]] = {}
    for m in mappings:
        order.setdefault(m.path, []).append(m)
    return tuple(ModuleSummary(path, min(m.start for m in ms), max(m.end for m in ms), len(ms))
                 for path, ms in order.items())
