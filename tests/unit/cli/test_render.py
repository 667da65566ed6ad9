"""Untrusted strings cannot inject markup or terminal escapes into what the CLI prints."""

from __future__ import annotations

import io

from coredumpd.cli.render import make_console, render_core_summary, safe_text
from coredumpd.core_summary import CoreSummary, ModuleSummary, ThreadSummary


def test_safe_text_escapes_control_bytes_and_bad_utf8() -> None:
    text = safe_text(b"[bold]x\x1b[31m\xff\n").plain
    assert "\x1b" not in text and "\n" not in text
    assert text == "[bold]x\\x1b[31m\\xff\\n"


def test_hostile_comm_and_paths_print_verbatim_and_inert() -> None:
    summary = CoreSummary(
        pid=1, comm=b"[bold]x\x1b]0;pwned\x07", psargs=b"[red]argv\x1b[2J", uid=0, gid=0,
        signal="SIGSEGV", si_code="SEGV_MAPERR", fault_address=0, arch="x86_64",
        threads=(ThreadSummary(1, True, 0x1000, 0x2000, "[i]m\x1b+0x0"),),
        modules=(ModuleSummary(b"/tmp/[link=http://x]\x1b[0m", 0, 1, 1),),
        segments=1, dumped_bytes=0, core_bytes=0)
    out = io.StringIO()
    render_core_summary(make_console(out), summary)
    printed = out.getvalue()
    assert "\x1b" not in printed and "\x07" not in printed
    assert "[bold]x" in printed and "[red]argv" in printed and "[link=http://x]" in printed
