"""The DWARF of one ELF file: section bytes (ours, decompressed) and a pyelftools ``DWARFInfo``.

pyelftools' ``get_dwarf_info()`` reads compressed sections itself and raises on zstd; here it
gets streams over the bytes that :mod:`unwinder.symbols.sections` already decompressed. No
relocations are applied: executables, shared objects and their debug files have none in
their DWARF.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from io import BytesIO
from typing import TYPE_CHECKING

from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DwarfConfig, DWARFInfo

from unwinder.symbols.abbrev import AbbrevTable, parse_abbrev_table
from unwinder.symbols.elfguard import guard
from unwinder.symbols.sections import read_section

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

_SECTIONS = (
    "info", "aranges", "abbrev", "str", "line", "frame", "loc", "ranges", "pubtypes",
    "pubnames", "addr", "str_offsets", "line_str", "loclists", "rnglists", "types",
)
#: decompressed on first :meth:`DwarfData.get`, never for pyelftools: DIE walks do not need
#: them, and the line table usually comes from the cache (a sixth of a warm backtrace went
#: to inflating ``.debug_line`` and ``.debug_loclists`` of libc's debug file)
_LAZY = frozenset({"line", "frame", "loc", "pubtypes", "pubnames", "loclists"})


@dataclass
class DwarfData:
    """Decompressed ``.debug_*`` sections of one file, keyed by short name (``"line"``)."""

    sections: dict[str, bytes]
    little_endian: bool
    address_size: int
    machine_arch: str
    #: where the :data:`_LAZY` sections are read from on first use
    elffile: ELFFile | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, elffile: ELFFile) -> DwarfData | None:
        """The file's DWARF, ``None`` when it has no ``.debug_info``."""
        sections = {}
        for short in _SECTIONS:
            if short in _LAZY:
                continue
            data = read_section(elffile, f".debug_{short}")
            if data is not None:
                sections[short] = data
        if "info" not in sections or "abbrev" not in sections:
            return None
        with guard("ELF header"):
            arch = elffile.get_machine_arch()
        return cls(sections, elffile.little_endian, elffile.elfclass // 8, arch, elffile)

    def get(self, short: str) -> bytes | None:
        """Section ``.debug_<short>``, decompressed; ``None`` when absent.

        :raises SymbolError: a lazily read section is malformed.
        """
        if short not in self.sections and short in _LAZY and self.elffile is not None:
            self.sections[short] = read_section(self.elffile, f".debug_{short}")  # type: ignore[assignment]
        return self.sections.get(short)

    @cached_property
    def dwarfinfo(self) -> DWARFInfo:
        """pyelftools over our section bytes (for DIE walks)."""
        def descriptor(short: str) -> DebugSectionDescriptor | None:
            data = None if short in _LAZY else self.sections.get(short)
            if data is None:
                return None
            return DebugSectionDescriptor(BytesIO(data), f".debug_{short}", 0, len(data), 0)

        with guard("DWARF"):
            return _DWARFInfo(
                self.sections["abbrev"],
                config=DwarfConfig(little_endian=self.little_endian,
                                   default_address_size=self.address_size,
                                   machine_arch=self.machine_arch),
                debug_info_sec=descriptor("info"), debug_aranges_sec=descriptor("aranges"),
                debug_abbrev_sec=descriptor("abbrev"), debug_frame_sec=None,
                eh_frame_sec=None, debug_str_sec=descriptor("str"),
                debug_loc_sec=descriptor("loc"), debug_ranges_sec=descriptor("ranges"),
                debug_line_sec=descriptor("line"), debug_pubtypes_sec=None,
                debug_pubnames_sec=None, debug_addr_sec=descriptor("addr"),
                debug_str_offsets_sec=descriptor("str_offsets"),
                debug_line_str_sec=descriptor("line_str"),
                debug_loclists_sec=descriptor("loclists"),
                debug_rnglists_sec=descriptor("rnglists"), debug_sup_sec=None,
                gnu_debugaltlink_sec=None, debug_types_sec=descriptor("types"))

    def forget_units(self) -> None:
        """Let go of the parsed compilation units and abbreviation tables: after a pass over
        every CU (a whole line table) they are tens of MiB; later lookups parse what they need
        again."""
        if "dwarfinfo" in self.__dict__:
            self.dwarfinfo.forget_units()

    @cached_property
    def range_lists(self):
        """pyelftools' range-list reader (one instance; it is rebuilt on every call)."""
        with guard("DWARF range lists"):
            return self.dwarfinfo.range_lists()


class _DWARFInfo(DWARFInfo):
    """pyelftools' ``DWARFInfo`` with our abbreviation tables (:mod:`.abbrev`)."""

    def __init__(self, abbrev: bytes, **sections) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**sections)
        self._abbrev = abbrev
        self._abbrev_tables: dict[int, AbbrevTable] = {}

    def get_abbrev_table(self, offset: int) -> AbbrevTable:  # type: ignore[override]
        table = self._abbrev_tables.get(offset)
        if table is None:
            table = self._abbrev_tables[offset] = parse_abbrev_table(self._abbrev, offset)
        return table

    def forget_units(self) -> None:
        self._abbrev_tables.clear()
        # pyelftools' CU cache (0.30+: two parallel lists); a CU is parsed again on demand
        for name in ("_cu_cache", "_cu_offsets_map"):
            cached = getattr(self, name, None)
            if isinstance(cached, list):
                cached.clear()
