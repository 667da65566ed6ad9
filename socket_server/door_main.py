"""The door process: ``python -m socket_server.door_main --listen-fd N --channel-fd M …``.

Started by the daemon (:class:`socket_server.kernel_socket.KernelSocketServer`) with the
kernel socket it listens on and its end of the door channel. It answers the kernel
(:class:`socket_server.door.Door`) and owns the policy: the rate limits, seeded from the
catalog's recent crashes so a restart does not hand a crash loop a fresh burst.

Signals are taken synchronously on the main thread: SIGTERM/SIGINT stop accepting and finish
the connections being answered; SIGHUP reloads the configuration (a new policy). When the
daemon's end of the channel closes (the daemon died), the door exits at once: no core could
be taken any more, and closing the connections releases their tasks. Not dumpable, like the
daemon: its own crash never comes back to its own socket.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading

from coredumpd.config import load_config_for
from coredumpd.policy_history import build_policy
from socket_server.door import Door
from socket_server.test_hooks import TestHooks

log = logging.getLogger("coredumpd.door")
SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="coredumpd-door")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--config")
    parser.add_argument("--state-dir")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from pipe_helper.hygiene import drop_dumpable

    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="coredumpd: %(message)s")
    drop_dumpable()
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)  # before any thread: all inherit it
    sock = socket.socket(fileno=args.listen_fd)
    channel = socket.socket(fileno=args.channel_fd)
    door = Door(sock, build_policy(load_config_for(args.config, args.state_dir)), channel,
                hooks=TestHooks(), on_channel_lost=lambda: os.kill(os.getpid(), signal.SIGTERM))
    threading.Thread(target=_watch_daemon, args=(channel,), name="watch-daemon", daemon=True).start()
    accepting = threading.Thread(target=door.serve_forever, name="accept-kernel", daemon=True)
    accepting.start()
    while True:
        signo = signal.sigwaitinfo(SIGNALS).si_signo
        if signo != signal.SIGHUP:
            break
        try:
            door.policy = build_policy(load_config_for(args.config, args.state_dir))
            log.info("door: policy reloaded")
        except Exception as err:  # noqa: BLE001 - keep the running policy
            log.error("door: reload failed, keeping the running policy: %s", err)
    door.stop()
    accepting.join(timeout=5)
    channel.close()
    return 0


def _watch_daemon(channel: socket.socket) -> None:
    """The daemon never writes to the channel: a read returns only when its end is closed."""
    try:
        channel.recv(1)
    except OSError:
        pass
    log.error("door: the daemon's end of the channel closed; exiting")
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
