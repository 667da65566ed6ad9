"""All call frame information of one module image: the entry point of :mod:`unwinder.cfi`.

``.eh_frame`` is looked up through the ``.eh_frame_hdr`` binary-search table (or a header scan
when the hdr is absent or has no table); ``.debug_frame`` (from the module or its separate
debug file) answers pcs that ``.eh_frame`` does not cover, e.g. Go functions or code built with
``-fno-asynchronous-unwind-tables -g``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unwinder.cfi.elfsource import FrameSections, load_frame_sections
from unwinder.cfi.entries import Fde
from unwinder.cfi.hdr import build_hdr_index
from unwinder.cfi.rules import CfiRow
from unwinder.cfi.source import CfiSource
from unwinder.errors import CfiError
from unwinder.log import LazyLogger

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

log = LazyLogger(__name__)

ARCHES = ("x86_64", "aarch64")


class CfiTable:
    """All CFI of one module image.

    :param arch: ``"x86_64"`` or ``"aarch64"``.
    :param eh_frame: lookups in ``.eh_frame``, or None.
    :param debug_frame: lookups in ``.debug_frame``, or None.
    """

    def __init__(
        self, *, arch: str, eh_frame: CfiSource | None = None,
        debug_frame: CfiSource | None = None,
    ) -> None:
        if arch not in ARCHES:
            raise ValueError(f"unsupported architecture {arch!r}")
        self.arch = arch
        self.eh_frame = eh_frame
        self.debug_frame = debug_frame

    @classmethod
    def from_elf(
        cls, elffile: ELFFile, *, arch: str, debug_elffile: ELFFile | None = None
    ) -> CfiTable | None:
        """Build the table of ``elffile``; None when it has no usable CFI at all.

        ``.eh_frame_hdr`` is found through ``PT_GNU_EH_FRAME`` (so images read from memory,
        such as the vDSO, work without section headers) and ``.eh_frame`` through the hdr's
        ``eh_frame_ptr``. ``.debug_frame`` comes from ``elffile`` or else ``debug_elffile``,
        zlib- or zstd-compressed or not.

        :raises CfiError: the ELF headers themselves cannot be read.
        """
        return cls.from_sections(load_frame_sections(elffile, debug_elffile=debug_elffile),
                                 arch=arch)

    @classmethod
    def from_sections(cls, sections: FrameSections, *, arch: str) -> CfiTable | None:
        """Build the table from already located sections; None when none is usable."""
        eh_frame = None
        if sections.eh_frame is not None:
            index = None
            if sections.hdr is not None and sections.eh_frame_hdr is not None:
                try:
                    index = build_hdr_index(sections.eh_frame_hdr, sections.hdr)
                except CfiError as err:
                    log.debug("failed to load the .eh_frame_hdr table, ignoring: %s", err)
            eh_frame = CfiSource(sections.eh_frame, arch=arch, index=index)
        debug_frame = None
        if sections.debug_frame is not None:
            debug_frame = CfiSource(sections.debug_frame, arch=arch)
        if eh_frame is None and debug_frame is None:
            return None
        return cls(arch=arch, eh_frame=eh_frame, debug_frame=debug_frame)

    def find_fde(self, pc: int) -> Fde | None:
        """The FDE covering link-time ``pc`` (``.eh_frame`` first), None when none does."""
        return self._lookup(pc, CfiSource.find_fde)

    def find_row(self, pc: int) -> CfiRow | None:
        """The unwind rules at link-time ``pc``.

        The caller subtracts the load bias and applies the pc-1 rule for caller frames.
        ``.debug_frame`` is consulted when ``.eh_frame`` has no FDE for ``pc`` or its FDE is
        malformed.

        :returns: None when no FDE covers ``pc`` (gaps between FDEs are real).
        :raises CfiError: the covering FDE is malformed in every source that has one.
        """
        return self._lookup(pc, CfiSource.find_row)

    def _lookup(self, pc: int, method):
        error: CfiError | None = None
        for source in (self.eh_frame, self.debug_frame):
            if source is None:
                continue
            try:
                found: Any = method(source, pc)
            except CfiError as err:
                error = error or err
                continue
            if found is not None:
                return found
        if error is not None:
            raise error
        return None
