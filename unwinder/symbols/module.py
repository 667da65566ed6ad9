"""Describing addresses of one module: symbols, file:line and inline frames.

This module only composes: symbol tables (:mod:`.symtab`, :mod:`.minidebuginfo`), the debug
file (:mod:`.locate`), DWARF (:mod:`.cuindex`, :mod:`.lineprog`, :mod:`.linetable`,
:mod:`.inlines`) and the cache (:mod:`.cache`). Opening is cheap (symbols, from the cache when
possible); DWARF is opened on the first :meth:`ModuleSymbols.describe` that needs it.

Names: the DWARF subprogram's linkage name when there is one (``__GI_raise``, as gdb and
eu-stack print), else the symbol table's choice (see :mod:`.symtab`); demangled.

Line tables: with a cache, the whole module's table is decoded once and stored by build-id;
without one, only the programs of the CUs asked about are decoded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from elftools.elf.elffile import ELFFile

from unwinder.errors import SymbolError, UnwindError
from unwinder.symbols.cuindex import CUIndex
from unwinder.symbols.demangle import demangle
from unwinder.symbols.dwarf import DwarfData
from unwinder.symbols.elfguard import guard
from unwinder.symbols.identity import find_build_id, find_debuglink
from unwinder.symbols.inlines import CUScopes, Scope
from unwinder.symbols.lineprog import LineProgram, decode_line_program, parse_line_header
from unwinder.symbols.linetable import LineTable
from unwinder.symbols.minidebuginfo import load_minidebuginfo
from unwinder.symbols.model import SourceLocation, SymbolizedFrame
from unwinder.symbols.sections import section_header
from unwinder.symbols.symtab import SymbolSource, SymbolTable, read_symbol_source

if TYPE_CHECKING:
    from unwinder.symbols.cache import SymbolCache
    from unwinder.symbols.locate import DebugFileLocator

log = logging.getLogger(__name__)

#: above this much ``.debug_line``, decode per CU even when caching (keeps the first crash fast)
MAX_WHOLE_LINE_TABLE = 64 << 20
#: at most this many CUs keep their DIE index in memory
MAX_CU_SCOPES = 64


class _Dwarf:
    """The DWARF side of a module, opened lazily; any corruption disables it."""

    def __init__(self, data: DwarfData, cache: SymbolCache | None, cache_key: str | None,
                 label: str) -> None:
        self.data = data
        self.index = CUIndex(data)
        self.label = label
        self.cache = cache
        self.cache_key = cache_key
        self.whole: LineTable | None = None
        self.per_cu: dict[int, LineTable | None] = {}
        self.headers: dict[int, LineProgram | None] = {}
        self.scopes: dict[int, CUScopes] = {}
        if cache is not None and cache_key is not None:
            self.whole = cache.load_lines(cache_key)
            if self.whole is None and len(data.get("line") or b"") <= MAX_WHOLE_LINE_TABLE:
                try:
                    self.whole = self._decode_all()
                except SymbolError as err:
                    log.warning("failed to decode the line table of %s, decoding per CU: %s",
                                label, err)
                else:
                    cache.store_lines(cache_key, self.whole)

    def _parse_header(self, cu_offset: int) -> LineProgram | None:
        info = self.index.info(cu_offset)
        line = self.data.get("line")
        if info.stmt_list is None or line is None:
            return None
        return parse_line_header(
            line, info.stmt_list, address_size=info.address_size, comp_dir=info.comp_dir,
            comp_name=info.name, debug_str=self.data.get("str"),
            debug_line_str=self.data.get("line_str"), little_endian=self.data.little_endian)

    def header(self, cu_offset: int) -> LineProgram | None:
        """The (undecoded) line program header of a CU: its file table."""
        if cu_offset not in self.headers:
            self.headers[cu_offset] = self._parse_header(cu_offset)
        return self.headers[cu_offset]

    def _decode(self, cu_offset: int) -> LineProgram | None:
        program = self._parse_header(cu_offset)
        line = self.data.get("line")
        return decode_line_program(line, program) if program is not None and line else None

    def _decode_all(self) -> LineTable:
        programs, seen = [], set()
        for cu_offset in self.index.iter_cu_offsets():
            stmt_list = self.index.info(cu_offset).stmt_list
            if stmt_list is None or stmt_list in seen:
                continue
            seen.add(stmt_list)
            program = self._decode(cu_offset)
            if program is not None:
                programs.append(program)
        return LineTable.from_programs(programs)

    def location(self, address: int, cu_offset: int | None) -> SourceLocation | None:
        if self.whole is not None:
            return self.whole.lookup(address)
        if cu_offset is None:
            return None
        if cu_offset not in self.per_cu:
            program = self._decode(cu_offset)
            self.per_cu[cu_offset] = LineTable.from_programs([program]) if program else None
        table = self.per_cu[cu_offset]
        return table.lookup(address) if table is not None else None

    def chain(self, address: int, cu_offset: int) -> list[Scope]:
        scopes = self.scopes.get(cu_offset)
        if scopes is None:
            if len(self.scopes) >= MAX_CU_SCOPES:
                self.scopes.pop(next(iter(self.scopes)))
            scopes = self.scopes[cu_offset] = CUScopes(self.data, cu_offset)
        return scopes.chain(address)

    def call_site(self, cu_offset: int, scope: Scope) -> SourceLocation | None:
        if scope.call_line is None:
            return None
        program = self.header(cu_offset)
        files = program.files if program is not None else []
        index = scope.call_file
        name = files[index] if index is not None and 0 <= index < len(files) else "??"
        return SourceLocation(name, scope.call_line, scope.call_column or 0)


class ModuleSymbols:
    """Everything needed to describe addresses of one module (keyed by build-id).

    Its symbols come from the separate debug file's ``.symtab``, else the module's
    ``.symtab``, else MiniDebugInfo (``.gnu_debugdata``) together with ``.dynsym``, else
    ``.dynsym`` alone; line tables and inline scopes, lazily, from the DWARF of the debug file
    or of the module itself.

    :ivar debug_file: path of the separate debug file used, ``None`` if none.
    :ivar build_id: the module's build-id.
    :ivar symbol_source: which table the symbols came from (for reports and tests).
    """

    def __init__(self, symbols: SymbolTable, *, path: str | None, build_id: bytes | None,
                 debug_file: str | None, dwarf_file: ELFFile | None, dwarf_label: str,
                 symbol_source: str, cache: SymbolCache | None, variant: str) -> None:
        self.symbols = symbols
        self.path = path
        self.build_id = build_id
        self.debug_file = debug_file
        self.symbol_source = symbol_source
        self._dwarf_file = dwarf_file
        self._dwarf_label = dwarf_label
        self._dwarf: _Dwarf | None = None
        self._dwarf_failed = False
        self._cache = cache
        self._variant = variant

    # -- opening -----------------------------------------------------------
    @classmethod
    def load(cls, elffile: ELFFile, *, path: str | None, build_id: bytes | None,
             locator: DebugFileLocator | None = None,
             cache: SymbolCache | None = None) -> ModuleSymbols:
        """Open a module from ``elffile`` (a file on disk, or the vDSO image in a ``BytesIO``).

        :raises SymbolError: the module's own headers are unusable.
        """
        label = path or "<memory>"
        if build_id is None:
            build_id = find_build_id(elffile)
        has_dwarf = section_header(elffile, ".debug_info") is not None or \
            section_header(elffile, ".zdebug_info") is not None
        has_symtab = _has_symbols(elffile, ".symtab")
        debug_elf, debug_path = None, None
        if locator is not None and not (has_dwarf and has_symtab):
            try:
                found = locator.find(build_id=build_id, path=path,
                                     debuglink=find_debuglink(elffile))
            except (OSError, UnwindError) as err:
                log.warning("failed to find the debug file of %s, ignoring: %s", label, err)
                found = None
            if found is not None:
                try:
                    handle = open(found, "rb")  # noqa: SIM115 - owned by the ELFFile
                    with guard(f"debug file {found}"):
                        debug_elf = ELFFile(handle)
                    debug_path = str(found)
                except (OSError, UnwindError) as err:
                    log.warning("failed to open debug file %s, ignoring: %s", found, err)
        variant = "d" if debug_path else "m"
        key = f"{build_id.hex()}-{variant}" if build_id else None
        symbols = cache.load_symbols(key) if cache is not None and key else None
        source = "cache"
        if symbols is None:
            symbols, source = _read_symbols(elffile, debug_elf, label)
            if cache is not None and key:
                cache.store_symbols(key, symbols)
        if debug_elf is not None and (section_header(debug_elf, ".debug_info") is not None or
                                      section_header(debug_elf, ".zdebug_info") is not None):
            dwarf_file, dwarf_label = debug_elf, str(debug_path)
        elif has_dwarf:
            dwarf_file, dwarf_label = elffile, label
        else:
            dwarf_file, dwarf_label = None, label
        return cls(symbols, path=path, build_id=build_id, debug_file=debug_path,
                   dwarf_file=dwarf_file, dwarf_label=dwarf_label, symbol_source=source,
                   cache=cache, variant=variant)

    def _open_dwarf(self) -> _Dwarf | None:
        if self._dwarf is not None or self._dwarf_failed or self._dwarf_file is None:
            return self._dwarf
        try:
            data = DwarfData.load(self._dwarf_file)
            if data is not None:
                key = f"{self.build_id.hex()}-{self._variant}" if self.build_id else None
                self._dwarf = _Dwarf(data, self._cache, key, self._dwarf_label)
        except UnwindError as err:
            log.warning("failed to read DWARF of %s, ignoring: %s", self._dwarf_label, err)
        if self._dwarf is None:
            self._dwarf_failed = True
        return self._dwarf

    # -- describing ----------------------------------------------------------
    def describe(self, address: int) -> list[SymbolizedFrame]:
        """The logical frames at link-time ``address``, innermost first.

        Inline frames (``inline=True``) come first, then the containing function; there is
        always at least one element (``function=None`` when nothing is known). The innermost
        frame gets the line table's location, each outer one the call site of the frame inside
        it, as ``eu-stack -i`` and gdb show them.
        """
        scopes: list[Scope] = []
        location = None
        cu_offset = None
        dwarf = self._open_dwarf()
        if dwarf is not None:
            try:
                cu_offset = dwarf.index.find_cu(address)
                location = dwarf.location(address, cu_offset)
                if cu_offset is not None:
                    scopes = dwarf.chain(address, cu_offset)
            except UnwindError as err:
                log.warning("bad DWARF in %s at %#x, ignoring: %s", self._dwarf_label, address,
                            err)
                scopes = []
        symbol = self.symbols.lookup(address)
        if not scopes:
            if symbol is None:
                return [SymbolizedFrame(None, None, location, False)]
            return [_frame(symbol[0], address - symbol[1], location, False)]
        frames = []
        for depth in range(len(scopes) - 1, -1, -1):
            scope = scopes[depth]
            if depth == 0:
                name = scope.name
                start = scope.start
                if name is None and symbol is not None:
                    name, start = symbol
                frames.append(_frame(name, address - start, location, False))
            else:
                frames.append(_frame(scope.name, None, location, True))
                try:
                    location = dwarf.call_site(cu_offset, scope) if dwarf else None
                except UnwindError as err:
                    log.warning("bad line program header in %s, ignoring: %s",
                                self._dwarf_label, err)
                    location = None
        return frames


def _frame(name: str | None, offset: int | None, location: SourceLocation | None,
           inline: bool) -> SymbolizedFrame:
    if name is None:
        return SymbolizedFrame(None, offset, location, inline)
    shown = demangle(name)
    return SymbolizedFrame(shown, offset, location, inline, name if shown != name else None)


def _has_symbols(elffile: ELFFile, name: str) -> bool:
    header = section_header(elffile, name)
    return header is not None and header["sh_type"] != "SHT_NOBITS" and header["sh_size"] > 0


def _read_symbols(elffile: ELFFile, debug_elf: ELFFile | None,
                  label: str) -> tuple[SymbolTable, str]:
    """The best symbol table available, and a word saying which it was."""
    sources: list[SymbolSource] = []
    kind = "none"
    if debug_elf is not None:
        try:
            found = read_symbol_source(debug_elf, ".symtab", f"debug file of {label}")
            if found is not None:
                sources.append(found)
                kind = "debug-symtab"
        except SymbolError as err:
            log.warning("failed to read the debug file's symbols, ignoring: %s", err)
    if not sources:
        found = read_symbol_source(elffile, ".symtab", label)
        if found is not None:
            sources.append(found)
            kind = "symtab"
    if not sources:
        try:
            mini = load_minidebuginfo(elffile)
            found = read_symbol_source(mini, ".symtab", f"{label} .gnu_debugdata") \
                if mini is not None else None
            if found is not None:
                sources.append(found)
                kind = "minidebuginfo"
        except SymbolError as err:
            log.warning("failed to read MiniDebugInfo of %s, ignoring: %s", label, err)
    dynsym = read_symbol_source(elffile, ".dynsym", label)
    if dynsym is not None and kind in ("none", "minidebuginfo"):
        sources.append(dynsym)
        kind = "dynsym" if kind == "none" else "minidebuginfo+dynsym"
    return SymbolTable.from_sources(sources), kind
