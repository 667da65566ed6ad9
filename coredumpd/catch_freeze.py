"""Holding every thread of a process in a ptrace-stop, and letting each go exactly as it was.

Two ways in: the supervisor already traces its descendants (:func:`stop_traced`, only
``PTRACE_INTERRUPT``), while ``snapshot`` and ``stack`` seize a process they do not trace
(:func:`seize_all`, ``PTRACE_SEIZE`` then interrupt; released with ``PTRACE_DETACH``). Either
way ``task/`` is listed again until every listed thread has stopped: a stopped thread cannot
clone, so the list settles.

While we wait, a thread may report something other than our interrupt: a signal on its way
(handed back when it is resumed), a group stop (resumed with ``PTRACE_LISTEN`` so job control
keeps its meaning), an event stop (clone, exec, exit). Each becomes a :class:`Resume` saying how
to let that thread go. Every call must come from the thread that traces. A report of another
process stays queued in the kernel for the supervisor's loop: we only wait for specific tids.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from enum import Enum

from procfs.errors import AccessDenied, ProcessGone, ProcfsError, TraceeNotStopped
from procfs.ptrace import cont, detach, interrupt, listen, seize
from procfs.wait import WaitKind, WaitResult, read_wait

log = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0
"""Seconds every thread gets to report its stop (a thread in ``D`` state may take a while)."""


class ResumeHow(Enum):
    CONT = "cont"
    LISTEN = "listen"


@dataclass(frozen=True)
class Resume:
    """How to let one stopped thread go: ``PTRACE_CONT`` with ``signo`` (0: none), or
    ``PTRACE_LISTEN`` for a thread in a group stop."""

    how: ResumeHow = ResumeHow.CONT
    signo: int = 0


def resume_for(report: WaitResult) -> Resume:
    """How to resume a thread after ``report`` (a stop) without changing what it was doing."""
    if report.kind == WaitKind.SIGNAL_STOP:
        return Resume(ResumeHow.CONT, report.signal or 0)
    if report.kind == WaitKind.GROUP_STOP:
        return Resume(ResumeHow.LISTEN)
    return Resume()


@dataclass
class StoppedThreads:
    """Threads of ``pid`` held in a ptrace-stop, each with how to resume it, in stop order.

    ``gone`` are threads that exited while we stopped the others; ``stuck`` those that did not
    stop in time (still traced; they are resumed or detached with the rest).
    """

    pid: int
    threads: dict[int, Resume] = field(default_factory=dict)
    gone: set[int] = field(default_factory=set)
    stuck: set[int] = field(default_factory=set)
    seized: bool = False

    @property
    def tids(self) -> list[int]:
        return list(self.threads)

    def resume(self) -> None:
        """Let every thread go: resumed (traced) or detached (seized), the first-stopped one
        (the crashing thread) last: once its fatal signal goes through, the others are killed
        out of their stops. Never raises for a thread that is gone."""
        order = list(self.threads.items())
        for tid, how in order[1:] + order[:1]:
            try:
                if self.seized:
                    detach(tid, how.signo)
                elif how.how == ResumeHow.LISTEN:
                    listen(tid)
                else:
                    cont(tid, how.signo)
            except ProcessGone:
                pass
            except ProcfsError as err:
                log.warning("failed to resume thread %s, ignoring: %s", tid, err)
            del self.threads[tid]
        if self.seized:
            for tid in self.stuck:
                try:
                    _detach_when_stopped(tid)
                except ProcfsError as err:
                    log.warning("failed to detach thread %s, ignoring: %s", tid, err)


def _detach_when_stopped(tid: int) -> None:
    try:
        read_wait(tid, timeout=STOP_TIMEOUT, event_message=False)
    except (TimeoutError, ProcessGone):
        return  # the kernel detaches when we exit
    detach(tid, 0)


def _list_threads(pid: int) -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir(f"/proc/{pid}/task"))
    except OSError as err:
        raise ProcessGone(pid, f"task list: {err.strerror}") from err


def _wait_stop(held: StoppedThreads, tid: int, deadline: float) -> None:
    try:
        report = read_wait(tid, timeout=max(deadline - time.monotonic(), 0.001))
    except TimeoutError:
        held.stuck.add(tid)
        return
    except ProcessGone:
        held.gone.add(tid)
        return
    if report.gone:
        held.gone.add(tid)
    else:
        held.threads[tid] = resume_for(report)


def _stop_rest(held: StoppedThreads, *, attach: bool, timeout: float) -> StoppedThreads:
    deadline = time.monotonic() + timeout
    tried: set[int] = set(held.threads)
    while True:
        new = [tid for tid in _list_threads(held.pid) if tid not in tried]
        if not new:
            return held
        tried.update(new)
        asked = []
        for tid in new:
            try:
                if attach:
                    seize(tid)
                interrupt(tid)
            except (ProcessGone, TraceeNotStopped):
                held.gone.add(tid)  # exited, or an exited leader (zombie)
                continue
            except AccessDenied:
                if attach and tid != held.pid:
                    held.gone.add(tid)  # a thread on its way out
                    continue
                raise
            asked.append(tid)
        for tid in asked:
            _wait_stop(held, tid, deadline)


def stop_traced(pid: int, stopped: dict[int, Resume], timeout: float = STOP_TIMEOUT) -> StoppedThreads:
    """Interrupt every thread of our tracee ``pid`` that is not already in ``stopped``.

    :param stopped: threads already in a ptrace-stop (the crashing one) and how to resume them.
    :raises ProcessGone: the process has no ``task/`` any more.
    """
    held = StoppedThreads(pid, dict(stopped))
    return _stop_rest(held, attach=False, timeout=timeout)


def seize_all(pid: int, timeout: float = STOP_TIMEOUT) -> StoppedThreads:
    """Seize and stop every thread of ``pid`` (a process we do not trace yet).

    :raises AccessDenied: ptrace refused (already traced, Yama, no ``CAP_SYS_PTRACE``); nothing
        stays attached.
    :raises ProcessGone: no such process.
    """
    held = StoppedThreads(pid, seized=True)
    try:
        return _stop_rest(held, attach=True, timeout=timeout)
    except BaseException:
        held.resume()
        raise
