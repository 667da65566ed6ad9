"""snapshot() of real children: freezing and resuming, leaving stopped ones stopped, access."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from procfs.access import explain_access_denied
from procfs.freeze import FreezeMethod
from procfs.handle import ProcessHandle
from procfs.parse.fds import open_fds_to_text
from procfs.snapshot import snapshot
from procfs.vmas import MapsSource
from tests.support.procfs_children import proc_state, running, wait_state

pytestmark = pytest.mark.e2e

SLEEPER = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("ready\n"); fflush(stdout); for (;;) pause(); }
"""


@pytest.fixture
def sleeper(compile_c):
    with running([compile_c(SLEEPER, name="sleeper")]) as child:
        wait_state(child.pid, "S")
        yield child


def test_snapshot_running_freezes_and_resumes(sleeper):
    with ProcessHandle.from_pid(sleeper.pid) as handle:
        snap = snapshot(handle)
    assert snap.consistent and snap.freeze == FreezeMethod.SIGSTOP and not snap.failures
    assert snap.stat.state == b"S"  # read before we stopped it
    assert snap.maps_source == MapsSource.PROCMAP_QUERY
    assert any(m.path.endswith(b"/sleeper") and m.build_id for m in snap.maps)
    assert snap.cmdline and snap.environ and snap.auxv.complete and snap.limits and snap.cgroup
    assert snap.mountinfo and snap.namespaces and snap.threads == (sleeper.pid,)
    assert snap.exe.path.endswith(b"/sleeper") and snap.root.path == b"/"
    assert b"0:/dev/null\n" in open_fds_to_text(snap.fds)
    assert snap.raw["status"].startswith(b"Name:\tsleeper")
    wait_state(sleeper.pid, "S")  # resumed: SIGCONT was sent
    vsyscall = [m for m in Path("/proc/self/maps").read_bytes().splitlines() if b"[vsyscall]" in m]
    assert (snap.maps[-1].path == b"[vsyscall]") == bool(vsyscall)


def test_snapshot_text_source_matches(sleeper):
    with ProcessHandle.from_pid(sleeper.pid) as handle:
        text = snapshot(handle, maps_source=MapsSource.TEXT)
        ioctl = snapshot(handle, maps_source=MapsSource.PROCMAP_QUERY)
    assert text.maps_source == MapsSource.TEXT and "maps" in text.raw
    assert [(m.start, m.end, m.perms, m.path) for m in text.maps] == [
        (m.start, m.end, m.perms, m.path) for m in ioctl.maps
    ]


def test_snapshot_of_stopped_process_leaves_it_stopped(sleeper):
    os.kill(sleeper.pid, signal.SIGSTOP)
    wait_state(sleeper.pid, "T")
    with ProcessHandle.from_pid(sleeper.pid) as handle:
        snap = snapshot(handle)
    assert snap.consistent and snap.freeze == FreezeMethod.ALREADY_STOPPED
    assert proc_state(sleeper.pid) == "T"  # no SIGCONT from us
    os.kill(sleeper.pid, signal.SIGCONT)


def test_snapshot_of_zombie(sleeper):
    with ProcessHandle.from_pid(sleeper.pid) as handle:
        os.kill(sleeper.pid, signal.SIGKILL)
        wait_state(sleeper.pid, "Z")
        snap = snapshot(handle)
    assert snap.freeze == FreezeMethod.DEAD and snap.stat.zombie
    assert not snap.maps  # PROCMAP_QUERY on a zombie: ESRCH, recorded in failures
    assert snap.cmdline == ()


def test_access_explained_as_root_and_as_nobody(sleeper):
    assert explain_access_denied(sleeper.pid).allowed
    code = (
        "import sys; from procfs.access import explain_access_denied as e; "
        f"v = e({sleeper.pid}); print(v.allowed); print(v)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], user=65534, group=65534, extra_groups=[],
        capture_output=True, text=True, cwd="/", check=True,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    ).stdout  # fmt: skip
    allowed, reason = out.splitlines()[:2]
    assert allowed == "False" and "real uid 65534" in reason and "lack CAP_SYS_PTRACE" in reason
