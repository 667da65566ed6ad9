"""Child processes for the procfs tests: start them, wait for states with deadlines, end them.

Only processes started here are ever signalled, by their pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

DEADLINE = 10.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def proc_state(pid: int) -> str:
    """The state letter of ``/proc/<pid>/stat`` (``"?"`` once it is gone)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return "?"
    return data[data.rfind(b")") + 2 : data.rfind(b")") + 3].decode()


def wait_state(pid: int, states: str, timeout: float = DEADLINE) -> None:
    """Wait until ``/proc/<pid>/stat`` shows one of ``states`` (e.g. ``"S"``, ``"T"``, ``"Z"``)."""
    wait_for(lambda: proc_state(pid) in states, f"pid {pid} in state {states}", timeout)


@contextmanager
def running(
    argv: Sequence[str | os.PathLike[str]],
    *,
    ready_line: bool = True,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv``; with ``ready_line`` wait for its first stdout line, then for it to sleep.

    The child is SIGKILLed by pid and reaped on exit (SIGCONT first, if it was left stopped).
    """
    child = subprocess.Popen(
        [os.fspath(a) for a in argv], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
    )
    try:
        if ready_line:
            line = child.stdout.readline() if child.stdout else b""
            if not line:
                raise AssertionError(f"{argv[0]} exited before it was ready")
            child.ready = line  # type: ignore[attr-defined]
        yield child
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=DEADLINE)
        if child.stdout:
            child.stdout.close()
