"""The DWARF side of one module: CU index, line tables and inline scopes, opened lazily.

This module only composes :mod:`.cuindex`, :mod:`.lineprog`, :mod:`.linetable` and
:mod:`.inlines` over one file's :class:`~unwinder.symbols.dwarf.DwarfData`; pyelftools is
reached only through them. :mod:`.module` imports it on the first address the cache cannot
answer.

Line tables: with a cache, the whole module's table is decoded once and stored by build-id;
without one, only the programs of the CUs asked about are decoded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from unwinder.errors import SymbolError
from unwinder.symbols.cuindex import CUIndex
from unwinder.symbols.dwarf import DwarfData
from unwinder.symbols.inlines import CUScopes, Scope
from unwinder.symbols.lineprog import LineProgram, decode_line_program, parse_line_header
from unwinder.symbols.linetable import LineTable
from unwinder.symbols.model import SourceLocation

if TYPE_CHECKING:
    from unwinder.symbols.cache import SymbolCache

log = logging.getLogger(__name__)

#: above this much ``.debug_line``, decode per CU even when caching (keeps the first crash fast)
MAX_WHOLE_LINE_TABLE = 64 << 20
#: at most this many CUs keep their DIE index in memory
MAX_CU_SCOPES = 64
#: while a whole line table is decoded, the parsed CUs (and their abbreviation tables) are
#: dropped every this many CUs: libc's 2,000 would hold 26 MiB
FORGET_UNITS_EVERY = 256


class ModuleDwarf:
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
        return LineTable.from_programs(self._each_program())

    def _each_program(self) -> Iterator[LineProgram]:
        """Every CU's decoded line program once, one at a time (the table keeps their rows,
        not them)."""
        seen = set()
        for count, cu_offset in enumerate(self.index.iter_cu_offsets(), 1):
            stmt_list = self.index.info(cu_offset).stmt_list
            if count % FORGET_UNITS_EVERY == 0:
                self.data.forget_units()  # every CU's top DIE is read once: keep few parsed
            if stmt_list is None or stmt_list in seen:
                continue
            seen.add(stmt_list)
            program = self._decode(cu_offset)
            if program is not None:
                yield program
        self.data.forget_units()

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
