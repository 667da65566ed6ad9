"""pidfd syscalls and ``PIDFD_GET_INFO``: pin a process's identity with a file descriptor.

A pidfd refers to one process for as long as it is open; the pid *number* can be reused once the
process is reaped, the pidfd cannot. Every feature is detected by trying: ``ENOSYS``/``ENOTTY``
(and ``EINVAL`` for an ioctl number the kernel does not know) raise :class:`Unsupported`.

``PIDFD_GET_INFO`` (Linux 6.13, coredump fields 6.16): an extensible struct; we pass the 72 bytes
of the 6.18 layout (``PIDFD_INFO_SIZE_VER1``). The kernel copies ``min(ours, its own)`` bytes and
says in the returned ``mask`` which fields it filled: only those are trusted.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import struct
from dataclasses import dataclass
from enum import IntFlag

from procfs import _libc
from procfs.errors import ParseError, ProcessGone, ProcfsError, Unsupported, translate_oserror


class PidfdInfoMask(IntFlag):
    """``PIDFD_INFO_*``: which fields of ``struct pidfd_info`` are requested / were filled."""

    PID = 1 << 0
    CREDS = 1 << 1
    CGROUPID = 1 << 2
    EXIT = 1 << 3
    COREDUMP = 1 << 4
    SUPPORTED_MASK = 1 << 5
    COREDUMP_SIGNAL = 1 << 6


class CoredumpMask(IntFlag):
    """``PIDFD_COREDUMP*`` bits of ``pidfd_info.coredump_mask``.

    ``COREDUMPED`` means the kernel *attempted* a dump (also set after a socket REJECT); whether a
    core was written is the core bit (0x80) of the wait status.
    """

    COREDUMPED = 1 << 0
    SKIP = 1 << 1
    USER = 1 << 2
    ROOT = 1 << 3


class PidfdSignalFlag(IntFlag):
    """``pidfd_send_signal`` flags (6.9+)."""

    THREAD = 1 << 0
    THREAD_GROUP = 1 << 1
    PROCESS_GROUP = 1 << 2


PIDFD_INFO_SIZE = 72
"""Bytes of ``struct pidfd_info`` we pass: the 6.18 layout (VER1)."""

_IOC_READ_WRITE = 3
PIDFD_GET_INFO = (_IOC_READ_WRITE << 30) | (PIDFD_INFO_SIZE << 16) | (0xFF << 8) | 11
"""``_IOWR(0xFF, 11, struct pidfd_info)`` with our 72-byte size: ``0xC048FF0B``."""

# struct pidfd_info, 6.18: mask, cgroupid, pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid,
# fsuid, fsgid, exit_code (s32), coredump_mask, coredump_signal (spare on 6.18).
_PIDFD_INFO = struct.Struct("=QQIIIIIIIIIIIiII")
assert _PIDFD_INFO.size == PIDFD_INFO_SIZE

DEFAULT_INFO_MASK = (
    PidfdInfoMask.PID
    | PidfdInfoMask.CREDS
    | PidfdInfoMask.CGROUPID
    | PidfdInfoMask.EXIT
    | PidfdInfoMask.COREDUMP
    | PidfdInfoMask.COREDUMP_SIGNAL
)


@dataclass(frozen=True)
class PidfdCreds:
    """Credentials of the process; uids and gids as seen from the caller's user namespace."""

    ruid: int
    rgid: int
    euid: int
    egid: int
    suid: int
    sgid: int
    fsuid: int
    fsgid: int


@dataclass(frozen=True)
class PidfdInfo:
    """What ``PIDFD_GET_INFO`` returned; a field is ``None`` when its mask bit did not come back.

    ``pid``/``tgid``/``ppid`` are in the caller's pid namespace. While the process exists (alive or
    zombie) ``EXIT`` is absent; after it is reaped the pid and credentials are gone and ``exit_code``
    (a wait status: signal in the low 7 bits, 0x80 the core flag) is there, if a pidfd existed
    before it exited.
    """

    mask: PidfdInfoMask
    pid: int | None
    tgid: int | None
    ppid: int | None
    creds: PidfdCreds | None
    cgroupid: int | None
    exit_code: int | None
    coredump_mask: CoredumpMask | None
    coredump_signal: int | None

    @property
    def reaped(self) -> bool:
        """True once the process was reaped (``EXIT`` came back)."""
        return self.exit_code is not None

    @property
    def core_dumped(self) -> bool | None:
        """The wait status' core bit: a core was written. ``None`` before the process is reaped."""
        return None if self.exit_code is None else bool(self.exit_code & 0x80)

    @property
    def term_signal(self) -> int | None:
        """The signal that killed the process (0 for a normal exit), or ``None`` before reaping."""
        return None if self.exit_code is None else self.exit_code & 0x7F


