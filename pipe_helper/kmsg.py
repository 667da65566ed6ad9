"""Logging for a process with no stdout, stderr or journal of its own: the kernel log.

Each record is one write to ``/dev/kmsg`` as ``<level>coredumpd-helper[pid]: message``; when
/dev/kmsg cannot be opened records are dropped (never raised into the helper).
"""

from __future__ import annotations

import logging
import os

from pipe_helper.kmsgline import IDENT, kmsg_record

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class KmsgHandler(logging.Handler):
    def __init__(self, ident: str = IDENT) -> None:
        super().__init__()
        self.ident = ident
        try:
            self.fd: int | None = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            self.fd = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.fd is None:
            return
        try:
            os.write(self.fd, kmsg_record(self.format(record),
                                          _PRIORITY.get(record.levelno, 6), self.ident))
        except OSError:
            pass

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        super().close()


def setup_logging() -> logging.Logger:
    root = logging.getLogger()
    root.handlers[:] = [KmsgHandler()]
    root.setLevel(logging.INFO)
    return logging.getLogger("coredumpd-helper")
