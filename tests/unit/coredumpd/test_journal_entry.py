"""The journal entry and MESSAGE, built without I/O, against systemd-coredump 252's format."""

from __future__ import annotations

import struct

import pytest

from coredumpd.context import ContextError, CrashContext
from coredumpd.journal_entry import (
    MESSAGE_ID_COREDUMP,
    build_entry,
    build_message,
    cellescape,
    entry_size,
)
from unwinder.backtrace import Backtrace, Frame, ModuleInfo, ThreadBacktrace
from unwinder.format import format_systemd
from unwinder.frames import FrameMethod

#: comm → COREDUMP_COMM, as Debian 12's systemd-coredump 252.39 journaled them (measured).
HOSTILE_COMMS = {
    b"a) (b": "a) (b",
    b"[bold]x": "[bold]x",
    b"e\x1b[31m\x07\\\"'\xff": "e\\033[31m\\a\\\\\\\"\\'\\377",
}

ENVIRON = b"PATH=/usr/bin\nODD=\x00\xff\xfe\x1b]0;pwn\x07\nEMPTY=\nLAST=1"
AUXV = struct.pack("<8Q", 33, 0x7FFC0A0A0000, 16, 0x0A0A0A0A, 6, 4096, 0, 0)  # '\n' and NUL bytes


def eight_threads() -> str:
    libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
    threads = []
    for n in range(8):
        frames = (
            Frame(0x7F0000001000 + n, FrameMethod.CONTEXT, libc, 0xD3DF2, "ab" * 20, "__libc_pause", 2),
            Frame(0x55000000117A, FrameMethod.CFI, "/opt/a) (b", 0x117A, None, "worker", 0x1A,
                  inline=True),
            Frame(0x55000000117A, FrameMethod.CFI, "/opt/a) (b", 0x117A, None, "idle", 0x1A),
            Frame(0x1234, FrameMethod.SCAN, None, None, None, None, None),
        )
        threads.append(ThreadBacktrace(4242 + n, n == 0, frames, "end-of-stack", False))
    modules = (ModuleInfo("/opt/a) (b", 0x550000000000, 0x550000004000, None, "ok"),
               ModuleInfo(libc, 0x7F0000000000, 0x7F00001D4000, "ab" * 20, "ok"))
    return format_systemd(Backtrace(tuple(threads), modules, "x86_64"))


def hostile_context(comm: bytes = b"e\x1b[31m\x07\\\"'\xff") -> CrashContext:
    return CrashContext(
        pid=4242, tid=4243, uid=1000, gid=1000, signal=11, timestamp=1795443150000000,
        rlimit=9223372036854775808, dumpable=1, by_pidfd=1, hostname=b"vm", comm=comm,
        signal_name="SIGSEGV", si_code=1, exe=b"/opt/a) (b", thread_name=b"[bold]\x1bx",
        cmdline=b"/opt/a) (b $'\\033'", cgroup=b"/system.slice/x.service",
        unit=b"x.service", slice=b"system.slice", cwd=b"/tmp/\xff", root=b"/",
        environ=ENVIRON, open_fds=b"0:/dev/null\npos:\t0\nflags:\t0100000\n\n1:/dev/pts/0\n",
        proc_status=b"Name:\ta) (b\nState:\tR\n", proc_maps=b"55d-55e r-xp 0 fe:00 1 /opt/a) (b\n",
        proc_limits=b"Limit Soft Hard\n", proc_cgroup=b"0::/system.slice/x.service\n",
        proc_mountinfo=b"1 0 fe:00 / / rw - ext4 /dev/vda1 rw\n", proc_auxv=AUXV,
        package_json=b'{"elfType":"coredump","elfArchitecture":"AMD x86-64"}',
        boot_id="10bc19d933f24b50b7d30a8a1ebe3cbf", machine_id="3d1219c7c4c5404aaa1f6d2a48adfda4",
        filename="/var/lib/coredumpd/coredump/core.x.zst", truncated=1, door="pipe",
        notes=["failed to read environ: EACCES", "over KeepFree"],
    )


@pytest.mark.parametrize(("raw", "shown"), HOSTILE_COMMS.items())
def test_cellescape_matches_systemd(raw: bytes, shown: str) -> None:
    assert cellescape(raw) == shown


def test_cellescape_c_string_and_ellipsis() -> None:
    assert cellescape(b"ab\0cd") == "ab"
    assert cellescape(b"a" * 200) == "a" * 124 + "..."
    assert cellescape(b"\x01" * 100) == "\\001" * 31 + "..."
    assert len(cellescape(bytes(range(256)) * 2)) <= 127
    assert cellescape(b"") == ""


def test_entry_fields_byte_identical() -> None:
    context = hostile_context()
    text = eight_threads()
    entry = build_entry(context, text, core_stored=True, signature="sig:abc")
    names = [name for name, _ in entry]
    assert len(names) == len(set(names)), "a field was sent twice"
    assert entry[:3] == [("MESSAGE_ID", MESSAGE_ID_COREDUMP.encode()), ("PRIORITY", b"2"),
                         ("SYSLOG_IDENTIFIER", b"coredumpd")]
    got = dict(entry)
    for name, value in context.journal_fields().items():
        if name in ("COREDUMP_COMM", "COREDUMP_THREAD_NAME"):
            continue
        if name == "COREDUMP_TRUNCATED":
            value = b"1"
        assert got[name] == value, name
    assert got["COREDUMP_COMM"] == b"e\\033[31m\\a\\\\\\\"\\'\\377"
    assert got["COREDUMP_THREAD_NAME"] == b"[bold]\\033x"
    assert got["COREDUMP_ENVIRON"] == ENVIRON and got["COREDUMP_PROC_AUXV"] == AUXV
    assert got["COREDUMP_FILENAME"] == b"/var/lib/coredumpd/coredump/core.x.zst"
    assert got["COREDUMP_TRUNCATED"] == b"1"
    assert got["COREDUMPD_SIGNATURE"] == b"sig:abc" and got["COREDUMPD_DOOR"] == b"pipe"
    assert got["COREDUMPD_NOTES"] == b"failed to read environ: EACCES\nover KeepFree"
    assert not any(name.startswith("_") for name in names)
    assert "COREDUMP_BOOT_ID" not in got  # journald adds the trusted _BOOT_ID itself


