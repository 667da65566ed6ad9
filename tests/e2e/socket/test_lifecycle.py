"""The daemon's life around a dump in flight on the kernel's coredump socket (``@@``).

- SIGTERM while the kernel is writing a core into the daemon: core_pattern is pointed away from
  the socket first, the dump completes, then the daemon exits 0;
- SIGKILL mid-dump, then a restart on the same state directory: the task is released, nothing
  half-written is left under a final name or as a temp file, the catalog is sound, and the next
  crash is recorded;
- what the crashing task's pidfd says after its reap, for a core taken (``KERNEL|WAIT``) and
  one rejected (``REJECT``).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from coredumpd.spool import LOCK
from coredumpd.storage import decompress_to
from coredumpd.sysctl import read_sysctl
from coredumpd.vacuum import SPOOL
from procfs.pidfd import CoredumpMask, get_pidfd_info
from tests.e2e.socket.conftest import SocketDoor, alive, descendants
from tests.support.crash import wait_until
from tests.support.stored_cores import check_stored_core, core_temp_files
from unwinder.core import CoreReader

pytestmark = pytest.mark.e2e

#: ``bigheap MIB``: MIB MiB of incompressible heap, then SIGSEGV. The heap escapes through a
#: volatile global: gcc drops the stores to a malloc'd block nobody reads (the core is tiny).
BIG = r"""
#include <stdint.h>
#include <stdlib.h>
uint64_t *volatile g_heap;
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    size_t n = (size_t)atoi(argv[1]) << 17;
    uint64_t *p = malloc(n * 8), x = 0x9e3779b97f4a7c15ull;
    if (!p) return 2;
    g_heap = p;
    for (size_t i = 0; i < n; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; p[i] = x; }
    *(volatile int *)16 = 1;
    return 0;
}
"""
#: how long the dump worker sits on the stream before reading it (the test hook): the kernel
#: blocks on the full socket meanwhile, the dump is in flight for that long. The daemon needs
#: ~2 s of it to point core_pattern away on SIGTERM (it tries the flock we hold for 2 s).
STALL_SEC = 10


@pytest.fixture(scope="module")
def big(compile_c) -> Path:  # type: ignore[no-untyped-def]
    return compile_c(BIG, name="bigheap", flags=("-O2",))


def _unlimited_core() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def spawn(argv: Sequence[str | Path], **kwargs) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    return subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=_unlimited_core, **kwargs)


def reap(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for ``proc`` ourselves (the raw status keeps the core bit); fail after ``timeout``."""
    status = 0

    def reaped() -> bool:
        nonlocal status
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        return pid != 0

    wait_until(reaped, timeout, f"pid {proc.pid} to be released")
    proc.returncode = -1  # reaped here; keep Popen from waiting again
    return status


def finish(proc: subprocess.Popen[bytes]) -> None:
    """Teardown of a victim the test did not reap: kill it (our child, by pid) and reap it."""
    if proc.returncode is None and proc.poll() is None:
        proc.kill()
        proc.wait()


def dumping_into_socket(pid: int) -> bool:
    """The kernel is writing ``pid``'s core into a unix socket (``@@``: only after our ack),
    according to its kernel stack."""
    try:
        stack = Path(f"/proc/{pid}/stack").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "elf_core_dump" in stack and "unix_stream_sendmsg" in stack


