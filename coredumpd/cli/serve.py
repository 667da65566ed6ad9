"""``coredumpd serve``: the daemon. Takes crashes from the kernel's coredump socket (``@`` and
``@@``) and those handed off by pipe helpers.

Signal handlers only set events: SIGTERM/SIGINT stop accepting and wait for the crashes in
flight; SIGHUP reloads the configuration (policy, limits, storage; the socket paths need a
restart). Tells systemd READY/STATUS/STOPPING (``sd_notify``) and takes its listening sockets
from it when socket-activated (``LISTEN_FDS``). The daemon is not dumpable: its own crash never
reaches its own socket (the kernel skips the dump entirely).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import threading
from pathlib import Path

from coredumpd.cli.render import error

STATUS_EVERY = 5.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the daemon that takes crashes from the "
                                   "kernel's socket and from pipe helpers")
    parser.add_argument("--state-dir", help="state directory (default from the configuration)")
    parser.add_argument("--config", help="configuration file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coredumpd.config import load_config_for
    from coredumpd.errors import CoredumpError
    from coredumpd.runtime import handle_handoff
    from pipe_helper.hygiene import drop_dumpable
    from socket_server.handoff import HandoffServer, bind_private_socket
    from socket_server.kernel_socket import (
        DOOR_READY_TIMEOUT,
        KernelSocketServer,
        bind_kernel_socket,
    )

    logging.basicConfig(level=logging.INFO, format="coredumpd: %(message)s")
    drop_dumpable()  # our own crash must never come back to us
    # Installed before any socket is bound: a SIGTERM that arrives while we start must still
    # go through the shutdown below (which points core_pattern away from our socket).
    # The handlers only queue a request; the main loop wakes up through the wakeup fd. (No
    # Event.set() in a handler: it takes a lock the interrupted main thread may be holding.)
    requests: list[str] = []
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    for signo in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signo, lambda *_: requests.append("stop"))
    signal.signal(signal.SIGHUP, lambda *_: requests.append("reload"))

    try:
        config = load_config_for(args.config, args.state_dir)
        runtime = _runtime(config)
        _recover(config, runtime)
        inherited = _inherited_sockets()
        handoff_sock = inherited.pop(str(config.handoff_socket), None) \
            or bind_private_socket(config.handoff_socket)
    except (CoredumpError, OSError) as err:
        error(str(err))
        return 1
    kernel_sock = inherited.pop(str(config.kernel_socket), None)
    if kernel_sock is None:  # (one from systemd listens already; the door sets our backlog)
        try:
            kernel_sock = bind_kernel_socket(config.kernel_socket)
        except (CoredumpError, OSError) as err:
            logging.warning("kernel socket unavailable, serving hand-offs only: %s", err)
    for path, sock in inherited.items():
        logging.warning("ignoring an inherited socket on %s: not one of ours", path)
        sock.close()

    door_args = [*(["--config", args.config] if args.config else []),
                 *(["--state-dir", args.state_dir] if args.state_dir else [])]
    kernel = KernelSocketServer(kernel_sock, runtime, door_args=door_args) \
        if kernel_sock is not None else None
    current = [runtime]  # what hand-offs run in: a reload replaces it
    handoff = HandoffServer(handoff_sock, lambda h: handle_handoff(current[0].pipeline, h),
                            max_workers=config.max_concurrency)
    threads = [threading.Thread(target=handoff.serve_forever, name="accept-handoff", daemon=True)]
    if kernel is not None:
        threads.append(threading.Thread(target=kernel.serve_forever, name="accept-kernel",
                                        daemon=True))
    for thread in threads:
        thread.start()
    if kernel is not None and not kernel.ready.wait(DOOR_READY_TIMEOUT):
        logging.error("the kernel socket's door process is not ready after %gs; still trying",
                      DOOR_READY_TIMEOUT)
    where = [str(config.handoff_socket)] + ([str(config.kernel_socket)] if kernel else [])
    _notify("READY=1\nSTATUS=taking crashes on " + ", ".join(where))
    logging.info("listening on %s (state in %s)", ", ".join(where), config.state_directory)
    while "stop" not in requests:
        select.select([wake_r], [], [], STATUS_EVERY)
        _drain(wake_r)
        if "reload" in requests:
            while "reload" in requests:
                requests.remove("reload")
            _reload(args, kernel, config, current)
        elif kernel is not None:
            _notify("STATUS=" + _status(kernel))
    _notify("STOPPING=1")
    if kernel is not None:
        _fall_back(config)
    logging.info("stopping: waiting for crashes in flight")
    handoff.stop()
    if kernel is not None:
        kernel.stop()
    for thread in threads:
        thread.join(timeout=5)
    _stop_spool(current[0])
    logging.info("stopped (%d hand-offs taken, %d refused%s)", handoff.accepted, handoff.refused,
                 "; kernel socket: " + _status(kernel) if kernel is not None else "")
    return 0


def _runtime(config):  # type: ignore[no-untyped-def]
    from coredumpd.runtime import pipeline_for
    from socket_server.kernel_socket import Runtime

    return Runtime(config, pipeline_for(config, spool=True))


def _recover(config, runtime) -> None:  # type: ignore[no-untyped-def]
    """Crashes a killed predecessor was handling: recorded without their cores."""
    from coredumpd import inflight

    try:
        count = inflight.recover(config.state_directory, runtime.pipeline.catalog)
    except Exception as err:  # noqa: BLE001 - the daemon starts anyway; the markers stay
        logging.error("recovering interrupted crashes failed: %s", err)
        return
    if count:
        logging.warning("recorded %d crash(es) interrupted by the previous daemon's end", count)


def _reload(args: argparse.Namespace, kernel, config, current: list) -> None:  # type: ignore[no-untyped-def,type-arg]
    """Load the configuration again; hand-offs (``current[0]``) and the kernel socket (when
    there is one) take crashes with the new runtime from now on. The old one is left to the
    crashes in flight (its catalog connection closes with it)."""
    from coredumpd.config import load_config_for
    from coredumpd.errors import CoredumpError

    _notify("RELOADING=1")
    try:
        new = load_config_for(args.config, args.state_dir)
        runtime = _runtime(new)
    except (CoredumpError, OSError) as err:
        logging.error("reload failed, keeping the running configuration: %s", err)
        _notify("READY=1")
        return
    if (new.kernel_socket, new.handoff_socket, new.max_concurrency) != \
            (config.kernel_socket, config.handoff_socket, config.max_concurrency):
        logging.warning("socket paths and MaxConcurrency change only on restart")
    old, current[0] = current[0], runtime
    _stop_spool(old)  # its writer, if busy, lets the new runtime's take over
    if runtime.pipeline.spool is not None:
        runtime.pipeline.spool.refill()
    if kernel is not None:
        kernel.runtime = runtime
        kernel.reload()  # the door process reloads its policy
    logging.info("configuration reloaded from %s",
                 ", ".join(str(p) for p in new.sources) or "defaults")
    _notify("READY=1\nSTATUS=configuration reloaded")


def _stop_spool(runtime) -> None:  # type: ignore[no-untyped-def]
    if runtime.pipeline.spool is not None:
        runtime.pipeline.spool.close()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 256):
            pass
    except BlockingIOError:
        pass


def _fall_back(config) -> None:  # type: ignore[no-untyped-def]
    """Never leave core_pattern pointing at a socket nobody listens on."""
    from coredumpd.install import fall_back_to_pipe

    try:
        pattern = fall_back_to_pipe(config.state_directory, config.kernel_socket)
    except Exception as err:  # noqa: BLE001 - stopping anyway
        logging.error("failed to point core_pattern back at the pipe helper: %s", err)
        return
    if pattern is not None:
        logging.warning("core_pattern pointed at this daemon's socket; now %s", pattern)


def _status(kernel) -> str:  # type: ignore[no-untyped-def]
    c = kernel.counters
    latency = kernel.door_latency_ms()
    answered = f"; answered in {latency[0]:.2f} ms (max {latency[1]:.2f})" if latency else ""
    return (f"{c['taken']} cores taken, {c['rejected']} rejected, {kernel.inflight} in flight, "
            f"{c['impostors']} impostors, {c['killed']} killed by the watchdog{answered}")


def _inherited_sockets() -> dict[str, socket.socket]:
    """Listening sockets passed by systemd (``LISTEN_FDS``), by their bound path."""
    try:
        from systemd import daemon
    except ImportError:
        return {}
    out = {}
    for fd in daemon.listen_fds(unset_environment=True):
        sock = socket.socket(fileno=fd)
        name = sock.getsockname()
        path = name if isinstance(name, str) else Path(name.decode()).as_posix() if name else ""
        out[path] = sock
    return out


def _notify(state: str) -> None:
    try:
        from systemd import daemon

        daemon.notify(state)
    except (ImportError, OSError):
        pass
