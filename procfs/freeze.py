"""Freezing a process so that multi-record /proc files (maps, smaps, mountinfo) read consistently.

Since 6.17 ``maps`` is generated under per-VMA locks: no read of a *running* process is a
snapshot (research/procfs-sandbox.md §1.2). A process is frozen when every thread is stopped:

- ``CoreDumping: 1``: the kernel parks the thread group for the dump, nothing to do;
- every thread already in a group stop (``T``) or a ptrace stop (``t``): leave it alone, and in
  particular never ``SIGCONT`` it afterwards;
- otherwise, by default, ``SIGSTOP`` through the pidfd, wait (with a deadline) until every
  thread of ``task/`` reads ``T``, and ``SIGCONT`` when done, also on error;
- or, when asked (``method=FreezeMethod.PTRACE``), ``PTRACE_SEIZE`` + ``PTRACE_INTERRUPT`` of
  every thread and ``PTRACE_DETACH`` when done, also on error (:mod:`procfs.freeze_ptrace`).

Caveats of ``SIGSTOP``: a parent waiting with ``WUNTRACED`` sees the stop (and a shell's job
control reacts to it); if someone else stops the process while we hold it, our ``SIGCONT``
resumes it; if we die while holding it, it stays stopped. ptrace has none of these problems, and
still ``SIGSTOP`` is the default, because ptrace is the more demanding tool: it needs attach
rights (``PTRACE_MODE_ATTACH``: Yama ``ptrace_scope`` 1 allows only descendants without
``CAP_SYS_PTRACE``, 3 forbids it for everyone, LSMs and seccomp can refuse), it fails on any
process already traced (a debugger, strace, our own catcher), every call must come from the one
thread that attached, and it costs four syscalls per thread where ``SIGSTOP`` costs one signal.
``SIGSTOP`` needs only the right to send a signal. When ptrace is refused, a PTRACE freeze falls
back to ``SIGSTOP`` and says so in ``reason``.

A traced process that is running is not stopped at all (its tracer would intercept ``SIGSTOP``,
and a second tracer cannot attach): the read is then best effort.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum

from procfs.errors import AccessDenied, ProcessGone, Unsupported
from procfs.freeze_ptrace import seize_threads
from procfs.handle import ProcessHandle
from procfs.parse.stat import STOPPED_STATES, parse_stat
from procfs.parse.status import Status, parse_status

STOP_TIMEOUT = 2.0
"""Seconds to wait for every thread to stop after ``SIGSTOP``."""


class FreezeMethod(IntEnum):
    """How the process was (or was not) frozen while we read it."""

    NONE = 0
    """Running and not stopped: reads are best effort."""
    COREDUMPING = 1
    """Inside the kernel's ``do_coredump`` (``CoreDumping: 1``)."""
    ALREADY_STOPPED = 2
    """Every thread was already in a group stop or ptrace stop; left as it was."""
    SIGSTOP = 3
    """We stopped it with ``SIGSTOP`` and resumed it with ``SIGCONT``."""
    DEAD = 4
    """A zombie: no threads run, its address space is gone."""
    PTRACE = 5
    """We seized every thread, stopped it with ``PTRACE_INTERRUPT`` and detached afterwards."""


@dataclass(frozen=True)
class FreezeResult:
    """``method`` used; ``frozen`` is True when every thread was verified stopped."""

    method: FreezeMethod
    frozen: bool
    reason: str


def read_thread_states(handle: ProcessHandle) -> dict[int, bytes]:
    """``{tid: state letter}`` for every thread in ``task/`` (threads that vanish are skipped)."""
    states = {}
    for name in handle.listdir("task"):
        try:
            states[int(name)] = parse_stat(handle.read_bytes(f"task/{name}/stat")).state
        except ProcessGone:
            continue
    return states


def _all_stopped(states: dict[int, bytes]) -> bool:
    live = [state for state in states.values() if state not in (b"Z", b"X")]
    return bool(states) and all(len(s) == 1 and s[0] in STOPPED_STATES for s in live)


def wait_all_stopped(handle: ProcessHandle, timeout: float = STOP_TIMEOUT) -> bool:
    """Poll ``task/*/stat`` until every live thread is stopped; False when ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    delay = 0.0001
    while True:
        if _all_stopped(read_thread_states(handle)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


@contextmanager
def frozen(
    handle: ProcessHandle,
    *,
    status: Status | None = None,
    timeout: float = STOP_TIMEOUT,
    method: FreezeMethod = FreezeMethod.SIGSTOP,
) -> Iterator[FreezeResult]:
    """Keep ``handle``'s process frozen for the ``with`` block; yields how (see module doc).

    ``status``: the process's status if just read (saves a read). ``method``: how to freeze a
    running process, :attr:`FreezeMethod.SIGSTOP` (default) or :attr:`FreezeMethod.PTRACE`
    (must then be used from one thread: the block runs between seize and detach).

    :raises ProcessGone: the process disappeared before it could be inspected.
    """
    if method not in (FreezeMethod.SIGSTOP, FreezeMethod.PTRACE):
        raise ValueError(f"cannot freeze with {method!r}")
    if status is None:
        status = parse_status(handle.read_bytes("status"))
    if status.core_dumping:
        yield FreezeResult(FreezeMethod.COREDUMPING, True, "the kernel is dumping its core")
        return
    if status.state in (b"Z", b"X"):
        yield FreezeResult(FreezeMethod.DEAD, True, "zombie")
        return
    if _all_stopped(read_thread_states(handle)):
        yield FreezeResult(FreezeMethod.ALREADY_STOPPED, True, "already stopped")
        return
    if status.tracer_pid:
        yield FreezeResult(
            FreezeMethod.NONE, False, f"traced by pid {status.tracer_pid} and running"
        )
        return
    refused = None
    if method == FreezeMethod.PTRACE:
        try:
            held = seize_threads(handle, timeout)
        except (AccessDenied, Unsupported) as err:
            refused = f"ptrace refused ({err}), "
        else:
            try:
                if held.all_stopped:
                    yield FreezeResult(FreezeMethod.PTRACE, True, "every thread ptrace-stopped")
                else:
                    yield FreezeResult(FreezeMethod.PTRACE, False, "a thread did not stop")
            finally:
                held.release(timeout)
            return
    with _sigstopped(handle, timeout, refused or "") as result:
        yield result


@contextmanager
def _sigstopped(handle: ProcessHandle, timeout: float, why: str) -> Iterator[FreezeResult]:
    handle.send_signal(signal.SIGSTOP)
    try:
        if wait_all_stopped(handle, timeout):
            result = FreezeResult(FreezeMethod.SIGSTOP, True, why + "stopped with SIGSTOP")
        else:
            result = FreezeResult(FreezeMethod.SIGSTOP, False, why + "SIGSTOP did not take effect")
        yield result
    finally:
        try:
            handle.send_signal(signal.SIGCONT)
        except ProcessGone:
            pass
