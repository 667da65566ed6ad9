"""``PROCMAP_QUERY`` (Linux 6.11+): VMAs, names and ELF build-ids by ioctl on an open ``maps`` fd.

Each answer is atomic for one VMA; a walk over all of them is a snapshot only while the process is
frozen. The kernel never reports the ``[vsyscall]`` gate VMA: :func:`find_vsyscall` supplies it.
Access was checked (``PTRACE_MODE_READ``) when ``maps`` was opened.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import struct
from collections.abc import Iterator
from enum import IntFlag
from functools import cache

from procfs.errors import ParseError, ProcessGone, translate_oserror
from procfs.parse.maps import DELETED_SUFFIX, Mapping, Perm, parse_maps, split_deleted


class ProcmapQueryFlag(IntFlag):
    """``PROCMAP_QUERY_*`` query flags; the first four filter by VMA permission."""

    VMA_READABLE = 0x01
    VMA_WRITABLE = 0x02
    VMA_EXECUTABLE = 0x04
    VMA_SHARED = 0x08
    COVERING_OR_NEXT_VMA = 0x10
    FILE_BACKED_VMA = 0x20


# struct procmap_query (include/uapi/linux/fs.h), 104 bytes:
#   u64 size, query_flags, query_addr;                          in
#   u64 vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;   out
#   u32 dev_major, dev_minor;                                   out
#   u32 vma_name_size, build_id_size;                           in/out
#   u64 vma_name_addr, build_id_addr;                           in (our buffers)
# Packed with struct, not a ctypes.Structure: per-field ctypes access costs ~0.1 µs, and a walk
# makes one query per VMA (65,000 in the race test).
PROCMAP_QUERY_STRUCT = struct.Struct("=QQQQQQQQQIIIIQQ")
assert PROCMAP_QUERY_STRUCT.size == 104
PROCMAP_QUERY = (3 << 30) | (PROCMAP_QUERY_STRUCT.size << 16) | (ord("f") << 8) | 17
"""``_IOWR('f', 17, struct procmap_query)`` = ``0xC0686611``."""

_PERMS = tuple(Perm(bits) for bits in range(16))
_NAME_MAX = 4096  # PATH_MAX; grown on E2BIG
_BUILD_ID_MAX = 64  # BUILD_ID_SIZE_MAX is 20


# The output part of the struct from vma_start on: vma_start, vma_end, vma_flags, vma_page_size,
# vma_offset, inode, dev_major, dev_minor, vma_name_size, build_id_size.
_ANSWER = struct.Struct("=QQQQQQIIII")
_ANSWER_OFFSET = 24
# Words of the struct rewritten before each query (the kernel overwrites the two sizes).
_QUERY_ADDR_WORD = 2  # query_addr
_SIZES_WORD = 10  # vma_name_size and build_id_size (offset 80), two u32 in one u64


def read_procmap(maps_fd: int, *, build_ids: bool = True, pid: int | None = None) -> list[Mapping]:
    """Every VMA of the process whose ``maps`` file is open as ``maps_fd``, in address order, as
    :class:`Mapping` (with ``build_id`` when asked for and the file has one).

    Built for 65,000 VMAs: the struct is packed once, and each query only rewrites the address
    and the two buffer sizes through a memoryview; the loop appends to a list (no generator).

    :raises Unsupported: no ``PROCMAP_QUERY`` here (``ENOTTY``; before 6.11, gVisor).
    :raises ProcessGone: the process exited during the walk.
    :raises ParseError: the kernel's answers did not advance through the address space.
    """
    buf = bytearray(PROCMAP_QUERY_STRUCT.size)
    words = memoryview(buf).cast("Q")
    name = ctypes.create_string_buffer(_NAME_MAX)
    build_id = ctypes.create_string_buffer(_BUILD_ID_MAX)
    build_id_size = _BUILD_ID_MAX if build_ids else 0
    # the kernel wants build_id_addr 0 exactly when build_id_size is 0 (else EINVAL)
    build_id_addr = ctypes.addressof(build_id) if build_ids else 0

    def prepare() -> int:
        PROCMAP_QUERY_STRUCT.pack_into(
            buf, 0, PROCMAP_QUERY_STRUCT.size, int(ProcmapQueryFlag.COVERING_OR_NEXT_VMA), 0,
            0, 0, 0, 0, 0, 0, 0, 0, len(name), build_id_size, ctypes.addressof(name),
            build_id_addr,
        )  # fmt: skip
        return words[_SIZES_WORD]

    sizes = prepare()
    ioctl, unpack, perms, new, out = fcntl.ioctl, _ANSWER.unpack_from, _PERMS, tuple.__new__, []
    append = out.append
    addr = 0
    try:
        while True:
            words[_QUERY_ADDR_WORD] = addr
            words[_SIZES_WORD] = sizes
            try:
                ioctl(maps_fd, PROCMAP_QUERY, buf, True)
            except OSError as err:
                if err.errno == errno.ENOENT:
                    return out
                if err.errno == errno.E2BIG and len(name) < 1 << 20:
                    name = ctypes.create_string_buffer(len(name) * 4)
                    sizes = prepare()
                    continue
                if err.errno == errno.ESRCH:
                    raise ProcessGone(pid) from err
                raise translate_oserror(err, pid, "maps", feature="PROCMAP_QUERY") from err
            start, end, vma_flags, _, offset, inode, major, minor, name_size, id_size = unpack(
                buf, _ANSWER_OFFSET
            )
            path, deleted = b"", False
            if name_size:
                path = ctypes.string_at(name, name_size - 1)
                if path.endswith(DELETED_SUFFIX):
                    path, deleted = split_deleted(path, inode)
            # tuple.__new__ skips the NamedTuple's Python-level __new__
            append(new(Mapping, (
                start, end, perms[vma_flags & 0xF], offset, major, minor, inode, path, deleted,
                ctypes.string_at(build_id, id_size) if id_size else None,
            )))  # fmt: skip
            if end <= addr:
                raise ParseError("PROCMAP_QUERY", f"walk did not advance at {addr:#x}")
            addr = end
    finally:
        words.release()


def iter_procmap(
    maps_fd: int, *, build_ids: bool = True, pid: int | None = None
) -> Iterator[Mapping]:
    """:func:`read_procmap` as an iterator (the walk itself is done before the first item)."""
    yield from read_procmap(maps_fd, build_ids=build_ids, pid=pid)


@cache
def find_vsyscall() -> Mapping | None:
    """The ``[vsyscall]`` gate VMA as this kernel shows it (from our own maps), or ``None`` when
    it has none (``vsyscall=none``, not x86_64). 64-bit processes on x86_64 all have the same one.
    """
    with open("/proc/self/maps", "rb") as file:
        for mapping in parse_maps(file.read()):
            if mapping.path == b"[vsyscall]":
                return mapping
    return None
