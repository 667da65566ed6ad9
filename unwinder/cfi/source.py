"""One CFI section ready for lookups: index, CIE cache, FDE program cache, row computation.

A :class:`CfiSource` wraps ``.eh_frame`` (indexed by ``.eh_frame_hdr`` or by a header scan)
or ``.debug_frame`` (always scanned, lazily on first use). This is the single place where
low-level exceptions from parsing untrusted bytes are turned into :class:`CfiError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import lru_cache

from unwinder.cfi.decode import Program
from unwinder.cfi.entries import Cie, Fde, parse_cie, parse_fde
from unwinder.cfi.index import FdeIndex
from unwinder.cfi.program import InitialState, run_initial, run_to_pc
from unwinder.cfi.rules import CfiRow
from unwinder.cfi.scan import scan_fdes
from unwinder.cfi.section import FrameSection
from unwinder.errors import CfiError

#: FDEs whose decoded programs are kept (deep recursion and many threads revisit a few)
FDE_CACHE_SIZE = 512
#: what a bug in our bounds checks would raise on hostile bytes
_LOW_LEVEL_ERRORS = (IndexError, KeyError, struct.error, ValueError, OverflowError, MemoryError)


class CfiSource:
    """Lookups in one CFI section.

    :param section: the section bytes and addressing.
    :param arch: ``"x86_64"`` or ``"aarch64"``.
    :param index: a prebuilt index (from ``.eh_frame_hdr``); when None the section's entry
        headers are scanned on first lookup.
    """

    def __init__(self, section: FrameSection, *, arch: str, index: FdeIndex | None = None):
        self.section = section
        self.arch = arch
        self._index = index
        self._cies: dict[int, tuple[Cie, InitialState]] = {}
        self._load_fde = lru_cache(maxsize=FDE_CACHE_SIZE)(self._parse_fde_program)

    @property
    def index(self) -> FdeIndex:
        """The FDE index, scanning the section the first time it is needed."""
        if self._index is None:
            try:
                self._index = scan_fdes(self.section, self.get_cie)
            except _LOW_LEVEL_ERRORS as err:
                raise CfiError(f"cannot index {self.section.name}: {err!r}") from err
        return self._index

    def get_cie(self, offset: int) -> Cie:
        """The CIE at ``offset`` (cached with its initial state)."""
        return self._get_cie_state(offset)[0]

    def _get_cie_state(self, offset: int) -> tuple[Cie, InitialState]:
        entry = self._cies.get(offset)
        if entry is None:
            cie = parse_cie(self.section, offset)
            start, end = cie.instructions
            program = Program(
                self.section,
                start,
                end,
                code_alignment=cie.code_alignment,
                data_alignment=cie.data_alignment,
                fde_encoding=cie.fde_encoding,
                arch=self.arch,
            )
            entry = self._cies[offset] = (cie, run_initial(program))
        return entry

    def _parse_fde_program(self, offset: int) -> tuple[Fde, Program, InitialState]:
        fde = parse_fde(self.section, offset, self.get_cie)
        cie, initial = self._get_cie_state(fde.cie.offset)
        start, end = fde.instructions
        program = Program(
            self.section,
            start,
            end,
            pc_begin=fde.pc_begin,
            code_alignment=cie.code_alignment,
            data_alignment=cie.data_alignment,
            fde_encoding=cie.fde_encoding,
            arch=self.arch,
        )
        return fde, program, initial

    def iter_fdes(self) -> Iterator[Fde]:
        """Every FDE of the index in address order; malformed ones are left out."""
        index = self.index
        for offset in index.offsets:
            try:
                yield self._load_fde(offset + index.offset_bias)[0]
            except (CfiError, *_LOW_LEVEL_ERRORS):
                continue

    def find_fde(self, pc: int) -> Fde | None:
        """The FDE covering link-time ``pc``; None in gaps and outside the section's FDEs.

        :raises CfiError: the candidate FDE (or its CIE) is malformed.
        """
        return self._find(pc)[0]

    def _find(self, pc: int) -> tuple[Fde | None, Program | None, InitialState | None]:
        offset = self.index.find(pc)
        if offset is None:
            return None, None, None
        if not 0 <= offset < self.section.size:
            raise CfiError(f"index points outside {self.section.name}", offset)
        try:
            fde, program, initial = self._load_fde(offset)
        except _LOW_LEVEL_ERRORS as err:
            raise CfiError(f"malformed FDE: {err!r}", offset) from err
        if not fde.pc_begin <= pc < fde.pc_end:
            return None, None, None
        return fde, program, initial

    def find_row(self, pc: int) -> CfiRow | None:
        """The rules at link-time ``pc``; None when no FDE of this section covers it.

        :raises CfiError: the covering FDE is malformed.
        """
        fde, program, initial = self._find(pc)
        if fde is None:
            return None
        cie = fde.cie
        try:
            return run_to_pc(
                program,
                initial,
                pc=pc,
                pc_begin=fde.pc_begin,
                pc_end=fde.pc_end,
                return_address_column=cie.return_address_column,
                signal_frame=cie.signal_frame,
            )
        except _LOW_LEVEL_ERRORS as err:
            raise CfiError(f"cannot run FDE program: {err!r}", fde.offset) from err
