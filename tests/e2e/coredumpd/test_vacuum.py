"""Vacuum on a real directory: systemd's order (oldest file of the uid with most cores)."""

from __future__ import annotations

import os
from pathlib import Path

from coredumpd.vacuum import read_fs_space, vacuum

K = 1 << 10


def make_core(directory: Path, uid: int, pid: int, mtime: int, size: int = 64 * K) -> Path:
    path = directory / f"core.prog.{uid}.{'0' * 32}.{pid}.{mtime * 1_000_000}.zst"
    path.write_bytes(os.urandom(size))  # real blocks, not holes
    os.utime(path, (mtime, mtime))
    return path


def usage(directory: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in directory.iterdir() if p.name.startswith("core."))


def test_oldest_of_the_busiest_uid_goes_first(tmp_path: Path) -> None:
    a1 = make_core(tmp_path, 1000, 1, 100)
    a2 = make_core(tmp_path, 1000, 2, 300)
    a3 = make_core(tmp_path, 1000, 3, 500)
    b1 = make_core(tmp_path, 0, 4, 50)  # oldest overall, but its uid has fewer cores
    b2 = make_core(tmp_path, 0, 5, 400)
    other = tmp_path / "catalog.sqlite"
    other.write_bytes(os.urandom(256 * K))
    per_file = a1.stat().st_blocks * 512
    removed = vacuum(tmp_path, max_use=3 * per_file, keep_free=0)
    # uid 1000 has 3 → drop a1; then both have 2 → the older oldest (b1, uid 0)
    assert removed == [a1, b1]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (a2, a3, b2, other))
    assert usage(tmp_path) <= 3 * per_file


def test_keep_is_neither_counted_nor_removed(tmp_path: Path) -> None:
    new = make_core(tmp_path, 1000, 1, 10)  # the oldest, but just written
    old = make_core(tmp_path, 1000, 2, 20)
    newer = make_core(tmp_path, 1000, 3, 30)
    per_file = old.stat().st_blocks * 512
    assert vacuum(tmp_path, max_use=per_file, keep_free=0, keep={new}) == [old]
    assert new.exists() and newer.exists()


def test_keep_free_removes_until_free_or_empty(tmp_path: Path) -> None:
    cores = [make_core(tmp_path, 1000, pid, 100 + pid) for pid in range(4)]
    removed = vacuum(tmp_path, max_use=0, keep_free=1 << 60, keep={cores[-1]})
    assert removed == cores[:-1]
    assert [p.name for p in tmp_path.iterdir()] == [cores[-1].name]


def test_within_limits_or_disabled_removes_nothing(tmp_path: Path) -> None:
    cores = [make_core(tmp_path, 1000, pid, 100 + pid) for pid in range(3)]
    assert vacuum(tmp_path, max_use=1 << 40, keep_free=1) == []
    assert vacuum(tmp_path, max_use=0, keep_free=0) == []
    # defaults: 10 % / 15 % of a big filesystem hold a few KiB easily, unless it is nearly full
    space = read_fs_space(tmp_path)
    if space.free > min(space.size * 3 // 20, 4 << 30):
        assert vacuum(tmp_path, max_use=None, keep_free=None) == []
    assert all(p.exists() for p in cores)


def test_ignores_foreign_names_and_non_files(tmp_path: Path) -> None:
    (tmp_path / "core.prog.1000.b.1.2.d").mkdir()
    (tmp_path / "core.prog.x.b.1.2").write_bytes(os.urandom(64 * K))
    (tmp_path / "notes.txt").write_bytes(os.urandom(64 * K))
    os.symlink("/etc/passwd", tmp_path / "core.link.0.b.1.2")
    assert vacuum(tmp_path, max_use=1, keep_free=0) == []
    assert len(list(tmp_path.iterdir())) == 4


def test_missing_directory(tmp_path: Path) -> None:
    assert vacuum(tmp_path / "absent", max_use=1, keep_free=1) == []
