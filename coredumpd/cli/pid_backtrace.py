"""``coredumpd stack PID``: the symbolised backtrace of every thread of a running process.

Every thread is held (``PTRACE_SEIZE`` + ``PTRACE_INTERRUPT``) only while registers are read and
the stacks are unwound from its memory; symbolisation happens after the threads are detached,
from the module files opened meanwhile. The process goes on untouched: no job-control stop, a
signal that arrived meanwhile is handed back. The verb is ``backtrace --pid`` under a short
name: :func:`run` hands its arguments to :func:`coredumpd.cli.backtrace.run_pid`.
"""

from __future__ import annotations

import argparse

from coredumpd.catch_collect import collect_dump, open_tracee_handle
from coredumpd.catch_core import layout_dump
from coredumpd.catch_freeze import seize_all
from coredumpd.live import LiveMemory, live_file_opener
from procfs.memory import ProcessMemory
from unwinder.analyze import Analysis, UnwindOptions
from unwinder.backtrace import Backtrace

HELP_ORDER = 62


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stack", help="backtrace of every thread of a running process")
    parser.add_argument("pid", type=int, help="the process (tgid)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--format", choices=("rich", "systemd"), default="rich")
    parser.add_argument("--max-frames", type=int, default=256)
    parser.set_defaults(func=run, scan=False)


def live_stack(pid: int, options: UnwindOptions) -> Backtrace:
    """Hold ``pid``, unwind every thread, let it go, then symbolise.

    :raises ProcfsError: the process cannot be traced or read.
    :raises UnwindError: the architecture cannot be unwound.
    """
    held = seize_all(pid)
    try:
        with open_tracee_handle(pid) as handle, \
                ProcessMemory(pid, tracee=held.tids[0]) as memory:
            dump = collect_dump(handle, held.tids, signo=0, siginfo=None, memory=memory)
            analysis = Analysis(layout_dump(dump), LiveMemory(memory), None,
                                live_file_opener(pid), None, None, options)
            raw = analysis.unwind()
    finally:
        held.resume()
    try:
        backtrace = analysis.symbolize(raw)
    finally:
        analysis.close()
    # nothing crashed: the first thread is only the leader
    threads = tuple(t._replace(crashed=False) for t in backtrace.threads)
    return backtrace._replace(threads=threads)


def run(args: argparse.Namespace) -> int:
    from coredumpd.cli.backtrace import run_pid

    args.json = "pretty" if args.json else "off"  # backtrace's JSON modes
    return run_pid(args)
