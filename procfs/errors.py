"""Errors of the procfs layer: one root, three precise kinds.

Lower layers never import higher ones, so nothing here knows about cores or the pipeline.
"""

from __future__ import annotations

import errno


class ProcfsError(Exception):
    """Root of every error raised by :mod:`procfs`."""


class ProcessGone(ProcfsError):
    """The process (or thread) no longer exists, or a pid was reused by another process."""

    def __init__(self, pid: int | None, message: str = "process is gone") -> None:
        self.pid = pid
        super().__init__(f"{message} (pid {pid})" if pid is not None else message)


class AccessDenied(ProcfsError):
    """The kernel refused access; ``reason`` explains why when it could be worked out."""

    def __init__(self, pid: int | None, what: str, reason: str | None = None) -> None:
        self.pid = pid
        self.what = what
        self.reason = reason
        text = f"access to {what} of pid {pid} denied"
        super().__init__(f"{text}: {reason}" if reason else text)


class Unsupported(ProcfsError):
    """The running kernel (or sandbox) does not offer this interface."""

    def __init__(self, feature: str, detail: str | None = None) -> None:
        self.feature = feature
        self.detail = detail
        super().__init__(f"{feature} is not supported here" + (f": {detail}" if detail else ""))


_GONE = {errno.ENOENT, errno.ESRCH}
_DENIED = {errno.EACCES, errno.EPERM}
_UNSUPPORTED = {errno.ENOSYS, errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL}


def translate_oserror(err: OSError, pid: int | None, what: str) -> ProcfsError:
    """Map an :class:`OSError` from a /proc read or a syscall to the layer's own error.

    ``ENOENT``/``ESRCH`` mean the process is gone, ``EACCES``/``EPERM`` a refusal; anything
    else stays a generic :class:`ProcfsError` carrying the original message.
    """
    if err.errno in _GONE:
        return ProcessGone(pid)
    if err.errno in _DENIED:
        return AccessDenied(pid, what)
    return ProcfsError(f"{what} of pid {pid}: {err.strerror or err}")
