"""``coredumpd demo``: crash a sample program for real and show what coredumpd finds."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from coredumpd.cli.render import error, make_console, render_core_summary, safe_text
from coredumpd.demo import DemoError, run_demo


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="crash a sample program and show what coredumpd finds")
    parser.add_argument("--dir", type=Path, help="keep the program and its core in DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    directory = args.dir or Path(tempfile.mkdtemp(prefix="coredumpd-demo-"))
    try:
        result = run_demo(directory.resolve())
    except DemoError as err:
        error(str(err))
        return 1
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    console = make_console()
    console.print(safe_text(f"crashed {result.exe.name} (pid {result.pid}); the kernel wrote "
                            f"{result.core_path.name} ({result.summary.core_bytes / 2**20:.1f} MiB)"))
    console.print(f"head read from a stream: {result.head_bytes / 1024:.1f} KiB (header, program "
                  f"headers, every thread's notes) parsed in {result.head_parse_ms:.2f} ms; "
                  f"stream and file parse {'agree' if result.streams_agree else 'DISAGREE'}")
    console.print()
    render_core_summary(console, result.summary)
    if args.dir is not None:
        console.print(safe_text(f"kept in {directory}"))
    return 0 if result.streams_agree else 1
