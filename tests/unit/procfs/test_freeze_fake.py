"""freeze logic against a fake handle: always undone, never SIGCONT an already-stopped process."""

import signal

import pytest

from procfs import freeze
from procfs.errors import ProcessGone
from procfs.freeze import FreezeMethod, frozen

STATUS = (b"Name:\tx\nState:\t%s\nTgid:\t9\nPid:\t9\nPPid:\t1\nTracerPid:\t%d\n"
          b"Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCoreDumping:\t%d\n")  # fmt: skip


class FakeHandle:
    pid = 9

    def __init__(self, state=b"S", tracer=0, dumping=0, stops=True):
        self.state = state
        self.status = STATUS % (state, tracer, dumping)
        self.signals = []
        self.stops = stops

    def read_bytes(self, name):
        if name == "status":
            return self.status
        return b"9 (x) %s 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 2 0 5 100 2" % self.state

    def listdir(self, name):
        return ["9", "10"]

    def send_signal(self, sig):
        self.signals.append(sig)
        if sig == signal.SIGSTOP and self.stops:
            self.state = b"T"
        elif sig == signal.SIGCONT:
            self.state = b"S"


def test_sigstop_then_sigcont():
    handle = FakeHandle()
    with frozen(handle) as how:
        assert how.method == FreezeMethod.SIGSTOP and how.frozen
        assert handle.signals == [signal.SIGSTOP]
    assert handle.signals == [signal.SIGSTOP, signal.SIGCONT]


def test_undone_on_error():
    handle = FakeHandle()
    with pytest.raises(RuntimeError), frozen(handle):
        raise RuntimeError("boom")
    assert handle.signals == [signal.SIGSTOP, signal.SIGCONT]


def test_already_stopped_left_alone():
    handle = FakeHandle(state=b"T")
    with frozen(handle) as how:
        assert how.method == FreezeMethod.ALREADY_STOPPED and how.frozen
    assert handle.signals == []


def test_coredumping_left_alone():
    handle = FakeHandle(dumping=1)
    with frozen(handle) as how:
        assert how.method == FreezeMethod.COREDUMPING
    assert handle.signals == []


def test_traced_and_running_not_signalled():
    handle = FakeHandle(tracer=77)
    with frozen(handle) as how:
        assert how.method == FreezeMethod.NONE and not how.frozen
    assert handle.signals == []


def test_stop_timeout_reports_not_frozen_and_resumes(monkeypatch):
    handle = FakeHandle(stops=False)
    monkeypatch.setattr(freeze, "STOP_TIMEOUT", 0.01)
    with frozen(handle, timeout=0.01) as how:
        assert not how.frozen
    assert handle.signals == [signal.SIGSTOP, signal.SIGCONT]


def test_gone_during_resume_is_quiet():
    handle = FakeHandle()

    def send(sig):
        handle.signals.append(sig)
        if sig == signal.SIGCONT:
            raise ProcessGone(9)
        handle.state = b"T"

    handle.send_signal = send
    with frozen(handle):
        pass
    assert handle.signals == [signal.SIGSTOP, signal.SIGCONT]
