"""Printing results for people: rich tables on a terminal, plain text otherwise.

Every string that came from a crashed process (comm, argv, paths, environment) is
attacker-chosen: it goes through :func:`clean` (undecodable bytes and control characters
escaped) and is shown as :class:`rich.text.Text` on a console with markup, emoji and
highlighting off, so it can inject neither markup nor terminal escapes. This is the only
module that prints with rich; the verbs hand it frozen results. rich is imported by the
functions that use it: a verb that only prints plain text or an error does not pay for it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from coredumpd.cli.details import CrashInfo
    from coredumpd.cli.list import CrashGroup
    from coredumpd.cli.options import Selected, SelectedMany
    from coredumpd.cli.records import Crash
    from coredumpd.cli.stats import CrashStats
    from coredumpd.core_summary import CoreSummary

#: cores at least this big get a progress bar while being written out (on a terminal)
PROGRESS_MIN_BYTES = 64 << 20
_NUMERIC = {"PID", "UID", "GID", "SIZE", "COUNT", "ID"}


def make_console(stream=None) -> Console:  # type: ignore[no-untyped-def]
    from rich.console import Console

    stream = stream or sys.stdout
    return Console(file=stream, markup=False, highlight=False, emoji=False,
                   no_color="NO_COLOR" in os.environ, soft_wrap=False)


def clean(raw: bytes | str) -> str:
    """Untrusted bytes as inert text: undecodable bytes and control characters escaped."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="backslashreplace")
    if raw.isprintable():
        return raw
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in raw)


def safe_text(raw: bytes | str) -> Text:
    from rich.text import Text

    return Text(clean(raw))


def error(message: str) -> None:
    """One clean line on stderr."""
    print(f"coredumpd: {clean(message)}", file=sys.stderr)


def warning(message: str) -> None:
    print(f"coredumpd: warning: {clean(message)}", file=sys.stderr)


def report_one(picked: Selected) -> Crash | None:
    """Print the selection's warnings, and why nothing was selected; the crash or None."""
    for line in picked.warnings:
        warning(line)
    if picked.crash is None:
        error(picked.error or "no coredumps found")
    return picked.crash


def report_many(picked: SelectedMany) -> list[Crash] | None:
    """Print the selection's warnings, and its error when nothing was selected; the crashes
    or None."""
    for line in picked.warnings:
        warning(line)
    if not picked.crashes:
        if picked.error:
            error(picked.error)
        return None
    return list(picked.crashes)


def emit_json(data: Any, mode: str) -> None:
    """``--json=short`` (one line) or ``pretty``."""
    text = json.dumps(data, indent=2 if mode == "pretty" else None,
                      separators=None if mode == "pretty" else (",", ":"))
    sys.stdout.write(text + "\n")


def table_box():  # type: ignore[no-untyped-def]
    from rich import box

    return box.SIMPLE_HEAD


