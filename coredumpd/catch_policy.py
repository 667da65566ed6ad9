"""Is this signal about to kill the process with a core? Decided from ``/proc/<tid>/status``.

At a signal-delivery stop the kernel has dequeued the signal but not yet acted on it. What it
will do depends on the thread group's disposition (``SigCgt``: a handler is installed,
``SigIgn``: ignored) and the thread's mask (``SigBlk``). A synchronous fault that arrives blocked
or ignored is forced to ``SIG_DFL`` by the kernel (``force_sig_info_to_task``) before it is
queued, so by the time we see it the masks already say "default". Pure: bytes in.

gVisor's ``status`` has no ``Sig*`` lines at all (research/procfs-sandbox.md §3.1): the
disposition is then :attr:`Disposition.UNKNOWN` and the catcher waits for the exit stop to know.
"""

from __future__ import annotations

import signal
from enum import Enum

CORE_SIGNALS = frozenset({
    signal.SIGQUIT, signal.SIGILL, signal.SIGTRAP, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE,
    signal.SIGSEGV, signal.SIGXCPU, signal.SIGXFSZ, signal.SIGSYS,
})
"""Signals whose default action is to dump core (signal(7), "Core")."""


class Disposition(Enum):
    """What delivering a core signal to a thread will do."""

    FATAL = "fatal"
    """Default action: the thread group dies and the kernel would dump core."""
    HANDLED = "handled"
    """A handler runs (it may still re-raise; the next delivery is judged again)."""
    IGNORED = "ignored"
    UNKNOWN = "unknown"
    """The masks are not readable here (gVisor)."""


def parse_sigmask(value: bytes) -> int:
    """A ``SigCgt``-style hex mask: bit ``n - 1`` is signal ``n``."""
    return int(value.strip(), 16)


def _status_masks(status: bytes) -> dict[bytes, int]:
    masks = {}
    for line in status.split(b"\n"):
        key, sep, value = line.partition(b":")
        if sep and key in (b"SigCgt", b"SigIgn", b"SigBlk"):
            try:
                masks[key] = parse_sigmask(value)
            except ValueError:
                continue
    return masks


def signal_disposition(status: bytes, signo: int) -> Disposition:
    """What delivering ``signo`` now does, judged from a thread's ``status`` bytes.

    Only meaningful for :data:`CORE_SIGNALS` at a signal-delivery stop (a blocked signal is
    not delivered, so ``SigBlk`` matters only when the kernel has not yet forced the default).
    """
    masks = _status_masks(status)
    if b"SigCgt" not in masks or b"SigIgn" not in masks:
        return Disposition.UNKNOWN
    bit = 1 << (signo - 1)
    if masks[b"SigIgn"] & bit:
        return Disposition.IGNORED
    if masks[b"SigCgt"] & bit:
        return Disposition.HANDLED
    return Disposition.FATAL


def is_core_signal(signo: int | None) -> bool:
    """True for a signal whose default action dumps core."""
    return signo is not None and signo in CORE_SIGNALS
