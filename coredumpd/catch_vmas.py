"""Which VMAs a core holds and how much of each: the kernel's ``vma_dump_size()`` from userspace.

The kernel decides per VMA (``fs/coredump.c``; research/kernel-interfaces.md §4 "Which VMAs are
dumped"), in this order: the gate and named special mappings (``[vdso]``, ``[vvar]``,
``[vsyscall]``…) always in full; ``VM_DONTDUMP`` (``madvise(MADV_DONTDUMP)``, ``dd`` in
``smaps`` VmFlags) and ``VM_IO`` (``io``) never; hugetlb by filter bits 5/6; shared mappings by bit
1 (anonymous shmem: the file has no links) or bit 3; private memory that was written to
(``anon_vma`` set) by bit 0; other private file mappings by bit 2, else only their first page
when bit 4 is set and the mapping starts an ELF file.

``anon_vma`` is not visible from userspace. A private VMA counts as written when ``smaps`` shows
anonymous pages (``Anonymous``/``Swap``). gVisor reports every resident page as anonymous and guesses
``Private_Dirty`` from writability (procfs-sandbox.md §3.1), so there a code mapping (``r-x``)
counts as written only with dirty pages, while data mappings — RELRO (``r--p``, holding the
``DT_DEBUG`` gdb follows to the shared libraries) included — count when they show anonymous pages. Without ``smaps`` every writable or anonymous private VMA counts as
written: bigger cores, never a missing stack. Pure: parsed data in, a plan out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntFlag

from procfs.parse.maps import Mapping, Perm

PAGE_SIZE = 4096

ALWAYS_DUMPED = frozenset({b"[vdso]", b"[vvar]", b"[vvar_vclock]", b"[vsyscall]", b"[uprobes]"})
"""Mappings the kernel dumps whatever the filter (``always_dump_vma()``)."""


class DumpFilter(IntFlag):
    """``/proc/<pid>/coredump_filter`` bits (``MMF_DUMP_*``)."""

    ANON_PRIVATE = 1 << 0
    ANON_SHARED = 1 << 1
    MAPPED_PRIVATE = 1 << 2
    MAPPED_SHARED = 1 << 3
    ELF_HEADERS = 1 << 4
    HUGETLB_PRIVATE = 1 << 5
    HUGETLB_SHARED = 1 << 6
    DAX_PRIVATE = 1 << 7
    DAX_SHARED = 1 << 8


DEFAULT_FILTER = DumpFilter(0x33)
"""The kernel's default with ``CONFIG_CORE_DUMP_DEFAULT_ELF_HEADERS``."""


@dataclass(frozen=True)
class SmapsEntry:
    """What ``smaps`` says about one VMA: sizes in KiB, ``vm_flags`` as the two-letter codes."""

    rss: int = 0
    anonymous: int = 0
    swap: int = 0
    private_dirty: int = 0
    vm_flags: frozenset[bytes] = frozenset()


@dataclass(frozen=True)
class Segment:
    """One ``PT_LOAD`` to write: the VMA, and ``filesz`` bytes of it dumped from its start."""

    mapping: Mapping
    filesz: int

    @property
    def p_flags(self) -> int:
        """``PF_R|PF_W|PF_X`` from the VMA's permissions."""
        perms = self.mapping.perms
        return ((4 if perms & Perm.READ else 0) | (2 if perms & Perm.WRITE else 0)
                | (1 if perms & Perm.EXEC else 0))


_HEADER = re.compile(rb"^([0-9a-f]+)-([0-9a-f]+) ")
_SIZES = {b"Rss": "rss", b"Anonymous": "anonymous", b"Swap": "swap",
          b"Private_Dirty": "private_dirty"}


def parse_coredump_filter(data: bytes) -> DumpFilter:
    """``coredump_filter`` is one hex number (``00000033``)."""
    return DumpFilter(int(data.strip() or b"0", 16) & 0x1FF)


def parse_smaps(data: bytes) -> dict[int, SmapsEntry]:
    """``smaps`` entries keyed by VMA start address; unknown lines are skipped."""
    out: dict[int, SmapsEntry] = {}
    start: int | None = None
    values: dict[str, int] = {}
    flags: frozenset[bytes] = frozenset()

    def flush() -> None:
        if start is not None:
            out[start] = SmapsEntry(vm_flags=flags, **values)

    for line in data.split(b"\n"):
        header = _HEADER.match(line)
        if header:
            flush()
            start, values, flags = int(header.group(1), 16), {}, frozenset()
            continue
        key, sep, value = line.partition(b":")
        if not sep or start is None:
            continue
        if key == b"VmFlags":
            flags = frozenset(value.split())
        elif key in _SIZES:
            try:
                values[_SIZES[key]] = int(value.split()[0])
            except (ValueError, IndexError):
                continue
    flush()
    return out


def _file_backed(m: Mapping) -> bool:
    return m.inode != 0 or m.path.startswith(b"/")


def _written(m: Mapping, info: SmapsEntry | None) -> bool:
    """Our stand-in for ``vma->anon_vma != NULL``."""
    if info is None:
        return bool(m.perms & Perm.WRITE) or not _file_backed(m)
    if info.swap:
        return True
    if not _file_backed(m):
        return info.anonymous > 0
    return info.anonymous > 0 and (info.private_dirty > 0
                                   or m.perms & (Perm.WRITE | Perm.EXEC) != Perm.EXEC)


def vma_dump_size(m: Mapping, info: SmapsEntry | None, filt: DumpFilter,
                  starts_elf: Callable[[Mapping], bool]) -> int:
    """Bytes of ``m`` the kernel would dump, from its start (0, one page, or all of it).

    :param starts_elf: whether the mapping's file is executable or begins with ``\\x7fELF``;
        asked only for the ELF-header case.
    """
    whole = m.end - m.start
    if m.path in ALWAYS_DUMPED:
        return whole
    flags = info.vm_flags if info is not None else frozenset()
    if b"dd" in flags:
        return 0
    shared = bool(m.perms & Perm.SHARED) or b"sh" in flags
    if b"ht" in flags:
        bit = DumpFilter.HUGETLB_SHARED if shared else DumpFilter.HUGETLB_PRIVATE
        return whole if filt & bit else 0
    if b"io" in flags:
        return 0
    if shared:
        # anonymous shmem (MAP_SHARED|MAP_ANONYMOUS, SysV, memfd) has a file with no links
        bit = DumpFilter.ANON_SHARED if m.deleted else DumpFilter.MAPPED_SHARED
        return whole if filt & bit else 0
    if _written(m, info) and filt & DumpFilter.ANON_PRIVATE:
        return whole
    if not _file_backed(m):
        return 0
    if filt & DumpFilter.MAPPED_PRIVATE:
        return whole
    if (filt & DumpFilter.ELF_HEADERS and m.offset == 0 and m.perms & Perm.READ
            and starts_elf(m)):
        return min(PAGE_SIZE, whole)
    return 0


def plan_segments(maps: Sequence[Mapping], smaps: dict[int, SmapsEntry] | None,
                  filt: DumpFilter, starts_elf: Callable[[Mapping], bool]) -> list[Segment]:
    """One :class:`Segment` per VMA, in address order (``core_sort_vma=0``), dumped or not."""
    return [Segment(m, vma_dump_size(m, smaps.get(m.start) if smaps is not None else None,
                                     filt, starts_elf))
            for m in sorted(maps, key=lambda m: m.start)]


def dumped_bytes(segments: Iterable[Segment]) -> int:
    """Total bytes of memory the core will hold."""
    return sum(s.filesz for s in segments)
