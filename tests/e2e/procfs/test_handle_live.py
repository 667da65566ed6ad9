"""ProcessHandle and pidfds against real children: reads, verify() after death, pidfd info."""

import os
import signal

import pytest

from procfs.errors import ProcessGone
from procfs.handle import ProcessHandle
from procfs.parse.stat import parse_stat
from procfs.parse.status import parse_status
from procfs.pidfd import PidfdInfoMask, get_pidfd_info, pidfd_getfd, pidfd_send_signal
from tests.support.procfs_children import running, wait_state

pytestmark = pytest.mark.e2e

TARGET = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>
static void *idle(void *arg) { for (;;) pause(); return arg; }
int main(void) {
    int p[2];
    if (pipe(p)) return 1;
    int e = eventfd(5, 0);
    pthread_t t1, t2;
    pthread_create(&t1, NULL, idle, NULL);
    pthread_create(&t2, NULL, idle, NULL);
    prctl(PR_SET_NAME, "a) (b", 0, 0, 0);
    printf("%d %d %d\n", p[0], p[1], e);
    fflush(stdout);
    for (;;) pause();
}
"""


@pytest.fixture
def target(compile_c):
    exe = compile_c(TARGET, name="procfs_target")
    with running([exe]) as child:
        wait_state(child.pid, "S")
        yield child


def test_reads_relative_to_dirfd(target):
    with ProcessHandle.from_pid(target.pid) as handle:
        stat = parse_stat(handle.read_bytes("stat"))
        assert stat.comm == b"a) (b" and stat.pid == target.pid and stat.num_threads == 3
        assert parse_status(handle.read_bytes("status")).name == b"a) (b"
        assert handle.readlink("exe").endswith(b"/procfs_target")
        assert len(handle.listdir("task")) == 3
        pipe_r, _, efd = (int(v) for v in target.ready.split())
        assert handle.readlink(f"fd/{pipe_r}").startswith(b"pipe:[")
        assert handle.readlink(f"fd/{efd}") == b"anon_inode:[eventfd]"
        handle.verify()


def test_from_pidfd_like_the_kernel_hands_it(target):
    pidfd = os.pidfd_open(target.pid)
    try:
        with ProcessHandle.from_pidfd(pidfd, take=False) as handle:
            assert handle.pid == target.pid
            handle.verify()
        os.fstat(pidfd)  # not closed: we did not take it
    finally:
        os.close(pidfd)


def test_pidfd_getfd_and_signal_zero(target):
    with ProcessHandle.from_pid(target.pid) as handle:
        pidfd_send_signal(handle.pidfd, 0)
        _, _, efd = (int(v) for v in target.ready.split())
        mine = pidfd_getfd(handle.pidfd, efd)
        try:
            assert int.from_bytes(os.read(mine, 8), "little") == 5
        finally:
            os.close(mine)


def test_verify_after_death_and_reap(target):
    handle = ProcessHandle.from_pid(target.pid)
    try:
        before = handle.info()
        assert before.pid == target.pid and before.creds is not None and not before.reaped
        assert before.creds.euid == os.geteuid()
        os.kill(target.pid, signal.SIGKILL)
        wait_state(target.pid, "Z")
        handle.verify()  # a zombie is still the same process
        zombie = handle.info()
        assert zombie.pid == target.pid and zombie.exit_code is None
        target.wait(timeout=10)
        with pytest.raises(ProcessGone):
            handle.verify()
        after = get_pidfd_info(handle.pidfd)
        assert after.reaped and after.pid is None and after.creds is None
        assert after.mask & PidfdInfoMask.EXIT
        assert after.term_signal == signal.SIGKILL and after.core_dumped is False
        with pytest.raises(ProcessGone):
            handle.read_bytes("stat")
    finally:
        handle.close()


def test_from_pid_of_missing_process():
    with pytest.raises(ProcessGone):
        ProcessHandle.from_pid(2**22 + 12345)
