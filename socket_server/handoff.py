"""The daemon's hand-off listener: crashes passed on by pipe helpers (and the catcher).

Only root may hand off (the helper runs as root); anyone else is an impostor: logged, dropped.
Each accepted crash runs the pipeline on a worker thread; at most ``max_workers`` run at once,
further clients wait in the backlog (their crashed task stays held, which is the backpressure).
A failing crash never takes the daemon down. :meth:`HandoffServer.stop` stops accepting and
waits for the crashes in flight.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from socket_server.listening import accept_until
from socket_server.wire import ACCEPTED, REFUSED, Handoff, WireError, peer_uid, receive_handoff

log = logging.getLogger(__name__)

#: Runs one crash: (hand-off) -> None. It owns the hand-off's fds and must close them (the
#: server never does: an early close by the handler could otherwise hit a reused fd number).
CrashHandler = Callable[[Handoff], None]


def bind_private_socket(path: Path, *, backlog: int | None = 128) -> socket.socket:
    """Listen on ``path`` inside a root-owned 0700 directory, created before binding
    (``backlog`` None: bound only, whoever accepts calls ``listen``)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.parent.stat()
    if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path.parent, 0o700)
        os.chown(path.parent, 0, 0)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.bind(str(path))
    os.chmod(path, 0o600)
    if backlog is not None:
        sock.listen(backlog)
    return sock


class HandoffServer:
    def __init__(self, sock: socket.socket, handler: CrashHandler, *, max_workers: int = 4) -> None:
        self.sock = sock
        self.handler = handler
        self.max_workers = max_workers
        self._slots = threading.BoundedSemaphore(max_workers)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="crash")
        self._stopping = threading.Event()
        self.accepted = 0
        self.refused = 0

    def serve_forever(self) -> None:
        def take(conn: socket.socket) -> None:
            conn.settimeout(30)
            self._handle_connection(conn)

        accept_until(self.sock, self._stopping, take, "hand-off socket")

    def _handle_connection(self, conn: socket.socket) -> None:
        with conn:
            try:
                uid = peer_uid(conn)
                if uid != 0:
                    log.warning("hand-off from uid %d refused: only root may hand off crashes", uid)
                    self.refused += 1
                    return
                handoff = receive_handoff(conn)
            except (WireError, OSError) as err:
                log.warning("bad hand-off, ignoring: %s", err)
                self.refused += 1
                return
            self._slots.acquire()  # backpressure: wait for a free worker before accepting
            if self._stopping.is_set():
                self._slots.release()
                conn.sendall(REFUSED)
                _close_all(handoff)
                return
            try:
                conn.sendall(ACCEPTED)
            except OSError as err:
                self._slots.release()
                log.warning("client went away before the hand-off completed: %s", err)
                _close_all(handoff)
                return
            self.accepted += 1
            self._pool.submit(self._run, handoff)

    def _run(self, handoff: Handoff) -> None:
        try:
            self.handler(handoff)
        except Exception as err:  # noqa: BLE001 - one crash must not take the daemon down
            log.error("crash handling failed: %s: %s", type(err).__name__, err)
        finally:
            self._slots.release()

    def stop(self) -> None:
        """Stop accepting, then wait for the crashes in flight."""
        self._stopping.set()
        self._pool.shutdown(wait=True)
        self.sock.close()


def _close_all(handoff: Handoff) -> None:
    for fd in (handoff.core_fd, handoff.pidfd):
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
