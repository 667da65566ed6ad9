"""The spool's room rules, pure: a quarter of MaxUse at most, the cores counted, KeepFree kept."""

from __future__ import annotations

from coredumpd.spool import SEGMENT, room
from coredumpd.vacuum import FsSpace

M, G, T = 1 << 20, 1 << 30, 1 << 40


def test_room_when_everything_fits() -> None:
    assert room(G, 0, 0, FsSpace(T, T), 0) == (G, None)
    assert room(G, 64 * M, 0, FsSpace(T, T), 0) == (16 * M, None)  # a quarter of MaxUse
    assert room(5 * M, 0, 0, FsSpace(T, T), 0)[0] == 2 * SEGMENT  # whole segments


def test_what_refuses_it() -> None:
    assert room(M, 0, 0, FsSpace(T, T), 0) == (0, "MaxUse= leaves none")
    size, why = room(8 * M, 0, 1 << 60, FsSpace(T, T // 2), 0)
    assert size == 8 * M and why is not None and "KeepFree" in why
    # the cores count: 60 MiB of them and 8 MiB of spool are over 64 MiB
    assert room(8 * M, 64 * M, 0, FsSpace(T, T), 60 * M) == (
        8 * M, f"cores use {60 * M} bytes, MaxUse={64 * M}")
