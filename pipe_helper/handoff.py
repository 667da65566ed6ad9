"""The pipe helper's side of the hand-off: pass the crash to the daemon and get out.

On success the daemon holds its own copies of the core pipe and the pidfd; our exit closes
ours. Any failure (no socket, daemon busy or refusing, a timeout) returns False and the helper
runs the pipeline itself. Stdlib only.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from socket_server.wire import WireError, send_handoff

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 2.0
#: how long the daemon may take to accept (it waits for a free worker first)
ANSWER_TIMEOUT_S = 30.0


def hand_off(path: Path, context_json: str, core_fd: int, pidfd: int | None,
             extras: dict | None = None) -> bool:
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    except OSError as err:
        log.warning("no hand-off socket: %s", err)
        return False
    with sock:
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(str(path))
            sock.settimeout(ANSWER_TIMEOUT_S)
            taken = send_handoff(sock, context_json, core_fd, pidfd, extras)
        except (OSError, WireError) as err:
            log.info("daemon at %s not reachable (%s): handling the crash here", path, err)
            return False
    if not taken:
        log.info("daemon refused the crash: handling it here")
    return taken
