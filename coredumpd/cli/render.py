"""Printing results for people: rich tables on a terminal, plain text otherwise.

Every string that came from a crashed process (comm, argv, paths) is attacker-chosen: it is
shown through :class:`rich.text.Text` on a console with markup and highlighting off, and its
non-printable bytes are escaped first, so it can inject neither markup nor terminal escapes.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from coredumpd.core_summary import CoreSummary


def make_console(stream=None) -> Console:  # type: ignore[no-untyped-def]
    stream = stream or sys.stdout
    return Console(file=stream, markup=False, highlight=False, emoji=False,
                   no_color="NO_COLOR" in os.environ, soft_wrap=False)


def safe_text(raw: bytes | str) -> Text:
    """Untrusted bytes as inert text: undecodable bytes and control characters escaped."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="backslashreplace")
    cleaned = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                      for ch in raw)
    return Text(cleaned)


def render_core_summary(console: Console, summary: CoreSummary) -> None:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("process", safe_text(summary.comm) + Text(f"  (pid {summary.pid}, uid {summary.uid}, gid {summary.gid})"))
    head.add_row("command line", safe_text(summary.psargs))
    fault = f" at {summary.fault_address:#x}" if summary.fault_address is not None else ""
    head.add_row("signal", Text(f"{summary.signal} ({summary.si_code}){fault}"))
    head.add_row("architecture", Text(summary.arch))
    head.add_row("memory", Text(f"{summary.segments} segments, {summary.dumped_bytes / 2**20:.1f} MiB "
                                f"dumped, core of {summary.core_bytes / 2**20:.1f} MiB"))
    console.print(head)

    threads = Table(title="threads (the crashing one first, as the kernel writes them)",
                    title_justify="left")
    for column in ("tid", "", "pc", "where", "sp"):
        threads.add_column(column, overflow="fold")
    for t in summary.threads:
        threads.add_row(str(t.tid), "crashed" if t.crashed else "", f"{t.pc:#x}",
                        safe_text(t.location), f"{t.sp:#x}")
    console.print(threads)

    modules = Table(title="mapped files (NT_FILE)", title_justify="left")
    for column in ("start", "end", "maps"):
        modules.add_column(column, no_wrap=True)
    modules.add_column("path", overflow="fold")
    for m in summary.modules:
        modules.add_row(f"{m.start:#x}", f"{m.end:#x}", str(m.mappings), safe_text(m.path))
    console.print(modules)


def error(message: str) -> None:
    """One clean line on stderr."""
    print(f"coredumpd: {message}", file=sys.stderr)
