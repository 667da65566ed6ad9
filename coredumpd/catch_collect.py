"""The dump collector: everything a core holds except the memory bytes, read from a process whose
threads the calling thread holds in ptrace-stops.

Per thread: ``PTRACE_GETREGSET`` ``NT_PRSTATUS``, ``NT_PRFPREG``, ``NT_X86_XSTATE``, and its
``stat``/``status`` for times and signal masks. Per process: the fatal signal's siginfo (taken at
its delivery stop), ``auxv``, the VMAs (``maps`` is a consistent snapshot because every thread is
stopped), ``smaps`` and ``coredump_filter`` for :func:`~coredumpd.catch_vmas.plan_segments`, and
what ``NT_PRPSINFO`` needs. Missing optional pieces (gVisor has no ``XSTATE`` for some CPUs, no
``smaps`` flags) are noted in :attr:`ProcessDump.notes`, never fatal; registers are mandatory.
"""

from __future__ import annotations

import logging
import os
import stat as stat_mod
from dataclasses import dataclass, field

from coredumpd.catch_vmas import (
    DEFAULT_FILTER,
    DumpFilter,
    Segment,
    SmapsEntry,
    parse_coredump_filter,
    parse_smaps,
    plan_segments,
)
from procfs._libc import MACHINE
from procfs.errors import ProcessGone, ProcfsError, Unsupported
from procfs.handle import ProcessHandle
from procfs.memory import ProcessMemory
from procfs.parse.maps import Mapping, parse_maps
from procfs.parse.stat import Stat, parse_stat
from procfs.parse.status import parse_status
from procfs.pidfd import pidfd_open
from procfs.ptrace import read_fpregs, read_registers, read_xstate
from procfs.registers import Registers

log = logging.getLogger(__name__)

ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class ThreadDump:
    """One stopped thread: registers (raw kernel bytes kept), optional FP/XSAVE regsets, and
    its ``stat`` (times in clock ticks) and signal masks (bit ``n-1`` = signal ``n``)."""

    tid: int
    registers: Registers
    fpregs: bytes | None
    xstate: bytes | None
    stat: Stat | None
    sigpend: int = 0
    sighold: int = 0


@dataclass(frozen=True)
class ProcessDump:
    """A frozen process as a core describes it. ``threads[0]`` is the dumping thread.

    ``signo`` is 0 for a snapshot of a live process; ``siginfo`` the raw 128-byte
    ``siginfo_t`` of the fatal signal (``None`` when none was taken). Ids are in our pid
    namespace. ``psargs`` is argv joined by spaces (the kernel keeps 79 bytes).
    """

    pid: int
    machine: str
    signo: int
    siginfo: bytes | None
    threads: tuple[ThreadDump, ...]
    auxv: bytes
    maps: tuple[Mapping, ...]
    segments: tuple[Segment, ...]
    comm: bytes
    psargs: bytes
    uid: int
    gid: int
    leader_stat: Stat | None
    notes: list[str] = field(default_factory=list)


class TraceeHandle(ProcessHandle):
    """A handle on one of our tracees, for /procs that lack files (gVisor has no ``limits``,
    ``coredump_filter``, ``map_files``… and no ``pidfd_open``).

    A missing file reads as :class:`Unsupported`, not :class:`ProcessGone`, while the process
    is still there, so optional readers skip it instead of giving up. Without a pidfd,
    :meth:`verify` only checks that ``/proc/<pid>`` is there: safe for a tracee we have not
    reaped, which keeps its pid.
    """

    def _missing(self, err: ProcessGone, name: str) -> ProcfsError:
        try:
            os.stat("stat", dir_fd=self.dirfd)
        except OSError:
            return err
        return Unsupported(f"/proc/{self.pid}/{name}", "not provided by this kernel or sandbox")

    def open(self, name: str, flags: int = os.O_RDONLY) -> int:
        try:
            return super().open(name, flags)
        except ProcessGone as err:
            raise self._missing(err, name) from err

    def readlink(self, name: str) -> bytes:
        try:
            return super().readlink(name)
        except ProcessGone as err:
            raise self._missing(err, name) from err

    def verify(self) -> None:
        if self.pidfd >= 0:
            super().verify()
            return
        try:
            os.stat(".", dir_fd=self.dirfd)
        except OSError as err:
            raise ProcessGone(self.pid, "process was reaped") from err


