"""Freezing a process with ``PTRACE_SEIZE`` + ``PTRACE_INTERRUPT`` on every thread.

Unlike ``SIGSTOP`` this is no job-control stop: the real parent's ``waitpid(WUNTRACED)`` reports
nothing, and a stop or continue someone else sends while we hold the process is not lost or
undone: the signal stays pending (or, if a thread reports it to us as a signal-delivery stop, is
handed back on ``PTRACE_DETACH``). If our process dies while holding it, the kernel detaches
(``exit_ptrace()``) and the target runs on.

Threads created while we attach are found by listing ``task/`` again until every listed thread
is held: a thread in a ptrace-stop cannot clone, so the list settles. Every ptrace call must come
from the thread that seized, so :func:`seize_threads` and :meth:`HeldThreads.release` run on the
same thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from procfs.errors import AccessDenied, ProcessGone, TraceeNotStopped
from procfs.handle import ProcessHandle
from procfs.parse.stat import parse_stat
from procfs.ptrace import detach, interrupt, seize
from procfs.wait import WaitKind, read_wait

REAP_TIMEOUT = 0.5
"""Seconds to wait for the exit report of a thread that died while we traced it."""


@dataclass
class HeldThreads:
    """Threads we seized: ``pending`` maps each tid to the signal to deliver when detaching (a
    signal it reported to us in a signal-delivery stop, else 0); ``stopped`` are those verified
    in a ptrace-stop."""

    pending: dict[int, int] = field(default_factory=dict)
    stopped: set[int] = field(default_factory=set)

    @property
    def all_stopped(self) -> bool:
        """True when every seized thread still alive is in a ptrace-stop."""
        return bool(self.pending) and self.stopped >= self.pending.keys()

    def release(self, timeout: float = 2.0) -> None:
        """Detach every thread (delivering its pending signal), also those that never stopped;
        threads that died are reaped. Never raises for a thread that is gone."""
        for tid, signo in list(self.pending.items()):
            try:
                try:
                    detach(tid, signo)
                except TraceeNotStopped:  # the interrupt has not landed yet: wait for it
                    _wait_for_stop(self, tid, time.monotonic() + timeout)
                    if tid in self.pending:
                        detach(tid, self.pending[tid])
            except ProcessGone:
                _reap(tid)
            except TimeoutError:
                continue  # stuck running (or in D state): the kernel detaches when we exit
            self.pending.pop(tid, None)
            self.stopped.discard(tid)


def _thread_dead(handle: ProcessHandle, tid: int) -> bool:
    try:
        return parse_stat(handle.read_bytes(f"task/{tid}/stat")).state in (b"Z", b"X")
    except ProcessGone:
        return True


def _reap(tid: int) -> None:
    """Collect the exit report a traced thread leaves for its tracer (else it stays a zombie)."""
    try:
        read_wait(tid, timeout=REAP_TIMEOUT, event_message=False)
    except (ProcessGone, TimeoutError):
        pass


def _wait_for_stop(held: HeldThreads, tid: int, deadline: float) -> None:
    """Wait for ``tid``'s next report and record it.

    :raises TimeoutError: no report before ``deadline``.
    """
    report = read_wait(tid, timeout=max(deadline - time.monotonic(), 0.001), event_message=False)
    if report.gone:
        held.pending.pop(tid, None)
        held.stopped.discard(tid)
        return
    if report.kind == WaitKind.SIGNAL_STOP and report.signal:
        held.pending[tid] = report.signal  # someone's signal: handed back on detach
    held.stopped.add(tid)


def seize_threads(handle: ProcessHandle, timeout: float) -> HeldThreads:
    """Seize and interrupt every thread of ``handle``'s process; wait until each is stopped.

    Threads that do not stop within ``timeout`` stay seized but are not in ``stopped``.

    :raises AccessDenied: ptrace refused (already traced, Yama, no ``CAP_SYS_PTRACE``, an LSM);
        nothing is left attached.
    :raises Unsupported: no ptrace here (seccomp, some sandboxes); nothing is left attached.
    """
    held = HeldThreads()
    tried: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while True:
            new = [int(name) for name in handle.listdir("task")]
            new = [tid for tid in new if tid not in tried]
            if not new:
                return held
            tried.update(new)
            for tid in new:
                try:
                    seize(tid)
                except ProcessGone:
                    continue
                except AccessDenied:
                    if _thread_dead(handle, tid):  # an exited leader cannot be seized
                        continue
                    raise
                held.pending[tid] = 0
                try:
                    interrupt(tid)
                except ProcessGone:
                    pass  # its exit report is collected below
            for tid in new:
                if tid in held.pending and time.monotonic() < deadline:
                    try:
                        _wait_for_stop(held, tid, deadline)
                    except TimeoutError:
                        pass
            if time.monotonic() >= deadline:
                return held
    except BaseException:
        held.release()
        raise
