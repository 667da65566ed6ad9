"""Is anyone listening on a unix socket path? Asked of ``/proc/net/unix``, not by connecting:
a connection to the kernel socket from a plain process is an impostor in the daemon's log.

``/proc/net/unix`` rows: ``Num RefCount Protocol Flags Type St Inode Path``; a listening
socket has ``__SO_ACCEPTCON`` (0x10000) in ``Flags``. The path is the one given to ``bind``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

SO_ACCEPTCON = 0x10000
PROC_NET_UNIX = Path("/proc/net/unix")

log = logging.getLogger(__name__)


def parse_listening_paths(data: bytes) -> set[bytes]:
    """Paths of the listening sockets in a ``/proc/net/unix`` dump."""
    paths = set()
    for line in data.split(b"\n")[1:]:
        parts = line.split(None, 7)
        if len(parts) < 8:
            continue
        try:
            flags = int(parts[3], 16)
        except ValueError:
            continue
        if flags & SO_ACCEPTCON and parts[7].startswith(b"/"):
            paths.add(parts[7])
    return paths


def is_listening(path: Path, *, table: Path = PROC_NET_UNIX) -> bool:
    """True if a socket bound to ``path`` listens in our network namespace and the path still
    names a socket (a deleted-and-recreated path keeps its old row)."""
    try:
        if not path.is_socket():
            return False
        return os.fsencode(path) in parse_listening_paths(table.read_bytes())
    except OSError:
        return False


def accept_until(sock: socket.socket, stopping: threading.Event,
                 handle: Callable[[socket.socket], None], what: str) -> None:
    """Accept connections on ``sock`` and give each to ``handle`` until ``stopping`` is set
    (checked every 0.2 s); accept errors are logged and the loop goes on."""
    sock.settimeout(0.2)
    while not stopping.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        except OSError as err:
            if stopping.is_set():
                break
            log.warning("accept on the %s failed, ignoring: %s", what, err)
            continue
        handle(conn)
