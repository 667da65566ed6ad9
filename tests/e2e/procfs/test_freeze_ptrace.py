"""Freezing with PTRACE_SEIZE + PTRACE_INTERRUPT against a real process whose real parent waits
with ``WUNTRACED | WCONTINUED`` and prints every report it gets.

- a ptrace freeze is invisible to that parent (a SIGSTOP freeze afterwards is seen: the control
  that proves the parent would have told us);
- the snapshots are consistent (a small roller keeps exactly 1 or 2 rw pages at any instant);
- the process runs on, untraced, afterwards;
- someone else's SIGSTOP sent while we hold the process is not lost (a SIGSTOP freeze undoes it).
"""

import os
import select
import signal
import time
from pathlib import Path

import pytest

from procfs.freeze import FreezeMethod, frozen
from procfs.handle import ProcessHandle
from procfs.parse.maps import Perm
from procfs.parse.stat import parse_stat
from procfs.parse.status import parse_status
from procfs.snapshot import Part, snapshot
from tests.support.procfs_children import DEADLINE, proc_state, running, wait_for, wait_state

pytestmark = pytest.mark.e2e

NPAGES = 2000
WATCHED = r"""
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#define NPAGES 2000
static void *napper(void *arg) { for (;;) usleep(1000); return arg; }
static void roll(void) {
    long ps = sysconf(_SC_PAGESIZE);
    char *base = mmap(NULL, NPAGES * ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (long i = 1; i < NPAGES; i += 2) mprotect(base + i * ps, ps, PROT_NONE);
    pthread_t t;
    for (int i = 0; i < 3; i++) pthread_create(&t, NULL, napper, NULL);
    mprotect(base, ps, PROT_READ | PROT_WRITE);
    printf("child %lx %ld\n", (unsigned long)base, NPAGES * ps);
    fflush(stdout);
    for (long k = 0, prev = 0;; k = (k * 7 + 13) % NPAGES) {  /* 1 or 2 rw pages at any instant */
        mprotect(base + k * ps, ps, PROT_READ | PROT_WRITE);
        if (prev != k) mprotect(base + prev * ps, ps, (prev & 1) ? PROT_NONE : PROT_READ);
        prev = k;
    }
}
int main(void) {
    pid_t child = fork();
    if (child == 0) { prctl(PR_SET_PDEATHSIG, SIGKILL); roll(); }
    printf("parent %d\n", child);
    fflush(stdout);
    for (;;) {
        int st;
        if (waitpid(child, &st, WUNTRACED | WCONTINUED) < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        if (WIFSTOPPED(st)) printf("stopped %d\n", WSTOPSIG(st));
        else if (WIFCONTINUED(st)) printf("continued\n");
        else { printf("gone\n"); fflush(stdout); return 0; }
        fflush(stdout);
    }
}
"""


class Lines:
    """Lines of a pipe, read with a deadline (never blocking past it)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self, timeout: float = DEADLINE) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                raise AssertionError(f"no line within {timeout}s (have {self.buffer!r})")
            chunk = os.read(self.fd, 4096)
            if not chunk:
                raise AssertionError(f"pipe closed (have {self.buffer!r})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def pending(self) -> bytes:
        """Whatever arrived and was not read yet (without waiting)."""
        while select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, 4096)
            if not chunk:
                break
            self.buffer += chunk
        return self.buffer


@pytest.fixture
def watched(compile_c):
    exe = compile_c(WATCHED, name="watched", flags=("-O2", "-pthread"))
    with running([exe], ready_line=False) as parent:
        lines = Lines(parent.stdout.fileno())
        first = dict(line.split(" ", 1) for line in (lines.next(), lines.next()))
        pid = int(first["parent"])
        base_hex, size = first["child"].split()
        base, size = int(base_hex, 16), int(size)
        try:
            wait_for(lambda: len(os.listdir(f"/proc/{pid}/task")) == 4, "the child's threads")
            yield pid, base, size, lines
        finally:
            os.kill(pid, signal.SIGKILL)  # the grandchild we started (also dies with its parent)


def rw_pages(maps, base, size):
    return sum(
        m.size // 4096 for m in maps if base <= m.start < base + size and m.perms & Perm.WRITE
    )


def utime(pid: int) -> int:
    return parse_stat(Path(f"/proc/{pid}/stat").read_bytes()).utime


def tracers(pid: int) -> set[int]:
    return {
        parse_status(Path(f"/proc/{pid}/task/{tid}/status").read_bytes()).tracer_pid
        for tid in os.listdir(f"/proc/{pid}/task")
    }


def test_ptrace_freeze_is_invisible_to_the_parent_and_consistent(watched):
    pid, base, size, lines = watched
    with ProcessHandle.from_pid(pid) as handle:
        for i in range(20):
            snap = snapshot(handle, Part.MAPS | Part.THREADS, freeze=FreezeMethod.PTRACE)
            assert snap.consistent and snap.freeze == FreezeMethod.PTRACE, f"snapshot {i}"
            assert rw_pages(snap.maps, base, size) in (1, 2), f"snapshot {i}"
            assert len(snap.threads) == 4
        # running on, untraced: the roller burns CPU time again
        assert tracers(pid) == {0} and proc_state(pid) in "RS"
        before = utime(pid)
        wait_for(lambda: utime(pid) > before, "the roller to run after the ptrace freezes")
        assert lines.pending() == b"", "the parent saw a stop of the ptrace freezes"
        # control: the same snapshot with SIGSTOP is reported to the parent
        snap = snapshot(handle, Part.MAPS, freeze=FreezeMethod.SIGSTOP)
        assert snap.consistent and snap.freeze == FreezeMethod.SIGSTOP
    # the parent sees the control: its stop, then its continuation (or the continuation alone
    # when the stop ended before its waitpid looked: the kernel replaces the pending report)
    first = lines.next()
    assert first in ("stopped 19", "continued"), "the ptrace freezes were seen (or the control was not)"
    if first == "stopped 19":
        assert lines.next() == "continued"


def test_someone_elses_sigstop_survives_a_ptrace_freeze(watched):
    pid, _, _, lines = watched
    with ProcessHandle.from_pid(pid) as handle:
        with frozen(handle, method=FreezeMethod.PTRACE) as how:
            assert how.method == FreezeMethod.PTRACE and how.frozen
            assert {proc_state(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")} == {"t"}
            os.kill(pid, signal.SIGSTOP)  # a user's ^Z-like stop while we hold the process
        wait_state(pid, "T")
        assert lines.next() == "stopped 19"
        assert tracers(pid) == {0}
        os.kill(pid, signal.SIGCONT)
        assert lines.next() == "continued"
        wait_state(pid, "RS")
        # the SIGSTOP method cannot tell: its SIGCONT resumes what someone else stopped
        with frozen(handle, method=FreezeMethod.SIGSTOP) as how:
            assert how.method == FreezeMethod.SIGSTOP and how.frozen
            os.kill(pid, signal.SIGSTOP)
            # read while still stopped: a stop continued before the parent's waitpid saw it
            # is reported as "continued" alone (the kernel replaces the pending report)
            assert lines.next() == "stopped 19"
        assert lines.next() == "continued"
        wait_state(pid, "RS")
