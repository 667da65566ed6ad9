"""The kernel socket's door: identify the peer, decide, answer the kernel; nothing else.

It runs in a process of its own (:mod:`socket_server.door_main`), so the dumps being unwound
and compressed in the daemon never hold the interpreter lock a REJECT is waiting for. Per
connection, on one of a few door threads:

1. identify the peer (``SO_PEERPIDFD`` + ``PIDFD_GET_INFO`` + /proc): a process that is not
   being dumped is an impostor, logged and dropped, nothing stored (:mod:`socket_server.peer`);
2. tell the two modes apart by the first bytes: ``@@`` starts with a ``coredump_req`` (its
   size, 16, little endian), ``@`` with ``\\x7fELF``;
3. ask the policy (rate limits) before the ack. ``@@``: ``KERNEL|WAIT`` for a core we take,
   ``REJECT`` otherwise, then read the 4-byte mark; ``@``: a rejected crash's connection is
   closed at once;
4. tell the daemon over the channel (:mod:`socket_server.door_channel`): a core we take goes
   with the connection and the pidfd; a rejected crash, or a failed handshake, goes as a
   record to write.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from coredumpd.context import CrashContext
from coredumpd.policy import Policy, Verdict
from socket_server.coredump_proto import (
    MARK_SIZE,
    CoredumpFlag,
    CoredumpMark,
    ProtocolError,
    build_ack,
    choose_ack,
    mark_name,
    parse_mark,
    parse_request,
    parse_request_size,
)
from socket_server.door_channel import send_event
from socket_server.listening import accept_until
from socket_server.peer import Impostor, Peer, identify_peer, peer_context
from socket_server.test_hooks import TestHooks

log = logging.getLogger(__name__)

BACKLOG = 4096
ELF_MAGIC = b"\x7f\x45\x4c\x46"
#: how long the kernel may take to send its request or mark (it sends them at once)
HANDSHAKE_TIMEOUT = 5.0
#: door threads: identification, policy and the handshake only (well under a millisecond each)
DOOR_WORKERS = 4
TAKE_ACK = CoredumpFlag.KERNEL | CoredumpFlag.WAIT
REJECT_ACK = CoredumpFlag.REJECT


class Door:
    """Answers every connection on ``sock`` until :meth:`stop`; reports to ``channel``.

    ``on_channel_lost`` is called (once) when the daemon's end is gone: nobody would take a
    core any more."""

    def __init__(self, sock: socket.socket, policy: Policy, channel: socket.socket, *,
                 hooks: TestHooks | None = None,
                 on_channel_lost: Callable[[], None] = lambda: None) -> None:
        self.sock = sock
        self.policy = policy  # replaced as a whole on reload (attribute swap is atomic)
        self.channel = channel
        self.hooks = hooks or TestHooks()
        self._on_channel_lost = on_channel_lost
        self._channel_lock = threading.Lock()
        self._channel_lost = False
        self._pool = ThreadPoolExecutor(max_workers=DOOR_WORKERS, thread_name_prefix="door")
        self._stopping = threading.Event()

    def serve_forever(self) -> None:
        """Listen, tell the daemon, then the accept loop: accept and hand over, nothing else
        (never let the backlog fill)."""
        self.sock.listen(BACKLOG)
        self._send("ready", {})

        def take(conn: socket.socket) -> None:
            accepted_ns = time.monotonic_ns()
            conn.settimeout(HANDSHAKE_TIMEOUT)
            try:
                self._pool.submit(self.answer, conn, accepted_ns)
            except RuntimeError:  # stopping: the pool is shut down
                conn.close()

        accept_until(self.sock, self._stopping, take, "kernel socket")

    def stop(self) -> None:
        """Stop accepting; the connections being answered are finished and reported."""
        self._stopping.set()
        self._pool.shutdown(wait=True)

    # -- one connection -------------------------------------------------------------------

    def answer(self, conn: socket.socket, accepted_ns: int) -> None:
        try:
            peer = identify_peer(conn)
        except Impostor as err:
            log.warning("kernel socket: impostor dropped, nothing stored: %s", err)
            conn.close()
            self._send("count", {"counter": "impostors"})
            return
        except Exception as err:  # noqa: BLE001 - one connection must not take the door down
            log.error("kernel socket: identifying the peer failed: %s: %s", type(err).__name__, err)
            conn.close()
            self._send("count", {"counter": "errors"})
            return
        context = peer_context(peer)
        try:
            verdict = self.policy.decide(peer.facts())
            first = _recv_exactly(conn, 4, peek=True)
            if first == ELF_MAGIC:
                self._plain(conn, peer, context, verdict, accepted_ns)
            else:
                self._protocol(conn, peer, context, verdict, first, accepted_ns)
        except (ProtocolError, OSError) as err:
            log.warning("kernel socket: pid %s: %s; no core", peer.pid, describe(err))
            context.notes.append(f"coredump socket: {describe(err)}")
            conn.close()
            self._record(context, "no core", "protocol_errors")
        except Exception as err:  # noqa: BLE001
            log.error("kernel socket: pid %s: %s: %s", peer.pid, type(err).__name__, err)
            conn.close()
            self._send("count", {"counter": "errors"})
        finally:
            peer.close()

    def _plain(self, conn: socket.socket, peer: Peer, context: CrashContext, verdict: Verdict,
               accepted_ns: int) -> None:
        """``@``: the stream is already coming; a rejected one is cut off by closing."""
        if not verdict.take:
            conn.close()
            self._rejected(context, verdict, time.monotonic_ns() - accepted_ns)
            return
        self._take(conn, peer, context, None)

    def _protocol(self, conn: socket.socket, peer: Peer, context: CrashContext, verdict: Verdict,
                  first: bytes, accepted_ns: int) -> None:
        """``@@``: request, ack, mark; then the stream (only for a core we take)."""
        size = parse_request_size(first)
        req = parse_request(_recv_exactly(conn, size))
        wanted = TAKE_ACK if verdict.take else REJECT_ACK
        choose_ack(req, wanted)
        ack = build_ack(wanted)
        override = self.hooks.malformed_ack(req)
        if override is not None:
            self._malformed(conn, peer, context, req, override)
            return
        conn.sendall(ack)
        door_ns = time.monotonic_ns() - accepted_ns
        mark = parse_mark(_recv_exactly(conn, MARK_SIZE))
        if mark != CoredumpMark.REQACK:
            raise ProtocolError(f"the kernel refused our ack {ack.hex()}: mark {mark_name(mark)}")
        if not verdict.take:
            conn.close()
            self._rejected(context, verdict, door_ns)
            return
        self._take(conn, peer, context, door_ns)

    def _malformed(self, conn: socket.socket, peer: Peer, context: CrashContext, req,  # type: ignore[no-untyped-def]
                   ack: bytes) -> None:
        """Test hook: send a bad ack, report what the kernel answered."""
        report: dict = {"pid": peer.pid, "req": {"size": req.size, "size_ack": req.size_ack,
                                                 "mask": int(req.mask)}, "ack": ack.hex()}
        try:
            conn.sendall(ack)
        except OSError as err:
            report["send_error"] = errno.errorcode.get(err.errno or 0, str(err))
        try:
            report["mark"] = int(parse_mark(_recv_exactly(conn, MARK_SIZE)))
        except (OSError, ProtocolError) as err:
            report["mark_error"] = describe(err)
        try:
            after = conn.recv(1)
            report["after"] = "eof" if not after else f"data {after.hex()}"
        except OSError as err:
            report["after"] = errno.errorcode.get(err.errno or 0, str(err))
        conn.close()
        self.hooks.report(report)
        context.notes.append(f"test hook: malformed ack {ack.hex()}, kernel answered "
                             f"{report.get('mark', report.get('mark_error'))}")
        self._record(context, "no core", "protocol_errors")

    # -- telling the daemon ---------------------------------------------------------------

    def _take(self, conn: socket.socket, peer: Peer, context: CrashContext,
              door_ns: int | None) -> None:
        conn.settimeout(None)  # the daemon reads the stream blocking (O_NONBLOCK is shared)
        try:
            self._send("take", {"context": context.to_json(), "door_ns": door_ns,
                                "ns_local": len(peer.status.ns_pids) <= 1},
                       fds=(conn.fileno(), peer.handle.pidfd))
        finally:
            conn.close()  # the daemon holds its own copy now (or the kernel sees it closed)

    def _rejected(self, context: CrashContext, verdict: Verdict, door_ns: int) -> None:
        context.notes.append(verdict.reason or "rejected")
        self._record(context, f"rejected at the kernel door: {verdict.reason}", "rejected",
                     door_ns)

    def _record(self, context: CrashContext, why: str, counter: str,
                door_ns: int | None = None) -> None:
        self._send("record", {"context": context.to_json(), "why": why, "counter": counter,
                              "door_ns": door_ns})

    def _send(self, event: str, body: dict, fds: tuple[int, ...] = ()) -> None:
        with self._channel_lock:
            if self._channel_lost:
                return
            try:
                send_event(self.channel, event, body, fds)
                return
            except OSError as err:
                self._channel_lost = True
                log.error("kernel socket: the daemon is gone (%s); the door stops", describe(err))
        self._on_channel_lost()


def _recv_exactly(conn: socket.socket, n: int, *, peek: bool = False) -> bytes:
    flags = socket.MSG_WAITALL | (socket.MSG_PEEK if peek else 0)
    data = conn.recv(n, flags)
    if len(data) != n:
        raise ProtocolError(f"connection ended after {len(data)} of {n} bytes", data)
    return data


def describe(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno is not None:
        name = errno.errorcode.get(err.errno, str(err.errno))
        return f"{name} ({err.strerror})" if not isinstance(err, TimeoutError) else "timed out"
    return str(err)
