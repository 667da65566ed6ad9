"""Is anyone listening on a unix socket path? Asked of ``/proc/net/unix``, not by connecting:
a connection to the kernel socket from a plain process is an impostor in the daemon's log.

``/proc/net/unix`` rows: ``Num RefCount Protocol Flags Type St Inode Path``; a listening
socket has ``__SO_ACCEPTCON`` (0x10000) in ``Flags``. The path is the one given to ``bind``.
"""

from __future__ import annotations

import os
from pathlib import Path

SO_ACCEPTCON = 0x10000
PROC_NET_UNIX = Path("/proc/net/unix")


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
