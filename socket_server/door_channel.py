"""The channel from the door process to the daemon: one ``SOCK_SEQPACKET`` message per kernel
connection, JSON with up to two fds attached (``SCM_RIGHTS``).

Messages (``event`` names what the door did with the connection):

- ``take``: the core is ours; fds: the connection (the stream, blocking mode) and the pidfd;
  ``context`` is :meth:`CrashContext.to_json`, ``ns_local`` says whether the task's pids are
  the daemon's (so the core's ``pr_pid`` is usable);
- ``record``: no core comes (rejected, or the handshake failed); ``context``, ``why`` (a line
  for the log) and ``counter`` (the daemon's counter to bump);
- ``count``: nothing to record (an impostor, an internal error): just ``counter``.

Every message carries ``door_ns``, the time from ``accept()`` to the door's answer (or None).
Stdlib only: this runs in the door process, which must start fast and stay small.
"""

from __future__ import annotations

import array
import json
import os
import socket
from dataclasses import dataclass, field

#: far above any real message (a context before /proc metadata: comm, exe, cgroup, notes)
MAX_MESSAGE = 1 << 20
MAX_FDS = 2


class ChannelError(Exception):
    """A message that is not one of ours (never expected: both ends are coredumpd)."""


@dataclass
class DoorEvent:
    event: str
    body: dict
    fds: list[int] = field(default_factory=list)


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """(the daemon's end, the door process's end); both close-on-exec."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)


def send_event(sock: socket.socket, event: str, body: dict, fds: list[int] | tuple[int, ...] = ()) -> None:
    data = json.dumps({"event": event, **body}).encode()
    if len(data) > MAX_MESSAGE:
        raise ChannelError(f"{event} message of {len(data)} bytes")
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([data], ancillary)


def receive_event(sock: socket.socket) -> DoorEvent | None:
    """The next message, or None at the end (the door process closed its end). The caller
    owns the fds received; those of a message that raises :class:`ChannelError` are closed."""
    fds = array.array("i")
    data, ancdata, flags, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data and not fds:
        return None
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ChannelError("truncated message")
        message = json.loads(data)
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            raise ChannelError("not a door event")
    except (ChannelError, ValueError) as err:
        for fd in fds:
            os.close(fd)
        raise ChannelError(str(err)) from err
    event = message.pop("event")
    return DoorEvent(event, message, list(fds))
