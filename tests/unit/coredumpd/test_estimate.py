"""The guess of a core's size on disk: where the sample pages are, and what they say."""

from __future__ import annotations

import os

from coredumpd.estimate import PAGE, guess_stored_size, sample_ranges
from unwinder.core.elfstructs import Elf64_Phdr

PT_LOAD = 1


def load(vaddr: int, filesz: int, memsz: int | None = None) -> Elf64_Phdr:
    return Elf64_Phdr(PT_LOAD, 6, 0, vaddr, 0, filesz, filesz if memsz is None else memsz, PAGE)


def test_samples_spread_evenly_over_the_dumped_bytes() -> None:
    loads = [load(0x10000, 4 * PAGE), load(0x400000, 0, 64 * PAGE), load(0x7f0000, 12 * PAGE)]
    ranges = sample_ranges(loads, samples=8)
    # 16 dumped pages, 8 samples: the middle page of every two, the empty segment skipped
    assert ranges == [(0x11000, PAGE), (0x13000, PAGE),
                      *((0x7f0000 + k * PAGE, PAGE) for k in range(1, 12, 2))]


def test_samples_stay_inside_their_segment() -> None:
    loads = [load(0x1000, 100), load(0x5000, PAGE + 10)]
    ranges = sample_ranges(loads, samples=6)
    for address, size in ranges:
        seg = next(p for p in loads if p.p_vaddr <= address < p.p_vaddr + p.p_filesz)
        assert address % PAGE == 0 and 0 < size <= PAGE
        assert address + size <= seg.p_vaddr + seg.p_filesz
    assert len(set(ranges)) == len(ranges)  # a page is read once


def test_nothing_dumped_nothing_sampled() -> None:
    assert sample_ranges([]) == []
    assert sample_ranges([load(0x1000, 0, PAGE)]) == []


def test_the_guess_follows_the_pages() -> None:
    size = 1 << 30
    random_pages = [os.urandom(PAGE) for _ in range(8)]
    assert guess_stored_size(size, random_pages) >= size * 0.99
    assert guess_stored_size(size, [bytes(PAGE)] * 8) < size * 0.01
    assert guess_stored_size(size, [None] * 8) == 0  # unreadable: dumped as zeros
    half = guess_stored_size(size, random_pages[:4] + [b"\xa5" * PAGE] * 4)
    assert size * 0.45 < half < size * 0.55
    assert guess_stored_size(size, []) == size  # nothing to go by: the whole core
