"""The daemon's kernel coredump socket: ``@/path`` (6.16+) and ``@@/path`` (6.17+).

The kernel connects from the crashing task itself. Two processes serve it:

- the *door process* (:mod:`socket_server.door_main`, :class:`socket_server.door.Door`)
  accepts at once (the kernel's connect is non-blocking: a full backlog loses the crash),
  identifies the peer, asks the policy and answers the kernel: ``KERNEL|WAIT`` for a core we
  take, ``REJECT`` otherwise. It has an interpreter of its own, so a REJECT never waits for
  the lock held by dumps being unwound and compressed here;
- this daemon reads the door's channel (:mod:`socket_server.door_channel`): a core we take
  comes with its connection and pidfd and runs the pipeline on a *dump* worker (at most
  ``max_concurrency``): the connection is the stream, release = closing it. A watchdog per
  dump ends a stalled one with ``pidfd_send_signal(SIGKILL)`` (the kernel has no timeouts).
  A crash without a core (rejected, failed handshake) still gets its row, written by the
  recorder thread.

A door process that dies is started again; one that outlives the daemon exits when the
channel closes.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import subprocess
import sys
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
from coredumpd.runtime import FdOwner, open_crash_handle
from procfs.errors import ProcessGone, ProcfsError
from procfs.handle import ProcessHandle
from socket_server.door_channel import ChannelError, DoorEvent, channel_pair, receive_event
from socket_server.handoff import bind_private_socket
from socket_server.listening import is_listening
from socket_server.peer import read_core_rlimit
from socket_server.stream_peek import peek_stream_facts
from socket_server.test_hooks import TestHooks

log = logging.getLogger(__name__)

#: a door process that dies sooner than this after its start is restarted after a pause
RESPAWN_PAUSE = 1.0
#: how long the daemon waits for its first door process to accept before saying READY
DOOR_READY_TIMEOUT = 30.0
#: how long a stopping door may take to finish the connections it is answering
DOOR_STOP_TIMEOUT = 15.0


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
    """Bind ``path`` in a root-owned 0700 directory (made before binding: the kernel checks no
    permission on the socket, so whoever can create the path receives every core). The door
    process listens once it is ready to accept: until then the path takes no connection."""
    check_kernel_socket_path(path)
    if is_listening(path):
        raise SocketPathError(f"{path}: another server is listening there already")
    sock = bind_private_socket(path, backlog=None)
    check_kernel_socket_path(path)  # the directory exists now: check it again, for real
    return sock


@dataclass
class Runtime:
    """What a connection needs; replaced as a whole on reload (attribute swap is atomic)."""

    config: Config
    pipeline: Pipeline


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values = {"accepted": 0, "impostors": 0, "rejected": 0, "taken": 0,
                       "protocol_errors": 0, "errors": 0, "killed": 0, "recorded": 0,
                       "door_restarts": 0}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.values[name] += n

    def __getitem__(self, name: str) -> int:
        return self.values[name]


class KernelSocketServer:
    """Serves the kernel's coredump connections, through a door process, until :meth:`stop`.

    ``door_args`` are the door process's ``--config``/``--state-dir`` arguments (it loads the
    same configuration)."""

    def __init__(self, sock: socket.socket, runtime: Runtime, *, door_args: list[str],
                 hooks: TestHooks | None = None) -> None:
        self.sock = sock
        self.runtime = runtime
        self.hooks = hooks or TestHooks()
        self.counters = Counters()
        self._door_args = door_args
        self._dumps = ThreadPoolExecutor(max_workers=runtime.config.max_concurrency,
                                         thread_name_prefix="dump")
        self._stopping = threading.Event()
        self._served = threading.Event()
        self._recorder = Recorder()
        self._door_ns: deque[int] = deque(maxlen=1024)
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self._door: DoorProcess | None = None
        self._door_lock = threading.Lock()
        #: set when the (first) door process listens and accepts
        self.ready = threading.Event()

    # -- the door process ---------------------------------------------------------------

    def serve_forever(self) -> None:
        """Run the door process and act on what it reports, until it ends after :meth:`stop`;
        a door that dies meanwhile is started again."""
        try:
            while True:
                with self._door_lock:
                    if self._stopping.is_set():
                        return
                    door = self._door = DoorProcess.start(self.sock, self._door_args)
                self._follow(door)
                door.wait()
                if self._stopping.is_set():
                    return
                self.counters.add("door_restarts")
                log.error("kernel socket: the door process ended (%s); starting it again",
                          door.describe_exit())
                if door.age() < RESPAWN_PAUSE:
                    time.sleep(RESPAWN_PAUSE)
        finally:
            self._served.set()

    def _follow(self, door: DoorProcess) -> None:
        while True:
            try:
                event = receive_event(door.channel)
            except ChannelError as err:
                log.error("kernel socket: bad message from the door, ignoring: %s", err)
                continue
            except OSError as err:
                log.error("kernel socket: the door channel failed: %s", err)
                return
            if event is None:
                return
            if event.event == "ready":
                self.ready.set()
                continue
            self.counters.add("accepted")
            try:
                self._on_event(event)
            except Exception as err:  # noqa: BLE001 - one crash must not take the daemon down
                log.error("kernel socket: %s event failed: %s: %s", event.event,
                          type(err).__name__, err)

    def _on_event(self, event: DoorEvent) -> None:
        body = event.body
        if body.get("door_ns") is not None:
            self._door_ns.append(int(body["door_ns"]))
        if event.event == "take" and len(event.fds) == 2:
            self._take(event.fds[0], event.fds[1], body)
            return
        for fd in event.fds:
            os.close(fd)
        if event.event == "record":
            self.counters.add(str(body.get("counter", "errors")))
            context = CrashContext.from_json(body["context"])
            self._record(self.runtime.pipeline.catalog, context, str(body.get("why", "no core")))
        elif event.event == "count":
            self.counters.add(str(body.get("counter", "errors")))
        else:
            log.error("kernel socket: unknown door event %r, ignoring", event.event)

    def stop(self) -> None:
        """Stop the door (it finishes the connections it is answering), then wait for every
        dump in flight."""
        with self._door_lock:
            self._stopping.set()
            door = self._door
        if door is not None:
            door.terminate()
        if not self._served.wait(DOOR_STOP_TIMEOUT + 5):
            log.error("kernel socket: the door did not stop in time")
            if door is not None:
                door.kill()
        self._dumps.shutdown(wait=True)
        self._recorder.stop()
        if door is not None:
            door.close()
        self.sock.close()

    def reload(self) -> None:
        """The door process reloads its policy (SIGHUP); the runtime is replaced by the caller."""
        with self._door_lock:
            if self._door is not None:
                self._door.signal(signal.SIGHUP)

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

    def _record(self, catalog: Catalog, context: CrashContext, why: str = "no core") -> None:
        """A crash without a core still gets its row (counts stay exact), written by the
        recorder thread: the next event is read meanwhile."""
        self.counters.add("recorded")
        self._recorder.put(catalog, context, why)

    # -- the dump -------------------------------------------------------------------------

    def _take(self, conn_fd: int, pidfd: int, body: dict) -> None:
        """A core the door took: its connection (the stream) and the task's pidfd."""
        runtime = self.runtime
        try:
            context = CrashContext.from_json(body["context"])
        except Exception:
            os.close(conn_fd)
            os.close(pidfd)
            raise
        handle = open_crash_handle(context, pidfd)  # gone meanwhile: the stream still comes
        self.counters.add("taken")
        with self._inflight_lock:
            self._inflight += 1
        try:
            self._dumps.submit(self._dump, conn_fd, handle, bool(body.get("ns_local")), context,
                               runtime)
        except RuntimeError:  # shutting down: let the task go without a core
            os.close(conn_fd)
            if handle is not None:
                handle.close()
            with self._inflight_lock:
                self._inflight -= 1

    def _dump(self, fd: int, handle: ProcessHandle | None, ns_local: bool, context: CrashContext,
              runtime: Runtime) -> None:
        core = FdOwner(fd)
        watchdog = Watchdog(handle, context, runtime.config.dump_timeout_sec, self.counters)
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
                context.rlimit = read_core_rlimit(handle) if handle is not None else None
            except ProcessGone:  # killed (watchdog, OOM) meanwhile: the stream says the rest
                context.notes.append("process gone before its RLIMIT_CORE was read")
            facts = peek_stream_facts(fd)
            if facts is not None:
                context.signal = context.signal or facts.signal
                if ns_local:  # else pr_pid is namespace-local
                    context.tid = facts.tid
            result = runtime.pipeline.process(context, fd, handle, release=release)
            processed = True
            log.info("recorded pid %s (%s)", context.pid, result.summary())
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
            if handle is not None:
                handle.close()
            with self._inflight_lock:
                self._inflight -= 1


