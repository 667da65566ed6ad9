"""What the pipe helper does before anything else: the kernel starts it with fds 1 and 2
closed, an empty environment and full capabilities (research/kernel-interfaces.md §1)."""

from __future__ import annotations

import ctypes
import os

PR_SET_DUMPABLE = 4


def ensure_std_fds() -> None:
    """Make fds 0, 1 and 2 valid (``/dev/null``) so no later open() lands on them and no
    stray print reaches a random file. Must run before any other open()."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open("/dev/null", os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def drop_dumpable() -> None:
    """Never dump our own core (the kernel's RLIMIT_CORE=1 guard aside)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
