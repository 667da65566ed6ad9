"""``coredumpd catch`` inside a real gVisor sandbox (Debian's runsc): the kernel never sees the
crash there, the catcher writes the core, and gdb on the host reads it."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.catch.conftest import REPO, Store, core_file, our_backtraces
from tests.e2e.catch.test_catch import check_core, own_frames

pytestmark = pytest.mark.e2e

RUNSC = ("runsc", "--network=none", "--platform=ptrace", "do", "-force-overlay=false")


def _runsc_unavailable() -> str | None:
    if shutil.which("runsc") is None:
        return "runsc is not installed (apt-get install runsc)"
    probe = subprocess.run([*RUNSC, "/bin/true"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
    if probe.returncode != 0:
        return f"runsc cannot run here: {probe.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="module")
def runsc() -> None:
    reason = _runsc_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("args", [["segv"], ["threads", "4"]], ids=["segv", "threads4"])
def test_crash_in_gvisor_is_captured(runsc, catch_sysctls, store: Store, crasher: Path,
                                     args: list[str], tmp_path: Path) -> None:
    # stdout to a file: runsc's own stdout relay drops bytes written to a pipe here
    with open(tmp_path / "out", "w") as out:
        proc = subprocess.run([*RUNSC, str(REPO / ".venv/bin/coredumpd"), "catch", "--state-dir",
                               str(store.path), "--", str(crasher), *args],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              cwd=REPO, timeout=120)
    log = (tmp_path / "out").read_text(errors="replace")
    # runsc reports the sandboxed process's signal death as 128 + signal
    assert proc.returncode in (-signal.SIGSEGV, 128 + signal.SIGSEGV), log
    (row,) = store.new_rows()
    assert row.door == "catch" and row.signal == signal.SIGSEGV
    # gVisor has no process_vm_readv: the record says so
    assert "process_vm_readv: " in row.context.memory_method, row.context.memory_method
    ours = our_backtraces(row)
    gdb = check_core(core_file(row, tmp_path), crasher, ours)
    assert own_frames(gdb[row.tid])[0] == "crash_now"
    assert len(gdb) == (4 if args[0] == "threads" else 1)
