"""How big a core will be on disk, guessed before its bytes come.

The daemon's spool (:mod:`coredumpd.spool`) is worth taking only for a core whose zstd file
is big: a 1 GiB heap of one repeated byte, or the zeros of 100 idle threads' stacks, stream
as many bytes as 1 GiB of random data and store in a few KiB, and a spool taken for them is
cut away and written again for nothing. While the kernel holds the task, the pipeline reads
:data:`SAMPLES` pages spread evenly over the bytes of the core's ``PT_LOAD`` segments from
the process and compresses each at zstd's fastest level: the core's size times the pages'
mean compression ratio is the guess. (A page that cannot be read is dumped as zeros: it
counts as a page that compresses to nothing.)

:func:`sample_ranges` and :func:`guess_stored_size` are pure; :func:`stored_size` reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import zstandard

from procfs.memory import ProcessMemory
from unwinder.core.elfstructs import Elf64_Phdr
from unwinder.core.model import CoreFile

#: pages read: 64 × 4 KiB, a batched process_vm_readv and about a millisecond of zstd
SAMPLES = 64
PAGE = 4096
#: zstd's fastest level: what the guess needs is "shrinks or not"
LEVEL = 1


def sample_ranges(loads: Sequence[Elf64_Phdr], samples: int = SAMPLES,
                  page: int = PAGE) -> list[tuple[int, int]]:
    """``(address, size)`` of up to ``samples`` page-aligned pages, spread evenly over the
    dumped bytes (``p_filesz``) of ``loads``, in order; empty when nothing is dumped."""
    total = sum(p.p_filesz for p in loads)
    if total <= 0 or samples <= 0:
        return []
    ranges: list[tuple[int, int]] = []
    spans = iter(p for p in loads if p.p_filesz > 0)
    seg = next(spans)
    seg_start = 0  # the segment's first byte, counted over all dumped bytes
    for i in range(samples):
        at = (2 * i + 1) * total // (2 * samples)
        while at >= seg_start + seg.p_filesz:
            seg_start += seg.p_filesz
            seg = next(spans)
        address = seg.p_vaddr + (at - seg_start) // page * page
        size = min(page, seg.p_vaddr + seg.p_filesz - address)
        if not ranges or ranges[-1][0] != address:
            ranges.append((address, size))
    return ranges


def guess_stored_size(expected: int, pages: Sequence[bytes | None], level: int = LEVEL) -> int:
    """``expected`` bytes scaled by the mean compression ratio of ``pages`` (``None``: a
    page that could not be read, dumped as zeros)."""
    if not pages:
        return expected
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=False,
                                          write_content_size=False)
    ratio = 0.0
    for data in pages:
        if data:
            ratio += min(len(compressor.compress(data)) / len(data), 1.0)
    return int(expected * ratio / len(pages))


def stored_size(core: CoreFile, pid: int) -> int:
    """The guess for the live process ``pid`` (held by the kernel) whose core's head is
    ``core``."""
    ranges = sample_ranges(core.loads)
    with ProcessMemory(pid) as memory:
        pages = [r.data if r.complete else None for r in memory.read_many(ranges)] if ranges else []
    return guess_stored_size(core.expected_size, pages)
