"""One capture: a process whose threads we hold → a core written by us → a recorded crash.

Shared by the catcher (a fatal signal at its delivery stop, or the exit stop that follows it)
and ``snapshot`` (a live process, no signal). Steps: read the dump (registers, VMAs, auxv…),
fill the :class:`CrashContext` from ``/proc`` while everything is still frozen, write the core
into a sparse temporary file through the memory layer's fallback chain, then hand it to the
:class:`~coredumpd.catch_sink.Sink`, which calls ``release`` as soon as the core is safe.
If the core cannot be written at all, the crash is still recorded with an empty core and a
note saying why.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from coredumpd.catch_collect import ProcessDump, collect_dump
from coredumpd.catch_core import dead_stack, write_dump
from coredumpd.catch_sink import Recorded, Sink
from coredumpd.context import CrashContext
from coredumpd.metadata import collect_metadata
from procfs.errors import ProcessGone, ProcfsError
from procfs.handle import ProcessHandle
from procfs.memory import ProcessMemory
from procfs.memory_base import MemoryMethod
from procfs.parse.maps import Perm
from procfs.siginfo import Siginfo

log = logging.getLogger(__name__)

BOOT_ID = "/proc/sys/kernel/random/boot_id"
_SANDBOX_BOOT_ID = uuid.uuid4().hex

#: Methods the pipeline's own reader can use after us (it is not the tracer: no PEEKDATA).
_LIVE_METHODS = frozenset({MemoryMethod.MEM.value, MemoryMethod.PROCESS_VM_READV.value})


@dataclass(frozen=True)
class Capture:
    """What one capture produced: the context as recorded, the core's size (0 when none was
    written), where the record went, and how long the process was held (seconds)."""

    context: CrashContext
    core_size: int
    recorded: Recorded | None
    held_seconds: float


def _context(dump: ProcessDump | None, pid: int, tid: int, signo: int,
             siginfo: Siginfo | None, door: str) -> CrashContext:
    context = CrashContext(door=door, pid=pid, tid=tid, signal=signo or None,
                           timestamp=time.time_ns() // 1000,
                           hostname=socket.gethostname().encode())
    if siginfo is not None and signo:
        context.si_code = siginfo.code
    if dump is not None:
        context.uid, context.gid, context.comm = dump.uid, dump.gid, dump.comm
    if not os.path.exists(BOOT_ID):
        # gVisor has no boot id; storage names cores by one: this run of the sandbox stands in
        context.boot_id = _SANDBOX_BOOT_ID
        context.notes.append(f"no {BOOT_ID} here: boot id {_SANDBOX_BOOT_ID} names this run")
    return context


def capture(handle: ProcessHandle, tids: list[int], *, signo: int, siginfo: Siginfo | None,
            door: str, sink: Sink, release: Callable[[], None],
            memory_methods: Iterable[MemoryMethod] | None = None,
            temp_dir: str | None = None) -> Capture:
    """Capture ``handle``'s process, every thread of ``tids`` stopped by us (dumping one first).

    ``release`` lets the process go; it is called exactly once, as early as possible.

    :raises ProcessGone: the process vanished before anything could be read.
    """
    started = time.monotonic()
    released_at: list[float] = []

    def release_once() -> None:
        if not released_at:
            released_at.append(time.monotonic())
            release()

    memory = ProcessMemory(handle.pid, tracee=tids[0], methods=memory_methods)
    try:
        dump = None
        failure = None
        try:
            dump = collect_dump(handle, tids, signo=signo,
                                siginfo=siginfo.raw if siginfo is not None else None, memory=memory)
        except ProcessGone:
            raise
        except ProcfsError as err:
            failure = f"cannot read the process: {err}"
        context = _context(dump, handle.pid, tids[0], signo, siginfo, door)
        try:
            collect_metadata(context, handle)
        except ProcfsError as err:
            context.notes.append(f"metadata incomplete: {err}")
        with tempfile.TemporaryFile(prefix="coredumpd-", dir=temp_dir) as core:
            size = 0
            if dump is not None:
                context.notes += dump.notes
                skip = _slow_path_skip(dump, memory)
                if skip:
                    context.notes.append("only PTRACE_PEEKDATA reads memory here: stack more "
                                         "than 64 KiB below the stack pointers is not read")
                try:
                    size, source = write_dump(core, dump, memory, skip)
                except ProcfsError as err:
                    failure = f"cannot read the memory: {err}"
                    core.seek(0)
                    core.truncate()
                    size = 0
                else:
                    context.memory_method = source.describe()
                    missing = _probe_untried(handle.pid, dump, memory)
                    if missing:
                        context.memory_method += f" [also unavailable here: {missing}]"
                    if source.unreadable:
                        context.notes.append(f"{source.unreadable} bytes of memory were "
                                             f"unreadable and are zeros in the core")
            if failure is not None:
                log.error("pid %s: %s; recording the crash without a core", handle.pid, failure)
                context.notes.append(f"no core: {failure}")
                context.memory_method = context.memory_method or _tried(memory)
            core.flush()
            # The live backtrace reads memory as a non-tracer; where only PEEKDATA worked it
            # would see nothing, so the stored core is unwound instead.
            live = dump is not None and size and _LIVE_METHODS & set(source.used)
            recorded = sink.record(context, core, handle if live else None, release_once)
    finally:
        memory.close()
        release_once()
    return Capture(context, size, recorded, released_at[0] - started)


def _slow_path_skip(dump: ProcessDump, memory: ProcessMemory) -> list[tuple[int, int]]:
    """Dead stack to skip when a probe read shows that only ``PTRACE_PEEKDATA`` works."""
    try:
        probe = memory.read(dump.threads[0].registers.sp, 8)
    except ProcfsError:
        return []
    return dead_stack(dump) if probe.method == MemoryMethod.PTRACE else []


#: methods probed after the capture when the capture did not need them (not ptrace: the
#: threads may already be running again)
_PROBED = (MemoryMethod.MEM, MemoryMethod.PROCESS_VM_READV)


def _probe_untried(pid: int, dump: ProcessDump, memory: ProcessMemory) -> str:
    """Which of the methods the capture did not try fail on this process (a 1-byte read of a
    readable mapping), so the record says what a sandbox lacks even when an earlier method
    worked (gVisor: ``process_vm_readv``)."""
    address = next((m.start for m in dump.maps if m.perms & Perm.READ), None)
    if address is None:
        return ""
    failures = []
    for method in _PROBED:
        if method in memory.methods_tried:
            continue
        try:
            with ProcessMemory(pid, methods=[method]) as probe:
                if not probe.read(address, 1).complete:
                    failures.append(f"{method}: short read")
        except ProcfsError as err:
            failures.append(f"{method}: {err}")
    return "; ".join(failures)


def _tried(memory: ProcessMemory) -> str | None:
    if not memory.methods_tried:
        return None
    return "none (" + "; ".join(f"{m}: {why}" for m, why in memory.methods_tried.items()) + ")"
