"""ptrace primitives and the wait loop against real targets: seize, interrupt, registers of every
thread, siginfo at SIGSEGV, fork/exec following, group stops, detach."""

from __future__ import annotations

import os
import signal
import struct
from pathlib import Path

import pytest

from procfs import ptrace
from procfs._libc import MACHINE
from procfs.errors import ProcessGone, TraceeNotStopped
from procfs.ptrace_consts import PtraceEvent, PtraceOptions
from procfs.wait import WaitKind, read_wait
from tests.support import procfs_mem

pytestmark = pytest.mark.e2e

FOLLOW = (
    PtraceOptions.TRACECLONE
    | PtraceOptions.TRACEFORK
    | PtraceOptions.TRACEVFORK
    | PtraceOptions.TRACEEXEC
    | PtraceOptions.TRACEEXIT
)
SEGV_MAPERR = 1


@pytest.fixture
def exe(compile_c) -> Path:
    return procfs_mem.build(compile_c)


@pytest.fixture
def spawn(exe):
    started = []

    def _spawn(*args: str, threads: int = 1):
        target = procfs_mem.spawn(exe, *args, threads=threads)
        started.append(target)
        return target

    yield _spawn
    for target in started:
        target.stop()


def _syscall_file(pid: int, tid: int) -> tuple[int | None, int, int]:
    """``/proc/<pid>/task/<tid>/syscall``: (number or None, sp, pc)."""
    fields = Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()
    number = int(fields[0]) if fields[0] not in ("-1", "running") else None
    return number, int(fields[-2], 16), int(fields[-1], 16)


def test_registers_of_every_thread(spawn):
    target = spawn("threads", threads=4)
    tids = procfs_mem.tids(target.pid)
    for tid in tids:
        ptrace.seize(tid, PtraceOptions.TRACECLONE)
    with pytest.raises(TraceeNotStopped):
        ptrace.read_registers(tids[0])  # seized but still running
    for tid in tids:
        ptrace.interrupt(tid)
    for tid in tids:
        stop = read_wait(tid, timeout=10)
        assert stop.kind == WaitKind.INTERRUPT_STOP and stop.event == PtraceEvent.STOP
    for tid in tids:
        regs = ptrace.read_registers(tid)
        number, sp, pc = _syscall_file(target.pid, tid)
        assert (regs.sp, regs.pc) == (sp, pc)
        if MACHINE == "x86_64":
            assert len(regs.raw) == 216 and len(regs.values) == 27
            assert regs["rip"] == pc and regs["rsp"] == sp
            if number is not None:
                assert regs["orig_rax"] == number  # read (0) in main, pause (34) elsewhere
            fpregs = ptrace.read_fpregs(tid)
            xstate = ptrace.read_xstate(tid)
            assert len(fpregs) == 512 and len(xstate) >= 576
            assert xstate[24:28] == fpregs[24:28]  # mxcsr, the same FXSAVE area
            (xcr0,) = struct.unpack_from("<Q", xstate, 464)
            assert xcr0 & 0x3 == 0x3  # x87 and SSE always enabled
    for tid in tids:
        ptrace.detach(tid)
    procfs_mem.wait_until(
        lambda: all(procfs_mem.read_state(t) == "S" for t in tids), what="threads asleep"
    )
    target.release()
    assert target.proc.wait(timeout=10) == 0


def test_siginfo_at_sigsegv_and_fatal_signal_goes_through(spawn):
    target = spawn("segv")
    ptrace.seize(target.pid, PtraceOptions.TRACEEXIT)
    target.release()
    stop = read_wait(target.pid, timeout=10)
    assert stop.kind == WaitKind.SIGNAL_STOP and stop.signal == signal.SIGSEGV
    info = ptrace.read_siginfo(target.pid)
    assert info.signo == signal.SIGSEGV and info.code == SEGV_MAPERR
    assert info.addr == procfs_mem.SEGV_ADDRESS == target.info["segv"]
    assert len(info.raw) == 128
    ptrace.cont(target.pid, stop.signal)
    exit_stop = read_wait(target.pid, timeout=10)
    assert exit_stop.event == PtraceEvent.EXIT
    assert os.WIFSIGNALED(exit_stop.event_message)
    assert os.WTERMSIG(exit_stop.event_message) == signal.SIGSEGV
    ptrace.cont(target.pid)
    end = read_wait(target.pid, timeout=10)
    assert end.kind == WaitKind.KILLED and end.signal == signal.SIGSEGV
    assert not end.core_dumped  # the target dropped dumpable before crashing
    with pytest.raises(ProcessGone):
        ptrace.read_registers(target.pid)


