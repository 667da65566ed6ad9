"""Shared by the fuzz tests: a per-case deadline that turns a hang into a failure."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


class CaseTimeout(Exception):
    """One fuzz case ran past its deadline (a hang, or a quadratic blow-up)."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the block after ``seconds`` (SIGALRM, main thread only)."""

    def expire(signum, frame):  # type: ignore[no-untyped-def]
        raise CaseTimeout

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
