"""ctypes access to libc's ``syscall()`` and the syscall numbers this layer needs.

Debian 12's headers (linux-libc-dev 6.1) lack the newer pidfd and coredump constants, so the
numbers live here, per architecture. Callers detect features by trying a call and catching
``ENOSYS``/``ENOTTY``, never by comparing kernel versions.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

MACHINE = platform.machine()

# name -> (x86_64, aarch64)
_NUMBERS: dict[str, tuple[int, int]] = {
    "pidfd_send_signal": (424, 424),
    "pidfd_open": (434, 434),
    "pidfd_getfd": (438, 438),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "ptrace": (101, 117),
}


def syscall_number(name: str) -> int:
    """The number of syscall ``name`` on this machine's architecture."""
    x86_64, aarch64 = _NUMBERS[name]
    if MACHINE == "x86_64":
        return x86_64
    if MACHINE in ("aarch64", "arm64"):
        return aarch64
    raise OSError(38, f"syscall {name} not mapped for {MACHINE}")  # ENOSYS


def syscall(name: str, *args: int | ctypes._SimpleCData | ctypes.c_void_p) -> int:
    """Call syscall ``name``; raise :class:`OSError` with errno on failure."""
    ctypes.set_errno(0)
    result = _syscall(ctypes.c_long(syscall_number(name)), *args)
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


libc = _libc
