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


def _when(timestamp_us: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp_us / 1e6).astimezone().strftime(
        "%a %Y-%m-%d %H:%M:%S %Z")


def _size(n: int | None) -> str:
    if not n:
        return "-"
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.1f}{unit}" if unit != "B" else f"{n}B"
        n /= 1024
    return str(n)


def render_crash_list(console: Console, rows) -> None:  # type: ignore[no-untyped-def]
    """coredumpctl's columns: TIME PID UID GID SIG COREFILE EXE SIZE."""
    from coredumpd.signals import signal_name

    table = Table(box=None if not console.is_terminal else table_box(), pad_edge=False)
    for column in ("TIME", "PID", "UID", "GID", "SIG", "COREFILE", "EXE", "SIZE"):
        table.add_column(column, no_wrap=column != "EXE", overflow="fold")
    for row in rows:
        exe = row.exe if row.exe is not None else (row.comm or b"")
        table.add_row(_when(row.timestamp), str(row.pid), str(row.uid), str(row.gid),
                      signal_name(row.signal).removeprefix("SIG") if row.signal else "-",
                      row.storage_state, safe_text(exe), _size(row.disk_size))
    console.print(table)


def table_box():  # type: ignore[no-untyped-def]
    from rich import box

    return box.SIMPLE_HEAD


def render_crash_info(console: Console, row, backtrace_text: str | None) -> None:  # type: ignore[no-untyped-def]
    from coredumpd.signals import si_code_name, signal_name

    context = row.context
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", justify="right")
    grid.add_column(overflow="fold")
    signal = f"{row.signal} ({signal_name(row.signal)})" if row.signal else "-"
    if context.si_code is not None and row.signal:
        signal += f" {si_code_name(row.signal, context.si_code)}"
    fields = [
        ("PID", Text(f"{row.pid} (") + safe_text(row.comm or b"?") + Text(")")),
        ("UID", Text(str(row.uid))), ("GID", Text(str(row.gid))), ("Signal", Text(signal)),
        ("Timestamp", Text(_when(row.timestamp))),
    ]
    if context.cmdline:
        fields.append(("Command Line", safe_text(context.cmdline)))
    if row.exe:
        fields.append(("Executable", safe_text(row.exe)))
    if context.unit:
        fields.append(("Unit", safe_text(context.unit)))
    storage = f"{row.filename} ({row.storage_state})" if row.filename else row.storage_state
    fields.append(("Storage", safe_text(storage)))
    if row.disk_size:
        fields.append(("Size on Disk", Text(_size(row.disk_size))))
    if row.signature:
        fields.append(("Signature", Text(row.signature)))
    for note in row.notes or ():
        fields.append(("Note", safe_text(note)))
    for name, value in fields:
        grid.add_row(name, value)
    console.print(grid)
    if backtrace_text:
        console.print()
        for line in backtrace_text.splitlines():
            console.print(safe_text(line), soft_wrap=True)
