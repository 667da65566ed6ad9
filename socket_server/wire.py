"""The hand-off wire format between the pipe helper (or the catcher) and the daemon.

One AF_UNIX stream connection per crash. The client sends an 8-byte header — magic ``CDH1`` and
the u32 length of the JSON that follows — carrying ``SCM_RIGHTS`` with the core stream's fd
and, when known, the pidfd; then the JSON (:meth:`CrashContext.to_json` plus the door's
extras). The daemon answers one byte: ``A`` (accepted: it now owns the fds) or ``R``
(refused: the client keeps them and handles the crash itself). Stdlib only.
"""

from __future__ import annotations

import array
import json
import socket
import struct
from dataclasses import dataclass

MAGIC = b"CDH1"
HEADER = struct.Struct("<4sI")
MAX_MESSAGE = 64 << 20
ACCEPTED, REFUSED = b"A", b"R"


class WireError(Exception):
    """The peer spoke something else, or went away mid-message."""


@dataclass(frozen=True)
class Handoff:
    context_json: str
    core_fd: int
    pidfd: int | None
    extras: dict


def send_handoff(sock: socket.socket, context_json: str, core_fd: int, pidfd: int | None,
                 extras: dict | None = None) -> bool:
    """Send one crash; True when the daemon took it."""
    body = json.dumps({"context": context_json, "extras": extras or {}}).encode()
    fds = [core_fd] + ([pidfd] if pidfd is not None else [])
    sock.sendmsg([HEADER.pack(MAGIC, len(body))],
                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    sock.sendall(body)
    answer = sock.recv(1)
    return answer == ACCEPTED


def receive_handoff(sock: socket.socket) -> Handoff:
    """Read one crash from a client; the fds received are owned by the caller."""
    fds = array.array("i")
    data, ancdata, flags, _ = sock.recvmsg(HEADER.size, socket.CMSG_SPACE(2 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    try:
        if len(data) != HEADER.size or flags & socket.MSG_CTRUNC:
            raise WireError("short or truncated header")
        magic, length = HEADER.unpack(data)
        if magic != MAGIC or length > MAX_MESSAGE:
            raise WireError("not a coredumpd hand-off")
        if not fds:
            raise WireError("no core stream fd attached")
        body = _read_exactly(sock, length)
        message = json.loads(body)
        if not isinstance(message, dict) or not isinstance(message.get("context"), str):
            raise WireError("malformed hand-off message")
    except (WireError, ValueError, OSError) as err:
        for fd in fds:
            _close(fd)
        raise WireError(str(err)) from err
    return Handoff(message["context"], fds[0], fds[1] if len(fds) > 1 else None,
                   message.get("extras") or {})


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise WireError(f"peer went away after {got} of {n} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _close(fd: int) -> None:
    import os

    try:
        os.close(fd)
    except OSError:
        pass


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]
