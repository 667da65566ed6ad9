"""One record of the kernel log as the helper writes it: ``<level>coredumpd-helper[pid]: text``.

Apart from :mod:`pipe_helper.kmsg` (the ``logging`` handler) so that the fast path can write
its line without importing ``logging``.
"""

from __future__ import annotations

import os
import time

IDENT = "coredumpd-helper"


def kmsg_record(text: str, level: int = 6, ident: str = IDENT) -> bytes:
    """The bytes of one record; the newline ends it (without it the kernel keeps the record
    open for a continuation, and readers such as dmesg see it only with the next one)."""
    text = text.replace("\n", " ")[:900]
    return f"<{level}>{ident}[{os.getpid()}]: {text}\n".encode(errors="replace")


def handed_off_line(pid: object, started: float) -> str:
    """The line that says a crash went to the daemon: time since ``main()`` started
    (``started``, CLOCK_MONOTONIC) and the instant itself. bench/bench_pipeline.py parses it."""
    now = time.monotonic()
    return (f"pid {pid} handed off to the daemon in {(now - started) * 1e3:.1f} ms "
            f"(at monotonic {now:.6f})")


def write_kmsg(text: str, level: int = 6) -> None:
    """Write one record to ``/dev/kmsg``; dropped when it cannot be (never raised)."""
    try:
        fd = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, kmsg_record(text, level))
    except OSError:
        pass
    finally:
        os.close(fd)
