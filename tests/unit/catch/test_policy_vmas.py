"""The catcher's pure decisions: is a signal fatal, which VMAs a core holds (vma_dump_size)."""

from __future__ import annotations

import signal

from coredumpd.catch_policy import Disposition, signal_disposition
from coredumpd.catch_vmas import (
    DEFAULT_FILTER,
    DumpFilter,
    SmapsEntry,
    parse_coredump_filter,
    parse_smaps,
    plan_segments,
    vma_dump_size,
)
from procfs.parse.maps import Mapping, Perm

R, W, X, S = Perm.READ, Perm.WRITE, Perm.EXEC, Perm.SHARED
BIT = {sig: f"{1 << (sig - 1):016x}".encode() for sig in (signal.SIGSEGV, signal.SIGUSR1)}


def status(cgt: bytes = b"0" * 16, ign: bytes = b"0" * 16) -> bytes:
    return b"Name:\tx\nSigBlk:\t0000000000000000\nSigIgn:\t" + ign + b"\nSigCgt:\t" + cgt + b"\n"


def test_disposition_from_status() -> None:
    assert signal_disposition(status(), signal.SIGSEGV) == Disposition.FATAL
    assert signal_disposition(status(cgt=BIT[signal.SIGSEGV]), signal.SIGSEGV) == Disposition.HANDLED
    assert signal_disposition(status(ign=BIT[signal.SIGSEGV]), signal.SIGSEGV) == Disposition.IGNORED
    assert signal_disposition(status(cgt=BIT[signal.SIGUSR1]), signal.SIGSEGV) == Disposition.FATAL


def test_gvisor_status_has_no_masks() -> None:
    assert signal_disposition(b"Name:\tx\nState:\tR (running)\n", signal.SIGSEGV) == Disposition.UNKNOWN


def vma(start: int, pages: int, perms: Perm, path: bytes = b"", *, inode: int = 0,
        offset: int = 0, deleted: bool = False) -> Mapping:
    return Mapping(start, start + pages * 4096, perms, offset, 0, 0, inode, path, deleted)


def never_elf(m: Mapping) -> bool:
    return False


def test_kernel_rules() -> None:
    written = SmapsEntry(rss=8, anonymous=8, private_dirty=8)
    clean = SmapsEntry(rss=8)
    size = lambda m, info, f=DEFAULT_FILTER, elf=never_elf: vma_dump_size(m, info, f, elf)  # noqa: E731
    assert size(vma(0x1000, 2, R | X, b"[vdso]"), None, DumpFilter(0)) == 0x2000
    assert size(vma(0x1000, 2, R | W), SmapsEntry(anonymous=8, vm_flags=frozenset({b"dd"}))) == 0
    assert size(vma(0x1000, 2, R | W), written) == 0x2000
    assert size(vma(0x1000, 2, R | W), clean) == 0  # no anon_vma: never touched
    assert size(vma(0x1000, 2, 0), clean) == 0  # a guard page
    lib = vma(0x1000, 4, R, b"/lib/libc.so.6", inode=7)
    assert size(lib, clean) == 0
    assert size(lib, clean, elf=lambda m: True) == 0x1000  # ELF header page only
    assert size(lib, clean, DEFAULT_FILTER | DumpFilter.MAPPED_PRIVATE) == 0x4000
    relro = vma(0x5000, 1, R, b"/bin/x", inode=7, offset=0x3000)
    assert size(relro, written) == 0x1000
    text = vma(0x9000, 1, R | X, b"/bin/x", inode=7, offset=0x1000)
    assert size(text, SmapsEntry(rss=4, anonymous=4)) == 0  # gVisor: every page "anonymous"
    shm = vma(0x1000, 1, R | W | S, b"/dev/zero", inode=3, deleted=True)
    assert size(shm, clean) == 0x1000
    assert size(vma(0x1000, 1, R | W | S, b"/data", inode=3), clean) == 0
    huge = SmapsEntry(vm_flags=frozenset({b"ht"}))
    assert size(vma(0x1000, 1, R | W), huge) == 0x1000
    assert size(vma(0x1000, 1, R | W), SmapsEntry(vm_flags=frozenset({b"io"}))) == 0


def test_without_smaps_writable_and_anonymous_memory_is_dumped() -> None:
    plan = plan_segments([vma(0x3000, 1, R | W), vma(0x1000, 1, R | X, b"/bin/x", inode=1)],
                         None, DEFAULT_FILTER, never_elf)
    assert [(s.mapping.start, s.filesz, s.p_flags) for s in plan] == [(0x1000, 0, 5), (0x3000, 0x1000, 6)]


def test_parsers() -> None:
    assert parse_coredump_filter(b"00000033\n") == DEFAULT_FILTER
    smaps = parse_smaps(
        b"00400000-00401000 r--p 00000000 08:01 12 /bin/x\nRss:   4 kB\nAnonymous:  4 kB\n"
        b"VmFlags: rd mr dd \n7ff0-8000 rw-p 00000000 00:00 0 \nSwap: 8 kB\n")
    assert smaps[0x400000] == SmapsEntry(rss=4, anonymous=4, vm_flags=frozenset({b"rd", b"mr", b"dd"}))
    assert smaps[0x7FF0].swap == 8
