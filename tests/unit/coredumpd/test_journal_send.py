"""send_entry without a journald: False and one log line, never an exception."""

from __future__ import annotations

import logging
import socket

import pytest
from systemd import journal as sd_journal

from coredumpd import journal
from coredumpd.context import CrashContext
from coredumpd.journal import build_entry, journald_unreachable_reason, send_entry


def entry() -> list[tuple[str, bytes]]:
    return build_entry(CrashContext(pid=77, uid=0, gid=0, signal=11, comm=b"x"), None,
                       core_stored=False)


@pytest.fixture
def sendv_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, ...]]:
    calls: list[tuple[bytes, ...]] = []
    monkeypatch.setattr(sd_journal, "sendv", lambda *items: calls.append(items))
    return calls


def test_missing_socket(monkeypatch, tmp_path, caplog, sendv_calls) -> None:
    monkeypatch.setattr(journal, "JOURNAL_SOCKET", tmp_path / "socket")
    with caplog.at_level(logging.WARNING, logger="coredumpd.journal"):
        assert send_entry(entry()) is False
    assert sendv_calls == []
    assert len(caplog.records) == 1
    assert "pid 77" in caplog.text and "No such file or directory" in caplog.text


def test_stale_socket(monkeypatch, tmp_path, caplog, sendv_calls) -> None:
    path = tmp_path / "socket"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()
    monkeypatch.setattr(journal, "JOURNAL_SOCKET", path)
    assert journald_unreachable_reason() is not None
    with caplog.at_level(logging.WARNING, logger="coredumpd.journal"):
        assert send_entry(entry()) is False
    assert sendv_calls == [] and "Connection refused" in caplog.text


def test_sendv_error_is_not_raised(monkeypatch, tmp_path, caplog) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "socket"))
    monkeypatch.setattr(journal, "JOURNAL_SOCKET", tmp_path / "socket")

    def refuse(*items: bytes) -> None:
        raise OSError(105, "No buffer space available")

    monkeypatch.setattr(sd_journal, "sendv", refuse)
    try:
        with caplog.at_level(logging.WARNING, logger="coredumpd.journal"):
            assert send_entry(entry()) is False
    finally:
        listener.close()
    assert "No buffer space available" in caplog.text


def test_items_are_field_equals_raw_bytes(monkeypatch, tmp_path, sendv_calls) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "socket"))
    monkeypatch.setattr(journal, "JOURNAL_SOCKET", tmp_path / "socket")
    pairs = [("MESSAGE_ID", b"x"), ("COREDUMP_PROC_AUXV", b"\x00\n\xff"), ("MESSAGE", b"a\nb")]
    try:
        assert send_entry(pairs) is True
    finally:
        listener.close()
    assert sendv_calls == [(b"MESSAGE_ID=x", b"COREDUMP_PROC_AUXV=\x00\n\xff", b"MESSAGE=a\nb")]
