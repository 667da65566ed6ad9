"""Reading a process's VMAs: ``PROCMAP_QUERY`` when the kernel has it, the ``maps`` text otherwise.

Either way the result is the list the text file would show, ``[vsyscall]`` included (the
ioctl skips the gate VMA, so it is added from :func:`procfs.procmap.find_vsyscall` for 64-bit
processes, recognised by any mapping above 4 GiB). Whether the list is a consistent snapshot
depends only on the process being frozen (:mod:`procfs.freeze`).
"""

from __future__ import annotations

import os
from enum import IntEnum

from procfs.errors import Unsupported
from procfs.handle import ProcessHandle
from procfs.parse.maps import Mapping, gc_paused, parse_maps
from procfs.procmap import find_vsyscall, read_procmap


class MapsSource(IntEnum):
    """Where a VMA list came from."""

    PROCMAP_QUERY = 1
    TEXT = 2


_procmap_supported: bool | None = None  # kernel-wide; learnt by trying


def read_maps_text(handle: ProcessHandle) -> tuple[Mapping, ...]:
    """Parse the whole ``maps`` file, read on one fd (every record, ~4 KiB per ``read(2)``)."""
    return parse_maps(handle.read_bytes("maps"))


def read_maps_procmap(handle: ProcessHandle, *, build_ids: bool = True) -> tuple[Mapping, ...]:
    """Walk ``PROCMAP_QUERY`` and add ``[vsyscall]``.

    :raises Unsupported: the kernel has no ``PROCMAP_QUERY``.
    """
    fd = handle.open("maps")
    try:
        with gc_paused():
            vmas = read_procmap(fd, build_ids=build_ids, pid=handle.pid)
    finally:
        os.close(fd)
    gate = find_vsyscall()
    if gate is not None and vmas and vmas[-1].end > 1 << 32 and vmas[-1].end <= gate.start:
        vmas.append(gate)
    return tuple(vmas)


def read_maps(
    handle: ProcessHandle, source: MapsSource | None = None, *, build_ids: bool = True
) -> tuple[tuple[Mapping, ...], MapsSource]:
    """The VMAs of ``handle``'s process and where they came from.

    ``source=None`` tries ``PROCMAP_QUERY`` and falls back to the text (remembering that the
    ioctl is missing); a given ``source`` is used as asked.
    """
    global _procmap_supported
    if source is MapsSource.TEXT or (source is None and _procmap_supported is False):
        return read_maps_text(handle), MapsSource.TEXT
    try:
        vmas = read_maps_procmap(handle, build_ids=build_ids)
    except Unsupported:
        if source is MapsSource.PROCMAP_QUERY:
            raise
        _procmap_supported = False
        return read_maps_text(handle), MapsSource.TEXT
    _procmap_supported = True
    return vmas, MapsSource.PROCMAP_QUERY
