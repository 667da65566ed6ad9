"""The daemon's spool on a real file system: written blocks of the right size, taken by big
cores only, the core stored into it byte for byte, room rules, pauses, killed writers'
leftovers, and vacuum giving it up first."""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from coredumpd import spool as spool_module
from coredumpd import storage
from coredumpd.spool import FILLING, READY, SEGMENT, TAKEN, Spool, cached, remove, spool_size
from coredumpd.storage import StorageLimits, store_core
from coredumpd.vacuum import SPOOL, vacuum
from tests.e2e.coredumpd.test_directout import resident
from tests.e2e.coredumpd.test_storage import Feeder, make_context, read_back

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("write_path")]

M = 1 << 20
LIMITS = StorageLimits(process_size_max=1 << 40, external_size_max=1 << 40, keep_free=0)


@pytest.fixture
def core_dir(tmp_path: Path) -> Path:
    # /tmp is ext4 here (O_DIRECT, as the state directory's file system)
    directory = tmp_path / "coredump"
    directory.mkdir()
    return directory


def ready(directory: Path, size: int = 8 * M, **kw: object) -> Spool:
    spool = Spool(directory, size, max_use=kw.pop("max_use", 0), **kw)  # type: ignore[arg-type]
    assert spool.fill() == f"filled {size} bytes"
    return spool


def store(directory: Path, data: bytes, spool: Spool | None, guess: int | None,
          limits: StorageLimits = LIMITS, rlimit: int | None = None):  # type: ignore[no-untyped-def]
    feeder = Feeder(data[4096:])
    try:
        stored = store_core(directory, make_context(), data[:4096], feeder.read_fd, expected=None,
                            limits=limits, rlimit=rlimit, spool=spool, stored_guess=guess)
        assert feeder.drained()
    finally:
        feeder.close()
    return stored


