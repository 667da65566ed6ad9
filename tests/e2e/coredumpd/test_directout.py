"""The O_DIRECT writer on real file systems: exact bytes and size whatever the write sizes,
nothing left in the page cache, refusals where O_DIRECT cannot be, a full disk raised."""

from __future__ import annotations

import errno
import fcntl
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coredumpd import directout
from coredumpd.directout import ALIGN, SEGMENT, CachedWriter, open_direct

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]


def feed(writer: directout.DirectWriter | CachedWriter, data: bytes, rng: random.Random) -> None:
    """``data`` into ``writer`` in pieces of many sizes, by write() and by reserve()+commit()."""
    pos = 0
    while pos < len(data):
        n = rng.choice([1, 3, 4095, 4096, 70_000, SEGMENT - 1, SEGMENT + 5])
        if rng.random() < 0.5:
            writer.write(data[pos:pos + n])
            pos = min(pos + n, len(data))
        else:  # in place, as rawzstd.read_blocks reads a pipe
            with writer.reserve(n) as room:
                got = min(len(room), len(data) - pos)
                room[:got] = data[pos:pos + got]
            writer.commit(got)
            pos += got
    assert writer.size == len(data)


def resident(path: Path) -> int:
    """Bytes of ``path`` in the page cache (fincore)."""
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def test_bytes_and_size_are_exact_and_skip_the_page_cache() -> None:
    # /tmp may be a tmpfs: the state directory's file system (ext4 here) is the real case
    path = Path("/var/tmp") / f"directout-test-{os.getpid()}"
    rng = random.Random(7)
    data = rng.randbytes(3 * SEGMENT + 12345)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        writer = open_direct(fd)
        assert writer is not None
        feed(writer, data, rng)
        writer.close()
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT  # handed back as it came
        assert os.fstat(fd).st_size == len(data)
        if shutil.which("fincore"):
            assert resident(path) <= ALIGN  # at most the ftruncated tail's page
        assert path.read_bytes() == data
    finally:
        os.close(fd)
        path.unlink()


@pytest.mark.parametrize("cached", [0, 2 * SEGMENT])
def test_cached_writer_copies_into_the_cached_pages_then_goes_on_direct(cached: int) -> None:
    """A spool of ``cached`` bytes in the page cache: the core's bytes up to there are copied
    into its pages, the rest is written with O_DIRECT; exact bytes and size either way."""
    path = Path("/var/tmp") / f"directout-cached-{os.getpid()}"
    rng = random.Random(9)
    data = rng.randbytes(5 * SEGMENT + 777)
    path.write_bytes(b"spool " * (cached // 6 + 1))  # longer than the core could cut
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
        writer = CachedWriter(fd, cached)
        feed(writer, data, rng)
        writer.close()
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
        assert os.fstat(fd).st_size == len(data)
        if shutil.which("fincore"):  # the cached part, and nothing of the direct part
            assert cached <= resident(path) <= cached + ALIGN
        assert path.read_bytes() == data
    finally:
        os.close(fd)
        path.unlink()


def test_a_refused_direct_write_goes_on_through_the_page_cache(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """With the last write padded to 1 byte only, ext4 refuses it (EINVAL): the bytes still
    arrive, through the page cache."""
    monkeypatch.setattr(directout, "ALIGN", 1)
    path = Path("/var/tmp") / f"directout-einval-{os.getpid()}"
    data = random.Random(8).randbytes(SEGMENT + 777)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        writer = open_direct(fd)
        assert writer is not None
        writer.write(data)
        writer.close()
        assert not writer.direct and "O_DIRECT write refused" in caplog.text
        assert path.read_bytes() == data
    finally:
        os.close(fd)
        path.unlink()


def test_no_o_direct_for_pipes_and_refusing_file_systems() -> None:
    read_end, write_end = os.pipe()
    try:
        assert open_direct(write_end) is None  # on a pipe O_DIRECT is packet mode
        assert not fcntl.fcntl(write_end, fcntl.F_GETFL) & os.O_DIRECT
    finally:
        os.close(read_end)
        os.close(write_end)
    fd = os.open("/proc/self/status", os.O_RDONLY)  # procfs: no O_DIRECT
    try:
        assert open_direct(fd) is None
    finally:
        os.close(fd)


FULL = """
import os, sys
from coredumpd.directout import SEGMENT, open_direct
fd = os.open(os.path.join(sys.argv[1], "f"), os.O_RDWR | os.O_CREAT, 0o600)
writer = open_direct(fd)
try:
    for _ in range(8):
        writer.write(bytes(range(256)) * (SEGMENT // 256))
    writer.close()
except OSError as err:
    print(err.errno)
"""


def test_a_full_disk_is_raised(tiny_tmpfs: tuple[list[str], Path]) -> None:
    prefix, directory = tiny_tmpfs
    out = subprocess.run([*prefix, sys.executable, "-c", FULL, str(directory)],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(errno.ENOSPC)