def test_follow_fork_and_exec(spawn):
    target = spawn("forkexec")
    ptrace.seize(target.pid, FOLLOW)
    target.release()
    seen = []
    while True:
        report = read_wait(-1, timeout=10)
        seen.append(report)
        if report.gone:
            if report.pid == target.pid:
                break
            continue
        ptrace.cont(report.pid, report.signal if report.kind == WaitKind.SIGNAL_STOP else 0)
    fork = next(r for r in seen if r.event == PtraceEvent.FORK)
    child = fork.event_message
    assert fork.pid == target.pid and child not in (None, target.pid)
    of_child = [r for r in seen if r.pid == child]
    kinds = [(r.kind, r.event) for r in of_child]
    assert (WaitKind.INTERRUPT_STOP, PtraceEvent.STOP) in kinds  # auto-attached, starting
    execs = [r for r in of_child if r.event == PtraceEvent.EXEC]
    assert len(execs) == 1 and execs[0].event_message == child  # former tid: the leader itself
    assert of_child[-1].kind == WaitKind.EXITED and of_child[-1].exit_code == 0
    assert any(r.kind == WaitKind.SIGNAL_STOP and r.signal == signal.SIGCHLD for r in seen)
    exits = [r for r in seen if r.pid == target.pid and r.event == PtraceEvent.EXIT]
    assert len(exits) == 1 and exits[0].event_message == 0
    assert seen[-1].kind == WaitKind.EXITED and seen[-1].exit_code == 0


def test_group_stop_listen_and_sigcont(spawn):
    target = spawn("layout")
    ptrace.seize(target.pid)
    os.kill(target.pid, signal.SIGSTOP)
    delivery = read_wait(target.pid, timeout=10)
    assert delivery.kind == WaitKind.SIGNAL_STOP and delivery.signal == signal.SIGSTOP
    ptrace.cont(target.pid, signal.SIGSTOP)
    group = read_wait(target.pid, timeout=10)
    assert group.kind == WaitKind.GROUP_STOP and group.signal == signal.SIGSTOP
    assert procfs_mem.read_state(target.pid) == "t"
    ptrace.listen(target.pid)  # stay stopped, but report SIGCONT
    os.kill(target.pid, signal.SIGCONT)
    woken = read_wait(target.pid, timeout=10)
    assert woken.kind == WaitKind.INTERRUPT_STOP
    ptrace.cont(target.pid)
    delivery = read_wait(target.pid, timeout=10)
    assert delivery.kind == WaitKind.SIGNAL_STOP and delivery.signal == signal.SIGCONT
    ptrace.cont(target.pid, signal.SIGCONT)
    procfs_mem.wait_until(lambda: procfs_mem.read_state(target.pid) == "S", what="running on")
    target.release()
    end = read_wait(target.pid, timeout=10)
    assert end.kind == WaitKind.EXITED and end.exit_code == 0


def test_detach_leaves_the_target_running(spawn):
    target = spawn("layout")
    ptrace.seize(target.pid)
    ptrace.interrupt(target.pid)
    assert read_wait(target.pid, timeout=10).kind == WaitKind.INTERRUPT_STOP
    assert procfs_mem.read_state(target.pid) == "t"
    ptrace.detach(target.pid)

    def untraced_and_asleep() -> bool:
        status = Path(f"/proc/{target.pid}/status").read_text()
        return "TracerPid:\t0\n" in status and procfs_mem.read_state(target.pid) == "S"

    procfs_mem.wait_until(untraced_and_asleep, what="detached target asleep")
    with pytest.raises(TraceeNotStopped):
        ptrace.interrupt(target.pid)
    target.release()
    assert target.proc.wait(timeout=10) == 0
