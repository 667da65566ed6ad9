"""The dumping task and the reader of its core, kept on different CPUs while the core streams.

The kernel writes a core into our pipe (or socket) from the crashing thread itself, a page
per write, and each write that finds the pipe empty wakes the reader with a *sync* wake-up:
the scheduler's wake-affine rule then likes to run the reader on the writer's CPU. When it
does, the two share one CPU and the core streams at half speed or worse. Measured here
(2 CPUs) with a program writing 1 GiB into a 64 KiB pipe 4 KiB at a time, read 128 KiB at
a time: 0.27-0.29 s in six runs with the two pinned apart, 0.28-0.82 s left free (two runs
of six over 0.5 s); ``bench/bench_pipeline.py``'s 1 GiB random crash through the daemon
(into the spool) was reaped in 0.48-0.92 s in 14 trials left free, 0.50-0.63 s in 9 trials
kept apart.

:func:`apart` pins the dumping thread to the CPU it is on and the calling thread (and the
threads it starts meanwhile: the reader and writer of the core) to the other CPUs it may
use, and gives the caller its own mask back at the end. The dumping thread keeps its pin:
it exits once its core is in. Where there is one CPU, or the thread is gone, nothing is
changed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from procfs.parse.stat import parse_stat

log = logging.getLogger(__name__)


def split(ours: set[int], dumper_cpu: int | None) -> set[int] | None:
    """The CPUs the reader keeps when the dumper is on ``dumper_cpu``; None when there is
    nothing to split (no CPU known, or none would be left)."""
    if dumper_cpu is None:
        return None
    rest = ours - {dumper_cpu}
    return rest or None


@contextlib.contextmanager
def apart(tid: int | None) -> Iterator[None]:
    """While in the block, the thread ``tid`` (the one dumping core; None: do nothing) and
    the calling thread run on different CPUs."""
    ours = os.sched_getaffinity(0)
    rest = None
    if tid is not None and len(ours) > 1:
        try:
            with open(f"/proc/{tid}/stat", "rb") as f:
                cpu = parse_stat(f.read()).processor
            rest = split(ours, cpu)
            if rest is not None:
                assert cpu is not None
                os.sched_setaffinity(tid, {cpu})
                os.sched_setaffinity(0, rest)
        except (OSError, ValueError) as err:
            log.debug("cannot keep thread %s apart from its core's reader: %s", tid, err)
            rest = None
    try:
        yield
    finally:
        if rest is not None:
            os.sched_setaffinity(0, ours)
