"""The daemon on the kernel's coredump socket, for real crashes.

Each test holds the core_pattern flock (``crash_sysctls``) for its whole duration. The daemon
runs as a subprocess with a temporary state directory and a configuration whose sockets live in
a fresh ``/run/cdt-XXXX`` directory (root-owned, 0700, no symlinks: the kernel's rules). The
socket door is installed only once the daemon listens, and uninstalled before the daemon is
stopped: core_pattern never points at a socket nobody listens on.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coredumpd.catalog import Catalog, CatalogRow
from coredumpd.install import install, uninstall
from socket_server.listening import is_listening
from tests.support.crash import wait_until
from tests.support.pipe_door import TEST_SPOOL

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Crashed:
    pid: int
    status: int  #: raw wait status
    seconds: float  #: from spawn to reap

    @property
    def core_bit(self) -> bool:
        return os.WCOREDUMP(self.status)

    @property
    def signal(self) -> int:
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else 0


@dataclass
class SocketDoor:
    sysctls: object
    state: Path
    config: Path
    run_dir: Path
    helper_dir: Path
    log_path: Path
    report: Path
    daemon: subprocess.Popen[bytes] | None = None
    installed: str | None = None
    _log: object = field(default=None, repr=False)

    @property
    def kernel_socket(self) -> Path:
        return self.run_dir / "kernel.sock"

    @property
    def handoff_socket(self) -> Path:
        return self.run_dir / "handoff.sock"

    # -- the daemon -------------------------------------------------------------------------

    def start(self, extra: str = "", env: dict[str, str] | None = None, *,
              mode: str | None = "socket", launcher: Sequence[str] = ()) -> None:
        """Write the config, start the daemon (under ``launcher``, which must exec it: e.g.
        ``systemd-socket-activate``), wait until it listens, install ``mode`` (``None``: leave
        core_pattern alone)."""
        self.config.write_text("[Coredumpd]\n"
                               f"HandoffSocket={self.handoff_socket}\n"
                               f"KernelSocket={self.kernel_socket}\n{TEST_SPOOL}" + extra)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        environ = {**os.environ, "COREDUMPD_TEST_REPORT": str(self.report), **(env or {})}
        self.daemon = subprocess.Popen(
            [*launcher, str(BIN / "coredumpd"), "serve", "--config", str(self.config),
             "--state-dir", str(self.state)], stdout=self._log, stderr=subprocess.STDOUT,
            env=environ)
        wait_until(lambda: is_listening(self.kernel_socket) or self.daemon.poll() is not None,
                   30, "the daemon to listen")
        assert self.daemon.poll() is None, self.log()
        if mode is not None:
            done = install(state_dir=self.state, mode=mode, helper_dir=self.helper_dir,
                           config=self.config, persist=False, lock=False,
                           kernel_socket=self.kernel_socket)
            self.installed = done.pattern

    def stop(self) -> str:
        """Uninstall first (never a pattern pointing at nobody), then SIGTERM and wait."""
        self.uninstall()
        if self.daemon is not None:
            if self.daemon.poll() is None:
                self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.log()

    def uninstall(self) -> None:
        if self.installed is not None:
            self.installed = None
            try:
                uninstall(state_dir=self.state, lock=False)
            except Exception:  # noqa: BLE001 - crash_sysctls restores everything anyway
                pass

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def reports(self) -> list[dict]:
        if not self.report.exists():
            return []
        return [json.loads(line) for line in self.report.read_text().splitlines() if line]

    # -- crashes and records ------------------------------------------------------------------

    def crash(self, argv: Sequence[str | Path], timeout: float = 60.0) -> Crashed:
        """Run a program that crashes; reap it ourselves to see the raw wait status."""
        start = time.monotonic()
        proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=_unlimited_core)
        deadline = start + timeout
        while True:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.waitpid(proc.pid, 0)
                raise AssertionError(f"{argv[0]} still not reaped after {timeout}s:\n{self.log()}")
            time.sleep(0.002)
        proc.returncode = -1  # reaped here; keep Popen from waiting again
        return Crashed(proc.pid, status, time.monotonic() - start)

    def rows(self) -> list[CatalogRow]:
        path = self.state / "catalog.sqlite"
        if not path.exists():
            return []
        with Catalog.open(path) as catalog:
            return catalog.query()

    def wait_for(self, pid: int, timeout: float = 60.0) -> CatalogRow:
        def find() -> CatalogRow | None:
            return next((r for r in self.rows() if r.pid == pid), None)

        try:
            wait_until(lambda: find() is not None, timeout, f"the record of pid {pid}")
        except TimeoutError as err:
            raise AssertionError(f"{err}\n{self.log()}") from err
        row = find()
        assert row is not None
        return row

    # -- SIGKILL ------------------------------------------------------------------------------

    def kill(self) -> tuple[int, list[int]]:
        """SIGKILL the daemon (its pid only, as the OOM killer would), uninstall at once (the
        socket has no listener any more), reap it. Returns its wait status and the pids of the
        processes it had started (they should follow it: see :func:`alive`); ``start`` may
        follow on the same state directory."""
        assert self.daemon is not None
        helpers = descendants(self.daemon.pid)
        os.kill(self.daemon.pid, signal.SIGKILL)
        self.uninstall()
        status = os.waitpid(self.daemon.pid, 0)[1]
        self.daemon.returncode = -1  # reaped here; keep Popen from waiting again
        if self._log is not None:
            self._log.close()
            self._log = None
        return status, helpers


def _unlimited_core() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


@pytest.fixture
def socket_door(crash_sysctls, tmp_path: Path) -> Iterator[SocketDoor]:  # type: ignore[no-untyped-def]
    run_dir = Path(tempfile.mkdtemp(prefix="cdt-", dir="/run"))
    helper_dir = Path(tempfile.mkdtemp(prefix="cdt-", dir="/tmp"))
    door = SocketDoor(crash_sysctls, tmp_path / "state", tmp_path / "coredump.conf", run_dir,
                      helper_dir, tmp_path / "daemon.log", tmp_path / "report.jsonl")
    try:
        yield door
    finally:
        door.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(helper_dir, ignore_errors=True)


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc/<pid>/task/<tid>/children), parents first."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop(0)
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            found += children
            todo += children
    return found


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(b")") + 2:].split()[0] != b"Z"
