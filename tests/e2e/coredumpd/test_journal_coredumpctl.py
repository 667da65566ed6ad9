"""Debian's own coredumpctl (systemd-coredump 252) finds, shows and dumps our entries.

What it needs, found here: the entry's MESSAGE_ID and PID, UID, GID, SIGNAL and COMM (it
does not look at SYSLOG_IDENTIFIER); COREDUMP_FILENAME may point anywhere readable, not only
under /var/lib/systemd/coredump; the ``.zst`` suffix alone selects zstd decompression (the
rest of systemd's file name is not checked).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import zstandard

from coredumpd.context import CrashContext
from coredumpd.journal import build_entry, cellescape, send_entry
from tests.support.crash import crash_to_core_file
from unwinder.analyze import backtrace_from_core
from unwinder.core import CoreReader
from unwinder.format import format_systemd

pytestmark = pytest.mark.e2e

COMM = b"a) (b"
SOURCE = r"""
#include <pthread.h>
#include <sys/prctl.h>
#include <unistd.h>

static void *idle(void *arg) { for (;;) pause(); return arg; }

__attribute__((noinline)) static void crash_here(void) { *(volatile int *)8 = 1; }

int main(int argc, char **argv) {
    pthread_t thread;
    if (argc > 1)
        prctl(PR_SET_NAME, argv[1]);
    pthread_create(&thread, NULL, idle, NULL);
    usleep(50000);
    crash_here();
    return 0;
}
"""


def xescape(text: str, bad: str = "./ ") -> str:
    """systemd's ``xescape(s, bad)``, used on comm in the stored core's name."""
    return "".join(f"\\x{ord(c):02x}" if c < " " or c >= "\x7f" or c == "\\" or c in bad else c
                   for c in text)


def coredumpctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["coredumpctl", "--no-pager", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def crashed(crash_sysctls, compile_c, tmp_path: Path):
    exe = compile_c(SOURCE, name="journal_crash")
    crash = crash_to_core_file(crash_sysctls, exe, tmp_path / "kernel", [COMM.decode()])
    return crash


@pytest.mark.skipif(shutil.which("coredumpctl") is None,
                    reason="coredumpctl missing: apt-get install systemd-coredump (scripts/bootstrap)")
def test_coredumpctl_lists_shows_and_dumps(journald, crashed, tmp_path: Path) -> None:
    raw = crashed.core.read_bytes()
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
    timestamp = int(time.time()) * 1_000_000
    name = f"core.{xescape(cellescape(COMM))}.0.{boot_id}.{crashed.pid}.{timestamp}.zst"
    stored = tmp_path / "store" / name
    stored.parent.mkdir()
    stored.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(raw))

    with CoreReader(crashed.core, zero_fill=False) as reader:
        text = format_systemd(backtrace_from_core(reader))
    assert f"Stack trace of thread {crashed.pid}:" in text
    context = CrashContext(
        pid=crashed.pid, uid=0, gid=0, signal=crashed.signal, timestamp=timestamp,
        rlimit=2**63, hostname=b"localhost", comm=COMM, exe=str(crashed.exe).encode(),
        filename=str(stored), door="test",
    )
    assert send_entry(build_entry(context, text, core_stored=True)) is True

    end = time.monotonic() + 10
    while (listed := coredumpctl("list", "--json=short", str(crashed.pid))).returncode != 0:
        assert time.monotonic() < end, f"coredumpctl never listed pid {crashed.pid}: {listed.stderr}"
        time.sleep(0.05)
    rows = json.loads(listed.stdout)
    assert rows[-1] == {**rows[-1], "pid": crashed.pid, "uid": 0, "gid": 0, "sig": crashed.signal,
                        "corefile": "present", "exe": str(crashed.exe),
                        "size": stored.stat().st_size}

    table = coredumpctl("list", "--no-legend", str(crashed.pid))
    assert table.returncode == 0, table.stderr
    columns = table.stdout.splitlines()[-1].split()
    assert columns[4:9] == [str(crashed.pid), "0", "0", "SIGSEGV", "present"]
    assert columns[9] == str(crashed.exe)

    info = coredumpctl("info", "-1", str(crashed.pid))
    assert info.returncode == 0, info.stderr
    assert f"PID: {crashed.pid} (a) (b)" in info.stdout
    assert f"Storage: {stored} (present)" in info.stdout
    assert f"Message: Process {crashed.pid} (a) (b) of user 0 dumped core." in info.stdout
    shown = [line.strip() for line in info.stdout.splitlines()]
    for line in text.splitlines():
        assert line.strip() in shown, f"{line!r} missing from coredumpctl info"

    out = tmp_path / "dumped"
    dump = coredumpctl("dump", str(crashed.pid), "-o", str(out))
    assert dump.returncode == 0, dump.stderr
    assert out.read_bytes() == raw
