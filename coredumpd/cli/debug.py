"""``coredumpd debug [MATCH…]`` (alias ``gdb``): run a debugger on the newest matching crash.

As coredumpctl: ``gdb [ARGS…] EXE -c CORE`` with ``--debugger`` (or ``$SYSTEMD_DEBUGGER``)
and ``-A``; a compressed core is written to a temporary file under ``/var/tmp`` first,
sparse (its all-zero blocks stay holes), and removed afterwards. While the debugger runs,
this process ignores SIGINT (the terminal sends it to the debugger too) and forwards SIGTERM
and SIGQUIT to it; handlers, not ``SIG_IGN``, so that the debugger starts with the default
dispositions.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import tempfile
from pathlib import Path
from types import FrameType

from coredumpd.cli.options import add_selection_arguments

HELP_ORDER = 25
TEMP_DIR = Path("/var/tmp")
FORWARDED = (signal.SIGTERM, signal.SIGQUIT)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("debug", aliases=["gdb"],
                                   help="run gdb on the executable and core of the newest match")
    add_selection_arguments(parser)
    parser.add_argument("--debugger", metavar="PROGRAM",
                        help="debugger to run (default: $SYSTEMD_DEBUGGER, else gdb)")
    parser.add_argument("-A", "--debugger-arguments", metavar="ARGS", default="",
                        help="extra arguments for the debugger, as one shell-quoted string")
    parser.set_defaults(func=run)


def check_executable(exe: bytes | None, pid: int | None) -> Path:
    """The crashed executable if it can be given to a debugger.

    :raises ValueError: with the reason (unknown, deleted, relative, gone)."""
    if not exe:
        raise ValueError(f"the executable of pid {pid} is not known")
    path = os.fsdecode(exe)
    if path.endswith(" (deleted)"):
        raise ValueError(f"the executable {path!r} was deleted after the crash")
    if not os.path.isabs(path):
        raise ValueError(f"the executable {path!r} is not an absolute path")
    if not os.path.exists(path):
        raise ValueError(f"the executable {path!r} no longer exists")
    return Path(path)


def run_debugger(argv: list[str]) -> int:
    """Run ``argv``; SIGINT ignored here, SIGTERM/SIGQUIT forwarded. Returns its status."""
    child = subprocess.Popen(argv)

    def forward(signo: int, frame: FrameType | None) -> None:
        if child.returncode is None:
            child.send_signal(signo)

    saved = {signo: signal.getsignal(signo) for signo in (signal.SIGINT, *FORWARDED)}
    try:
        signal.signal(signal.SIGINT, lambda signo, frame: None)
        for signo in FORWARDED:
            signal.signal(signo, forward)
        status = child.wait()
    finally:
        for signo, handler in saved.items():
            signal.signal(signo, handler)
    return 128 - status if status < 0 else status


def run(args: argparse.Namespace) -> int:
    from coredumpd.cli.corefile import copy_core, core_size_hint, open_crash_core
    from coredumpd.cli.options import select_one
    from coredumpd.cli.render import error, progress, report_one
    from coredumpd.errors import CoredumpError

    debugger = args.debugger or os.environ.get("SYSTEMD_DEBUGGER") or "gdb"
    try:
        extra = shlex.split(args.debugger_arguments)
        debugger_argv = shlex.split(debugger)
    except ValueError as err:
        error(f"cannot parse the debugger arguments: {err}")
        return 1
    picked = select_one(args, details=True)
    crash = report_one(picked)
    if crash is None:
        return 1
    try:
        exe = check_executable(crash.exe, crash.pid)
    except ValueError as err:
        error(str(err))
        return 1
    fd, temp = -1, None
    try:
        with open_crash_core(crash, journal_directory=args.directory) as src:
            fd, name = tempfile.mkstemp(prefix="coredump-", dir=TEMP_DIR)
            temp = Path(name)
            with progress(f"unpacking the core of pid {crash.pid}", core_size_hint(crash)) as bar:
                copy_core(src, fd, sparse=True, advance=bar.advance)
        os.close(fd)
        fd = -1
        argv = [*debugger_argv, *extra, str(exe), "-c", str(temp)]
        try:
            return run_debugger(argv)
        except OSError as err:
            error(f"cannot run {debugger_argv[0]}: {err.strerror or err}")
            return 1
    except CoredumpError as err:
        error(str(err))
        return 1
    except OSError as err:
        error(f"cannot write a temporary core in {TEMP_DIR}: {err.strerror or err}")
        return 1
    finally:
        if fd >= 0:
            os.close(fd)
        if temp is not None:
            temp.unlink(missing_ok=True)
