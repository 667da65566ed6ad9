"""Every parser on the real /proc files of a spawned child, including hostile ones."""

import os
import resource
import shutil
import signal

import pytest

from procfs.handle import ProcessHandle
from procfs.parse.auxv import AT, parse_auxv
from procfs.parse.cgroup import parse_cgroup
from procfs.parse.cmdline import cmdline_to_posix, parse_cmdline, parse_posix_cmdline
from procfs.parse.environ import parse_environ
from procfs.parse.fds import open_fds_to_text, parse_open_fds
from procfs.parse.limits import Rlimit, parse_limits
from procfs.parse.links import parse_link
from procfs.parse.maps import parse_maps
from procfs.parse.mountinfo import parse_mountinfo
from procfs.parse.namespaces import parse_ns_link
from procfs.parse.stat import parse_stat
from procfs.parse.status import parse_status
from procfs.snapshot import read_namespaces, read_open_fds
from procfs.vmas import MapsSource, read_maps
from tests.support.procfs_children import running, wait_state

pytestmark = pytest.mark.e2e

SLEEPER = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("ready\n"); fflush(stdout); for (;;) pause(); }
"""

HOSTILE_ARGS = [b"with space", b"it's \"quoted\"", b"new\nline", b"\xff\xfe", b"", b"$HOME", b"x"]
HUGE_ENV = {f"VAR{i}": "v" * 4000 for i in range(200)}


@pytest.fixture
def child(compile_c, tmp_path):
    """A sleeper run from a copy that is then deleted, with hostile argv and a huge environ."""
    exe = tmp_path / "doomed exe"
    shutil.copy(compile_c(SLEEPER, name="sleeper"), exe)
    env = {"PATH": "/usr/bin:/bin", **HUGE_ENV}
    with running([exe, *[os.fsdecode(a) for a in HOSTILE_ARGS]], env=env) as proc:
        exe.unlink()
        wait_state(proc.pid, "S")
        with ProcessHandle.from_pid(proc.pid) as handle:
            yield proc, handle, exe


def test_stat_and_status(child):
    proc, handle, _ = child
    stat = parse_stat(handle.read_bytes("stat"))
    status = parse_status(handle.read_bytes("status"))
    assert stat.pid == status.pid == status.tgid == proc.pid
    assert stat.ppid == status.ppid == os.getpid()
    assert stat.comm == status.name == b"doomed exe"
    assert status.uids.real == os.getuid() and status.threads == 1 and status.core_dumping is False


def test_limits_cgroup_mountinfo(child):
    proc, handle, _ = child
    limits = parse_limits(handle.read_bytes("limits"))
    soft, hard = resource.prlimit(proc.pid, resource.RLIMIT_NOFILE)
    nofile = limits.find(Rlimit.NOFILE)
    assert (nofile.soft, nofile.hard) == (soft, hard) and len(limits.rows) == 16
    cgroups = parse_cgroup(handle.read_bytes("cgroup"))
    assert cgroups.entries and cgroups.entries == parse_cgroup(open("/proc/self/cgroup", "rb").read()).entries
    raw = handle.read_bytes("mountinfo")
    mounts = parse_mountinfo(raw)
    assert len(mounts) == raw.count(b"\n") and any(m.mount_point == b"/proc" for m in mounts)


def test_environ_cmdline_auxv(child):
    _, handle, exe = child
    environ = parse_environ(handle.read_bytes("environ"))
    assert environ.complete and len(environ.entries) == 201
    assert environ.find(b"VAR199") == b"v" * 4000
    args = parse_cmdline(handle.read_bytes("cmdline"))
    assert args == (os.fsencode(exe), *HOSTILE_ARGS)
    assert parse_posix_cmdline(cmdline_to_posix(args)) == args
    auxv = parse_auxv(handle.read_bytes("auxv"))
    assert auxv.complete and auxv.find(AT.PAGESZ) == resource.getpagesize()
    assert auxv.find(AT.UID) == os.getuid() and auxv.find(AT.SYSINFO_EHDR)


def test_maps_text_and_procmap_agree_on_deleted_exe(child):
    _, handle, exe = child
    text = parse_maps(handle.read_bytes("maps"))
    procmap, source = read_maps(handle, MapsSource.PROCMAP_QUERY)
    assert source == MapsSource.PROCMAP_QUERY
    strip = [m._replace(build_id=None) for m in procmap]
    assert strip == list(text)
    mine = [m for m in procmap if m.path == os.fsencode(exe)]
    assert mine and all(m.deleted for m in mine)
    assert all(m.build_id and len(m.build_id) == 20 for m in mine)
    assert len({m.build_id for m in mine}) == 1
    bare, _ = read_maps(handle, MapsSource.PROCMAP_QUERY, build_ids=False)
    assert [m.start for m in bare] == [m.start for m in text]
    assert all(m.build_id is None for m in bare)
    if any(m.path == b"[vsyscall]" for m in text):
        assert procmap[-1].path == b"[vsyscall]"


def test_links_fds_namespaces(child):
    _, handle, exe = child
    link = parse_link(handle.readlink("exe"))
    assert link.deleted and link.path == os.fsencode(exe)
    assert parse_link(handle.readlink("root")).path == b"/"
    assert parse_link(handle.readlink("cwd")).path == os.fsencode(os.getcwd())
    fds = read_open_fds(handle)
    assert [f.fd for f in fds][:3] == [0, 1, 2]
    assert fds[1].target.startswith(b"pipe:[") and fds[1].info.flags & os.O_WRONLY
    assert parse_open_fds(open_fds_to_text(fds)) == fds
    namespaces = read_namespaces(handle)
    for name in ("mnt", "pid", "user", "net"):
        assert namespaces.find(name) == parse_ns_link(os.readlink(f"/proc/self/ns/{name}").encode()).inode


def test_zombie_files_are_empty_but_parse(child):
    proc, handle, _ = child
    os.kill(proc.pid, signal.SIGKILL)
    wait_state(proc.pid, "Z")
    assert parse_stat(handle.read_bytes("stat")).zombie
    assert parse_maps(handle.read_bytes("maps")) == ()
    assert parse_cmdline(handle.read_bytes("cmdline")) == ()
    handle.verify()