def parse_pidfd_info(data: bytes) -> PidfdInfo:
    """Decode a ``struct pidfd_info`` buffer (at least 72 bytes) into :class:`PidfdInfo`."""
    if len(data) < PIDFD_INFO_SIZE:
        raise ParseError("pidfd_info", f"{len(data)} bytes, need {PIDFD_INFO_SIZE}")
    (mask, cgroupid, pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid,
     exit_code, coredump_mask, coredump_signal) = _PIDFD_INFO.unpack_from(data)  # fmt: skip
    got = PidfdInfoMask(mask)

    def field(bit: PidfdInfoMask, value: int) -> int | None:
        return value if got & bit else None

    return PidfdInfo(
        mask=got,
        pid=field(PidfdInfoMask.PID, pid),
        tgid=field(PidfdInfoMask.PID, tgid),
        ppid=field(PidfdInfoMask.PID, ppid),
        creds=PidfdCreds(ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid)
        if got & PidfdInfoMask.CREDS
        else None,
        cgroupid=field(PidfdInfoMask.CGROUPID, cgroupid),
        exit_code=field(PidfdInfoMask.EXIT, exit_code),
        coredump_mask=CoredumpMask(coredump_mask) if got & PidfdInfoMask.COREDUMP else None,
        coredump_signal=field(PidfdInfoMask.COREDUMP_SIGNAL, coredump_signal),
    )


def get_pidfd_info(pidfd: int, mask: PidfdInfoMask = DEFAULT_INFO_MASK) -> PidfdInfo:
    """``ioctl(pidfd, PIDFD_GET_INFO)``.

    :raises Unsupported: the kernel has no ``PIDFD_GET_INFO`` (before 6.13; gVisor).
    :raises ProcessGone: the process was reaped and no exit information was kept.
    """
    buf = bytearray(_PIDFD_INFO.size)
    struct.pack_into("=Q", buf, 0, int(mask))
    try:
        fcntl.ioctl(pidfd, PIDFD_GET_INFO, buf, True)
    except OSError as err:
        raise translate_oserror(err, None, "pidfd info", feature="PIDFD_GET_INFO") from err
    return parse_pidfd_info(bytes(buf))


def pidfd_open(pid: int, flags: int = 0) -> int:
    """Open a pidfd (close-on-exec) for ``pid``, a tgid in our pid namespace.

    :raises ProcessGone: no such process (``ESRCH``), or ``pid`` is a thread, not a thread group
        leader (``EINVAL`` without ``PIDFD_THREAD``).
    :raises Unsupported: no ``pidfd_open`` (before 5.3).
    """
    try:
        return os.pidfd_open(pid, flags)
    except OSError as err:
        if err.errno == errno.EINVAL:
            raise ProcessGone(pid, "not a thread-group leader, or gone") from err
        raise translate_oserror(err, pid, "pidfd", feature="pidfd_open") from err


def pidfd_send_signal(pidfd: int, sig: int, flags: int = 0) -> None:
    """Send ``sig`` to the process behind ``pidfd`` (0 only checks it still exists).

    :raises ProcessGone: the process has exited (zombies included: ``ESRCH``).
    :raises AccessDenied: no permission to signal it.
    """
    try:
        signal.pidfd_send_signal(pidfd, sig, None, flags)
    except OSError as err:
        if err.errno in (errno.ENOSYS,):
            raise Unsupported("pidfd_send_signal") from err
        raise translate_oserror(err, None, "signal") from err


def pidfd_getfd(pidfd: int, targetfd: int) -> int:
    """Duplicate file descriptor ``targetfd`` of the process into ours (close-on-exec).

    Needs ptrace attach access (``PTRACE_MODE_ATTACH_REALCREDS``); works during a core dump.
    """
    try:
        return _libc.syscall("pidfd_getfd", ctypes.c_int(pidfd), ctypes.c_int(targetfd), 0)
    except OSError as err:
        if err.errno == errno.EBADF:
            raise ProcfsError(f"pidfd_getfd: no fd {targetfd} in the target") from err
        raise translate_oserror(err, None, f"fd {targetfd}", feature="pidfd_getfd") from err


def parse_pidfd_fdinfo(data: bytes) -> int | None:
    """The ``Pid:`` line of ``/proc/self/fdinfo/<pidfd>``: the pid in the namespace of that /proc
    mount, ``None`` once the process was reaped (the kernel prints ``-1``; ``0`` means the process
    is outside that pid namespace).
    """
    for line in data.splitlines():
        key, sep, value = line.partition(b":")
        if sep and key == b"Pid":
            try:
                pid = int(value.strip())
            except ValueError as err:
                raise ParseError("pidfd fdinfo", f"bad Pid line {line!r}") from err
            return pid if pid > 0 else None
    raise ParseError("pidfd fdinfo", "no Pid line (not a pidfd?)")


def read_pidfd_pid(pidfd: int) -> int:
    """The pid (in our pid namespace) of the live or zombie process behind ``pidfd``.

    Asks ``PIDFD_GET_INFO`` first (one ioctl), and ``/proc/self/fdinfo/<pidfd>`` where that ioctl
    does not exist (before 6.13).

    :raises ProcessGone: the process was reaped (its pid number may already name another process).
    """
    try:
        info = get_pidfd_info(pidfd, PidfdInfoMask.PID)
    except Unsupported:
        info = None
    except ProcessGone as err:
        raise ProcessGone(None, "process behind the pidfd was reaped") from err
    if info is not None:
        if info.pid is None:
            raise ProcessGone(None, "process behind the pidfd was reaped")
        return info.pid
    try:
        with open(f"/proc/self/fdinfo/{pidfd}", "rb") as file:
            pid = parse_pidfd_fdinfo(file.read())
    except OSError as err:
        raise ProcfsError(f"cannot read fdinfo of pidfd {pidfd}: {err.strerror}") from err
    if pid is None:
        raise ProcessGone(None, "process behind the pidfd was reaped")
    return pid
