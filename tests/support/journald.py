"""A running journald for tests: the system's, or a standalone one started for the session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

JOURNALD = Path("/lib/systemd/systemd-journald")
JOURNAL_SOCKET = Path("/run/systemd/journal/socket")


def journald_is_listening() -> bool:
    if not JOURNAL_SOCKET.exists():
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(str(JOURNAL_SOCKET))
        return True
    except OSError:
        return False
    finally:
        sock.close()


class Journald:
    """Makes sure journald accepts entries; stops only a journald it started itself."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, deadline_s: float = 15.0) -> None:
        if journald_is_listening():
            return
        if not JOURNALD.exists():
            raise RuntimeError(f"{JOURNALD} is missing (install the systemd package)")
        for path in ("/run/systemd/journal", "/var/log/journal"):
            os.makedirs(path, exist_ok=True)
        self.process = subprocess.Popen(
            [str(JOURNALD)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if journald_is_listening():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"systemd-journald exited with {self.process.returncode}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("systemd-journald did not start listening in time")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    @staticmethod
    def journalctl() -> str:
        path = shutil.which("journalctl")
        if path is None:
            raise RuntimeError("journalctl is missing")
        return path
