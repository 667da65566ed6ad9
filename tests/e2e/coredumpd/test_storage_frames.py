"""Streaming storage under load: incompressible runs go to zstd's fast level in frames of their
own, the file stays one valid ``.zst`` for every reader (``zstd -d``, coredumpctl, our
``open_core``), the task is released when the reader thread sees EOF (not when the compressor
is done), and a read error keeps what came before it."""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from coredumpd import storage
from coredumpd.context import CrashContext
from coredumpd.journal import build_entry, send_entry
from coredumpd.storage import StorageLimits, open_core, store_core
from tests.e2e.coredumpd.test_storage import Feeder, make_context

pytestmark = pytest.mark.e2e

MIB = 1 << 20
BIG = StorageLimits(process_size_max=1 << 40, external_size_max=1 << 40, keep_free=0)


def mixed_stream() -> bytes:
    """Compressible text, a run of random bytes, zeros, text again (16 MiB in all)."""
    text = b"".join(b"frame %08d: pc=0x%016x sp=0x%016x\n" % (i, i * 77, i * 13)
                    for i in range(3 * MIB // 50))[: 3 * MIB]
    return text + os.urandom(6 * MIB) + bytes(4 * MIB) + text


def store(directory: Path, data: bytes, **kw: object) -> storage.StoredCore:
    feeder = Feeder(data[4096:])
    try:
        stored = store_core(directory, make_context(), data[:4096], feeder.read_fd,
                            expected=len(data), limits=BIG, **kw)  # type: ignore[arg-type]
        assert feeder.drained()
    finally:
        feeder.close()
    return stored


def zstd_frames(path: Path) -> int:
    out = subprocess.run(["zstd", "-lv", str(path)], capture_output=True, text=True, check=True)
    line = next(line for line in out.stdout.splitlines() if line.strip().startswith("# Zstandard Frames"))
    return int(line.split(":")[1])


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd command is missing")
def test_incompressible_run_goes_to_its_own_frames(tmp_path: Path) -> None:
    data = mixed_stream()
    stored = store(tmp_path, data)
    assert stored.state == "present" and stored.path is not None
    with open_core(stored.path) as f:
        assert f.read() == data
    plain = subprocess.run(["zstd", "-dc", str(stored.path)], capture_output=True, check=True)
    assert plain.stdout == data
    assert zstd_frames(stored.path) >= 3  # level 3, fast level for the random run, level 3
    # random bytes cost their size, the rest almost nothing
    assert 6 * MIB < os.path.getsize(stored.path) < 6 * MIB + MIB


def test_random_probes_then_compressible_tail_compresses(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Data the fast level cannot shrink but level 3 can is found by the periodic probe."""
    monkeypatch.setattr(storage, "PROBE_EVERY", 2)
    data = os.urandom(4 * MIB) + bytes(8 * MIB)
    stored = store(tmp_path, data)
    assert stored.path is not None
    with open_core(stored.path) as f:
        assert f.read() == data
    assert os.path.getsize(stored.path) < 4 * MIB + 64 * 1024


def test_task_released_before_queued_chunks_are_compressed(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_write = storage._ZstdSink.write

    def slow_write(self: storage._ZstdSink, data: bytes | bytearray, n: int) -> None:
        time.sleep(0.02)
        events.append("write")
        real_write(self, data, n)

    monkeypatch.setattr(storage._ZstdSink, "write", slow_write)
    data = os.urandom(12 * MIB)
    stored = store(tmp_path, data, on_received=lambda: events.append("eof"))
    assert stored.state == "present" and events.count("eof") == 1
    assert events.index("eof") < len(events) - 2, "released only after the compressor caught up"
    assert stored.path is not None
    with open_core(stored.path) as f:
        assert f.read() == data


class FailingSource(io.RawIOBase):
    """Gives ``good`` bytes, then EIO."""

    def __init__(self, good: bytes) -> None:
        self.good = memoryview(good)

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[no-untyped-def,override]
        if not self.good:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        n = min(len(buf), len(self.good), 300_000)
        buf[:n] = self.good[:n]
        self.good = self.good[n:]
        return n


def test_read_error_keeps_what_came_before(tmp_path: Path) -> None:
    good = os.urandom(MIB) + bytes(MIB) + b"tail" * 1000
    events: list[str] = []
    stored = store_core(tmp_path, make_context(), b"HEAD", FailingSource(good),
                        expected=None, limits=BIG, on_received=lambda: events.append("eof"))
    assert stored.state == "truncated" and events == ["eof"]
    assert stored.received == 4 + len(good)
    assert stored.reason == f"reading the core failed after {4 + len(good)} bytes: Input/output error"
    assert stored.path is not None
    with open_core(stored.path) as f:
        assert f.read() == b"HEAD" + good


@pytest.mark.skipif(shutil.which("coredumpctl") is None,
                    reason="coredumpctl missing: apt-get install systemd-coredump (scripts/bootstrap)")
def test_coredumpctl_dumps_a_multi_frame_core(journald, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = mixed_stream()
    pid = 3_900_000 + os.getpid() % 90_000  # above any pid this test machine hands out
    timestamp = int(time.time()) * 1_000_000
    context: CrashContext = make_context(pid=pid, tid=pid, uid=0, gid=0, timestamp=timestamp,
                                         comm=b"frames", exe=b"/usr/bin/frames")
    stored = store(tmp_path, data)
    assert stored.path is not None and zstd_frames(stored.path) >= 3
    context.filename = str(stored.path)
    assert send_entry(build_entry(context, None, core_stored=True)) is True
    out = tmp_path / "dumped"
    end = time.monotonic() + 10
    while (dump := subprocess.run(["coredumpctl", "--no-pager", "dump", str(pid), "-o", str(out)],
                                  capture_output=True, text=True, timeout=60)).returncode != 0:
        assert time.monotonic() < end, f"coredumpctl dump failed: {dump.stderr}"
        time.sleep(0.05)
    assert out.read_bytes() == data
