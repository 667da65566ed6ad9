"""Crash real programs into kernel-written core files (file mode of core_pattern)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.sysctl import CrashSysctls


@dataclass(frozen=True)
class Crash:
    pid: int
    signal: int
    core: Path
    exe: Path


def _unlimited_core() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true, or fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


def crash_to_core_file(
    sysctls: CrashSysctls,
    exe: Path,
    directory: Path,
    args: Sequence[str] = (),
    *,
    stdin: bytes | None = None,
    before_input: Callable[[subprocess.Popen[bytes]], None] | None = None,
    core_sort_vma: int | None = None,
    timeout: float = 60.0,
) -> Crash:
    """Run ``exe`` with core_pattern set to a file in ``directory`` and let it crash.

    If ``stdin`` is given the program gets a pipe; ``before_input`` runs (with the process
    started) before the bytes are written, so tests can change the world first (e.g. unlink
    the executable). Returns the kernel's core file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    settings: dict[str, str | int] = {"core_pattern": f"{directory}/core.%p"}
    if core_sort_vma is not None:
        settings["core_sort_vma"] = core_sort_vma
    sysctls.set(**settings)
    proc = subprocess.Popen(
        [str(exe), *args], stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_unlimited_core,
        cwd=directory,
    )
    try:
        if before_input is not None:
            before_input(proc)
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            proc.stdin.close()
        returncode = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if returncode >= 0:
        raise AssertionError(f"{exe.name} exited with {returncode} instead of crashing")
    core = directory / f"core.{proc.pid}"
    if not core.exists():
        raise AssertionError(f"{exe.name} died of {signal.Signals(-returncode).name} but left no core")
    return Crash(proc.pid, -returncode, core, exe)


def process_state(pid: int) -> str:
    """The one-letter state from /proc/<pid>/stat (parsed after the last ')')."""
    data = Path(f"/proc/{pid}/stat").read_bytes()
    return data[data.rindex(b")") + 2:].split()[0].decode()


def wait_sleeping(pid: int, timeout: float = 10.0) -> None:
    wait_until(lambda: process_state(pid) in ("S", "D", "t", "T"), timeout, f"pid {pid} to sleep")


def rm_f(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def short_pipe_pattern(argv: Sequence[str], args: str) -> tuple[str, Path]:
    """A ``|helper`` core_pattern that fits the kernel's 127 bytes whatever the checkout path:
    a wrapper script in a short temporary directory execs ``argv`` with the kernel's ``args``
    (e.g. ``%P``) appended. Returns the pattern and the directory (the caller removes it)."""
    import shlex
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="cdt-", dir="/tmp"))
    wrapper = directory / "run"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in argv) + ' "$@"\n')
    wrapper.chmod(0o755)
    return f"|{wrapper} {args}", directory
