"""Who is on the other end of a kernel coredump socket connection.

The kernel connects *from the crashing task itself*, so ``SO_PEERPIDFD`` names the crashing
process, and pidfs already knows it is dumping at ``accept()`` time (``PIDFD_GET_INFO``
``coredump_mask`` has ``PIDFD_COREDUMPED``; /proc says ``CoreDumping: 1``). The kernel checks
no permission on the socket, and neither does anything else: any process that can reach the
path may connect. One that is not a dumping task is an :class:`Impostor`.

:func:`identify_peer` reads only what the policy needs before the ack (cheap: one ioctl, three
small /proc reads); :func:`peer_context` turns it into the crash's :class:`CrashContext`.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass

from coredumpd.context import CrashContext
from coredumpd.errors import CoredumpError
from coredumpd.metadata import units_from_cgroup
from coredumpd.policy import CrashFacts
from procfs.errors import ProcessGone, ProcfsError
from procfs.handle import ProcessHandle
from procfs.parse.cgroup import parse_cgroup
from procfs.parse.limits import Rlimit, parse_limits
from procfs.parse.status import Status, parse_status
from procfs.pidfd import CoredumpMask, PidfdInfo

#: ``SO_PEERPIDFD`` (Linux 6.5); Python's socket module does not name it
SO_PEERPIDFD = 77
RLIM_INFINITY = (1 << 64) - 1


class Impostor(CoredumpError):
    """The peer is not a task the kernel is dumping: a plain process reached the socket.

    :ivar pid: its pid (our namespace), when known; :ivar uid: its effective uid, when known.
    """

    def __init__(self, reason: str, *, pid: int | None = None, uid: int | None = None) -> None:
        self.pid = pid
        self.uid = uid
        super().__init__(f"peer pid {pid} uid {uid}: {reason}")


@dataclass
class Peer:
    """A dumping process on a connection: its handle (owns the pidfd), pidfs info, status."""

    handle: ProcessHandle
    info: PidfdInfo
    status: Status
    exe: bytes | None
    cgroup: bytes | None
    accepted_us: int

    @property
    def pid(self) -> int:
        return self.handle.pid

    def facts(self) -> CrashFacts:
        unit = units_from_cgroup(self.cgroup)[0] if self.cgroup else None
        uid = self.info.creds.ruid if self.info.creds is not None else None
        return CrashFacts(exe=self.exe, unit=unit, uid=uid, signal=self.info.coredump_signal,
                          comm=self.status.name)

    def close(self) -> None:
        self.handle.close()


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """``SO_PEERCRED``: (tgid, effective uid, effective gid) of the peer."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def peer_pidfd(conn: socket.socket) -> int:
    """``SO_PEERPIDFD``: a new pidfd (close-on-exec) for the peer's thread-group leader."""
    raw = conn.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4)
    fd = struct.unpack("i", raw)[0]
    os.set_inheritable(fd, False)
    return fd


def identify_peer(conn: socket.socket) -> Peer:
    """The dumping process behind ``conn``.

    :raises Impostor: the peer is not being dumped (or is gone: then no core is coming either).
    """
    accepted_us = time.time_ns() // 1000
    try:
        pidfd = peer_pidfd(conn)
    except OSError as err:
        pid, uid, _ = _quiet_creds(conn)
        raise Impostor(f"no SO_PEERPIDFD ({err.strerror})", pid=pid, uid=uid) from err
    try:
        handle = ProcessHandle.from_pidfd(pidfd, take=True)
    except (ProcfsError, OSError) as err:
        os.close(pidfd)
        pid, uid, _ = _quiet_creds(conn)
        raise Impostor(f"its process cannot be opened ({err})", pid=pid, uid=uid) from err
    try:
        info = handle.info()
        uid = info.creds.euid if info.creds is not None else None
        mask = info.coredump_mask
        if mask is None or not mask & CoredumpMask.COREDUMPED:
            raise Impostor(f"not dumping core (coredump_mask {_mask_text(mask)})",
                           pid=handle.pid, uid=uid)
        status = parse_status(handle.read_bytes("status"))
        if not status.core_dumping:
            raise Impostor("pidfs says it dumped, but /proc says CoreDumping is not 1",
                           pid=handle.pid, uid=uid)
        exe = _optional(lambda: handle.readlink("exe"))
        cgroup = _optional(lambda: parse_cgroup(handle.read_bytes("cgroup")).unified)
        handle.verify()
    except Impostor:
        handle.close()
        raise
    except (ProcfsError, OSError) as err:
        pid = handle.pid
        handle.close()
        raise Impostor(f"vanished while being identified ({err})", pid=pid) from err
    return Peer(handle, info, status, exe, cgroup, accepted_us)


def peer_context(peer: Peer) -> CrashContext:
    """The crash's context as the socket door knows it before any /proc metadata: what the
    pipe door gets from its specifiers (``%P %u %g %t %c %d %h %e``), from pidfs and /proc."""
    context = CrashContext(door="socket", pid=peer.pid, timestamp=peer.accepted_us,
                           comm=peer.status.name, exe=peer.exe, hostname=os.uname().nodename.encode(),
                           by_pidfd=1)
    creds = peer.info.creds
    if creds is not None:
        context.uid, context.gid = creds.ruid, creds.rgid
    mask = peer.info.coredump_mask or CoredumpMask(0)
    context.dumpable = 2 if mask & CoredumpMask.ROOT else 1 if mask & CoredumpMask.USER else 0
    if peer.info.coredump_signal:
        context.signal = peer.info.coredump_signal
    if peer.cgroup is not None:
        context.cgroup = peer.cgroup
        context.unit, context.user_unit, context.slice = units_from_cgroup(peer.cgroup)
    return context


def read_core_rlimit(handle: ProcessHandle) -> int | None:
    """The soft ``RLIMIT_CORE`` of the process (what ``%c`` gives the pipe door): the kernel
    ignores it for sockets, the storage step honours it. None if unreadable."""
    return _optional(lambda: _core_rlimit(handle))


def _core_rlimit(handle: ProcessHandle) -> int:
    row = parse_limits(handle.read_bytes("limits")).find(Rlimit.CORE)
    if row is None or row.soft is None:
        return RLIM_INFINITY
    return row.soft


def _optional(read):  # type: ignore[no-untyped-def]
    try:
        return read()
    except ProcessGone:
        raise
    except (ProcfsError, OSError, ValueError):
        return None


def _quiet_creds(conn: socket.socket) -> tuple[int | None, int | None, int | None]:
    try:
        return peer_credentials(conn)
    except OSError:
        return None, None, None


def _mask_text(mask: CoredumpMask | None) -> str:
    return "unavailable" if mask is None else hex(int(mask))
