"""``coredumpd demo``: install, crash the bundled samples for real, list them, show the newest
one with its backtrace, and put everything back."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from coredumpd.cli.render import (
    error,
    make_console,
    render_crash_info,
    render_crash_list,
    safe_text,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="catch, store, list and explain real sample crashes")
    parser.add_argument("--state-dir", type=Path, help="state directory (default /var/lib/coredumpd)")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--helper-dir", type=Path, help="where the helper wrapper goes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from coredumpd.demo import DemoError, run_demo
    from coredumpd.errors import CoredumpError
    from coredumpd.install import DEFAULT_HELPER_DIR, InstallError
    from unwinder.backtrace import backtrace_from_dict
    from unwinder.format import format_rich

    console = make_console()
    work = Path(tempfile.mkdtemp(prefix="coredumpd-demo-"))
    try:
        result = run_demo(work, state_dir=args.state_dir, config=args.config,
                          helper_dir=args.helper_dir or DEFAULT_HELPER_DIR,
                          progress=lambda line: console.print(safe_text(line)))
    except (DemoError, InstallError, CoredumpError, OSError) as err:
        error(str(err))
        return 1
    except KeyboardInterrupt:
        error("interrupted; core_pattern was put back")
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    console.print()
    console.print(safe_text(f"coredumpd list (state in {result.state_dir}):"))
    render_crash_list(console, [c.row for c in result.crashes])
    newest = result.crashes[-1].row
    console.print()
    console.print(safe_text(f"coredumpd info {newest.id}:"))
    backtrace = backtrace_from_dict(json.loads(newest.backtrace_json)) if newest.backtrace_json else None
    render_crash_info(console, newest, format_rich(backtrace) if backtrace else None)
    sys.stdout.flush()
    return 0 if all(c.row.storage_state == "present" and c.row.backtrace_json
                    for c in result.crashes) else 1
