"""The daemon's kernel coredump socket: ``@/path`` (6.16+) and ``@@/path`` (6.17+).

The kernel connects from the crashing task itself; the server:

1. accepts at once, on its own thread (the kernel's connect is non-blocking: a full backlog
   loses the crash) and hands the connection to a *door* worker;
2. identifies the peer (``SO_PEERPIDFD`` + ``PIDFD_GET_INFO`` + /proc): a process that is not
   being dumped is an impostor, logged and dropped, nothing stored (:mod:`socket_server.peer`);
3. tells the two modes apart by the first bytes: ``@@`` starts with a ``coredump_req`` (its size,
   16, little endian), ``@`` with ``\\x7fELF``;
4. asks the policy (rate limits) before the ack. ``@@``: ``KERNEL|WAIT`` for a core we take,
   ``REJECT`` otherwise, then the 4-byte mark; ``@``: a rejected crash's connection is closed
   at once. A rejected crash is still recorded (storage "none", the reason as a note);
5. runs the pipeline on a *dump* worker (at most ``max_concurrency``): context from pidfs and
   /proc, the connection as the stream, release = closing the connection. A watchdog per dump
   ends a stalled one with ``pidfd_send_signal(SIGKILL)`` (the kernel has no timeouts).

Door workers never wait for dump workers, so REJECTs stay fast while cores are being written.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from coredumpd.catalog import Catalog
from coredumpd.config import SUN_PATH_MAX, Config
from coredumpd.context import CrashContext
from coredumpd.errors import CoredumpError
from coredumpd.pipeline import Pipeline
from coredumpd.policy import Policy, Verdict
from coredumpd.runtime import FdOwner
from procfs.errors import ProcessGone, ProcfsError
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
from socket_server.handoff import bind_private_socket
from socket_server.listening import accept_until, is_listening
from socket_server.peer import Impostor, Peer, identify_peer, peer_context, read_core_rlimit
from socket_server.stream_peek import peek_stream_facts
from socket_server.test_hooks import TestHooks

log = logging.getLogger(__name__)

ELF_MAGIC = b"\x7f\x45\x4c\x46"
#: how long the kernel may take to send its request or mark (it sends them at once)
HANDSHAKE_TIMEOUT = 5.0
#: door workers: identification, policy and the handshake only (each well under a millisecond)
DOOR_WORKERS = 4
BACKLOG = 4096
TAKE_ACK = CoredumpFlag.KERNEL | CoredumpFlag.WAIT
REJECT_ACK = CoredumpFlag.REJECT


class SocketPathError(CoredumpError):
    """The kernel socket path breaks one of the kernel's rules (DESIGN.md §6)."""


def check_kernel_socket_path(path: Path) -> None:
    """Absolute, no ``..``, no whitespace, under 108 bytes, no symlink anywhere (the kernel
    resolves it with ``LOOKUP_NO_SYMLINKS`` from init's root: ``/var/run/…`` fails, ``/run/…``
    works)."""
    text = os.fsencode(path)
    if not path.is_absolute() or ".." in path.parts:
        raise SocketPathError(f"{path}: the kernel wants an absolute path without '..'")
    if any(c in text for c in b" \t\n\r\v\f"):
        raise SocketPathError(f"{path}: the kernel refuses socket paths with whitespace")
    if len(text) >= SUN_PATH_MAX:
        raise SocketPathError(f"{path}: {len(text)} bytes, the limit is {SUN_PATH_MAX - 1}")
    probe = Path("/")
    for part in path.parent.parts[1:]:
        probe = probe / part
        if probe.is_symlink():
            raise SocketPathError(f"{path}: {probe} is a symlink; the kernel follows none "
                                  "(use the real path, e.g. /run instead of /var/run)")


def bind_kernel_socket(path: Path) -> socket.socket:
    """Listen on ``path`` in a root-owned 0700 directory (made before binding: the kernel checks
    no permission on the socket, so whoever can create the path receives every core)."""
    check_kernel_socket_path(path)
    if is_listening(path):
        raise SocketPathError(f"{path}: another server is listening there already")
    sock = bind_private_socket(path)
    check_kernel_socket_path(path)  # the directory exists now: check it again, for real
    sock.listen(BACKLOG)
    return sock


