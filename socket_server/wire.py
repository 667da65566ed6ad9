"""The hand-off wire format between the pipe helper (or the catcher) and the daemon.

One AF_UNIX stream connection per crash. The client sends an 8-byte header — magic ``CDH1`` and
the u32 length of the JSON that follows — carrying ``SCM_RIGHTS`` with the core stream's fd
and, when known, the pidfd; then the JSON: the crash's context (:meth:`CrashContext.to_json`),
or, from the pipe helper's fast path, the kernel's raw specifier arguments (``argv``, each
``os.fsdecode``d) for the daemon to parse; plus the door's extras. The daemon answers one
byte: ``A`` (accepted: it now owns the fds) or ``R`` (refused: the client keeps them and
handles the crash itself). Stdlib only, and light: the helper's fast path imports it.
"""

from __future__ import annotations

import array
import json
import os
import socket
import struct

MAGIC = b"CDH1"
HEADER = struct.Struct("<4sI")
MAX_MESSAGE = 64 << 20
ACCEPTED, REFUSED = b"A", b"R"


class WireError(Exception):
    """The peer spoke something else, or went away mid-message."""


class Handoff:
    """One crash received: ``context_json`` or ``argv`` (the other is None), the fds, extras.
    (A plain class: ``dataclasses`` costs the helper's fast path milliseconds to import.)"""

    __slots__ = ("context_json", "argv", "core_fd", "pidfd", "extras")

    def __init__(self, context_json: str | None, core_fd: int, pidfd: int | None, extras: dict,
                 argv: list[bytes] | None = None) -> None:
        self.context_json = context_json
        self.argv = argv
        self.core_fd = core_fd
        self.pidfd = pidfd
        self.extras = extras


def send_handoff(sock: socket.socket, context_json: str | None, core_fd: int, pidfd: int | None,
                 extras: dict | None = None, *, argv: list[bytes] | None = None) -> bool:
    """Send one crash, as a context or as the kernel's ``argv``; True when the daemon took it."""
    message: dict = {"context": context_json, "extras": extras or {}}
    if argv is not None:
        message["argv"] = [os.fsdecode(a) for a in argv]
    body = json.dumps(message).encode()
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
        if not isinstance(message, dict):
            raise WireError("malformed hand-off message")
        context, argv = message.get("context"), message.get("argv")
        if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
            argv = [os.fsencode(a) for a in argv]
        elif argv is not None or not isinstance(context, str):
            raise WireError("malformed hand-off message")
        extras = message.get("extras") or {}
        if not isinstance(extras, dict):
            raise WireError("malformed hand-off extras")
    except (WireError, ValueError, OSError) as err:
        for fd in fds:
            _close(fd)
        raise WireError(str(err)) from err
    return Handoff(context if argv is None else None, fds[0], fds[1] if len(fds) > 1 else None,
                   extras, argv=argv)


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
    try:
        os.close(fd)
    except OSError:
        pass


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]
