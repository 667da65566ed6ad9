"""What symbolisation produces: source locations and symbolised (possibly inline) frames."""

from __future__ import annotations

from typing import NamedTuple


class SourceLocation(NamedTuple):
    """A place in the source, as the line table or an inline call site names it.

    :ivar file: path as DWARF spells it, directory joined with the file name (not normalised,
        as ``eu-addr2line`` prints it).
    :ivar line: 1-based line number; 0 means "no line" (compiler-generated code).
    :ivar column: 1-based column, 0 when unknown.
    """

    file: str
    line: int
    column: int = 0


class SymbolizedFrame(NamedTuple):
    """One logical frame at an address: a real function or an inlined call inside it.

    :ivar function: demangled name, ``None`` when unknown.
    :ivar function_offset: address minus the function's start, for the outermost
        (non-inline) entry only; ``None`` for inline entries and unknown functions.
    :ivar location: source location, ``None`` without line information.
    :ivar inline: ``True`` for frames synthesised from ``DW_TAG_inlined_subroutine``.
    :ivar mangled: the name before demangling, when it differs from ``function``.
    """

    function: str | None
    function_offset: int | None
    location: SourceLocation | None
    inline: bool
    mangled: str | None = None
