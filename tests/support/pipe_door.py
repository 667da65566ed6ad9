"""Pytest fixtures: coredumpd installed as the pipe door in a temporary state directory.

The test holds the core_pattern flock (``crash_sysctls``) for its whole duration; install and
uninstall run with ``lock=False`` inside it, and the fixture restores every sysctl anyway.
Each installation gets its own hand-off socket path, so no other daemon can take its crashes.
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from coredumpd.catalog import Catalog, CatalogRow
from coredumpd.install import install, uninstall
from tests.support.crash import wait_until

BIN = Path(sys.executable).parent


@dataclass
class PipeDoor:
    state: Path
    config: Path
    socket: Path

    def catalog_rows(self) -> list[CatalogRow]:
        path = self.state / "catalog.sqlite"
        if not path.exists():
            return []
        with Catalog.open(path) as catalog:
            return catalog.query()

    def wait_for(self, pid: int, timeout: float = 90.0) -> CatalogRow:
        def find() -> CatalogRow | None:
            return next((r for r in self.catalog_rows() if r.pid == pid), None)

        wait_until(lambda: find() is not None, timeout, f"the record of pid {pid}")
        row = find()
        assert row is not None
        return row

    def crash(self, argv: Sequence[str], **kw) -> int:  # type: ignore[no-untyped-def]
        """Run a program that crashes; return its pid."""
        proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (-1, -1)),
                                **kw)
        returncode = proc.wait(timeout=120)
        assert returncode < 0, f"{argv[0]} exited with {returncode}"
        return proc.pid

    def start_daemon(self) -> subprocess.Popen[bytes]:
        daemon = subprocess.Popen([str(BIN / "coredumpd"), "serve", "--config", str(self.config),
                                   "--state-dir", str(self.state)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_until(lambda: self.socket.exists() or daemon.poll() is not None, 30, "the daemon")
        assert daemon.poll() is None, daemon.stdout.read().decode() if daemon.stdout else ""
        return daemon

    @staticmethod
    def stop_daemon(daemon: subprocess.Popen[bytes]) -> str:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        try:
            out, _ = daemon.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            daemon.kill()
            out, _ = daemon.communicate()
        return out.decode(errors="replace")


#: the daemon's spool in tests: small (each daemon start writes one), still taken by any core
#: guessed at 4 MiB on disk or more
TEST_SPOOL = "SpoolSize=16M\n"


def _write_config(path: Path, socket: Path, extra: str = "") -> None:
    # both sockets private to the test: never the system's /run/coredumpd
    path.write_text(f"[Coredump]\n{extra}\n[Coredumpd]\nHandoffSocket={socket}\n"
                    f"KernelSocket={socket.with_name('kernel.sock')}\n{TEST_SPOOL}")


@pytest.fixture
def pipe_door(crash_sysctls, tmp_path: Path) -> Iterator[PipeDoor]:  # type: ignore[no-untyped-def]
    short = Path(tempfile.mkdtemp(prefix="cdt-", dir="/tmp"))
    socket_dir = Path(tempfile.mkdtemp(prefix="cdt-", dir="/run"))
    door = PipeDoor(tmp_path / "state", tmp_path / "coredump.conf", socket_dir / "handoff.sock")
    _write_config(door.config, door.socket)
    try:
        install(state_dir=door.state, mode="pipe", helper_dir=short, config=door.config,
                persist=False, lock=False)
        yield door
    finally:
        try:
            uninstall(state_dir=door.state, lock=False)
        except Exception:  # noqa: BLE001 - the sysctl fixture restores everything anyway
            pass
        shutil.rmtree(short, ignore_errors=True)
        shutil.rmtree(socket_dir, ignore_errors=True)


def journal_entries(pid: int) -> list[dict]:
    out = subprocess.run(["journalctl", "--no-pager", "-o", "json", "--all",
                          "MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1", f"COREDUMP_PID={pid}"],
                         capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def wait_for_journal(pid: int, filename: str, timeout: float = 30.0) -> dict:
    """The entry of pid ``pid`` for the core stored as ``filename`` (pids repeat across runs,
    and the journal keeps the old entries)."""
    def find() -> dict | None:
        return next((e for e in journal_entries(pid) if e.get("COREDUMP_FILENAME") == filename),
                    None)

    wait_until(lambda: find() is not None, timeout, f"the journal entry of pid {pid}")
    entry = find()
    assert entry is not None
    return entry




