"""Describing addresses of one module: symbols, file:line and inline frames.

This module only composes: symbol tables (:mod:`.symtab`, :mod:`.minidebuginfo`), the debug
file (:mod:`.locate`), DWARF (:mod:`.moduledwarf`) and the cache (:mod:`.cache`). Opening
only finds the debug file; symbols (from the cache when possible) and DWARF are read by the
first :meth:`ModuleSymbols.describe` that needs them.

Names: the DWARF subprogram's linkage name when there is one (``__GI_raise``, as gdb and
eu-stack print), else the symbol table's choice (see :mod:`.symtab`); demangled.

With a cache, every answer of :meth:`ModuleSymbols.describe` is kept too
(:mod:`.described`): addresses asked about before never open the DWARF.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from unwinder.elffile import ElfFile
from unwinder.errors import SymbolError, UnwindError
from unwinder.log import LazyLogger
from unwinder.symbols.demangle import demangle
from unwinder.symbols.described import DescribedAddresses
from unwinder.symbols.elfguard import guard
from unwinder.symbols.identity import find_build_id, find_debuglink
from unwinder.symbols.minidebuginfo import load_minidebuginfo
from unwinder.symbols.model import SourceLocation, SymbolizedFrame
from unwinder.symbols.sections import SHT_NOBITS, section_header
from unwinder.symbols.symtab import SymbolSource, SymbolTable, read_symbol_source

if TYPE_CHECKING:
    from unwinder.symbols.cache import SymbolCache
    from unwinder.symbols.inlines import Scope
    from unwinder.symbols.locate import DebugFileLocator
    from unwinder.symbols.moduledwarf import ModuleDwarf

log = LazyLogger(__name__)

class ModuleSymbols:
    """Everything needed to describe addresses of one module (keyed by build-id).

    Its symbols come from the separate debug file's ``.symtab``, else the module's
    ``.symtab``, else MiniDebugInfo (``.gnu_debugdata``) together with ``.dynsym``, else
    ``.dynsym`` alone; line tables and inline scopes, lazily, from the DWARF of the debug file
    or of the module itself. Symbols are read on first use too: a warm backtrace whose
    addresses the cache answers never reads them.

    :ivar debug_file: path of the separate debug file used, ``None`` if none.
    :ivar build_id: the module's build-id.
    """

    def __init__(self, elffile: ElfFile, debug_elf: ElfFile | None, *, path: str | None,
                 build_id: bytes | None, debug_file: str | None, dwarf_file: ElfFile | None,
                 dwarf_label: str, cache: SymbolCache | None, variant: str) -> None:
        self.path = path
        self.build_id = build_id
        self.debug_file = debug_file
        self._elffile = elffile
        self._debug_elf = debug_elf
        self._symbols: SymbolTable | None = None
        self._symbol_source = "none"
        self._dwarf_file = dwarf_file
        self._dwarf_label = dwarf_label
        self._dwarf: ModuleDwarf | None = None
        self._dwarf_failed = False
        self._cache = cache
        self._cache_key = f"{build_id.hex()}-{variant}" if build_id else None
        self._described: DescribedAddresses | None = None

    # -- opening -----------------------------------------------------------
    @classmethod
    def load(cls, elffile: ElfFile, *, path: str | None, build_id: bytes | None,
             locator: DebugFileLocator | None = None,
             cache: SymbolCache | None = None) -> ModuleSymbols:
        """Open a module from ``elffile`` (a file on disk, or the vDSO image in a ``BytesIO``).

        :raises SymbolError: the module's own section headers are unusable.
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
                    handle = open(found, "rb")  # noqa: SIM115 - owned by the ElfFile
                    with guard(f"debug file {found}"):
                        debug_elf = ElfFile(handle)
                    debug_path = str(found)
                except (OSError, UnwindError) as err:
                    log.warning("failed to open debug file %s, ignoring: %s", found, err)
        variant = "d" if debug_path else "m"
        if debug_elf is not None and (section_header(debug_elf, ".debug_info") is not None or
                                      section_header(debug_elf, ".zdebug_info") is not None):
            dwarf_file, dwarf_label = debug_elf, str(debug_path)
        elif has_dwarf:
            dwarf_file, dwarf_label = elffile, label
        else:
            dwarf_file, dwarf_label = None, label
        return cls(elffile, debug_elf, path=path, build_id=build_id, debug_file=debug_path,
                   dwarf_file=dwarf_file, dwarf_label=dwarf_label, cache=cache, variant=variant)

    @property
    def symbols(self) -> SymbolTable:
        """The symbol table, read on first use (from the cache when it has it).

        :raises SymbolError: the module's own headers are unusable.
        """
        if self._symbols is None:
            label = self.path or "<memory>"
            key, cache = self._cache_key, self._cache
            symbols = cache.load_symbols(key) if cache is not None and key else None
            source = "cache"
            if symbols is None:
                symbols, source = _read_symbols(self._elffile, self._debug_elf, label)
                if cache is not None and key:
                    cache.store_symbols(key, symbols)
            self._symbols, self._symbol_source = symbols, source
        return self._symbols

    @property
    def symbol_source(self) -> str:
        """Which table the symbols came from (for reports and tests); reads them."""
        _ = self.symbols
        return self._symbol_source

    def _open_dwarf(self) -> ModuleDwarf | None:
        if self._dwarf is not None or self._dwarf_failed or self._dwarf_file is None:
            return self._dwarf
        # imported here: pyelftools' DWARF side is not needed when the cache answers
        from unwinder.symbols.dwarf import DwarfData
        from unwinder.symbols.moduledwarf import ModuleDwarf

        try:
            data = DwarfData.load(self._dwarf_file)
            if data is not None:
                self._dwarf = ModuleDwarf(data, self._cache, self._cache_key, self._dwarf_label)
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
        it, as ``eu-stack -i`` and gdb show them. With a cache, an address described before
        (by any process) is answered from the cache without opening the DWARF.
        """
        described = self._described_table()
        if described is not None:
            frames = described.find(address)
            if frames is not None:
                return frames
        frames = self._describe(address)
        if described is not None:
            described.add(address, frames)
        return frames

    def unanswered(self, addresses: Iterable[int]) -> list[int]:
        """Those of ``addresses`` the cache cannot answer yet and could keep; none without a
        cache or once the module's table is full (another process could not hand them over)."""
        described = self._described_table()
        if described is None or described.full:
            return []
        return [address for address in addresses if described.find(address) is None]

    def refresh(self) -> None:
        """Read the described addresses from the cache again (another process added some),
        keeping the ones described here and not saved yet."""
        mine, self._described = self._described, None
        fresh = self._described_table()
        if mine is not None and fresh is not None and mine.changed:
            for address, frames in mine.answers.items():
                fresh.add(address, list(frames))

    def save(self) -> None:
        """Store the addresses described since loading in the cache (once per backtrace)."""
        if self._described is not None and self._described.changed and self._cache is not None:
            self._cache.store_described(self._cache_key, self._described)  # type: ignore[arg-type]
            self._described.changed = False

    def _described_table(self) -> DescribedAddresses | None:
        if self._described is None and self._cache is not None and self._cache_key is not None:
            self._described = self._cache.load_described(self._cache_key) or DescribedAddresses()
        return self._described

    def _describe(self, address: int) -> list[SymbolizedFrame]:
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


def _has_symbols(elffile: ElfFile, name: str) -> bool:
    header = section_header(elffile, name)
    return header is not None and header.sh_type != SHT_NOBITS and header.sh_size > 0


def _read_symbols(elffile: ElfFile, debug_elf: ElfFile | None,
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