def core_dumping(pid: int) -> bool:
    """The kernel is dumping ``pid``'s core (``CoreDumping`` in /proc/<pid>/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nCoreDumping:\t1\n" in status


def check_complete(row, tmp_path: Path) -> int:  # type: ignore[no-untyped-def]
    """The row's stored core decompresses (every frame, checksums included) to a complete
    ELF core of the recorded size; returns that size."""
    assert row.storage_state == "present" and row.filename, (row.storage_state, row.notes)
    raw = tmp_path / f"core.{row.pid}"
    size = decompress_to(Path(row.filename), raw)
    with CoreReader(raw) as reader:
        assert not reader.truncated
        assert reader.size == reader.core.expected_size == row.received == size
        assert reader.core.prpsinfo.pr_pid == row.pid
    raw.unlink()
    return size


def temp_leftovers(state: Path) -> list[Path]:
    """What a killed writer could leave in the state directory: ``.#core…`` (storage without
    O_TMPFILE, or a taken spool), ``.<name>.…`` (symbol cache, install.json), ``coredumpd-*``
    (offline unwind). The daemon's spool and its lock are no leftovers: they stay."""
    spool = {state / "coredump" / SPOOL, state / "coredump" / LOCK}
    return [p for p in state.rglob("*")
            if p.name.startswith((".", "coredumpd-")) and p not in spool]


def test_sigterm_mid_dump_lets_it_complete(socket_door: SocketDoor, big: Path,
                                           tmp_path: Path) -> None:
    socket_door.start(env={"COREDUMPD_TEST_STALL_SEC": str(STALL_SEC)})
    daemon = socket_door.daemon
    assert daemon is not None
    ours = f"@@{socket_door.kernel_socket}"
    assert read_sysctl("core_pattern") == ours
    fallback = json.loads((socket_door.state / "install.json").read_text())["fallback_pattern"]
    assert fallback.startswith("|")

    victim = spawn([big, "64"])
    try:
        # acked and streaming: the kernel blocks writing the core into the stalled daemon
        wait_until(lambda: dumping_into_socket(victim.pid), 60, "the kernel to dump into the socket")
        daemon.send_signal(signal.SIGTERM)
        wait_until(lambda: read_sysctl("core_pattern") != ours or daemon.poll() is not None, 30,
                   "core_pattern to leave the socket")
        # pointed away while the daemon still holds the dump: it has not exited, the task waits
        assert daemon.poll() is None, socket_door.log()
        assert dumping_into_socket(victim.pid)
        assert read_sysctl("core_pattern") == fallback
        status = reap(victim, 60)
        assert daemon.wait(timeout=60) == 0, socket_door.log()
    finally:
        finish(victim)

    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV
    assert os.WCOREDUMP(status)  # (set for any socket dump begun: completeness is checked below)
    log = socket_door.log()
    assert f"core_pattern pointed at this daemon's socket; now {fallback}" in log
    (row,) = [r for r in socket_door.rows() if r.pid == victim.pid]
    assert row.door == "socket" and row.signal == signal.SIGSEGV
    assert check_complete(row, tmp_path) > 64 << 20  # the heap is in
    assert read_sysctl("core_pattern") == fallback  # and stays away after the exit


