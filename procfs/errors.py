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


class ParseError(ProcfsError):
    """Bytes from /proc (or a journal field) did not have the expected shape.

    ``what`` names the file or format (``"stat"``, ``"maps"``), ``reason`` says what was wrong.
    """

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"cannot parse {what}: {reason}")


_GONE = {errno.ENOENT, errno.ESRCH}
_DENIED = {errno.EACCES, errno.EPERM}
_UNSUPPORTED = {errno.ENOSYS, errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL}


def translate_oserror(
    err: OSError, pid: int | None, what: str, feature: str | None = None
) -> ProcfsError:
    """Map an :class:`OSError` from a /proc read or a syscall to the layer's own error.

    ``ENOENT``/``ESRCH`` mean the process is gone, ``EACCES``/``EPERM`` a refusal; anything
    else stays a generic :class:`ProcfsError` carrying the original message. When ``feature``
    is given (a syscall or ioctl being tried), ``ENOSYS``/``ENOTTY``/``EOPNOTSUPP``/``EINVAL``
    become :class:`Unsupported` of that feature.
    """
    if feature is not None and err.errno in _UNSUPPORTED:
        return Unsupported(feature, err.strerror)
    if err.errno in _GONE:
        return ProcessGone(pid)
    if err.errno in _DENIED:
        return AccessDenied(pid, what)
    return ProcfsError(f"{what} of pid {pid}: {err.strerror or err}")


class MemoryFault(ProcfsError):
    """Bytes of the target's address space could not be read.

    ``address`` is the first unreadable address (a virtual address in the target), ``size`` the
    number of bytes that were asked for from there, when known.
    """

    def __init__(self, pid: int | None, address: int, size: int | None = None) -> None:
        self.pid = pid
        self.address = address
        self.size = size
        where = f"pid {pid}" if pid is not None else "the target"
        super().__init__(f"cannot read memory of {where} at {address:#x}")


class TraceeNotStopped(ProcfsError):
    """A ptrace request needs a tracee in a ptrace-stop; the thread lives but is running or is
    not traced by the calling thread (ptrace answers ``ESRCH`` for both)."""

    def __init__(self, tid: int, request: str) -> None:
        self.tid = tid
        self.request = request
        super().__init__(f"{request}: thread {tid} lives but is not in a ptrace-stop of ours")
