"""The ptrace freeze against faked ptrace calls: every seized thread is detached, also on error;
signals a thread reported to us are handed back; refusal falls back to SIGSTOP."""

import signal

import pytest

from procfs import freeze_ptrace
from procfs.errors import AccessDenied, ProcessGone, TraceeNotStopped
from procfs.freeze import FreezeMethod, frozen
from procfs.wait import decode_wait_status
from tests.unit.procfs.test_freeze_fake import FakeHandle

INTERRUPT_STOP = 0x80057F  # PTRACE_EVENT_STOP << 16 | SIGTRAP << 8 | 0x7f
SIGSTOP_DELIVERY = 0x137F


class FakePtrace:
    """Threads 9 and 10; ``clones`` appear in task/ after the first listing."""

    def __init__(self, monkeypatch, handle, *, refuse=(), reports=None, clones=()):
        self.handle = handle
        self.calls = []
        self.refuse = set(refuse)
        self.reports = reports or {}
        self.clones = list(clones)
        self.listings = 0
        monkeypatch.setattr(handle, "listdir", self.listdir)
        for name in ("seize", "interrupt", "detach", "read_wait"):
            monkeypatch.setattr(freeze_ptrace, name, getattr(self, name))

    def listdir(self, name):
        self.listings += 1
        return ["9", "10"] + ([str(t) for t in self.clones] if self.listings > 1 else [])

    def seize(self, tid, options=0):
        self.calls.append(("seize", tid))
        if tid in self.refuse:
            raise AccessDenied(tid, "PTRACE_SEIZE", "already traced")

    def interrupt(self, tid):
        self.calls.append(("interrupt", tid))

    def detach(self, tid, signo=0):
        self.calls.append(("detach", tid, signo))

    def read_wait(self, tid, *, timeout=None, event_message=True):
        self.calls.append(("wait", tid))
        return decode_wait_status(tid, self.reports.get(tid, INTERRUPT_STOP))

    def detached(self):
        return sorted(c[1] for c in self.calls if c[0] == "detach")


def test_ptrace_freeze_seizes_interrupts_and_detaches_every_thread(monkeypatch):
    handle = FakeHandle()
    fake = FakePtrace(monkeypatch, handle)
    with frozen(handle, method=FreezeMethod.PTRACE) as how:
        assert how.method == FreezeMethod.PTRACE and how.frozen
        assert ("seize", 9) in fake.calls and ("interrupt", 10) in fake.calls
        assert fake.detached() == []
    assert fake.detached() == [9, 10]
    assert handle.signals == []  # no SIGSTOP, no SIGCONT


def test_ptrace_freeze_detaches_on_error(monkeypatch):
    handle = FakeHandle()
    fake = FakePtrace(monkeypatch, handle)
    with pytest.raises(RuntimeError), frozen(handle, method=FreezeMethod.PTRACE):
        raise RuntimeError("boom")
    assert fake.detached() == [9, 10]


def test_a_reported_signal_is_handed_back_on_detach(monkeypatch):
    # someone's SIGSTOP reached thread 10 first: it must not be swallowed
    handle = FakeHandle()
    fake = FakePtrace(monkeypatch, handle, reports={10: SIGSTOP_DELIVERY})
    with frozen(handle, method=FreezeMethod.PTRACE) as how:
        assert how.frozen
    assert ("detach", 10, signal.SIGSTOP) in fake.calls and ("detach", 9, 0) in fake.calls


def test_threads_cloned_during_attach_are_seized_too(monkeypatch):
    handle = FakeHandle()
    fake = FakePtrace(monkeypatch, handle, clones=[11])
    with frozen(handle, method=FreezeMethod.PTRACE) as how:
        assert how.frozen and ("seize", 11) in fake.calls
    assert fake.detached() == [9, 10, 11]


def test_refusal_detaches_what_was_seized_and_falls_back_to_sigstop(monkeypatch):
    handle = FakeHandle()
    fake = FakePtrace(monkeypatch, handle, refuse={10})
    with frozen(handle, method=FreezeMethod.PTRACE) as how:
        assert how.method == FreezeMethod.SIGSTOP and how.frozen
        assert "ptrace refused" in how.reason
    assert fake.detached() == [9]
    assert handle.signals == [signal.SIGSTOP, signal.SIGCONT]


def test_a_thread_gone_at_detach_is_reaped_not_an_error(monkeypatch):
    handle = FakeHandle()
    fake = FakePtrace(monkeypatch, handle)

    def detach(tid, signo=0):
        fake.calls.append(("detach", tid, signo))
        if tid == 10:
            raise ProcessGone(tid)

    monkeypatch.setattr(freeze_ptrace, "detach", detach)
    with frozen(handle, method=FreezeMethod.PTRACE):
        pass
    assert fake.detached() == [9, 10]
    assert fake.calls[-1] == ("wait", 10)  # its exit report collected


def test_a_thread_not_yet_stopped_at_detach_is_waited_for(monkeypatch):
    handle = FakeHandle()
    FakePtrace(monkeypatch, handle)
    held = freeze_ptrace.seize_threads(handle, 1.0)
    held.stopped.discard(10)
    attempts = []

    def detach(tid, signo=0):
        attempts.append(tid)
        if tid == 10 and attempts.count(10) == 1:
            raise TraceeNotStopped(tid, "PTRACE_DETACH")

    monkeypatch.setattr(freeze_ptrace, "detach", detach)
    held.release()
    assert attempts == [9, 10, 10] and not held.pending


def test_unknown_method_is_refused():
    with pytest.raises(ValueError), frozen(FakeHandle(), method=FreezeMethod.NONE):
        pass
