"""Exclusive ownership of the global crash sysctls while something temporarily changes them.

Whoever changes ``core_pattern``, ``core_pipe_limit``, ``suid_dumpable`` (or another crash
sysctl) for a while (a test, the demo, a benchmark) does it through :func:`crash_sysctls`: it
takes an exclusive ``flock`` on ``/proc/sys/kernel/core_pattern`` (the lock every coredumpd
tool and test agrees on), saves the values, and restores all of them in ``finally`` — on
success, failure and KeyboardInterrupt.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")

SYSCTLS: dict[str, Path] = {
    "core_pattern": CORE_PATTERN,
    "core_pipe_limit": Path("/proc/sys/kernel/core_pipe_limit"),
    "suid_dumpable": Path("/proc/sys/fs/suid_dumpable"),
    "core_sort_vma": Path("/proc/sys/kernel/core_sort_vma"),
    "core_uses_pid": Path("/proc/sys/kernel/core_uses_pid"),
}
ALWAYS_SAVED = ("core_pattern", "core_pipe_limit", "suid_dumpable")


class SysctlError(Exception):
    """A crash sysctl could not be set or restored."""


def read_sysctl(name: str) -> str:
    return SYSCTLS[name].read_text().rstrip("\n")


def write_sysctl(name: str, value: str | int) -> None:
    """Write a sysctl and read it back: ``core_pattern`` silently truncates past 127 bytes."""
    text = str(value)
    SYSCTLS[name].write_text(text + "\n" if name != "core_pattern" else text)
    back = read_sysctl(name)
    if back != text:
        raise SysctlError(f"sysctl {name}: wrote {text!r}, read back {back!r}")


class CrashSysctls:
    """Handle given to a test that holds the lock: ``set()`` changes values, all restored later."""

    def __init__(self) -> None:
        self.saved: dict[str, str] = {}

    def _save(self, name: str) -> None:
        if name not in self.saved and SYSCTLS[name].exists():
            self.saved[name] = read_sysctl(name)

    def set(self, **values: str | int) -> None:
        for name, value in values.items():
            if name not in SYSCTLS:
                raise SysctlError(f"unknown crash sysctl {name}")
            self._save(name)
            write_sysctl(name, value)

    def restore(self) -> None:
        errors = []
        # core_pattern last: the pattern is only re-armed once its limits are back.
        for name in sorted(self.saved, key=lambda n: n == "core_pattern"):
            try:
                write_sysctl(name, self.saved[name])
            except (OSError, SysctlError) as err:  # keep restoring the others
                errors.append(f"{name}: {err}")
        if errors:
            raise SysctlError("failed to restore crash sysctls: " + "; ".join(errors))


@contextmanager
def crash_sysctls() -> Iterator[CrashSysctls]:
    """Hold the core_pattern flock and restore every touched sysctl on exit."""
    fd = os.open(CORE_PATTERN, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        handle = CrashSysctls()
        for name in ALWAYS_SAVED:
            handle._save(name)
        try:
            yield handle
        finally:
            handle.restore()
    finally:
        os.close(fd)  # releases the flock


def crash_sysctls_unavailable_reason() -> str | None:
    """Why this process cannot change the crash sysctls, or None when it can."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.access(CORE_PATTERN, os.W_OK):
        return "/proc/sys/kernel/core_pattern is not writable"
    return None
