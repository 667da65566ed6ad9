"""Function symbols of one module as sorted arrays, with a deterministic alias choice.

Our own: tables are parsed with ``struct.iter_unpack`` (pyelftools' ``iter_symbols()`` costs
~18 µs per symbol, seconds for big tables); pyelftools only finds the sections.

Kept: ``STT_FUNC`` and ``STT_GNU_IFUNC`` (the resolver's code) with a non-zero value and a
defined section. ``STT_NOTYPE`` is not kept: glibc's hand-written entry points such as
``__restore_rt`` are ``STT_FUNC`` (with size 0), and NOTYPE symbols in text are section
markers (``__start_*``) or ARM mapping symbols, not functions.

Aliases at one address (``raise``/``__GI_raise``/``gsignal``): a sized symbol beats a
zero-size one, then GLOBAL > WEAK > LOCAL, then FUNC > IFUNC, then table order. This is
gdb's minimal-symbol preference (``info symbol`` says ``raise``). When DWARF describes the
function, :class:`~unwinder.symbols.module.ModuleSymbols` names it from the DWARF linkage name
instead (``__GI_raise``), as gdb's and eu-stack's backtraces do.

Zero-size symbols extend to the next kept symbol, capped at the end of their section.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right
from typing import TYPE_CHECKING, NamedTuple

from unwinder.errors import SymbolError
from unwinder.symbols.elfguard import guard
from unwinder.symbols.sections import read_section

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

STT_FUNC = 2
STT_GNU_IFUNC = 10
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
#: refuse symbol tables with more entries than this
MAX_SYMBOLS = 20_000_000
_MAX_ADDRESS = (1 << 64) - 1

_BINDING_RANK = {STB_GLOBAL: 0, STB_WEAK: 1, STB_LOCAL: 2}
#: (entry format, field order) per (ELF class, little endian)
_LAYOUT = {
    (64, True): ("<IBBHQQ", False), (64, False): (">IBBHQQ", False),
    (32, True): ("<IIIBBH", True), (32, False): (">IIIBBH", True),
}


class SymbolSource(NamedTuple):
    """The raw bytes of one symbol table, ready to parse.

    :ivar section_bounds: ``(sh_addr, sh_size)`` per section index of the file holding it.
    """

    symbols: bytes
    strings: bytes
    elfclass: int
    little_endian: bool
    section_bounds: tuple[tuple[int, int], ...]
    name: str


def read_symbol_source(elffile: ELFFile, section_name: str, label: str) -> SymbolSource | None:
    """The symbol table ``section_name`` (``.symtab``/``.dynsym``) of ``elffile``, or ``None``."""
    with guard(f"{label} {section_name}"):
        section = elffile.get_section_by_name(section_name)
        if section is None or section.header["sh_type"] == "SHT_NOBITS":
            return None
        symbols = read_section(elffile, section_name)
        strtab = elffile.get_section(section.header["sh_link"])
        strings = read_section(elffile, strtab.name) if strtab is not None else None
        if symbols is None or strings is None:
            return None
        bounds = tuple((s.header["sh_addr"], s.header["sh_size"])
                       for s in elffile.iter_sections())
        return SymbolSource(symbols, strings, elffile.elfclass, elffile.little_endian,
                            bounds, f"{label} {section_name}")


class SymbolTable:
    """Function symbols sorted by address, one name per address.

    :ivar addresses: start addresses (link-time), ascending, unique.
    :ivar ends: end addresses (exclusive), after zero-size extension.
    :ivar name_offsets: start of each name in :attr:`names` (a ``\\0``-joined blob).
    """

    def __init__(self, addresses: array, ends: array, name_offsets: array, names: bytes) -> None:
        if not (len(addresses) == len(ends) == len(name_offsets)):
            raise SymbolError("symbol arrays of different lengths")
        self.addresses = addresses
        self.ends = ends
        self.name_offsets = name_offsets
        self.names = names

    def __len__(self) -> int:
        return len(self.addresses)

    @classmethod
    def empty(cls) -> SymbolTable:
        return cls(array("Q"), array("Q"), array("I"), b"")

    @classmethod
    def from_sources(cls, sources: list[SymbolSource]) -> SymbolTable:
        """Merge the function symbols of ``sources`` (e.g. MiniDebugInfo + ``.dynsym``)."""
        candidates: list[tuple[int, int, int, int, int, bytes, int]] = []
        seq = 0
        for source in sources:
            seq = _collect(source, candidates, seq)
        candidates.sort()
        addresses, ends, offsets = array("Q"), array("Q"), array("I")
        bounds: list[int] = []
        names: list[bytes] = []
        blob_len = 0
        last = None
        for value, neg_size, _bind, _type, _seq, name, section_end in candidates:
            if value == last:
                continue
            last = value
            addresses.append(value)
            ends.append(min(value - neg_size, _MAX_ADDRESS))
            bounds.append(section_end)
            offsets.append(blob_len)
            names.append(name)
            blob_len += len(name) + 1
        # zero-size symbols (marked by end == start) extend to the next symbol
        count = len(addresses)
        for i in range(count):
            if ends[i] == addresses[i]:
                nxt = addresses[i + 1] if i + 1 < count else bounds[i]
                end = min(nxt, bounds[i]) if bounds[i] > addresses[i] else nxt
                ends[i] = min(max(end, addresses[i] + 1), _MAX_ADDRESS)
        return cls(addresses, ends, offsets, b"\0".join(names) + b"\0")

    def find(self, address: int) -> int | None:
        """Index of the symbol containing ``address``, ``None`` when none does."""
        i = bisect_right(self.addresses, address) - 1
        stop = max(i - 16, -1)
        while i > stop:
            if address < self.ends[i]:
                return i
            i -= 1
        return None

    def name(self, index: int) -> str:
        start = self.name_offsets[index]
        end = self.names.find(b"\0", start)
        return self.names[start:end if end >= 0 else len(self.names)].decode(
            "utf-8", "surrogateescape")

    def lookup(self, address: int) -> tuple[str, int] | None:
        """``(name, start address)`` of the symbol containing ``address``."""
        i = self.find(address)
        return None if i is None else (self.name(i), self.addresses[i])


def _collect(source: SymbolSource, out: list, seq: int) -> int:
    layout = _LAYOUT.get((source.elfclass, source.little_endian))
    if layout is None:
        raise SymbolError(f"{source.name}: unsupported ELF class {source.elfclass}")
    fmt, is32 = layout
    entry = struct.calcsize(fmt)
    data = source.symbols
    usable = len(data) - len(data) % entry
    if usable // entry > MAX_SYMBOLS:
        raise SymbolError(f"{source.name}: {usable // entry} symbols is implausible")
    strings = source.strings
    bounds = source.section_bounds
    nbounds = len(bounds)
    view = memoryview(data)[:usable]
    for fields in struct.iter_unpack(fmt, view):
        if is32:
            st_name, st_value, st_size, st_info, _other, st_shndx = fields
        else:
            st_name, st_info, _other, st_shndx, st_value, st_size = fields
        kind = st_info & 0xF
        if (kind != STT_FUNC and kind != STT_GNU_IFUNC) or not st_value \
                or st_shndx == SHN_UNDEF:
            continue
        seq += 1
        end_name = strings.find(b"\0", st_name)
        if st_name >= len(strings) or end_name < 0:
            raise SymbolError(f"{source.name}: symbol name offset {st_name:#x} out of range")
        name = strings[st_name:end_name]
        if not name:
            continue
        section_end = 0
        if st_shndx < nbounds and st_shndx < SHN_LORESERVE:
            sh_addr, sh_size = bounds[st_shndx]
            if sh_addr <= st_value < sh_addr + sh_size:
                section_end = sh_addr + sh_size
        bind_rank = _BINDING_RANK.get(st_info >> 4, 3)
        # -size: bigger sizes sort first, zero-size last
        out.append((st_value, -st_size, bind_rank, 0 if kind == STT_FUNC else 1, seq, name,
                    section_end))
    return seq
