"""Classification of raw wait statuses, as the kernel encodes them for a seized tracee."""

from __future__ import annotations

import signal

import pytest

from procfs.errors import ProcfsError
from procfs.ptrace_consts import PtraceEvent
from procfs.wait import WaitKind, decode_wait_status


def _stopped(sig: int, event: int = 0) -> int:
    return (event << 16) | (sig << 8) | 0x7F


def test_exited():
    result = decode_wait_status(10, 3 << 8)
    assert result.kind == WaitKind.EXITED and result.exit_code == 3
    assert result.gone and not result.stopped


@pytest.mark.parametrize(("status", "core"), [(11 | 0x80, True), (11, False)])
def test_killed_with_and_without_core(status, core):
    result = decode_wait_status(10, status)
    assert result.kind == WaitKind.KILLED and result.signal == signal.SIGSEGV
    assert result.core_dumped is core and result.gone


def test_signal_delivery_stop():
    result = decode_wait_status(10, _stopped(signal.SIGSEGV))  # 0xb7f
    assert result.kind == WaitKind.SIGNAL_STOP and result.signal == signal.SIGSEGV
    assert result.event is None and result.stopped


@pytest.mark.parametrize("sig", [signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU])
def test_group_stop(sig):
    result = decode_wait_status(10, _stopped(sig, PtraceEvent.STOP))
    assert result.kind == WaitKind.GROUP_STOP and result.signal == sig


def test_interrupt_stop():
    result = decode_wait_status(10, 0x80057F)  # measured after PTRACE_INTERRUPT on 6.18
    assert result.kind == WaitKind.INTERRUPT_STOP and result.event == PtraceEvent.STOP


@pytest.mark.parametrize(
    "event",
    [
        PtraceEvent.FORK,
        PtraceEvent.VFORK,
        PtraceEvent.CLONE,
        PtraceEvent.EXEC,
        PtraceEvent.VFORK_DONE,
        PtraceEvent.EXIT,
        PtraceEvent.SECCOMP,
    ],
)
def test_event_stops(event):
    result = decode_wait_status(10, _stopped(signal.SIGTRAP, event), event_message=77)
    assert result.kind == WaitKind.EVENT_STOP and result.event == event
    assert result.signal == signal.SIGTRAP and result.event_message == 77


def test_exit_event_measured():
    result = decode_wait_status(5379, 394623, event_message=11)  # SIGSEGV on its way out
    assert result.event == PtraceEvent.EXIT and result.event_message == 11


def test_syscall_stop_with_sysgood():
    result = decode_wait_status(10, _stopped(signal.SIGTRAP | 0x80))
    assert result.kind == WaitKind.SYSCALL_STOP


def test_continued():
    assert decode_wait_status(10, 0xFFFF).kind == WaitKind.CONTINUED


def test_unknown_event_raises_our_error():
    with pytest.raises(ProcfsError):
        decode_wait_status(10, _stopped(signal.SIGTRAP, 99))