@dataclass
class Runtime:
    """What a connection needs; replaced as a whole on reload (attribute swap is atomic)."""

    config: Config
    pipeline: Pipeline
    policy: Policy


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values = {"accepted": 0, "impostors": 0, "rejected": 0, "taken": 0,
                       "protocol_errors": 0, "killed": 0, "recorded": 0}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.values[name] += n

    def __getitem__(self, name: str) -> int:
        return self.values[name]


class KernelSocketServer:
    """Serves the kernel's coredump connections until :meth:`stop`."""

    def __init__(self, sock: socket.socket, runtime: Runtime, *,
                 hooks: TestHooks | None = None) -> None:
        self.sock = sock
        self.runtime = runtime
        self.hooks = hooks or TestHooks()
        self.counters = Counters()
        self._doors = ThreadPoolExecutor(max_workers=DOOR_WORKERS, thread_name_prefix="door")
        self._dumps = ThreadPoolExecutor(max_workers=runtime.config.max_concurrency,
                                         thread_name_prefix="dump")
        self._stopping = threading.Event()
        self._recorder = Recorder()
        self._door_ns: deque[int] = deque(maxlen=1024)
        self._inflight = 0
        self._inflight_lock = threading.Lock()

    # -- accepting ------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """The accept loop: accept and hand over, nothing else (never let the backlog fill)."""
        def take(conn: socket.socket) -> None:
            self.counters.add("accepted")
            conn.settimeout(HANDSHAKE_TIMEOUT)
            try:
                self._doors.submit(self._door, conn, time.monotonic_ns())
            except RuntimeError:  # stopping: the pool is shut down
                conn.close()

        accept_until(self.sock, self._stopping, take, "kernel socket")

    def stop(self) -> None:
        """Stop accepting, then wait for every connection in flight (their dumps complete)."""
        self._stopping.set()
        self._doors.shutdown(wait=True)
        self._dumps.shutdown(wait=True)
        self._recorder.stop()
        self.sock.close()

    @property
    def inflight(self) -> int:
        return self._inflight

    def door_latency_ms(self) -> tuple[float, float] | None:
        """(median, max) milliseconds from accept to our answer (ack, or close in ``@`` mode),
        over the last connections."""
        values = sorted(self._door_ns)
        if not values:
            return None
        return values[len(values) // 2] / 1e6, values[-1] / 1e6

    # -- the door: identify, decide, handshake ------------------------------------------------

    def _door(self, conn: socket.socket, accepted_ns: int) -> None:
        runtime = self.runtime
        try:
            peer = identify_peer(conn)
        except Impostor as err:
            self.counters.add("impostors")
            log.warning("kernel socket: impostor dropped, nothing stored: %s", err)
            conn.close()
            return
        except Exception as err:  # noqa: BLE001 - one connection must not take the daemon down
            log.error("kernel socket: identifying the peer failed: %s: %s", type(err).__name__, err)
            conn.close()
            return
        context = peer_context(peer)
        handed = False
        try:
            verdict = runtime.policy.decide(peer.facts())
            first = _recv_exactly(conn, 4, peek=True)
            if first == ELF_MAGIC:
                handed = self._plain(conn, peer, context, verdict, runtime, accepted_ns)
            else:
                handed = self._protocol(conn, peer, context, verdict, runtime, first, accepted_ns)
        except (ProtocolError, OSError) as err:
            self.counters.add("protocol_errors")
            log.warning("kernel socket: pid %s: %s; no core", peer.pid, _describe(err))
            context.notes.append(f"coredump socket: {_describe(err)}")
            conn.close()
            self._record(runtime.pipeline.catalog, context)
        except Exception as err:  # noqa: BLE001
            log.error("kernel socket: pid %s: %s: %s", peer.pid, type(err).__name__, err)
            conn.close()
        finally:
            if not handed:
                peer.close()

    def _plain(self, conn: socket.socket, peer: Peer, context: CrashContext, verdict: Verdict,
               runtime: Runtime, accepted_ns: int) -> bool:
        """``@``: the stream is already coming; a rejected one is cut off by closing."""
        if not verdict.take:
            conn.close()
            self._door_ns.append(time.monotonic_ns() - accepted_ns)
            self._rejected(runtime, context, verdict)
            return False
        self._dispatch(conn, peer, context, runtime)
        return True

    def _protocol(self, conn: socket.socket, peer: Peer, context: CrashContext, verdict: Verdict,
                  runtime: Runtime, first: bytes, accepted_ns: int) -> bool:
        """``@@``: request, ack, mark; then the stream (only for a core we take)."""
        size = parse_request_size(first)
        req = parse_request(_recv_exactly(conn, size))
        wanted = TAKE_ACK if verdict.take else REJECT_ACK
        choose_ack(req, wanted)
        ack = build_ack(wanted)
        override = self.hooks.malformed_ack(req)
        if override is not None:
            return self._malformed(conn, peer, context, runtime, req, override)
        conn.sendall(ack)
        self._door_ns.append(time.monotonic_ns() - accepted_ns)
        mark = parse_mark(_recv_exactly(conn, MARK_SIZE))
        if mark != CoredumpMark.REQACK:
            raise ProtocolError(f"the kernel refused our ack {ack.hex()}: mark {mark_name(mark)}")
        if not verdict.take:
            conn.close()
            self._rejected(runtime, context, verdict)
            return False
        self._dispatch(conn, peer, context, runtime)
        return True

    def _malformed(self, conn: socket.socket, peer: Peer, context: CrashContext, runtime: Runtime,
                   req, ack: bytes) -> bool:  # type: ignore[no-untyped-def]
        """Test hook: send a bad ack, report what the kernel answered."""
        report: dict = {"pid": peer.pid, "req": {"size": req.size, "size_ack": req.size_ack,
                                                 "mask": int(req.mask)}, "ack": ack.hex()}
        try:
            conn.sendall(ack)
        except OSError as err:
            report["send_error"] = errno.errorcode.get(err.errno or 0, str(err))
        try:
            data = _recv_exactly(conn, MARK_SIZE)
            report["mark"] = int(parse_mark(data))
        except (OSError, ProtocolError) as err:
            report["mark_error"] = _describe(err)
        try:
            after = conn.recv(1)
            report["after"] = "eof" if not after else f"data {after.hex()}"
        except OSError as err:
            report["after"] = errno.errorcode.get(err.errno or 0, str(err))
        conn.close()
        self.hooks.report(report)
        context.notes.append(f"test hook: malformed ack {ack.hex()}, kernel answered "
                             f"{report.get('mark', report.get('mark_error'))}")
        self.counters.add("protocol_errors")
        self._record(runtime.pipeline.catalog, context)
        return False

    def _rejected(self, runtime: Runtime, context: CrashContext, verdict: Verdict) -> None:
        self.counters.add("rejected")
        context.notes.append(verdict.reason or "rejected")
        self._record(runtime.pipeline.catalog, context,
                     f"rejected at the kernel door: {verdict.reason}")

    def _record(self, catalog: Catalog, context: CrashContext, why: str = "no core") -> None:
        """A crash without a core still gets its row (counts stay exact), written by the
        recorder thread: the door answers the next crash meanwhile."""
        self.counters.add("recorded")
        self._recorder.put(catalog, context, why)

    # -- the dump -------------------------------------------------------------------------

    def _dispatch(self, conn: socket.socket, peer: Peer, context: CrashContext,
                  runtime: Runtime) -> None:
        self.counters.add("taken")
        with self._inflight_lock:
            self._inflight += 1
        conn.settimeout(None)
        fd = conn.detach()
        try:
            self._dumps.submit(self._dump, fd, peer, context, runtime)
        except RuntimeError:  # shutting down: let the task go without a core
            os.close(fd)
            peer.close()
            with self._inflight_lock:
                self._inflight -= 1

    def _dump(self, fd: int, peer: Peer, context: CrashContext, runtime: Runtime) -> None:
        core = FdOwner(fd)
        watchdog = Watchdog(peer, context, runtime.config.dump_timeout_sec, self.counters)
        released = threading.Event()

        def release() -> None:
            released.set()
            watchdog.cancel()
            core.close()

        processed = False
        try:
            watchdog.start()
            self.hooks.stall(released_or_killed=watchdog.fired)
            try:
                context.rlimit = read_core_rlimit(peer.handle)
            except ProcessGone:  # killed (watchdog, OOM) meanwhile: the stream says the rest
                context.notes.append("process gone before its RLIMIT_CORE was read")
            facts = peek_stream_facts(fd)
            if facts is not None:
                context.signal = context.signal or facts.signal
                if len(peer.status.ns_pids) <= 1:  # else pr_pid is namespace-local
                    context.tid = facts.tid
            result = runtime.pipeline.process(context, fd, peer.handle, release=release)
            processed = True
            log.info("recorded pid %s (core %s)", context.pid,
                     result.stored.state if result.stored else "not stored")
            self.counters.add("recorded")
        except Exception as err:  # noqa: BLE001 - one crash must not take the daemon down
            log.error("crash handling of pid %s failed: %s: %s", context.pid,
                      type(err).__name__, err)
            if not processed:  # the metadata read at the door is still a record: never lose it
                context.notes.append(f"crash handling failed: {type(err).__name__}: {err}")
                self._record(runtime.pipeline.catalog, context, "recorded without its core")
        finally:
            watchdog.cancel()
            core.close()
            peer.close()
            with self._inflight_lock:
                self._inflight -= 1


class Recorder:
    """Writes the rows of crashes without a core, and their log lines, off the door threads."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Catalog, CrashContext, str] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def put(self, catalog: Catalog, context: CrashContext, why: str) -> None:
        self._queue.put((catalog, context, why))

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            catalog, context, why = item
            log.info("pid %s (%s) %s", context.pid,
                     (context.comm or b"?").decode(errors="backslashreplace"), why)
            if context.boot_id is None:
                context.boot_id = _BOOT_ID
            try:
                catalog.add(context, None, backtrace_json=None, signature=None)
            except CoredumpError as err:
                log.error("failed to record pid %s, ignoring: %s", context.pid, err)


class Watchdog:
    """Kills the dumping task if its dump is not in after ``timeout`` seconds: the kernel has no
    timeout of its own, and a stalled dump holds the task (and all its threads) forever."""

    def __init__(self, peer: Peer, context: CrashContext, timeout: float, counters: Counters) -> None:
        self.peer = peer
        self.context = context
        self.timeout = timeout
        self.counters = counters
        self.fired = threading.Event()
        self._timer = threading.Timer(timeout, self._fire) if timeout != float("inf") else None
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.name = f"watchdog-{peer.pid}"

    def start(self) -> None:
        if self._timer is not None:
            self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        try:
            self.peer.handle.send_signal(signal.SIGKILL)
        except (ProcfsError, OSError) as err:
            log.info("watchdog: pid %s already gone: %s", self.peer.pid, err)
            return
        self.counters.add("killed")
        note = f"killed by the watchdog: the dump stalled past DumpTimeoutSec={self.timeout:g}s"
        self.context.notes.append(note)
        log.warning("pid %s %s", self.peer.pid, note)
        self.fired.set()


def _recv_exactly(conn: socket.socket, n: int, *, peek: bool = False) -> bytes:
    flags = socket.MSG_WAITALL | (socket.MSG_PEEK if peek else 0)
    data = conn.recv(n, flags)
    if len(data) != n:
        raise ProtocolError(f"connection ended after {len(data)} of {n} bytes", data)
    return data


def _describe(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno is not None:
        name = errno.errorcode.get(err.errno, str(err.errno))
        return f"{name} ({err.strerror})" if not isinstance(err, TimeoutError) else "timed out"
    return str(err)


def _read_boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip().replace("-", "") or None
    except OSError:
        return None


_BOOT_ID = _read_boot_id()