def render_table(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                 legend: bool = True, fold: str | None = None) -> None:
    """Cells are already :func:`clean`. A rich table on a terminal; aligned plain columns
    (nothing cut, nothing wrapped) otherwise."""
    if console.is_terminal:
        from rich.table import Table
        from rich.text import Text

        table = Table(box=table_box(), pad_edge=False, show_header=legend, show_edge=False)
        for name in headers:
            table.add_column(name, justify="right" if name in _NUMERIC else "left",
                             no_wrap=name != fold, overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
        return
    widths = [max([len(h) if legend else 0] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    out = console.file

    template = " ".join(f"{{:{'>' if h in _NUMERIC else '<'}{w}}}"
                        for h, w in zip(headers, widths, strict=True))
    lines = [template.format(*headers).rstrip()] if legend else []
    lines += [template.format(*row).rstrip() for row in rows]
    out.write("\n".join(lines) + "\n")
    out.flush()


def render_core_summary(console: Console, summary: CoreSummary) -> None:
    from rich.table import Table
    from rich.text import Text

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


# -- list -------------------------------------------------------------------------------------

LIST_COLUMNS = ("TIME", "PID", "UID", "GID", "SIG", "COREFILE", "EXE", "SIZE", "ID", "SIGNATURE")


def crash_cells(crash: Crash) -> list[str]:
    return _CellMaker()(crash)


class _CellMaker:
    """Cells of ``list`` rows, with the per-value work (time, signal name) done once per
    distinct value: 10,000 rows repeat few of them."""

    def __init__(self) -> None:
        from coredumpd.cli.details import format_size, format_time
        from coredumpd.signals import signal_name

        self._times: dict[int, str] = {}
        self._signals: dict[int | None, str] = {}
        self._format_time, self._format_size, self._signal_name = format_time, format_size, signal_name

    def __call__(self, crash: Crash) -> list[str]:
        second = crash.time // 1_000_000
        when = self._times.get(second)
        if when is None:
            when = self._times[second] = self._format_time(crash.time)
        sig = self._signals.get(crash.signal)
        if sig is None:
            sig = self._signals[crash.signal] = (self._signal_name(crash.signal)
                                                 if crash.signal else "-")
        return [when, _num(crash.pid), _num(crash.uid), _num(crash.gid), sig, crash.storage,
                clean(crash.label), self._format_size(crash.size), _num(crash.catalog_id),
                crash.signature or "-"]


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def render_crashes(console: Console, crashes: Sequence[Crash], *, legend: bool = True) -> None:
    """coredumpctl's columns TIME PID UID GID SIG COREFILE EXE SIZE, then our catalog ID and
    crash signature (``-`` for systemd-coredump's crashes)."""
    cells = _CellMaker()
    render_table(console, LIST_COLUMNS, [cells(c) for c in crashes], legend=legend, fold="EXE")


def render_crash_list(console: Console, rows) -> None:  # type: ignore[no-untyped-def]
    """Catalog rows, as ``list`` shows them (the demo's listing)."""
    from coredumpd.cli.records import crash_from_row

    render_crashes(console, [crash_from_row(r) for r in rows])


def render_groups(console: Console, groups: Sequence[CrashGroup], *, legend: bool = True) -> None:
    from coredumpd.cli.details import format_time

    rows = [[g.signature or "-", str(g.count), format_time(g.first), format_time(g.last),
             ", ".join(clean(e) for e in g.executables), ", ".join(clean(v) for v in g.versions) or "-"]
            for g in groups]
    render_table(console, ("SIGNATURE", "COUNT", "FIRST", "LAST", "EXE", "VERSIONS"), rows,
                 legend=legend, fold="EXE")


def render_values(console: Console, values: Sequence[bytes]) -> None:
    """``-F FIELD``: one value per line."""
    for value in values:
        console.file.write(clean(value) + "\n")
    console.file.flush()


def render_hints(console: Console, hints: Sequence[str]) -> None:
    for hint in hints:
        print(f"-- {clean(hint)}", file=sys.stderr)


# -- info -------------------------------------------------------------------------------------


def _render_fields(console: Console, fields: Sequence[tuple[str, str]]) -> None:
    """``Label: value`` lines, labels right-aligned; values already :func:`clean`."""
    if console.is_terminal:
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", style="bold")
        grid.add_column(overflow="fold")
        for label, value in fields:
            grid.add_row(Text(f"{label}:"), Text(value))
        console.print(grid)
        return
    width = max((len(label) for label, _ in fields), default=0) + 1
    for label, value in fields:
        console.file.write(f"{label + ':':>{width}} {value}\n")
    console.file.flush()


def render_info(console: Console, info: CrashInfo) -> None:
    from rich.text import Text

    from unwinder.format import format_rich

    _render_fields(console, [(label, clean(value)) for label, value in info.fields])
    if info.backtrace is not None:
        console.print()
        for line in format_rich(info.backtrace).splitlines():
            console.print(safe_text(line), soft_wrap=True)
    elif info.message:
        console.print(Text("Message:", style="bold"))
        for line in info.message.decode("utf-8", "backslashreplace").splitlines():
            console.print(safe_text("                " + line), soft_wrap=True)
    if info.modules:
        console.print()
        rows = [[clean(m.path), m.build_id or "-", m.status, clean(m.package or "-")]
                for m in info.modules]
        render_table(console, ("MODULE", "BUILD-ID", "STATUS", "PACKAGE"), rows, fold="MODULE")


def render_crash_info(console: Console, row, backtrace_text: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """A catalog row, as ``info`` shows it (the demo's view; the backtrace comes from the
    row itself, ``backtrace_text`` is accepted for compatibility)."""
    from coredumpd.cli.details import build_info
    from coredumpd.cli.records import crash_from_row

    render_info(console, build_info(crash_from_row(row)))


def render_stats(console: Console, stats: CrashStats) -> None:
    from coredumpd.cli.details import format_size, format_time

    fields = [("Crashes", str(stats.total))]
    if stats.first is not None and stats.last is not None:
        fields += [("First", format_time(stats.first)), ("Last", format_time(stats.last))]
    fields += [("Cores on disk", f"{stats.stored} ({format_size(stats.disk_bytes)})"),
               ("Signatures", str(stats.signatures))]
    _render_fields(console, fields)
    for title, counts in (("SIGNAL", stats.by_signal), ("COREFILE", stats.by_storage),
                          ("EXE", stats.by_exe), ("UID", stats.by_uid), ("SOURCE", stats.by_source)):
        console.print()
        render_table(console, (title, "COUNT"), [[clean(k), str(n)] for k, n in counts], fold=title)


# -- progress ---------------------------------------------------------------------------------


class _NoProgress:
    def advance(self, n: int) -> None:
        pass


class _RichProgress:
    def __init__(self, progress, task) -> None:  # type: ignore[no-untyped-def]
        self._progress = progress
        self._task = task

    def advance(self, n: int) -> None:
        self._progress.update(self._task, advance=n)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[_NoProgress | _RichProgress]:
    """A progress bar on stderr for work over ``total`` bytes, only on a terminal and only
    for big cores; otherwise a no-op with the same ``advance(n)``."""
    from rich.console import Console

    console = Console(file=sys.stderr, markup=False, highlight=False, emoji=False,
                      no_color="NO_COLOR" in os.environ)
    if not console.is_terminal or total is None or total < PROGRESS_MIN_BYTES:
        yield _NoProgress()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as bar:
        yield _RichProgress(bar, bar.add_task(clean(description), total=total))
