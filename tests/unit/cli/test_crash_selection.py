"""The pure parts of the crash verbs: matches, timestamps, picking, trust in journal
writers, grouping, and inert rendering."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from coredumpd.cli.list import group_crashes, list_json
from coredumpd.cli.options import UsageError, parse_matches, pick_many, pick_one
from coredumpd.cli.records import Crash, context_from_fields
from coredumpd.cli.render import make_console, render_crashes
from coredumpd.cli.timespec import TimeSpecError, parse_span, parse_timestamp
from coredumpd.journal_reader import check_entry, entry_writer

NOW = 1_800_000_000_000_000


def crash(pid: int, time: int, signature: str | None = "s1", exe: bytes = b"/bin/x") -> Crash:
    return Crash(time=time, pid=pid, uid=0, gid=0, signal=11, comm=b"x", exe=exe, boot_id="b",
                 storage="present", filename=None, size=1, signature=signature,
                 writer="coredumpd", sources=("catalog",))


def args(**kw) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    return SimpleNamespace(**{"nth": None, "newest": False, "lines": None, "reverse": False, **kw})


def test_matches_follow_coredumpctl() -> None:
    assert parse_matches(["123", "crash", "./bin/x", "COREDUMP_UNIT=a.service", "456"],
                         cwd="/home") == {
        "COREDUMP_PID": (b"123", b"456"), "COREDUMP_COMM": (b"crash",),
        "COREDUMP_EXE": (b"/home/bin/x",), "COREDUMP_UNIT": (b"a.service",)}
    with pytest.raises(UsageError):
        parse_matches(["lower=x"])


def test_timestamps() -> None:
    assert parse_timestamp("now", NOW) == NOW
    assert parse_timestamp("-1h", NOW) == NOW - 3_600_000_000
    assert parse_timestamp("2 days ago", NOW) == NOW - 2 * 86_400_000_000
    assert parse_timestamp("@1700000000") == 1_700_000_000_000_000
    assert parse_timestamp("2023-11-14 22:13:20 UTC") == 1_700_000_000_000_000
    assert parse_span("1h 30min") == 5_400_000_000
    for bad in ("soon", "-1 fortnight", ""):
        with pytest.raises(TimeSpecError):
            parse_timestamp(bad, NOW)


def test_picking() -> None:
    rows = [crash(p, p) for p in (1, 2, 3, 4)]
    assert [c.pid for c in pick_many(rows, args())] == [1, 2, 3, 4]
    assert [c.pid for c in pick_many(rows, args(newest=True))] == [4]
    assert [c.pid for c in pick_many(rows, args(lines=2))] == [3, 4]
    assert [c.pid for c in pick_many(rows, args(reverse=True, lines=2))] == [4, 3]
    assert [c.pid for c in pick_many(rows, args(nth=2))] == [3]
    assert pick_many(rows, args(nth=9)) == []
    assert pick_one(rows, args()) == (rows[3], True)
    assert pick_one(rows, args(nth=4)) == (rows[0], False)
    assert pick_one([], args()) == (None, False)


def test_only_trusted_writers_are_read() -> None:
    sd = {"SYSLOG_IDENTIFIER": b"systemd-coredump", "COREDUMP_UID": b"1000"}
    assert entry_writer({**sd, "_UID": b"1000", "_EXE": b"/usr/lib/systemd/systemd-coredump"}) == "systemd-coredump"
    assert entry_writer({**sd, "_UID": b"995"}, coredump_uid=995) == "systemd-coredump"
    assert entry_writer({**sd, "_UID": b"1000"}) == "systemd-coredump"  # about itself
    assert entry_writer({**sd, "_UID": b"1001", "_EXE": b"/usr/bin/python3"}) is None  # spoof
    assert entry_writer({"SYSLOG_IDENTIFIER": b"coredumpd", "_UID": b"0"}) == "coredumpd"
    assert entry_writer({"SYSLOG_IDENTIFIER": b"coredumpd", "_UID": b"1000"}) is None
    assert entry_writer({"SYSLOG_IDENTIFIER": b"abrt", "_UID": b"0"}) is None


def test_malformed_entries_are_named() -> None:
    good = {"COREDUMP_PID": b"1", "COREDUMP_UID": b"0", "COREDUMP_GID": b"0",
            "COREDUMP_SIGNAL": b"11", "COREDUMP_COMM": b"x"}
    assert check_entry(good) is None
    assert check_entry({**good, "COREDUMP_UID": b""}) == "missing COREDUMP_UID"
    assert "not a number" in (check_entry({**good, "COREDUMP_PID": b"x"}) or "")


def test_context_from_journal_fields() -> None:
    ctx = context_from_fields({"COREDUMP_PID": b"7", "COREDUMP_DUMPABLE": b"2",
                               "COREDUMP_EXE": b"/bin/x", "_BOOT_ID": b"AB-CD", "COREDUMP_CODE": b"bad"})
    assert (ctx.pid, ctx.dumpable, ctx.exe, ctx.boot_id, ctx.si_code) == (7, 2, b"/bin/x", "abcd", None)


def test_groups_by_signature_then_executable() -> None:
    rows = [crash(1, 10), crash(2, 20), crash(3, 30, None, b"/bin/y"), crash(4, 40, "s2")]
    groups = group_crashes(rows)
    assert [(g.signature, g.count, g.first, g.last) for g in groups] == [
        ("s1", 2, 10, 20), (None, 1, 30, 30), ("s2", 1, 40, 40)]
    assert list_json(rows[:1])[0] == {"time": 10, "pid": 1, "uid": 0, "gid": 0, "sig": 11,
                                      "corefile": "present", "exe": "/bin/x", "size": 1,
                                      "id": None, "signature": "s1", "sources": ["catalog"]}


def test_plain_listing_is_inert() -> None:
    out = io.StringIO()
    render_crashes(make_console(out), [crash(1, 10, exe=b"/tmp/[bold]x\x1b[31m\xff")])
    text = out.getvalue()
    assert "\x1b" not in text and "/tmp/[bold]x\\x1b[31m\\xff" in text
    assert text.splitlines()[0].split()[:8] == ["TIME", "PID", "UID", "GID", "SIG", "COREFILE",
                                                "EXE", "SIZE"]


def test_no_verb_means_list(tmp_path: Path) -> None:
    out = subprocess.run([Path(sys.executable).parent / "coredumpd", "-q", "--source", "catalog",
                          "--state-dir", str(tmp_path)], capture_output=True,
                         env={**os.environ, "COREDUMPD_CONFIG": str(tmp_path / "none")})
    assert out.returncode == 1 and out.stderr == b""  # nothing found, quietly, like coredumpctl
