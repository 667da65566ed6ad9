"""The modules of a crashed process: which ELF image each mapped range belongs to, at which
load bias, and whether the file on disk is the one that was mapped.

- Mappings come from ``NT_FILE`` (a core) or ``/proc/<pid>/maps`` (live; handed in).
- The bias is computed per mapping from the ``PT_LOAD`` that holds the mapping's file offset,
  never once per file: a file mapped twice at different biases gives two modules.
- A file on disk is used only when its build-id equals the one found in memory (the ELF header
  page is dumped by default); a mismatch is reported and the file is not used. With no
  build-id in memory the file is used and marked unverified.
- The vDSO comes from memory (``AT_SYSINFO_EHDR``).
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import BinaryIO

from unwinder.addrspace import AddressSpace, FileBacking
from unwinder.core.notes import FileMapping
from unwinder.elffile import ElfFile
from unwinder.elfimage import (
    BadImage,
    ImageLayout,
    layout_from_elffile,
    layout_from_memory,
    open_elf,
)
from unwinder.errors import FaultError

DELETED = b" (deleted)"


class ModuleStatus(StrEnum):
    VERIFIED = "verified"        # file on disk, build-id equal to memory's
    UNVERIFIED = "unverified"    # file on disk, no build-id in memory to compare
    MISMATCH = "build-id-mismatch"  # file on disk differs from what was mapped: not used
    MISSING = "missing"          # no file (deleted, not readable, another mount namespace)
    MEMORY = "memory"            # image read from memory (vDSO)


#: Opens the file behind a mapping (live: via /proc/<pid>/map_files or /proc/<pid>/root).
FileOpener = Callable[[FileMapping], BinaryIO | None]


def open_by_path(mapping: FileMapping) -> BinaryIO | None:
    """Default opener: the path as recorded, unless the kernel marked it deleted."""
    if mapping.path.endswith(DELETED):
        return None
    try:
        return open(mapping.path, "rb")  # noqa: SIM115 - owned by the ModuleMap
    except OSError:
        return None


class Module:
    """One image at one load bias. ``build_id`` is memory's when known, else the file's."""

    __slots__ = ("path", "bias", "ranges", "status", "build_id", "elffile", "cache")

    def __init__(self, path: bytes, bias: int, ranges: list[tuple[int, int]],
                 status: ModuleStatus, build_id: bytes | None,
                 elffile: ElfFile | None = None) -> None:
        self.path = path
        self.bias = bias
        self.ranges = ranges
        self.status = status
        self.build_id = build_id
        self.elffile = elffile
        #: filled lazily by the unwinder / symboliser, keyed by their own names
        self.cache: dict[str, object] = {}

    def __repr__(self) -> str:
        return (f"Module(path={self.path!r}, bias={self.bias:#x}, ranges={self.ranges!r}, "
                f"status={self.status!r}, build_id={self.build_id!r})")

    @property
    def start(self) -> int:
        return min(r[0] for r in self.ranges)

    @property
    def end(self) -> int:
        return max(r[1] for r in self.ranges)

    @property
    def name(self) -> str:
        return self.path.decode("utf-8", "backslashreplace")


class ModuleMap:
    """Address → module lookups over every file-backed mapping (plus the vDSO)."""

    def __init__(self, modules: Sequence[Module], files: Sequence[BinaryIO] = ()) -> None:
        self.modules = list(modules)
        self._files = list(files)
        spans = sorted((start, end, m) for m in self.modules for start, end in m.ranges)
        self._starts = [s for s, _, _ in spans]
        self._spans = spans

    def find(self, address: int) -> Module | None:
        index = bisect.bisect_right(self._starts, address) - 1
        if index >= 0:
            start, end, module = self._spans[index]
            if start <= address < end:
                return module
        return None

    def adopt(self, file: BinaryIO) -> None:
        """Close ``file`` with the map (a debug file opened for one of the modules)."""
        self._files.append(file)

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()


def build_module_map(
    mappings: Sequence[FileMapping],
    space: AddressSpace,
    *,
    vdso_base: int | None = None,
    opener: FileOpener = open_by_path,
) -> ModuleMap:
    """Group ``mappings`` into modules, verify files by build-id, and register verified files
    as backings of ``space`` for the bytes the core did not dump."""
    by_path: dict[bytes, list[FileMapping]] = {}
    for m in mappings:
        by_path.setdefault(m.path, []).append(m)
    modules: list[Module] = []
    files: list[BinaryIO] = []
    for path, maps in by_path.items():
        memory_layout = _layout_in_memory(maps, space)
        file, elf, file_layout = _open_file(maps, opener)
        if file is not None:
            files.append(file)
        status, layout = _judge(memory_layout, file_layout)
        if status in (ModuleStatus.VERIFIED, ModuleStatus.UNVERIFIED):
            for m in maps:
                space.add_file_backing(FileBacking(m.start, m.end, m.offset, file))
        else:
            elf = None
        build_id = (memory_layout.build_id if memory_layout else None) or (
            file_layout.build_id if file_layout and elf is not None else None)
        modules.extend(_group_by_bias(path, maps, layout, status, build_id, elf))
    if vdso_base:
        vdso = _vdso_module(space, vdso_base)
        if vdso is not None:
            modules.append(vdso)
    return ModuleMap(modules, files)


def _layout_in_memory(maps: list[FileMapping], space: AddressSpace) -> ImageLayout | None:
    head = next((m for m in maps if m.offset == 0), None)
    if head is None:
        return None
    try:
        return layout_from_memory(space.primary_read, head.start)
    except (BadImage, FaultError):
        return None


def _open_file(maps: list[FileMapping], opener: FileOpener):  # type: ignore[no-untyped-def]
    file = opener(maps[0])
    if file is None:
        return None, None, None
    try:
        elf = open_elf(file)
        return file, elf, layout_from_elffile(elf)
    except BadImage:
        return file, None, None


def _judge(memory: ImageLayout | None, on_disk: ImageLayout | None) -> tuple[ModuleStatus, ImageLayout | None]:
    if on_disk is None:
        return ModuleStatus.MISSING, memory
    if memory is None or memory.build_id is None:
        return ModuleStatus.UNVERIFIED, on_disk
    if on_disk.build_id != memory.build_id:
        return ModuleStatus.MISMATCH, memory
    return ModuleStatus.VERIFIED, on_disk


def _group_by_bias(path: bytes, maps: list[FileMapping], layout: ImageLayout | None,
                   status: ModuleStatus, build_id: bytes | None, elf: ElfFile | None) -> list[Module]:
    groups: dict[int, Module] = {}
    # The header mapping (offset 0) fixes the usual bias first; a shared page then resolves to
    # a bias already seen, and only a truly different one (a second mapping of the file) to a
    # new module.
    for m in sorted(maps, key=lambda m: (m.offset, m.start)):
        candidates = [m.start - v for v in layout.vaddrs_of_offset(m.offset)] if layout else []
        known = [b for b in candidates if b in groups]
        bias = (known or candidates or [m.start - m.offset])[0]
        module = groups.get(bias)
        if module is None:
            groups[bias] = Module(path, bias, [(m.start, m.end)], status, build_id, elf)
        else:
            module.ranges.append((m.start, m.end))
    return list(groups.values())


def _vdso_module(space: AddressSpace, base: int) -> Module | None:
    try:
        layout = layout_from_memory(space.primary_read, base)
        # The section headers follow the segment inside the same pages (the vDSO is mapped
        # whole); symbols need them.
        size = (max(layout.image_size, layout.sections_end) + 0xFFF) & ~0xFFF
        image, _ = space.read_partial(base, size)
        elf = open_elf(io.BytesIO(image.ljust(size, b"\0")))
    except (BadImage, FaultError):
        return None
    low = min(s.p_vaddr for s in layout.loads) & ~0xFFF
    return Module(b"[vdso]", base - low, [(base, base + layout.image_size)], ModuleStatus.MEMORY,
                  layout.build_id, elf)
