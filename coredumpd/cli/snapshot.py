"""``coredumpd snapshot PID``: a core of a running process into the store, like gdb's ``gcore``.

Every thread is seized and stopped (``PTRACE_SEIZE`` + ``PTRACE_INTERRUPT``: no job-control stop,
its parent notices nothing), the core is written through the memory layer's fallback chain, the
threads are detached the moment the core is safe, and the record is one of its own kind: door
``snapshot``, no signal.
"""

from __future__ import annotations

import argparse
import logging

from coredumpd.catch_capture import capture
from coredumpd.catch_collect import open_tracee_handle
from coredumpd.catch_freeze import seize_all
from coredumpd.catch_sink import Sink
from coredumpd.cli.catch import add_sink_options
from coredumpd.cli.render import error
from coredumpd.errors import CoredumpError
from procfs.errors import ProcfsError

HELP_ORDER = 61


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("snapshot", help="store a core of a running process (it goes on)")
    parser.add_argument("pid", type=int, help="the process (tgid)")
    add_sink_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="coredumpd snapshot: %(message)s")
    try:
        sink = Sink(state_dir=args.state_dir, daemon=args.daemon, config_path=args.config)
        held = seize_all(args.pid)
    except (CoredumpError, ProcfsError) as err:
        error(f"snapshot of pid {args.pid}: {err}")
        return 1
    tids = held.tids
    try:
        handle = open_tracee_handle(args.pid)
        try:
            result = capture(handle, tids, signo=0, siginfo=None, door="snapshot", sink=sink,
                             release=held.resume, memory_methods=args.memory_methods)
        finally:
            handle.close()
    except (CoredumpError, ProcfsError) as err:
        error(f"snapshot of pid {args.pid}: {err}")
        return 1
    finally:
        held.resume()
    recorded = result.recorded
    row = recorded.result.row_id if recorded and recorded.result else None
    where = f"crash {row}" if row is not None else (recorded.via if recorded else "nowhere")
    print(f"pid {args.pid}: core of {result.core_size} bytes ({len(tids)} threads held "
          f"{result.held_seconds * 1000:.0f} ms, memory: {result.context.memory_method}), "
          f"recorded as {where}")
    return 0 if result.core_size else 1
