"""The race test: a frozen snapshot of maps is never torn; plain reads of the running process are.

The target rolls one read-write page through a 65,000-page region of alternating
PROT_READ/PROT_NONE pages (each page its own VMA) in shuffled order, so exactly 1 or 2 pages are
writable at any instant.
"""

import operator
import os
import time
from pathlib import Path

import pytest

from procfs.handle import ProcessHandle
from procfs.parse.maps import Perm, parse_maps
from procfs.snapshot import Part, snapshot
from procfs.vmas import MapsSource
from tests.support.procfs_children import proc_state, running, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NPAGES = 65_000
WRITE = int(Perm.WRITE)  # `int(m.perms) & WRITE` stays in C; `m.perms & Perm.WRITE` is enum code
ROLLER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#define NPAGES 65000
static int order[NPAGES];
int main(void) {
    long ps = sysconf(_SC_PAGESIZE);
    char *base = mmap(NULL, NPAGES * ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) { perror("mmap"); return 1; }
    for (long i = 1; i < NPAGES; i += 2)
        if (mprotect(base + i * ps, ps, PROT_NONE)) { perror("mprotect"); return 1; }
    for (int i = 0; i < NPAGES; i++) order[i] = i;
    srand(getpid());
    for (int i = NPAGES - 1; i > 0; i--) {
        int j = rand() % (i + 1), t = order[i]; order[i] = order[j]; order[j] = t;
    }
    int prev = order[0];
    mprotect(base + prev * ps, ps, PROT_READ | PROT_WRITE);
    printf("%lx %ld\n", (unsigned long)base, NPAGES * ps);
    fflush(stdout);
    for (long k = 1;; k++) {
        int next = order[k % NPAGES];
        mprotect(base + next * ps, ps, PROT_READ | PROT_WRITE);        /* now 2 rw pages */
        mprotect(base + prev * ps, ps, (prev & 1) ? PROT_NONE : PROT_READ); /* back to 1 */
        prev = next;
    }
}
"""


@pytest.fixture
def roller(compile_c):
    if int(Path("/proc/sys/vm/max_map_count").read_text()) < NPAGES + 500:
        pytest.skip("vm.max_map_count too small for 65,000 VMAs")
    exe = compile_c(ROLLER, name="roller", flags=("-O2",))
    with running([exe]) as child:
        base_hex, size = child.ready.split()
        yield child, int(base_hex, 16), int(size)


def region_summary(maps, base, size):
    """(rw pages, pages the region's VMAs cover, overlapping or unordered VMAs anywhere).

    Pages are counted, not VMAs: when the two rw pages happen to be neighbours the kernel
    merges them into one 2-page VMA, which is a legitimate state, not a torn read. Only pages
    inside the region count: when its last page is rw, the kernel may merge it with an
    anonymous rw mapping just above (seen once: 3 more rw pages), legitimate too.
    """
    end = base + size
    inside = [(m, (min(m.end, end) - max(m.start, base)) // 4096) for m in maps
              if m.start < end and m.end > base]
    rw = sum(pages for m, pages in inside if int(m.perms) & WRITE)
    covered = sum(pages for _m, pages in inside)
    starts, ends = [m.start for m in maps], [m.end for m in maps]
    bad = sum(map(operator.lt, starts[1:], ends[:-1]))
    return rw, covered, bad


def test_frozen_snapshots_are_never_torn(roller):
    child, base, size = roller
    seen_rw_pages = set()
    with ProcessHandle.from_pid(child.pid) as handle:
        for i in range(200):
            # Alternately the default source (PROCMAP_QUERY here) and the text: both cost ~80 ms
            # for 65,000 VMAs (bench/bench_snapshot.py).
            source = None if i % 2 == 0 else MapsSource.TEXT
            snap = snapshot(handle, Part.MAPS, maps_source=source)
            assert snap.consistent, snap.freeze
            rw, pages, bad = region_summary(snap.maps, base, size)
            assert (rw, pages, bad) in ((1, NPAGES, 0), (2, NPAGES, 0)), f"snapshot {i}"
            seen_rw_pages.add(
                next(m.start for m in snap.maps if base <= m.start and int(m.perms) & WRITE)
            )
    assert len(seen_rw_pages) > 100  # the roller really moved between snapshots
    wait_for(lambda: proc_state(child.pid) == "R", "the roller to run again")


def read_maps_chunked(pid: int, chunk: int = 4096) -> bytes:
    """What a naive reader does: open maps, read fixed-size chunks until EOF, no freezing."""
    fd = os.open(f"/proc/{pid}/maps", os.O_RDONLY)
    try:
        parts = []
        while data := os.read(fd, chunk):
            parts.append(data)
        return b"".join(parts)
    finally:
        os.close(fd)


def test_unfrozen_chunked_reads_are_torn(roller):
    child, base, size = roller
    deadline = time.monotonic() + 60
    results = []
    while time.monotonic() < deadline:
        rw, pages, bad = region_summary(parse_maps(read_maps_chunked(child.pid)), base, size)
        results.append((rw, pages, bad))
        if rw not in (1, 2) or pages != NPAGES or bad:
            break
    assert results[-1][0] not in (1, 2) or results[-1][1] != NPAGES or results[-1][2], (
        f"no torn read in {len(results)} tries: the race test could not fail"
    )


def test_unfrozen_snapshot_reports_inconsistent(roller):
    child, _, _ = roller
    with ProcessHandle.from_pid(child.pid) as handle:
        snap = snapshot(handle, Part.STAT, freeze=False)
    assert not snap.consistent and snap.maps is None
