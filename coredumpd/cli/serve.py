"""``coredumpd serve``: the daemon. Takes crashes handed off by pipe helpers.

SIGTERM/SIGINT stop accepting and wait for the crashes in flight (the signal handler only
sets an event). Tells systemd when it is ready (``sd_notify``) if started by it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from coredumpd.cli.render import error


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the daemon that takes handed-off crashes")
    parser.add_argument("--state-dir", help="state directory (default from the configuration)")
    parser.add_argument("--config", help="configuration file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coredumpd.errors import CoredumpError
    from coredumpd.runtime import handle_handoff, load, pipeline_for
    from pipe_helper.hygiene import drop_dumpable
    from socket_server.handoff import HandoffServer, bind_private_socket

    logging.basicConfig(level=logging.INFO, format="coredumpd: %(message)s")
    drop_dumpable()  # our own crash must never come back to us
    try:
        config = load(args.config, args.state_dir)
        pipeline = pipeline_for(config)
        sock = bind_private_socket(config.handoff_socket)
    except (CoredumpError, OSError) as err:
        error(str(err))
        return 1
    server = HandoffServer(sock, lambda h: handle_handoff(pipeline, h),
                           max_workers=config.max_concurrency)
    stop = threading.Event()
    for signo in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signo, lambda *_: stop.set())
    worker = threading.Thread(target=server.serve_forever, name="accept", daemon=True)
    worker.start()
    _notify("READY=1\nSTATUS=taking crashes on " + str(config.handoff_socket))
    logging.info("listening on %s (state in %s)", config.handoff_socket, config.state_directory)
    while not stop.wait(1.0):
        pass
    _notify("STOPPING=1")
    logging.info("stopping: waiting for crashes in flight")
    server.stop()
    worker.join(timeout=5)
    logging.info("stopped (%d crashes taken, %d refused)", server.accepted, server.refused)
    return 0


def _notify(state: str) -> None:
    try:
        from systemd import daemon

        daemon.notify(state)
    except (ImportError, OSError):
        pass