def test_message_layout() -> None:
    text = eight_threads()
    message = dict(build_entry(hostile_context(), text, core_stored=True))["MESSAGE"].decode()
    header = "Process 4242 (e\\033[31m\\a\\\\\\\"\\'\\377) of user 1000 dumped core."
    assert message == header + "\n\n" + text
    lines = message.split("\n")
    assert lines[2] == "Module /opt/a) (b without build-id."
    assert [line for line in lines if line.startswith("Stack trace of thread ")] == [
        f"Stack trace of thread {4242 + n}:" for n in range(8)]
    assert lines[4] == "#0  0x00007f0000001000 __libc_pause (libc.so.6 + 0xd3df2)"
    assert lines[5] == "#1  0x000055000000117a idle (a) (b + 0x117a)"  # inline frame not shown
    assert lines[6] == "#2  0x0000000000001234 n/a (n/a + 0x0)"
    assert message.endswith("\n#2  0x0000000000001234 n/a (n/a + 0x0)\n"
                            "ELF object binary architecture: AMD x86-64\n")
    assert message.count("\n\nStack trace of thread") == 7
    assert all(0x20 <= ord(c) < 0x7F for c in lines[0])


@pytest.mark.parametrize(("raw", "shown"), HOSTILE_COMMS.items())
def test_message_shows_comm_as_systemd(raw: bytes, shown: str) -> None:
    message = build_message(hostile_context(raw), None, core_stored=True)
    assert message == f"Process 4242 ({shown}) of user 1000 dumped core."


def test_not_stored() -> None:
    context = hostile_context(b"crash")
    context.truncated = None
    entry = dict(build_entry(context, None, core_stored=False))
    assert entry["MESSAGE"] == (b"Process 4242 (crash) of user 1000 terminated abnormally "
                                b"without generating a coredump.")
    assert "COREDUMP_FILENAME" not in entry and "COREDUMP_TRUNCATED" not in entry
    # received whole, then discarded (Storage=none, over ExternalSizeMax): systemd says dumped
    entry = dict(build_entry(context, "ELF object binary architecture: AMD x86-64\n",
                             core_stored=False, core_received=True))
    assert entry["MESSAGE"] == (b"Process 4242 (crash) of user 1000 dumped core.\n\n"
                                b"ELF object binary architecture: AMD x86-64\n")
    assert "COREDUMP_FILENAME" not in entry


def test_truncated_zero_is_not_sent() -> None:
    context = hostile_context(b"crash")
    context.truncated = 0
    assert "COREDUMP_TRUNCATED" not in dict(build_entry(context, None, core_stored=True))


def test_signal_name_filled_in() -> None:
    context = CrashContext(pid=1, uid=0, gid=0, signal=6, comm=b"x")
    entry = dict(build_entry(context, None, core_stored=False))
    assert entry["COREDUMP_SIGNAL_NAME"] == b"SIGABRT"
    assert set(entry) == {"MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER", "MESSAGE",
                          "COREDUMP_PID", "COREDUMP_UID", "COREDUMP_GID", "COREDUMP_SIGNAL",
                          "COREDUMP_SIGNAL_NAME", "COREDUMP_COMM"}


@pytest.mark.parametrize("missing", ["pid", "uid", "gid", "signal", "comm"])
def test_entry_coredumpctl_would_choke_on_is_refused(missing: str) -> None:
    context = hostile_context()
    setattr(context, missing, None)
    with pytest.raises(ContextError, match=missing):
        build_entry(context, None, core_stored=True)


def test_journal_size_max_drops_bulk_biggest_first() -> None:
    context = hostile_context()
    context.proc_maps = b"m" * 50_000
    context.environ = b"e" * 30_000
    context.open_fds = b"f" * 20_000
    full = build_entry(context, eight_threads(), core_stored=True)
    assert build_entry(context, eight_threads(), core_stored=True,
                       journal_size_max=entry_size(full)) == full
    limit = entry_size(full) - 40_000
    entry = build_entry(context, eight_threads(), core_stored=True, journal_size_max=limit)
    got = dict(entry)
    assert entry_size(entry) <= limit
    assert got["COREDUMPD_DROPPED"] == b"COREDUMP_PROC_MAPS"
    assert got["COREDUMP_ENVIRON"] == context.environ
    assert got["MESSAGE"] == dict(full)["MESSAGE"]
    tiny = dict(build_entry(context, eight_threads(), core_stored=True, journal_size_max=1))
    assert tiny["COREDUMPD_DROPPED"].split()[:3] == [b"COREDUMP_PROC_MAPS", b"COREDUMP_ENVIRON",
                                                     b"COREDUMP_OPEN_FDS"]
    for kept in ("MESSAGE", "COREDUMP_PID", "COREDUMP_COMM", "COREDUMP_EXE", "COREDUMP_FILENAME"):
        assert kept in tiny