def drop_pages(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.fixture
def writers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ``cached`` size of every CachedWriter storage makes (a core into cached pages)."""
    made: list[int] = []

    class Spy(storage.CachedWriter):
        def __init__(self, fd: int, cached: int) -> None:
            made.append(cached)
            super().__init__(fd, cached)

    monkeypatch.setattr(storage, "CachedWriter", Spy)
    return made


def test_fill_writes_every_block_once(core_dir: Path) -> None:
    spool = ready(core_dir)
    st = (core_dir / SPOOL).stat()
    assert st.st_size == 8 * M and st.st_blocks * 512 >= 8 * M  # written, not a hole
    assert (core_dir / SPOOL).read_bytes()[:len(spool_module.PATTERN)] == spool_module.PATTERN
    assert not (core_dir / FILLING).exists()
    assert spool.fill() == READY


def test_a_big_core_is_stored_into_the_spool(core_dir: Path) -> None:
    spool = ready(core_dir)
    data = os.urandom(3 * M + 12345)  # incompressible, shorter than the spool
    stored = store(core_dir, data, spool, guess=len(data))
    assert stored.spooled and stored.state == "present"
    assert read_back(stored.path) == data
    # cut to the core: nothing of the spool's bytes after the last frame
    assert stored.path.stat().st_size < len(data) + 4096
    assert spool.wait(30)
    # a new spool was written after it, and only the core and the spool are left
    assert sorted(p.name for p in core_dir.iterdir()) == sorted(
        [stored.path.name, SPOOL, spool_module.LOCK])
    assert (core_dir / SPOOL).stat().st_size == 8 * M


def test_a_core_longer_than_the_spool_goes_on_past_its_end(core_dir: Path,
                                                          writers: list[int]) -> None:
    spool = ready(core_dir, 4 * M)
    data = os.urandom(9 * M)
    stored = store(core_dir, data, spool, guess=len(data))
    assert stored.spooled and read_back(stored.path) == data
    assert writers == [4 * M]


def test_a_core_truncated_in_the_spool_keeps_only_what_was_kept(core_dir: Path,
                                                                 writers: list[int]) -> None:
    spool = ready(core_dir)
    data = os.urandom(6 * M)
    kept = 3 * M + 5000
    stored = store(core_dir, data, spool, guess=len(data), rlimit=kept)  # RLIMIT_CORE
    assert writers == [8 * M] and stored.spooled
    assert (stored.state, stored.received, stored.stored_bytes) == ("truncated", len(data), kept)
    assert read_back(stored.path) == data[:kept]  # none of the spool's bytes after it


@pytest.mark.skipif(not shutil.which("fincore"), reason="needs fincore (util-linux)")
def test_the_spool_stays_in_the_page_cache(core_dir: Path) -> None:
    ready(core_dir)
    path = core_dir / SPOOL
    assert resident(path) == 8 * M
    fd = os.open(path, os.O_RDONLY)
    try:
        assert cached(fd, 8 * M)
        drop_pages(path)  # as memory pressure would
        assert not cached(fd, 8 * M)
    finally:
        os.close(fd)
    assert not cached(-1, 0)


@pytest.mark.skipif(not shutil.which("fincore"), reason="needs fincore (util-linux)")
def test_a_core_is_copied_into_the_cached_pages_then_they_are_dropped(
        core_dir: Path, writers: list[int]) -> None:
    spool = ready(core_dir)
    data = os.urandom(5 * M + 999)
    stored = store(core_dir, data, spool, guess=len(data))
    assert stored.path.stat().st_blocks * 512 >= len(data)  # on the disk (fsync'd)
    assert resident(stored.path) <= 4096  # and out of the cache: the next spool's pages
    assert writers == [8 * M] and stored.spooled and read_back(stored.path) == data


def test_a_spool_whose_pages_were_taken_is_written_past_the_cache(
        core_dir: Path, writers: list[int]) -> None:
    spool = ready(core_dir)
    drop_pages(core_dir / SPOOL)
    data = os.urandom(3 * M)
    stored = store(core_dir, data, spool, guess=len(data))
    assert stored.spooled and writers == [] and read_back(stored.path) == data


def test_remove_takes_the_spool_and_a_partial_one_but_no_core(core_dir: Path) -> None:
    ready(core_dir)
    (core_dir / FILLING).write_bytes(b"half")
    taken = core_dir / f"{TAKEN}0123456789abcdef"
    taken.write_bytes(b"a core being written")
    assert remove(core_dir) == [SPOOL, FILLING]
    assert taken.exists() and remove(core_dir) == []


@pytest.mark.parametrize("guess", [None, 2 * M - 1])
def test_small_or_unknown_cores_leave_the_spool(core_dir: Path, guess: int | None) -> None:
    spool = ready(core_dir)
    data = os.urandom(M)
    stored = store(core_dir, data, spool, guess=guess)
    assert not stored.spooled and read_back(stored.path) == data
    assert (core_dir / SPOOL).stat().st_size == 8 * M


def test_uncompressed_cores_never_take_it(core_dir: Path) -> None:
    """A sparse file's holes would show the spool's bytes."""
    spool = ready(core_dir)
    data = bytes(2 * M) + os.urandom(M) + bytes(2 * M)
    limits = StorageLimits(1 << 40, 1 << 40, compress=False, keep_free=0)
    stored = store(core_dir, data, spool, guess=len(data), limits=limits)
    assert not stored.spooled and stored.path.read_bytes() == data


def test_a_dropped_core_takes_the_spool_with_it(core_dir: Path) -> None:
    spool = ready(core_dir)
    data = os.urandom(4 * M)
    limits = StorageLimits(1 << 40, M, keep_free=0)  # ExternalSizeMax: dropped on the way
    stored = store(core_dir, data, spool, guess=len(data), limits=limits)
    assert stored.path is None and "ExternalSizeMax" in (stored.reason or "")
    assert spool.wait(30)
    assert sorted(p.name for p in core_dir.iterdir()) == sorted([SPOOL, spool_module.LOCK])


def test_room_rules(core_dir: Path) -> None:
    assert spool_size(1 << 30, 64 * M, 1 << 40) == 16 * M  # a quarter of MaxUse
    assert spool_size(1 << 30, 0, 1 << 40) == 1 << 30  # MaxUse=0: no limit
    assert spool_size(5 * M, 0, 1 << 40) == 4 * M  # whole segments
    assert spool_size(M, 0, 1 << 40) == 0
    assert Spool(core_dir, 8 * M, max_use=0, keep_free=1 << 60).fill().startswith("no room")
    # the cores' usage counts against MaxUse
    (core_dir / "core.prog.0.x.1.2.zst").write_bytes(os.urandom(60 * M))
    assert "MaxUse" in Spool(core_dir, 8 * M, max_use=64 * M, keep_free=0).fill()
    assert Spool(core_dir, SEGMENT, max_use=0, keep_free=0).fill() == f"filled {SEGMENT} bytes"
    assert not (core_dir / FILLING).exists()


def test_a_killed_writers_leftovers_go(core_dir: Path) -> None:
    (core_dir / FILLING).write_bytes(b"half")
    abandoned = core_dir / f"{TAKEN}0123456789abcdef"
    abandoned.write_bytes(b"a core its daemon never finished")
    in_use = core_dir / f"{TAKEN}fedcba9876543210"
    in_use.write_bytes(b"a core being written")
    with open(in_use, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        ready(core_dir)
        assert in_use.exists() and not abandoned.exists() and not (core_dir / FILLING).exists()


def test_a_taken_spool_is_locked_until_its_core_is_done(core_dir: Path) -> None:
    spool = ready(core_dir)
    dirfd = os.open(core_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        taken = spool.take(dirfd, 8 * M)
        assert taken is not None and spool.take(dirfd, 8 * M) is None  # one taker
        fd, name = taken.fd, taken.name
        assert name.startswith(TAKEN) and not (core_dir / SPOOL).exists()
        assert time.time() - os.stat(name, dir_fd=dirfd).st_mtime < 60  # vacuum keeps it
        spool.fill()
        assert (core_dir / name).exists()  # locked: not a leftover
        os.close(fd)
        Spool(core_dir, 8 * M, max_use=0).fill()  # READY: the leftover check runs first
        assert not (core_dir / name).exists()
    finally:
        os.close(dirfd)


def test_a_fill_waits_while_a_core_is_received_and_stops_on_close(core_dir: Path) -> None:
    spool = Spool(core_dir, 64 * M, max_use=0)
    with spool.receiving():
        spool.refill()
        time.sleep(0.3)
        assert not (core_dir / SPOOL).exists()
        assert (core_dir / FILLING).stat().st_size <= SEGMENT
    assert spool.wait(60) and spool.last == f"filled {64 * M} bytes"
    (core_dir / SPOOL).unlink()
    with spool.receiving():
        spool.refill()
        time.sleep(0.1)
        closer = threading.Thread(target=spool.close)
        closer.start()
        closer.join(30)
    assert not closer.is_alive() and spool.last == "stopped"
    assert not (core_dir / FILLING).exists() and not (core_dir / SPOOL).exists()


def test_vacuum_gives_up_the_spool_before_any_core(core_dir: Path) -> None:
    ready(core_dir)
    cores = []
    for pid in range(3):
        core = core_dir / f"core.prog.1000.{'0' * 32}.{pid}.{pid}000000.zst"
        core.write_bytes(os.urandom(M))
        cores.append(core)
    assert vacuum(core_dir, max_use=6 * M, keep_free=0) == [core_dir / SPOOL]
    assert all(c.exists() for c in cores)
    assert vacuum(core_dir, max_use=20 * M, keep_free=0) == []
    # over KeepFree with nothing but the spool: it goes too
    for core in cores:
        core.unlink()
    ready(core_dir)
    assert vacuum(core_dir, max_use=0, keep_free=1 << 60) == [core_dir / SPOOL]
