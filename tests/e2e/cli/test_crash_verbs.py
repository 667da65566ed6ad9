"""Every crash verb and option against real records: coredumpd's pipe door and Debian's own
systemd-coredump (see conftest.py for the crashes)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
import zstandard

from coredumpd.storage import decompress_to
from tests.e2e.cli.conftest import BIN, NOBODY, Records
from tests.support.crash import wait_until

pytestmark = pytest.mark.e2e


def listed(rec: Records, *args: str, user: int | None = None) -> list[dict]:
    out = rec.cli("list", "--json=short", *args, user=user)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def pids(rows: list[dict]) -> list[int]:
    return [r["pid"] for r in rows]


def test_list_merges_catalog_and_systemd_coredump_without_duplicates(records: Records) -> None:
    rows = listed(records)
    ours = [*records.segv, records.abort, records.hostile, records.nobody, records.nobody_suid]
    for pid in ours:  # in the catalog and in the journal (our entry): listed once
        match = [r for r in rows if r["pid"] == pid]
        assert len(match) == 1, pid
        assert match[0]["sources"] == ["catalog", "journal"] and match[0]["id"] is not None
    sd = next(r for r in rows if r["pid"] == records.sd)
    assert sd["sources"] == ["journal"] and sd["corefile"] == "present" and sd["sig"] == 11
    assert sd["exe"].endswith("/sdcrash") and sd["size"] > 0
    times = [r["time"] for r in rows]
    assert times == sorted(times)


def test_list_plain_columns_and_legend(records: Records) -> None:
    out = records.cli("list", str(records.segv[0]))
    header, line = out.stdout.decode().splitlines()
    assert header.split() == ["TIME", "PID", "UID", "GID", "SIG", "COREFILE", "EXE", "SIZE", "ID",
                              "SIGNATURE"]
    assert f" {records.segv[0]} " in line and "SIGSEGV" in line and "present" in line
    assert str(records.crasher) in line
    out = records.cli("list", "--no-legend", str(records.segv[0]))
    assert len(out.stdout.splitlines()) == 1 and b"TIME" not in out.stdout


def test_matches_pid_comm_exe_and_fields(records: Records) -> None:
    assert pids(listed(records, str(records.abort))) == [records.abort]
    assert set(pids(listed(records, "sdcrash"))) == {records.sd}
    by_exe = set(pids(listed(records, str(records.crasher))))
    assert {*records.segv, records.abort, records.nobody} == by_exe
    relative = records.cli("list", "--json=short", "./crasher")  # cwd is the public dir
    assert set(pids(json.loads(relative.stdout))) == by_exe
    assert pids(listed(records, "COREDUMP_SIGNAL=6")) == [records.abort]
    # same field: OR; different fields: AND
    assert set(pids(listed(records, str(records.abort), str(records.sd)))) == {records.abort, records.sd}
    out = records.cli("list", "COREDUMP_SIGNAL=6", f"COREDUMP_PID={records.sd}")
    assert out.returncode == 1 and b"no coredumps found" in out.stderr
    unit = listed(records, f"COREDUMPD_SIGNATURE={records.row(records.segv[0]).signature}")
    assert set(records.segv) <= set(pids(unit))


def test_selection_options(records: Records) -> None:
    # the catalog only: other programs may journal crashes while this runs
    cat = ("--source", "catalog")
    everything = pids(listed(records, *cat))
    assert len(everything) == 6
    assert pids(listed(records, *cat, "-1")) == [everything[-1]]
    assert pids(listed(records, *cat, "-n", "2")) == everything[-2:]
    assert pids(listed(records, *cat, "-r")) == everything[::-1]
    assert pids(listed(records, *cat, "--nth", "2")) == [everything[-2]]
    out = records.cli("list", "-U", f"@{records.started_us / 1e6}")
    assert out.returncode == 1 and out.stderr.strip() == b"coredumpd: no coredumps found"
    quiet = records.cli("list", "-q", "-U", f"@{records.started_us / 1e6}")
    assert quiet.returncode == 1 and quiet.stderr == b""
    assert records.abort not in pids(listed(records, "--present"))
    assert records.abort in pids(listed(records))
    assert records.sd not in pids(listed(records, "--source", "catalog"))
    assert records.sd in pids(listed(records, "--source", "journal"))


def test_field_values(records: Records) -> None:
    out = records.cli("list", "-F", "COREDUMP_COMM", "crasher", "sdcrash")
    assert out.returncode == 0
    assert sorted(out.stdout.decode().split()) == ["crasher", "sdcrash"]
    out = records.cli("list", "-F", "COREDUMP_UID", str(records.nobody))
    assert out.stdout == b"65534\n"


def test_group_by_signature(records: Records) -> None:
    out = records.cli("list", "--group", "--json=pretty", *map(str, records.segv), str(records.abort))
    groups = json.loads(out.stdout)
    same = next(g for g in groups if g["signature"] == records.row(records.segv[0]).signature)
    assert same["count"] == 2 and same["exe"] == [str(records.crasher)]
    assert same["first"] <= same["last"]
    text = records.cli("list", "--group").stdout.decode()
    assert text.splitlines()[0].split()[:4] == ["SIGNATURE", "COUNT", "FIRST", "LAST"]


def test_stats(records: Records) -> None:
    out = records.cli("stats", "--json=short")
    stats = json.loads(out.stdout)
    assert stats["total"] >= 7
    assert dict(map(tuple, stats["by_signal"]))["SIGABRT"] >= 1
    assert dict(map(tuple, stats["by_storage"]))["missing"] >= 1
    assert records.cli("stats").stdout.startswith(b"      Crashes:")


def test_info_shows_signal_threads_modules_and_storage(records: Records) -> None:
    out = records.cli("info", str(records.segv[0]))
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    row = records.row(records.segv[0])
    assert "Signal: 11 (SEGV) si_code: SEGV_MAPERR fault address: 0x" in text
    assert f"Storage: {row.filename} (present)" in text and "Size on Disk:" in text
    assert "crash_now" in text and "crasher.c:" in text  # file:line
    assert "[context]" in text or "[cfi]" in text          # how each frame was found
    assert "MODULE" in text and "BUILD-ID" in text and "libc.so.6" in text
    data = json.loads(records.cli("info", "--json=short", str(records.segv[0])).stdout)
    assert data["PID"] == records.segv[0] and data["SignalCode"] == "SEGV_MAPERR"
    assert data["Storage"] == "present" and data["DiskSize"] > 0 and data["CatalogID"] == row.id
    assert data["Backtrace"]["threads"][0]["crashed"]


def test_info_of_a_systemd_coredump_record(records: Records) -> None:
    text = records.cli("info", "sdcrash").stdout.decode()
    assert f"PID: {records.sd} (sdcrash)" in text
    assert "(present)" in text and "recorded by systemd-coredump" in text
    assert "Stack trace of thread" in text
    data = json.loads(records.cli("info", "--json=short", "sdcrash").stdout)
    assert data["Writer"] == "systemd-coredump" and data["Filename"].startswith("/var/lib/systemd/coredump/")


def test_info_without_match_is_the_newest(records: Records) -> None:
    data = json.loads(records.cli("info", "--json=short", "--source", "catalog").stdout)
    assert data["PID"] == pids(listed(records, "--source", "catalog"))[-1]


def test_dump_is_byte_identical_and_sparse(records: Records, tmp_path: Path) -> None:
    row = records.row(records.segv[1])
    expected = tmp_path / "expected"
    decompress_to(Path(row.filename), expected)
    out = tmp_path / "dumped"
    done = records.cli("dump", str(records.segv[1]), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == expected.read_bytes()
    assert out.stat().st_blocks * 512 < out.stat().st_size  # holes stay holes
    piped = records.cli("dump", str(records.segv[1]))
    assert piped.stdout == expected.read_bytes()
    more = records.cli("dump", str(records.crasher), "-o", str(tmp_path / "x"))
    assert b"more than one entry matches" in more.stderr


def test_dump_of_a_systemd_coredump_record(records: Records, tmp_path: Path) -> None:
    out = tmp_path / "sd.core"
    assert records.cli("dump", "sdcrash", "-o", str(out)).returncode == 0
    stored = Path(os.fsdecode(records.sd_entry.get("COREDUMP_FILENAME")))
    assert out.read_bytes() == zstandard.ZstdDecompressor().stream_reader(stored.open("rb")).read()


def test_dump_refusals_say_why(records: Records, tmp_path: Path) -> None:
    gone = records.cli("dump", str(records.abort), "-o", str(tmp_path / "x"))
    assert gone.returncode == 1 and b"is gone" in gone.stderr
    assert len(gone.stderr.splitlines()) == 1
    controller, terminal = pty.openpty()
    try:
        tty = subprocess.run([str(BIN / "coredumpd"), "dump", "--state-dir", str(records.state),
                              str(records.segv[0])], stdout=terminal, stderr=subprocess.PIPE,
                             timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert tty.returncode == 1 and b"refusing to dump a core to a terminal" in tty.stderr


def write_debugger(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_debug_runs_gdb_on_a_sparse_temporary_core(records: Records, tmp_path: Path) -> None:
    log = tmp_path / "log"
    wrapper = write_debugger(tmp_path / "dbg", f'for a; do core="$a"; done\n'
                             f'stat -c "%b %B %s %n" "$core" > {log}\nexec gdb "$@"\n')
    out = records.cli("debug", str(records.segv[0]), "--debugger", str(wrapper),
                      "-A", "-batch -ex bt")
    assert out.returncode == 0, out.stderr
    assert b"crash_now" in out.stdout
    blocks, block_size, size, name = log.read_text().split()
    assert int(blocks) * int(block_size) < int(size)  # sparse
    assert name.startswith("/var/tmp/coredump-") and not Path(name).exists()
    gdb = records.cli("gdb", str(records.segv[0]), "-A", "-batch -ex bt")
    assert gdb.returncode == 0 and b"crash_now" in gdb.stdout


def test_debug_forwards_sigterm_and_ignores_sigint(records: Records, tmp_path: Path) -> None:
    log = tmp_path / "log"
    wrapper = write_debugger(tmp_path / "dbg", f"trap 'echo INT >> {log}' INT\n"
                             f"trap 'echo TERM >> {log}; exit 7' TERM\n"
                             f"echo ready >> {log}\n"
                             "while :; do sleep 0.05; done\n")
    proc = subprocess.Popen([str(BIN / "coredumpd"), "debug", "--state-dir", str(records.state),
                             str(records.segv[0]), "--debugger", str(wrapper)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: log.exists() and "ready" in log.read_text(), 60, "the debugger")
        proc.send_signal(signal.SIGINT)  # to the parent only: ignored, not forwarded
        time.sleep(0.3)
        assert proc.poll() is None and "INT" not in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert log.read_text().split() == ["ready", "TERM"]


def test_debug_refuses_a_crash_without_core(records: Records) -> None:
    out = records.cli("debug", str(records.abort), "--debugger-arguments=-batch")
    assert out.returncode == 1 and b"is gone" in out.stderr


def test_backtrace_of_a_recorded_crash_and_of_a_core_file(records: Records, tmp_path: Path) -> None:
    out = records.cli("backtrace", str(records.segv[0]))
    assert out.returncode == 0 and b"crash_now" in out.stdout and b"(crashed)" in out.stdout
    systemd = records.cli("backtrace", "--format", "systemd", str(records.segv[0]))
    assert b"Stack trace of thread" in systemd.stdout
    # no stored backtrace: unwound from its core now (by PID: "sdcrash" is also a file in cwd)
    sd = records.cli("backtrace", str(records.sd))
    assert sd.returncode == 0 and b"crash_now" in sd.stdout, sd.stderr
    core = tmp_path / "core"
    decompress_to(Path(records.row(records.segv[0]).filename), core)
    cache_home = tmp_path / "cache-home"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    uncached = subprocess.run([str(BIN / "coredumpd"), "backtrace", str(core), "--json",
                               "--no-cache"], capture_output=True, timeout=120, env=env)
    assert uncached.returncode == 0 and not cache_home.exists()
    by_file = subprocess.run([str(BIN / "coredumpd"), "backtrace", str(core), "--json"],
                             capture_output=True, timeout=120, env=env)
    assert by_file.returncode == 0
    assert "crash_now" in json.dumps(json.loads(by_file.stdout))
    assert json.loads(by_file.stdout) == json.loads(uncached.stdout)
    # symbols are kept for the next run, by build-id, in the user's cache directory
    assert any((cache_home / "coredumpd" / "symbols").iterdir())
    again = subprocess.run([str(BIN / "coredumpd"), "backtrace", str(core), "--json"],
                           capture_output=True, timeout=120, env=env)
    assert json.loads(again.stdout) == json.loads(uncached.stdout)


def test_hostile_names_are_inert_in_plain_text_json_and_on_a_terminal(records: Records) -> None:
    plain = records.cli("list", str(records.hostile)).stdout.decode()
    assert "[bold]x" in plain and "\x1b" not in plain
    info = records.cli("info", str(records.hostile)).stdout.decode()
    assert "\x1b" not in info and "\x07" not in info, info
    assert "Command Line:" in info and "red" in info
    data = json.loads(records.cli("info", "--json=short", str(records.hostile)).stdout)
    assert "$'\\033[31mred\\a\\033]0;pwned\\a'" in data["CommandLine"]  # quoted as systemd does
    for verb in ("list", "info"):
        printed = on_terminal(records, verb, str(records.hostile))
        assert "[bold]x" in printed
        assert "\x1b[31m" not in printed and "\x07" not in printed and "\x1b]0;" not in printed


def on_terminal(records: Records, *args: str, env: dict[str, str] | None = None) -> str:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([str(BIN / "coredumpd"), *args[:1], "--state-dir", str(records.state),
                             *args[1:]], stdout=terminal, stderr=terminal,
                            env={**os.environ, "COLUMNS": "200", "TERM": "xterm-256color",
                                 **(env or {})})
    os.close(terminal)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)
        proc.wait(timeout=60)
    return b"".join(chunks).decode("utf-8", "replace")


def test_terminal_gets_a_rich_table_and_no_color_is_honoured(records: Records) -> None:
    colored = on_terminal(records, "list", str(records.segv[0]))
    assert "─" in colored and "\x1b[" in colored  # a rich table, styled
    plain = on_terminal(records, "list", str(records.segv[0]), env={"NO_COLOR": "1"})
    assert "─" in plain
    assert not any(code in plain for code in ("\x1b[3", "\x1b[9", "38;5;", "38;2;"))


def test_a_malformed_journal_entry_is_skipped_with_a_warning(records: Records) -> None:
    from systemd import journal

    journal.send("Process 1 (x) of user 0 dumped core.", MESSAGE_ID="fc2e22bc6ee647b6b90729ab34a250b1",
                 SYSLOG_IDENTIFIER="systemd-coredump", COREDUMP_PID="4242424", COREDUMP_COMM="bad")

    def warned() -> subprocess.CompletedProcess[bytes]:
        return records.cli("list", "--json=short")

    wait_until(lambda: b"malformed" in warned().stderr, 30, "the malformed entry")
    out = warned()
    assert out.returncode == 0 and b"missing COREDUMP_UID, COREDUMP_GID, COREDUMP_SIGNAL" in out.stderr
    assert records.sd in pids(json.loads(out.stdout))
    assert b"malformed" not in records.cli("list", "-q", "--json=short").stderr


def test_non_root_sees_and_dumps_only_their_own_dumpable_crashes(records: Records) -> None:
    rows = listed(records, user=NOBODY)
    assert pids(rows) == [records.nobody]
    home = records.public / "nobody"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    dumped = home / "nobody.core"
    out = records.cli("dump", str(records.nobody), "-o", str(dumped), user=NOBODY)
    assert out.returncode == 0, out.stderr
    expected = records.public / "expected.core"
    decompress_to(Path(records.row(records.nobody).filename), expected)
    assert dumped.read_bytes() == expected.read_bytes()
    suid = records.cli("dump", str(records.nobody_suid), "-o", str(dumped), user=NOBODY)
    assert suid.returncode == 1 and b"dumpable=2" in suid.stderr and b"root only" in suid.stderr
    other = records.cli("dump", str(records.segv[0]), user=NOBODY)
    assert other.returncode == 1 and other.stderr.strip() == b"coredumpd: no coredumps found"
    info = records.cli("info", str(records.segv[0]), user=NOBODY)
    assert info.returncode == 1 and b"crash_now" not in info.stdout
    # root sees the privileged one
    assert pids(listed(records, str(records.nobody_suid))) == [records.nobody_suid]


def test_errors_are_one_clean_line(records: Records) -> None:
    for args in (("list", "--since", "not a time"), ("list", "lower=x"), ("dump", "--nth", "0"),
                 ("info", "--nth", "999")):
        out = records.cli(*args)
        assert out.returncode == 1, args
        lines = [line for line in out.stderr.splitlines() if b": warning: " not in line]
        assert len(lines) == 1 and b"Traceback" not in out.stderr, out.stderr
