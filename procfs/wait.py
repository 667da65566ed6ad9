"""The tracer's wait loop: ``waitpid(…, __WALL)`` and a classification of every report.

Under ``PTRACE_SEIZE`` a stopped tracee reports one of (see ptrace(2), "Stopped states"):

- a **signal-delivery stop**: ``WSTOPSIG`` = the signal, no event bits;
- a **group stop**: ``PTRACE_EVENT_STOP`` with a stop signal (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU);
- an **interrupt stop**: ``PTRACE_EVENT_STOP`` with SIGTRAP (``PTRACE_INTERRUPT``, a new child
  auto-attached through TRACEFORK/TRACECLONE starting up, or SIGCONT waking a ``PTRACE_LISTEN``);
- an **event stop**: ``PTRACE_EVENT_{FORK,VFORK,CLONE,EXEC,VFORK_DONE,EXIT,SECCOMP}``;
- a **syscall stop**: SIGTRAP|0x80 with ``PTRACE_O_TRACESYSGOOD``.

:func:`decode_wait_status` is pure; :func:`read_wait` does the waiting and, for event stops,
fetches the event message.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from enum import Enum

from procfs.errors import ParseError, ProcessGone
from procfs.ptrace import read_event_message
from procfs.ptrace_consts import WALL, PtraceEvent

_STATUS_MAX = 0xFFFFFF
"""Highest wait status: exit code or stop signal in bits 8..15, ptrace event in bits 16..23."""

STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
"""Signals whose default action is to stop the thread group (group-stop)."""


class WaitKind(Enum):
    """What a wait status says happened to the reporting thread."""

    EXITED = "exited"
    KILLED = "killed"
    SIGNAL_STOP = "signal-delivery-stop"
    GROUP_STOP = "group-stop"
    INTERRUPT_STOP = "interrupt-stop"
    EVENT_STOP = "event-stop"
    SYSCALL_STOP = "syscall-stop"
    CONTINUED = "continued"


@dataclass(frozen=True)
class WaitResult:
    """One report of waitpid(2), classified.

    - ``pid``: the reporting thread (tid, in the tracer's pid namespace).
    - ``status``: the raw wait status.
    - ``exit_code``: for EXITED.
    - ``signal``: the killing signal (KILLED), the signal about to be delivered (SIGNAL_STOP), the
      stop signal (GROUP_STOP), SIGTRAP for interrupt, event and syscall stops.
    - ``core_dumped``: KILLED and the kernel wrote a core (the ``WCOREDUMP`` bit).
    - ``event``/``event_message``: for EVENT_STOP (message from ``PTRACE_GETEVENTMSG`` when
      fetched: the new child's pid, the former tid of an exec, or the wait status of an exit).
    """

    pid: int
    kind: WaitKind
    status: int
    exit_code: int | None = None
    signal: int | None = None
    core_dumped: bool = False
    event: PtraceEvent | None = None
    event_message: int | None = None

    @property
    def stopped(self) -> bool:
        """True when the thread is in a ptrace-stop now (and waits for the tracer)."""
        return self.kind not in (WaitKind.EXITED, WaitKind.KILLED, WaitKind.CONTINUED)

    @property
    def gone(self) -> bool:
        """True when the thread has terminated (this report reaped it)."""
        return self.kind in (WaitKind.EXITED, WaitKind.KILLED)


def decode_wait_status(pid: int, status: int, event_message: int | None = None) -> WaitResult:
    """Classify the wait ``status`` of thread ``pid`` (pure; a ptrace-seized tracee assumed).

    :raises ParseError: a status that none of the kernel's encodings produce (the kernel uses the
        low 24 bits only; anything outside them would overflow the ``W*`` macros' C int).
    """
    if not 0 <= status <= _STATUS_MAX:
        raise ParseError("wait status", f"{status:#x} of pid {pid} is not a 24-bit status")
    if os.WIFEXITED(status):
        return WaitResult(pid, WaitKind.EXITED, status, exit_code=os.WEXITSTATUS(status))
    if os.WIFSIGNALED(status):
        return WaitResult(
            pid,
            WaitKind.KILLED,
            status,
            signal=os.WTERMSIG(status),
            core_dumped=os.WCOREDUMP(status),
        )
    if os.WIFCONTINUED(status):
        return WaitResult(pid, WaitKind.CONTINUED, status)
    if not os.WIFSTOPPED(status):
        raise ParseError("wait status", f"unknown status {status:#x} of pid {pid}")
    sig = os.WSTOPSIG(status)
    raw_event = (status >> 16) & 0xFF
    if raw_event == 0:
        if sig == signal.SIGTRAP | 0x80:
            return WaitResult(pid, WaitKind.SYSCALL_STOP, status, signal=signal.SIGTRAP)
        return WaitResult(pid, WaitKind.SIGNAL_STOP, status, signal=sig)
    try:
        event = PtraceEvent(raw_event)
    except ValueError as err:
        raise ParseError(
            "wait status", f"unknown ptrace event {raw_event} in status {status:#x}"
        ) from err
    if event == PtraceEvent.STOP:
        kind = WaitKind.GROUP_STOP if sig in STOP_SIGNALS else WaitKind.INTERRUPT_STOP
        return WaitResult(pid, kind, status, signal=sig, event=event)
    return WaitResult(
        pid, WaitKind.EVENT_STOP, status, signal=sig, event=event, event_message=event_message
    )


def read_wait(
    pid: int = -1, *, timeout: float | None = None, event_message: bool = True
) -> WaitResult:
    """Wait for the next report of ``pid`` (-1: any child or tracee) with ``__WALL``.

    :param timeout: seconds; ``None`` blocks. With a timeout, polls with ``WNOHANG`` (backing
        off to 5 ms between polls) and raises :class:`TimeoutError` at the deadline.
    :param event_message: fetch ``PTRACE_GETEVENTMSG`` for event stops.
    :raises ProcessGone: nothing left to wait for (``ECHILD``).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.0002
    while True:
        try:
            got, status = os.waitpid(pid, WALL | (os.WNOHANG if deadline is not None else 0))
        except ChildProcessError as err:
            raise ProcessGone(None if pid == -1 else pid, "no child or tracee to wait for") from err
        except InterruptedError:
            continue
        if got != 0:
            break
        remaining = deadline - time.monotonic()  # type: ignore[operator]
        if remaining <= 0:
            raise TimeoutError(f"no wait report from pid {pid} within {timeout} s")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.005)
    result = decode_wait_status(got, status)
    if event_message and result.kind == WaitKind.EVENT_STOP:
        try:
            message = read_event_message(got)
        except ProcessGone:  # SIGKILLed between the stop and our question
            return result
        return decode_wait_status(got, status, message)
    return result
