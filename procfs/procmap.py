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


def iter_procmap(
    maps_fd: int, *, build_ids: bool = True, pid: int | None = None
) -> Iterator[Mapping]:
    """Yield every VMA of the process whose ``maps`` file is open as ``maps_fd``, in address
    order, as :class:`Mapping` (with ``build_id`` when asked for and the file has one).

    :raises Unsupported: no ``PROCMAP_QUERY`` here (``ENOTTY``; before 6.11, gVisor).
    :raises ProcessGone: the process exited during the walk.
    """
    buf = bytearray(PROCMAP_QUERY_STRUCT.size)
    name = ctypes.create_string_buffer(_NAME_MAX)
    build_id = ctypes.create_string_buffer(_BUILD_ID_MAX)
    flags = int(ProcmapQueryFlag.COVERING_OR_NEXT_VMA)
    build_id_size = _BUILD_ID_MAX if build_ids else 0
    # the kernel wants build_id_addr 0 exactly when build_id_size is 0 (else EINVAL)
    build_id_addr = ctypes.addressof(build_id) if build_ids else 0
    buffers = (len(name), build_id_size, ctypes.addressof(name), build_id_addr)
    pack, unpack = PROCMAP_QUERY_STRUCT.pack_into, PROCMAP_QUERY_STRUCT.unpack_from
    ioctl, perms, size = fcntl.ioctl, _PERMS, PROCMAP_QUERY_STRUCT.size
    addr = 0
    while True:
        pack(buf, 0, size, flags, addr, 0, 0, 0, 0, 0, 0, 0, 0, *buffers)
        try:
            ioctl(maps_fd, PROCMAP_QUERY, buf, True)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return
            if err.errno == errno.E2BIG and len(name) < 1 << 20:
                name = ctypes.create_string_buffer(len(name) * 4)
                buffers = (len(name), build_id_size, ctypes.addressof(name), buffers[3])
                continue
            if err.errno == errno.ESRCH:
                raise ProcessGone(pid) from err
            raise translate_oserror(err, pid, "maps", feature="PROCMAP_QUERY") from err
        (_, _, _, start, end, vma_flags, _, offset, inode, major, minor,
         name_size, id_size, _, _) = unpack(buf)  # fmt: skip
        path, deleted = b"", False
        if name_size:
            path = name.raw[: name_size - 1]
            if path.endswith(DELETED_SUFFIX):
                path, deleted = split_deleted(path, inode)
        yield Mapping(
            start, end, perms[vma_flags & 0xF], offset, major, minor, inode, path, deleted,
            build_id.raw[:id_size] if id_size else None,
        )  # fmt: skip
        if end <= addr:
            raise ParseError("PROCMAP_QUERY", f"walk did not advance at {addr:#x}")
        addr = end


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
