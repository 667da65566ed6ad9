"""The demo — the README's main job: real crashes caught, stored, listed and symbolised.

1. build the bundled sample (``data/crashme.c``: segfault, abort, multi-threaded);
2. under the core_pattern lock: install coredumpd's pipe door on the state directory (the
   embedded default storage, ``/var/lib/coredumpd``), start ``coredumpd serve`` unless a daemon
   already answers on the hand-off socket;
3. crash each sample and wait until the catalog has it;
4. stop the daemon it started and put the previous core_pattern back — also when interrupted.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from coredumpd.catalog import Catalog, CatalogRow
from coredumpd.config import CATALOG, load_config_for
from coredumpd.install import DEFAULT_HELPER_DIR, install, uninstall
from coredumpd.sysctl import crash_sysctls

SAMPLES = ("segv", "abort", "threads")


class DemoError(Exception):
    """The demo could not run (no gcc, no root, a sample did not crash…)."""


@dataclass(frozen=True)
class DemoCrash:
    sample: str
    pid: int
    row: CatalogRow
    seconds_to_record: float


@dataclass(frozen=True)
class DemoResult:
    state_dir: Path
    pattern: str
    previous_pattern: str
    daemon: str  # "started" | "already running" | "none"
    crashes: tuple[DemoCrash, ...]


def build_sample(directory: Path) -> Path:
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


def _daemon_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(str(path))
            return True
        except OSError:
            return False


def _crash(exe: Path, sample: str) -> int:
    proc = subprocess.Popen([str(exe), sample], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (-1, -1)))
    if proc.wait(timeout=60) >= 0:
        raise DemoError(f"sample {sample} exited with {proc.returncode} instead of crashing")
    return proc.pid


def _wait_recorded(catalog_path: Path, pid: int, timeout_s: float = 120.0) -> CatalogRow:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if catalog_path.exists():
            with Catalog.open(catalog_path) as catalog:
                row = next((r for r in catalog.query(limit=20) if r.pid == pid), None)
            if row is not None:
                return row
        time.sleep(0.05)
    raise DemoError(f"pid {pid} was not recorded within {timeout_s:.0f}s (see dmesg)")


def run_demo(work_dir: Path, *, state_dir: Path | None = None, config: Path | None = None,
             helper_dir: Path = DEFAULT_HELPER_DIR,
             progress: Callable[[str], None] = lambda _: None) -> DemoResult:
    if os.geteuid() != 0:
        raise DemoError("the demo installs coredumpd as the kernel's core handler: run it as root")
    settings = load_config_for(config, state_dir)
    state = settings.state_directory
    work_dir.mkdir(parents=True, exist_ok=True)
    exe = build_sample(work_dir)
    crashes = []
    daemon = None
    # SIGTERM must unwind through the finally below like Ctrl-C does
    previous_handler = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with crash_sysctls():  # held for the whole demo; restores the sysctls in any case
            installed = install(state_dir=state, helper_dir=helper_dir, config=config,
                                persist=False, lock=False)
            progress(f"installed: core_pattern = {installed.pattern}")
            try:
                if _daemon_answers(settings.handoff_socket):
                    daemon_state = "already running"
                else:
                    args = [str(Path(sys.executable).parent / "coredumpd"), "serve",
                            "--state-dir", str(state)] + (["--config", str(config)] if config else [])
                    daemon = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL)
                    end = time.monotonic() + 30
                    while not _daemon_answers(settings.handoff_socket):
                        if daemon.poll() is not None or time.monotonic() > end:
                            raise DemoError("coredumpd serve did not start")
                        time.sleep(0.05)
                    daemon_state = "started"
                progress(f"daemon: {daemon_state} ({settings.handoff_socket})")
                for sample in SAMPLES:
                    start = time.monotonic()
                    pid = _crash(exe, sample)
                    row = _wait_recorded(state / CATALOG, pid)
                    crashes.append(DemoCrash(sample, pid, row, time.monotonic() - start))
                    progress(f"crashed sample '{sample}' (pid {pid}): recorded in "
                             f"{time.monotonic() - start:.2f}s, core {row.storage_state}")
            finally:
                if daemon is not None:
                    daemon.send_signal(signal.SIGTERM)
                    try:
                        daemon.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        daemon.kill()
                        daemon.wait()
                uninstall(state_dir=state, lock=False)
                progress(f"restored core_pattern = {installed.previous['core_pattern']}")
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    return DemoResult(state, installed.pattern, installed.previous["core_pattern"],
                      daemon_state, tuple(crashes))
