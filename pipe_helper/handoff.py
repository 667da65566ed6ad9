"""The pipe helper's side of the hand-off: pass the crash to the daemon and get out.

On success the daemon holds its own copies of the core pipe and the pidfd; our exit closes
ours. Any failure (no socket, daemon busy or refusing, a timeout) returns False and the helper
runs the pipeline itself. Stdlib only; ``logging`` is imported only to tell of a failure (the
fast path must start in milliseconds).
"""

from __future__ import annotations

import socket

from socket_server.wire import WireError, send_handoff

TYPE_CHECKING = False  # (``typing`` costs the fast path 2 ms to import)
if TYPE_CHECKING:
    from pathlib import Path

CONNECT_TIMEOUT_S = 2.0
#: how long the daemon may take to accept (it waits for a free worker first)
ANSWER_TIMEOUT_S = 30.0


def hand_off(path: Path | str, context_json: str | None, core_fd: int, pidfd: int | None,
             extras: dict | None = None, *, argv: list[bytes] | None = None) -> bool:
    """Hand one crash to the daemon at ``path``: its context, or the kernel's ``argv``."""
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    except OSError as err:
        _log().warning("no hand-off socket: %s", err)
        return False
    with sock:
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(str(path))
            sock.settimeout(ANSWER_TIMEOUT_S)
            taken = send_handoff(sock, context_json, core_fd, pidfd, extras, argv=argv)
        except (OSError, WireError) as err:
            _log().info("daemon at %s not reachable (%s): handling the crash here", path, err)
            return False
    if not taken:
        _log().info("daemon refused the crash: handling it here")
    return taken


def _log():  # type: ignore[no-untyped-def]
    import logging

    return logging.getLogger(__name__)
