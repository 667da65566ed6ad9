"""The demo: crash a real sample program and show what coredumpd finds in its core.

Compiles ``data/crashme.c`` with gcc, points ``core_pattern`` at a directory for the length of
one crash (under the crash-sysctl lock, restored afterwards), then reads the kernel's core
twice: as a stream (what the pipe and socket doors see: the head, timed) and as a file.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from coredumpd.core_summary import CoreSummary, summarize_core
from coredumpd.sysctl import crash_sysctls
from unwinder.core import CoreReader, read_core_head


class DemoError(Exception):
    """The demo could not run (no gcc, no root, the program did not crash…)."""


@dataclass(frozen=True)
class DemoResult:
    exe: Path
    core_path: Path
    pid: int
    summary: CoreSummary
    head_bytes: int
    head_parse_ms: float
    streams_agree: bool


def build_sample(directory: Path) -> Path:
    """Compile the demo's crash program into ``directory``."""
    source = resources.files("coredumpd").joinpath("data/crashme.c").read_text()
    src = directory / "crashme.c"
    src.write_text(source)
    exe = directory / "crashme"
    try:
        subprocess.run(["gcc", "-g", "-O0", "-pthread", "-o", str(exe), str(src)],
                       check=True, capture_output=True, text=True)
    except FileNotFoundError as err:
        raise DemoError("gcc is not installed (run scripts/bootstrap)") from err
    except subprocess.CalledProcessError as err:
        raise DemoError(f"gcc failed: {err.stderr.strip()}") from err
    return exe


def crash_into_file(exe: Path, directory: Path, timeout_s: float = 30.0) -> tuple[int, Path]:
    """Run ``exe`` with core_pattern pointing into ``directory``; return (pid, core path)."""
    def unlimited_core() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    with crash_sysctls() as sysctls:
        sysctls.set(core_pattern=f"{directory}/core.%p")
        proc = subprocess.Popen([str(exe)], preexec_fn=unlimited_core, cwd=directory,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            status = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as err:
            proc.kill()
            proc.wait()
            raise DemoError(f"{exe.name} did not crash within {timeout_s}s") from err
    core = directory / f"core.{proc.pid}"
    if status >= 0 or not core.exists():
        raise DemoError(f"{exe.name} ended with status {status} and left no core in {directory}")
    return proc.pid, core


def parse_as_stream(core: Path) -> tuple[int, float, object]:
    """Feed the core through a pipe, as the kernel would; time the head parse."""
    r, w = os.pipe()

    def feed() -> None:
        with open(core, "rb") as f, os.fdopen(w, "wb") as out:
            while chunk := f.read(1 << 20):
                try:
                    out.write(chunk)
                except BrokenPipeError:
                    return

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        start = time.perf_counter()
        head = read_core_head(r)
        elapsed_ms = (time.perf_counter() - start) * 1e3
        while os.read(r, 1 << 20):
            pass
    finally:
        os.close(r)
        feeder.join()
    return len(head.head), elapsed_ms, head.core


def run_demo(directory: Path) -> DemoResult:
    """Build, crash, and read the core; ``directory`` receives the program and the core."""
    if os.geteuid() != 0:
        raise DemoError("the demo changes core_pattern for one crash: run it as root")
    directory.mkdir(parents=True, exist_ok=True)
    exe = build_sample(directory)
    pid, core_path = crash_into_file(exe, directory)
    head_bytes, head_ms, streamed = parse_as_stream(core_path)
    with CoreReader(core_path) as reader:
        core = reader.core
    return DemoResult(exe, core_path, pid, summarize_core(core), head_bytes, head_ms,
                      streams_agree=streamed == core)
