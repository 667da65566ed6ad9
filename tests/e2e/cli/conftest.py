"""Real crash records for the CLI tests, made once per module.

Under the core_pattern flock: coredumpd's pipe door is installed in a world-readable state
directory and catches crashes of root (twice the same bug, an abort whose core is then
deleted), of a program named ``[bold]x`` with escape bytes in its argv, and of user 65534
(a plain crash, and a setuid one, dumpable=2). Then core_pattern is pointed at Debian's
``systemd-coredump`` (behind ``systemd-socket-activate`` when nothing listens on its socket,
as research §7 ran it) for one more crash, which it journals itself.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coredumpd.catalog import Catalog, CatalogRow
from coredumpd.install import install, uninstall
from coredumpd.journal_reader import JournalCrash, iter_crash_entries
from tests.support.crash import wait_until
from tests.support.journald import Journald
from tests.support.pipe_door import TEST_SPOOL
from tests.support.sysctl import crash_sysctls, e2e_unavailable_reason

BIN = Path(sys.executable).parent
SYSTEMD_COREDUMP = Path("/lib/systemd/systemd-coredump")
COREDUMP_SOCKET = Path("/run/systemd/coredump")
SD_PATTERN = f"|{SYSTEMD_COREDUMP} %P %u %g %s %t 9223372036854775808 %h %d"
HOSTILE_ARG = "\x1b[31mred\x07\x1b]0;pwned\x07"
NOBODY = 65534


@dataclass
class Records:
    state: Path
    public: Path          # world-readable scratch directory
    started_us: int
    crasher: Path
    segv: list[int] = field(default_factory=list)   # two root crashes, same bug
    abort: int = 0                                    # root, core deleted afterwards
    hostile: int = 0                                  # "[bold]x" with escapes in argv
    nobody: int = 0                                   # uid 65534, dumpable
    nobody_suid: int = 0                              # uid 65534, setuid → dumpable=2
    sd: int = 0                                       # systemd-coredump's own record
    sd_entry: JournalCrash | None = None

    def row(self, pid: int) -> CatalogRow:
        with Catalog.open(self.state / "catalog.sqlite") as catalog:
            return next(r for r in catalog.query() if r.pid == pid)

    def cli(self, *args: str, user: int | None = None, env: dict[str, str] | None = None,
            input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run ``coredumpd VERB …`` on these records (journal entries since the start)."""
        verb, *rest = args
        argv = [str(BIN / "coredumpd"), verb, "--state-dir", str(self.state),
                "-S", f"@{self.started_us / 1e6:.6f}", *rest]
        return subprocess.run(argv, capture_output=True, timeout=120, user=user, input=input,
                              env={**os.environ, "COLUMNS": "200", **(env or {})},
                              cwd=self.public)


def _crash(argv: list[str], **kw) -> int:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (-1, -1)),
                            **kw)
    assert proc.wait(timeout=120) < 0, argv
    return proc.pid


def _listening(path: Path) -> bool:
    """Whether a socket listens on ``path`` (from /proc/net/unix: a connect() would make
    systemd-socket-activate spawn a systemd-coredump for nothing)."""
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 8 and parts[7] == str(path) and int(parts[3], 16) & 0x10000:
            return True
    return False


def _wait_rows(state: Path, pids: list[int]) -> None:
    def done() -> bool:
        path = state / "catalog.sqlite"
        if not path.exists():
            return False
        with Catalog.open(path) as catalog:
            have = {r.pid for r in catalog.query()}
        return set(pids) <= have

    wait_until(done, 120, f"catalog rows of {pids}")


def _sd_entry(pid: int) -> JournalCrash | None:
    for entry in iter_crash_entries({"COREDUMP_PID": (str(pid).encode(),)}):
        if isinstance(entry, JournalCrash) and entry.writer == "systemd-coredump":
            return entry
    return None


@pytest.fixture(scope="module")
def records(crasher: Path, journald) -> Iterator[Records]:  # type: ignore[no-untyped-def]
    reason = e2e_unavailable_reason()
    if reason:
        pytest.skip(reason)
    public = Path(tempfile.mkdtemp(prefix="cdt-cli-", dir="/tmp"))
    os.chmod(public, 0o755)
    helper = Path(tempfile.mkdtemp(prefix="cdt-", dir="/tmp"))
    sock_dir = Path(tempfile.mkdtemp(prefix="cdt-", dir="/run"))
    config = public / "coredump.conf"
    config.write_text(f"[Coredump]\n\n[Coredumpd]\nHandoffSocket={sock_dir / 'handoff.sock'}\n"
                      + TEST_SPOOL)
    rec = Records(state=public / "state", public=public, started_us=int(time.time()) * 1_000_000,
                  crasher=public / "crasher")
    shutil.copy2(crasher, rec.crasher)
    hostile = public / "[bold]x"
    shutil.copy2(crasher, hostile)
    suid = public / "suid-crasher"
    shutil.copy2(crasher, suid)
    os.chmod(suid, 0o4755)
    sd_exe = public / "sdcrash"
    shutil.copy2(crasher, sd_exe)
    activator = None
    sd_file = None
    journal = Journald()  # other sessions may stop theirs: make sure one listens now
    try:
        journal.start()
        with crash_sysctls() as sysctls:
            install(state_dir=rec.state, mode="pipe", helper_dir=helper, config=config,
                    persist=False, lock=False)
            try:
                rec.segv = [_crash([rec.crasher, "segv"]) for _ in range(2)]
                rec.abort = _crash([rec.crasher, "abort"])
                rec.hostile = _crash([hostile, "segv", HOSTILE_ARG])
                rec.nobody = _crash([rec.crasher, "segv"], user=NOBODY, group=NOBODY, cwd=public)
                rec.nobody_suid = _crash([suid, "segv"], user=NOBODY, group=NOBODY, cwd=public)
                _wait_rows(rec.state, [*rec.segv, rec.abort, rec.hostile, rec.nobody,
                                       rec.nobody_suid])
            finally:
                uninstall(state_dir=rec.state, lock=False)
            if not _listening(COREDUMP_SOCKET):
                COREDUMP_SOCKET.unlink(missing_ok=True)
                activator = subprocess.Popen(
                    ["systemd-socket-activate", "--seqpacket", "-a", "-l", str(COREDUMP_SOCKET),
                     str(SYSTEMD_COREDUMP)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                wait_until(lambda: _listening(COREDUMP_SOCKET), 30, "systemd-socket-activate")
            sysctls.set(core_pipe_limit=16, core_pattern=SD_PATTERN)
            rec.sd = _crash([sd_exe, "segv"])
            sysctls.set(core_pattern="core")
        wait_until(lambda: _sd_entry(rec.sd) is not None, 60, "systemd-coredump's entry")
        rec.sd_entry = _sd_entry(rec.sd)
        assert rec.sd_entry is not None
        filename = rec.sd_entry.get("COREDUMP_FILENAME")
        sd_file = Path(os.fsdecode(filename)) if filename else None
        os.unlink(rec.row(rec.abort).filename or "")
        yield rec
    finally:
        journal.stop()
        if activator is not None:
            activator.terminate()
            activator.wait(timeout=10)
            COREDUMP_SOCKET.unlink(missing_ok=True)  # ours: leave no dead socket behind
        if sd_file is not None:
            sd_file.unlink(missing_ok=True)
        shutil.rmtree(public, ignore_errors=True)
        shutil.rmtree(helper, ignore_errors=True)
        shutil.rmtree(sock_dir, ignore_errors=True)
