"""An entry sent to the real journald comes back byte for byte (``journalctl -o export``)."""

from __future__ import annotations

import random
import struct
import subprocess
import time

import pytest

from coredumpd.journal import MESSAGE_ID_COREDUMP, build_entry, send_entry
from tests.unit.coredumpd.test_journal_entry import eight_threads, hostile_context

pytestmark = pytest.mark.e2e


def parse_export(data: bytes) -> list[dict[str, list[bytes]]]:
    """journalctl's export format: ``KEY=value\\n``, or ``KEY\\n`` + le64 size + bytes + ``\\n``
    for binary values; a blank line ends an entry."""
    entries: list[dict[str, list[bytes]]] = []
    current: dict[str, list[bytes]] = {}
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        line = data[pos:end]
        if not line:
            entries.append(current)
            current = {}
            pos = end + 1
            continue
        if b"=" in line:
            key, value = line.split(b"=", 1)
            pos = end + 1
        else:
            key = line
            (size,) = struct.unpack_from("<Q", data, end + 1)
            value = data[end + 9:end + 9 + size]
            assert data[end + 9 + size:end + 10 + size] == b"\n"
            pos = end + 10 + size
        current.setdefault(key.decode(), []).append(value)
    if current:
        entries.append(current)
    return entries


def read_back(journalctl: str, pid: int, timeout: float = 10.0) -> list[dict[str, list[bytes]]]:
    end = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            [journalctl, "--no-pager", "-o", "export", f"MESSAGE_ID={MESSAGE_ID_COREDUMP}",
             f"COREDUMP_PID={pid}"], capture_output=True, timeout=30, check=True).stdout
        entries = parse_export(out)
        if entries or time.monotonic() > end:
            return entries
        time.sleep(0.05)


def test_entry_round_trips_byte_identical(journald) -> None:
    pid = random.randrange(10_000_000, 99_999_999)  # above pid_max: no real crash has it
    context = hostile_context()
    context.pid, context.door = pid, "test"
    # big enough that libsystemd passes the entry through a memfd instead of one datagram
    context.proc_maps = b"".join(b"%012x-%012x r-xp 0 fe:00 %d /lib/\xff\x1b[1m%d\n" % (n, n, n, n)
                                 for n in range(20_000))
    assert len(context.proc_maps) > 1 << 20
    entry = build_entry(context, eight_threads(), core_stored=True, signature="sig:roundtrip")

    assert send_entry(entry) is True
    found = read_back(journald.journalctl(), pid)
    assert len(found) == 1, f"{len(found)} entries for COREDUMP_PID={pid}"
    got = found[0]
    for name, value in entry:
        assert got.get(name) == [value], f"{name} differs"
    ours = {name for name, _ in entry}
    extra = {name for name in got if not name.startswith("_") and name not in ours}
    assert extra == set(), f"journald added untrusted fields {extra}"
    assert got["_TRANSPORT"] == [b"journal"]
