"""Which compilation unit covers an address, and what its top DIE says.

``.debug_aranges`` first (our parser); for addresses it does not cover, a fallback map from
every CU's top DIE (``low_pc``/``high_pc``/``ranges``, DWARF 5 rnglists included), built once
on the first miss. Top DIEs are read with pyelftools.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from unwinder.errors import SymbolError
from unwinder.symbols.aranges import ArangeMap, parse_aranges
from unwinder.symbols.dieranges import cu_base_address, die_ranges
from unwinder.symbols.dwarf import DwarfData
from unwinder.symbols.elfguard import guard

#: refuse to index more CUs than this
MAX_CUS = 1 << 20


@dataclass(frozen=True)
class CUInfo:
    """The top DIE of a CU, reduced to what line lookups need."""

    offset: int
    version: int
    address_size: int
    stmt_list: int | None
    comp_dir: str | None
    name: str | None
    base_address: int


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else None


def unit_offsets(info: bytes, little_endian: bool) -> list[int]:
    """Where each unit of ``info`` (a ``.debug_info``) starts: each header's initial length
    (32-bit, or ``0xffffffff`` and a 64-bit one) leads to the next, as pyelftools' walk does.

    :raises SymbolError: more than :data:`MAX_CUS` units, or a length running past the end.
    """
    order = "<" if little_endian else ">"
    offsets: list[int] = []
    pos, size = 0, len(info)
    while pos < size:
        if len(offsets) >= MAX_CUS:
            raise SymbolError(f"more than {MAX_CUS} compilation units")
        if pos + 4 > size:
            raise SymbolError(f"unit header at {pos:#x} truncated")
        (length,) = struct.unpack_from(order + "I", info, pos)
        header = 4
        if length == 0xFFFFFFFF:
            if pos + 12 > size:
                raise SymbolError(f"unit header at {pos:#x} truncated")
            (length,) = struct.unpack_from(order + "Q", info, pos + 4)
            header = 12
        offsets.append(pos)
        pos += header + length
    if pos > size:
        raise SymbolError(f"the unit at {offsets[-1]:#x} runs past .debug_info")
    return offsets


class CUIndex:
    """Address → CU lookup over one file's DWARF."""

    def __init__(self, dwarf: DwarfData) -> None:
        self.dwarf = dwarf
        aranges = dwarf.get("aranges")
        self._aranges = (parse_aranges(aranges, dwarf.little_endian) if aranges
                         else ArangeMap.from_ranges([]))
        self._fallback: ArangeMap | None = None
        self._infos: dict[int, CUInfo] = {}

    def find_cu(self, address: int) -> int | None:
        """``.debug_info`` offset of the CU whose code contains ``address``."""
        found = self._aranges.find(address)
        if found is not None:
            return found
        if self._fallback is None:
            self._fallback = self._build_fallback()
        return self._fallback.find(address)

    def iter_cu_offsets(self) -> list[int]:
        """Offsets of every unit in ``.debug_info``, in section order, from their lengths
        alone: pyelftools' ``iter_CUs`` parses and keeps every CU (and its abbreviation table)
        on the way, 4.5 MiB of libc6-dbg's 2,000 CUs for a list of numbers."""
        return unit_offsets(self.dwarf.get("info") or b"", self.dwarf.little_endian)

    def info(self, cu_offset: int) -> CUInfo:
        """The top-DIE facts of the CU at ``cu_offset``."""
        cached = self._infos.get(cu_offset)
        if cached is not None:
            return cached
        with guard(f"CU at {cu_offset:#x}"):
            cu = self.dwarf.dwarfinfo.get_CU_at(cu_offset)
            top = cu.get_top_DIE()
            attrs = top.attributes
            stmt = attrs.get("DW_AT_stmt_list")
            info = CUInfo(
                offset=cu_offset, version=cu.header["version"],
                address_size=cu.header["address_size"],
                stmt_list=stmt.value if stmt is not None and isinstance(stmt.value, int)
                else None,
                comp_dir=_text(attrs["DW_AT_comp_dir"].value) if "DW_AT_comp_dir" in attrs
                else None,
                name=_text(attrs["DW_AT_name"].value) if "DW_AT_name" in attrs else None,
                base_address=cu_base_address(top))
        self._infos[cu_offset] = info
        return info

    def _build_fallback(self) -> ArangeMap:
        covered = self._aranges.cu_offset_set()
        ranges: list[tuple[int, int, int]] = []
        with guard("DWARF compilation unit ranges"):
            dwarfinfo = self.dwarf.dwarfinfo
            for count, cu in enumerate(dwarfinfo.iter_CUs()):
                if count > MAX_CUS:
                    raise SymbolError(f"more than {MAX_CUS} compilation units")
                if cu.cu_offset in covered:
                    continue
                top = cu.get_top_DIE()
                for start, end in die_ranges(top, self.dwarf.range_lists, cu_base_address(top)):
                    ranges.append((start, end, cu.cu_offset))
        return ArangeMap.from_ranges(ranges)