def test_sigkill_mid_dump_then_restart(socket_door: SocketDoor, big: Path, crasher: Path,
                                       tmp_path: Path) -> None:
    core_dir = socket_door.state / "coredump"
    socket_door.start()
    daemon = socket_door.daemon
    assert daemon is not None
    ours = f"@@{socket_door.kernel_socket}"

    victim = spawn([big, "256"])
    helpers: list[int] = []
    try:
        # mid-dump: the daemon (or a process of its own) has written a MiB of the core's temp
        # file; the kernel has ~250 MiB more to send
        def writing() -> bool:
            pids = [daemon.pid, *descendants(daemon.pid)]
            return any(size >= 1 << 20 for _, size in core_temp_files(pids, core_dir))

        wait_until(writing, 60, "the daemon to be writing the core")
        assert victim.poll() is None and core_dumping(victim.pid)
        status, helpers = socket_door.kill()
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert read_sysctl("core_pattern") != ours  # never a pattern pointing at nobody
        # the daemon's end of the connection is closed: the kernel's write fails, the task dies
        released = reap(victim, 30)
        # and what the daemon started (its door process, if any) follows it
        wait_until(lambda: not any(alive(pid) for pid in helpers), 30,
                   f"the daemon's processes {helpers} to exit")
    finally:
        finish(victim)
        for pid in helpers:
            if alive(pid):  # a helper that outlived the daemon: ours, by pid
                os.kill(pid, signal.SIGKILL)
    assert os.WIFSIGNALED(released) and os.WTERMSIG(released) == signal.SIGSEGV
    # (its core bit means nothing here: the kernel sets it for any pipe or socket dump it
    # started, even one whose reader vanished half-way; 6.18 reports 0x8b)
    assert not list(core_dir.glob(f"core.*.{victim.pid}.*"))  # nothing under a final name

    socket_door.start()
    crashed = socket_door.crash([crasher, "segv"])
    assert crashed.core_bit
    row = socket_door.wait_for(crashed.pid)
    check_stored_core(row, crasher, tmp_path, threads=1)
    log = socket_door.stop()
    assert socket_door.daemon is not None and socket_door.daemon.returncode == 0, log

    for name in ("catalog.sqlite", "catalog-details.sqlite"):
        with sqlite3.connect(socket_door.state / name) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    rows = socket_door.rows()
    # the killed dump is counted (its in-flight marker, recorded at the restart), never stored
    (killed,) = [r for r in rows if r.pid == victim.pid]
    assert killed.storage_state == "none" and killed.filename is None, killed
    assert any(n.startswith("interrupted:") for n in killed.notes), killed.notes
    assert "recorded 1 crash(es) interrupted by the previous daemon's end" in log
    assert not list((socket_door.state / "inflight").iterdir())
    assert [r.pid for r in rows if r.pid != victim.pid] == [crashed.pid]
    by_file = {r.filename: r for r in rows if r.filename}
    finals = sorted(str(p) for p in core_dir.iterdir() if p.name not in (SPOOL, LOCK))
    assert finals == sorted(by_file), "a file in the store without its row, or the reverse"
    for path in finals:
        assert Path(path).name.startswith("core.") and path.endswith(".zst"), path
        check_complete(by_file[path], tmp_path)
    assert temp_leftovers(socket_door.state) == []


def test_pidfd_info_after_reap_per_ack(socket_door: SocketDoor, crasher: Path) -> None:
    """``KERNEL|WAIT`` (core taken) and ``REJECT`` (rate limit), as the crashing task's pidfd
    tells them after the reap. What 6.18 reports: ``COREDUMPED|USER`` in both cases (the kernel
    attempted the dump through the socket); only the exit code's core bit tells them apart."""
    socket_door.start("RateLimitBurst=1\nRateLimitIntervalSec=1h\n")
    seen = {}
    for ack in ("KERNEL|WAIT", "REJECT"):
        proc = spawn([crasher, "stdin-segv"], stdin=subprocess.PIPE)
        pidfd = os.pidfd_open(proc.pid)  # it waits on its stdin: the pidfd is of the live task
        try:
            before = get_pidfd_info(pidfd)
            assert proc.stdin is not None
            proc.stdin.close()  # EOF: the gate opens, the task crashes
            status = reap(proc, 30)
            after = get_pidfd_info(pidfd)
        finally:
            os.close(pidfd)
            finish(proc)
        # alive: dumpable (USER), no dump yet, no exit code
        assert before.pid == proc.pid and not before.reaped
        assert before.coredump_mask == CoredumpMask.USER
        # reaped: the pidfd keeps the exit code (the wait status) and the coredump mask
        assert after.reaped and after.exit_code == status
        assert after.term_signal == signal.SIGSEGV
        assert after.coredump_mask == CoredumpMask.COREDUMPED | CoredumpMask.USER
        seen[ack] = (proc.pid, status, after)

    taken_pid, taken_status, taken = seen["KERNEL|WAIT"]
    rejected_pid, rejected_status, rejected = seen["REJECT"]
    assert os.WCOREDUMP(taken_status) and taken.core_dumped is True
    assert not os.WCOREDUMP(rejected_status) and rejected.core_dumped is False
    assert socket_door.wait_for(taken_pid).storage_state == "present"
    row = socket_door.wait_for(rejected_pid)
    assert row.storage_state == "none" and any("rejected by rate limit" in n for n in row.notes)
