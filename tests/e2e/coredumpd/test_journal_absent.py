"""journald unreachable for real: in a private mount namespace whose /run/systemd/journal is an
empty tmpfs (the host's journald keeps running), send_entry returns False at once and logs
one line; python-systemd alone would report success (libsystemd ignores ENOENT)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys

import pytest

from coredumpd.journal import journald_unreachable_reason

pytestmark = pytest.mark.e2e

SCRIPT = r"""
import json, socket, subprocess, sys, time
from systemd import journal as sd_journal
from coredumpd.context import CrashContext
from coredumpd.journal import JOURNAL_SOCKET, build_entry, send_entry

subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(JOURNAL_SOCKET.parent)], check=True)
pid = int(sys.argv[1])
entry = build_entry(CrashContext(pid=pid, uid=0, gid=0, signal=11, comm=b"absent"), None,
                    core_stored=False)
results = {}
sd_journal.sendv("MESSAGE=libsystemd drops this silently", f"COREDUMP_PID={pid}")
results["sendv_raised"] = False

start = time.monotonic()
results["absent"] = [send_entry(entry), time.monotonic() - start]

stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
stale.bind(str(JOURNAL_SOCKET))
stale.close()
start = time.monotonic()
results["stale"] = [send_entry(entry), time.monotonic() - start]
print(json.dumps(results))
"""


def test_send_entry_without_journald(journald) -> None:
    assert journald_unreachable_reason() is None
    unshare = shutil.which("unshare")
    assert unshare is not None
    pid = random.randrange(10_000_000, 99_999_999)
    proc = subprocess.run([unshare, "--mount", "--propagation", "private", sys.executable, "-c",
                           SCRIPT, str(pid)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert results["sendv_raised"] is False
    assert results["absent"][0] is False and results["absent"][1] < 0.5
    assert results["stale"][0] is False and results["stale"][1] < 0.5
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr
    assert f"pid {pid}" in lines[0] and "No such file or directory" in lines[0]
    assert "Connection refused" in lines[1]
    # the namespace changed nothing outside it
    assert journald_unreachable_reason() is None
    found = subprocess.run([journald.journalctl(), "--no-pager", "-o", "export",
                            f"COREDUMP_PID={pid}"], capture_output=True, timeout=30).stdout
    assert found == b""
