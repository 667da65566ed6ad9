"""Streaming storage under load: incompressible runs of a piped stream are spliced into raw
frames of their own (other streams: zstd's fast level), the file stays one valid ``.zst`` for every reader (``zstd -d``, coredumpctl, our
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
from coredumpd.storage import ZSTD_MAGIC, StorageLimits, open_core, store_core
from tests.e2e.coredumpd.test_storage import Feeder, make_context

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("write_path")]

MIB = 1 << 20
BIG = StorageLimits(process_size_max=1 << 40, external_size_max=1 << 40, keep_free=0)


def text(size: int) -> bytes:
    """Compressible, but not trivially (zstd level 3 makes it about a tenth)."""
    return b"".join(b"frame %08d: pc=0x%016x sp=0x%016x\n" % (i, i * 77, i * 13)
                    for i in range(size // 50 + 1))[:size]


def mixed_stream() -> bytes:
    """Compressible text, a run of random bytes, zeros, text again (16 MiB in all)."""
    return text(3 * MIB) + os.urandom(6 * MIB) + bytes(4 * MIB) + text(3 * MIB)


def frames(path: Path) -> list[tuple[bool, list[int]]]:
    """Each zstd frame of the file: (has a content checksum, its block types) — walked by
    the format (RFC 8878), independently of the code that wrote it."""
    data = path.read_bytes()
    out = []
    pos = 0
    while pos < len(data):
        assert data[pos:pos + 4] == ZSTD_MAGIC, f"no frame at {pos}"
        fhd = data[pos + 4]
        single, checksum, dict_flag, fcs_flag = fhd >> 5 & 1, fhd >> 2 & 1, fhd & 3, fhd >> 6
        pos += 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag]
        pos += (1 if single else 0, 2, 4, 8)[fcs_flag]
        types = []
        while True:
            header = int.from_bytes(data[pos:pos + 3], "little")
            last, kind, size = header & 1, header >> 1 & 3, header >> 3
            types.append(kind)
            pos += 3 + (1 if kind == 1 else size)  # RLE blocks hold one byte
            if last:
                break
        pos += 4 * checksum
        out.append((bool(checksum), types))
    return out


def store(directory: Path, data: bytes, **kw: object) -> storage.StoredCore:
    feeder = Feeder(data[4096:])
    try:
        stored = store_core(directory, make_context(), data[:4096], feeder.read_fd,
                            expected=len(data), limits=BIG, **kw)  # type: ignore[arg-type]
        assert feeder.drained()
    finally:
        feeder.close()
    return stored


def stored_whole(directory: Path, data: bytes) -> storage.StoredCore:
    """``data`` stored, and read back whole by our reader and by ``zstd -d``."""
    stored = store(directory, data)
    assert stored.state == "present" and stored.path is not None
    with open_core(stored.path) as f:
        assert f.read() == data
    plain = subprocess.run(["zstd", "-dc", str(stored.path)], capture_output=True, check=True)
    assert plain.stdout == data
    return stored


def zstd_frames(path: Path) -> int:
    out = subprocess.run(["zstd", "-lv", str(path)], capture_output=True, text=True, check=True)
    line = next(line for line in out.stdout.splitlines() if line.strip().startswith("# Zstandard Frames"))
    return int(line.split(":")[1])


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd command is missing")
def test_incompressible_run_goes_to_its_own_frames(tmp_path: Path) -> None:
    data = mixed_stream()
    stored = stored_whole(tmp_path, data)
    assert zstd_frames(stored.path) >= 3  # level 3, raw frames for the random run, level 3
    # random bytes cost their size, the rest almost nothing
    assert 6 * MIB < os.path.getsize(stored.path) < 6 * MIB + MIB
    walked = frames(stored.path)
    raw = [types for checksum, types in walked if not checksum]
    assert raw and all(set(types) <= {0, 1} for types in raw)  # spliced raw blocks, RLE zeros
    assert sum(types.count(0) for types in raw) >= 6 * MIB // (128 << 10)
    assert sum(types.count(1) for types in raw) >= 3 * MIB // (128 << 10)  # the zeros' chunks
    assert walked[0][0] and walked[-1][0]  # the compressed text keeps its checksums


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd command is missing")
@pytest.mark.parametrize("byte", [0x00, 0x5A])
def test_runs_of_one_byte_become_rle_blocks(tmp_path: Path, byte: int) -> None:
    """Zero pages and constant fills skip the compressor: RLE blocks, 4 bytes a 128 KiB."""
    data = bytes((byte,)) * (8 * MIB + 12345) + text(MIB) + bytes((byte,)) * (2 * MIB)
    stored = stored_whole(tmp_path, data)
    walked = frames(stored.path)
    rle = sum(types.count(1) for checksum, types in walked if not checksum)
    assert rle >= 8 * MIB // (128 << 10)  # every whole chunk of the runs, at least
    assert os.path.getsize(stored.path) < 200 << 10  # the text's tenth and a little


def test_splicing_follows_the_stream_sample_by_sample(tmp_path: Path) -> None:
    """Random and compressible stretches alternating at odd offsets: every byte comes back,
    the compressible ones cost little, the random ones their size."""
    parts = [text(700_000), os.urandom(2 * MIB + 12345), bytes(3 * MIB), os.urandom(999_999),
             text(2 * MIB), os.urandom(MIB)]
    data = b"".join(parts)
    stored = store(tmp_path, data)
    assert stored.state == "present" and stored.path is not None
    with open_core(stored.path) as f:
        assert f.read() == data
    random_bytes = 2 * MIB + 12345 + 999_999 + MIB
    # at most one chunk of compressible bytes follows a random sample into a raw frame
    assert random_bytes < os.path.getsize(stored.path) < random_bytes + 2 * MIB
    assert subprocess.run(["zstd", "-t", str(stored.path)], capture_output=True).returncode == 0


@pytest.mark.parametrize("limit", [4096 + 70_000, 4096 + 3 * MIB + 5])
def test_rlimit_core_cuts_a_spliced_stretch_exactly(tmp_path: Path, limit: int) -> None:
    data = os.urandom(8 * MIB)
    feeder = Feeder(data[4096:])
    try:
        stored = store_core(tmp_path, make_context(), data[:4096], feeder.read_fd,
                            expected=len(data), limits=BIG, rlimit=limit)
        assert feeder.drained()
    finally:
        feeder.close()
    assert stored.state == "truncated" and stored.received == len(data)
    assert stored.stored_bytes == limit and stored.path is not None
    with open_core(stored.path) as f:
        assert f.read() == data[:limit]


def test_random_probes_then_compressible_tail_compresses(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream that cannot be spliced (a file object, not a pipe): data the fast level
    cannot shrink but level 3 can is found by the periodic probe."""
    monkeypatch.setattr(storage, "PROBE_EVERY", 2)
    data = os.urandom(4 * MIB) + bytes(8 * MIB)
    stored = store_core(tmp_path, make_context(), data[:4096], io.BytesIO(data[4096:]),
                        expected=len(data), limits=BIG)
    assert stored.path is not None and zstd_frames(stored.path) >= 2
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
    data = text(12 * MIB)  # compressible: random bytes would be spliced, not compressed
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