class DoorProcess:
    """The running door process and the daemon's end of its channel."""

    def __init__(self, proc: subprocess.Popen[bytes], channel: socket.socket) -> None:
        self.proc = proc
        self.channel = channel
        self.started = time.monotonic()

    @classmethod
    def start(cls, sock: socket.socket, door_args: list[str]) -> DoorProcess:
        ours, theirs = channel_pair()
        try:
            argv = [sys.executable, "-m", "socket_server.door_main",
                    "--listen-fd", str(sock.fileno()), "--channel-fd", str(theirs.fileno()),
                    *door_args]
            proc = subprocess.Popen(argv, pass_fds=(sock.fileno(), theirs.fileno()),
                                    stdin=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return cls(proc, ours)

    def age(self) -> float:
        return time.monotonic() - self.started

    def signal(self, signo: int) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signo)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def wait(self) -> None:
        try:
            self.proc.wait(timeout=DOOR_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()

    def describe_exit(self) -> str:
        code = self.proc.returncode
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    def close(self) -> None:
        self.channel.close()


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
    timeout of its own, and a stalled dump holds the task (and all its threads) forever.
    Without a handle (the task was gone when its dump began) there is nothing to kill."""

    def __init__(self, handle: ProcessHandle | None, context: CrashContext, timeout: float,
                 counters: Counters) -> None:
        self.context = context
        self.timeout = timeout
        self.counters = counters
        self.fired = threading.Event()
        self._timer = None
        if handle is not None and timeout != float("inf"):
            self._timer = threading.Timer(timeout, self._fire, args=(handle,))
            self._timer.daemon = True
            self._timer.name = f"watchdog-{handle.pid}"

    def start(self) -> None:
        if self._timer is not None:
            self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self, handle: ProcessHandle) -> None:
        try:
            handle.send_signal(signal.SIGKILL)
        except (ProcfsError, OSError) as err:
            log.info("watchdog: pid %s already gone: %s", handle.pid, err)
            return
        self.counters.add("killed")
        note = f"killed by the watchdog: the dump stalled past DumpTimeoutSec={self.timeout:g}s"
        self.context.notes.append(note)
        log.warning("pid %s %s", handle.pid, note)
        self.fired.set()


def _read_boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip().replace("-", "") or None
    except OSError:
        return None


_BOOT_ID = _read_boot_id()