def open_tracee_handle(pid: int) -> TraceeHandle:
    """A :class:`TraceeHandle` on ``pid``, pidfd-backed where the kernel has ``pidfd_open``.

    :raises ProcessGone: no such process.
    """
    try:
        pidfd = pidfd_open(pid)
    except ProcessGone:
        raise
    except ProcfsError as err:
        log.info("no pidfd for pid %s (%s): using /proc alone", pid, err)
        pidfd = -1
    try:
        dirfd = os.open(f"/proc/{pid}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        if pidfd >= 0:
            os.close(pidfd)
        raise ProcessGone(pid, f"/proc/{pid}: {err.strerror}") from err
    handle = TraceeHandle(pid, pidfd, dirfd)
    try:
        handle.verify()
    except BaseException:
        handle.close()
        raise
    return handle


def _still_there(handle: ProcessHandle) -> bool:
    try:
        handle.read_bytes("stat")
    except ProcfsError:
        return False
    return True


def _optional(notes: list[str], what: str, step, handle: ProcessHandle):  # type: ignore[no-untyped-def]
    """``step()``, or ``None`` with a note; a file missing here (``ENOENT``, which a plain
    handle reports as :class:`ProcessGone`) is optional as long as the process is there."""
    try:
        return step()
    except ProcessGone as err:
        if not _still_there(handle):
            raise
        log.info("no %s here, ignoring: %s", what, err)
        notes.append(f"no {what} here")
        return None
    except Unsupported as err:
        log.info("no %s here, ignoring: %s", what, err)
        notes.append(f"no {what} here")
        return None
    except (ProcfsError, OSError, ValueError) as err:
        log.info("failed to read %s, ignoring: %s", what, err)
        notes.append(f"failed to read {what}: {err}")
        return None


def read_thread(handle: ProcessHandle, tid: int, notes: list[str]) -> ThreadDump:
    """Registers and bookkeeping of one stopped thread (ours to ptrace).

    :raises ProcfsError: the general registers cannot be read (mandatory).
    """
    registers = read_registers(tid, MACHINE)
    fpregs = _optional(notes, f"FP registers of thread {tid}", lambda: read_fpregs(tid), handle)
    xstate = None
    if MACHINE == "x86_64":
        xstate = _optional(notes, f"XSAVE state of thread {tid}", lambda: read_xstate(tid), handle)
    stat = _optional(notes, f"stat of thread {tid}",
                     lambda: parse_stat(handle.read_bytes(f"task/{tid}/stat")), handle)
    status = _optional(notes, f"status of thread {tid}",
                       lambda: parse_status(handle.read_bytes(f"task/{tid}/status")), handle)
    sigpend = sighold = 0
    if status is not None:
        sigpend = int(status.get(b"SigPnd") or b"0", 16)
        sighold = int(status.get(b"SigBlk") or b"0", 16)
    return ThreadDump(tid, registers, fpregs, xstate, stat, sigpend, sighold)


def _starts_elf(pid: int, memory: ProcessMemory):  # type: ignore[no-untyped-def]
    def check(m: Mapping) -> bool:
        try:
            st = os.stat(f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}")
            if st.st_mode & (stat_mod.S_IXUSR | stat_mod.S_IXGRP | stat_mod.S_IXOTH):
                return True
        except OSError:
            pass
        try:
            return memory.read(m.start, 4).data == ELF_MAGIC
        except (ProcfsError, ValueError):
            return False
    return check


def collect_dump(handle: ProcessHandle, tids: list[int], *, signo: int,
                 siginfo: bytes | None, memory: ProcessMemory,
                 dump_filter: DumpFilter | None = None) -> ProcessDump:
    """Read everything but the memory bytes of ``handle``'s process.

    :param tids: the stopped threads, the dumping (crashing) one first.
    :param memory: the process's memory (for the ELF-header check of file mappings).
    :param dump_filter: overrides ``coredump_filter``.
    :raises ProcfsError: registers or the VMA list could not be read.
    """
    notes: list[str] = []
    threads = tuple(read_thread(handle, tid, notes) for tid in tids)
    maps = parse_maps(handle.read_bytes("maps"))
    if dump_filter is None:
        dump_filter = _optional(notes, "coredump_filter",
                                lambda: parse_coredump_filter(handle.read_bytes("coredump_filter")),
                                handle)
        dump_filter = DEFAULT_FILTER if dump_filter is None else dump_filter
    smaps: dict[int, SmapsEntry] | None = _optional(
        notes, "smaps", lambda: parse_smaps(handle.read_bytes("smaps")), handle)
    segments = plan_segments(maps, smaps, dump_filter, _starts_elf(handle.pid, memory))
    auxv = _optional(notes, "auxv", lambda: handle.read_bytes("auxv"), handle) or b""
    leader = _optional(notes, "stat", lambda: parse_stat(handle.read_bytes("stat")), handle)
    status = _optional(notes, "status", lambda: parse_status(handle.read_bytes("status")), handle)
    cmdline = _optional(notes, "cmdline", lambda: handle.read_bytes("cmdline"), handle) or b""
    comm = leader.comm if leader is not None else (status.name if status is not None else b"")
    return ProcessDump(
        pid=handle.pid, machine=MACHINE, signo=signo, siginfo=siginfo, threads=threads,
        auxv=auxv, maps=maps, segments=tuple(segments), comm=comm,
        psargs=cmdline.rstrip(b"\0").replace(b"\0", b" "),
        uid=status.uids.real if status is not None else 0,
        gid=status.gids.real if status is not None else 0,
        leader_stat=leader, notes=notes,
    )
