"""The symboliser's view of :mod:`unwinder.elfsections`: the same readers, whose failures
are :class:`~unwinder.errors.SymbolError` (what every reader of symbol data raises and its
callers catch)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from unwinder import elfsections
from unwinder.elfsections import MAX_SECTION_SIZE, SHF_COMPRESSED, SHT_NOBITS
from unwinder.errors import SectionError, SymbolError

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

    from unwinder.elffile import SectionHeader

__all__ = ["MAX_SECTION_SIZE", "SHF_COMPRESSED", "SHT_NOBITS", "read_raw", "read_section",
           "section_header", "section_headers"]


@contextmanager
def _as_symbol_errors() -> Iterator[None]:
    try:
        yield
    except SectionError as err:
        raise SymbolError(str(err)) from err


def section_header(elffile: ELFFile, name: str) -> SectionHeader | None:
    """:func:`unwinder.elfsections.section_header`; :raises SymbolError: instead."""
    with _as_symbol_errors():
        return elfsections.section_header(elffile, name)


def section_headers(elffile: ELFFile) -> tuple[SectionHeader, ...]:
    """:func:`unwinder.elfsections.section_headers`; :raises SymbolError: instead."""
    with _as_symbol_errors():
        return elfsections.section_headers(elffile)


def read_raw(elffile: ELFFile, offset: int, size: int, what: str) -> bytes:
    """:func:`unwinder.elfsections.read_raw`; :raises SymbolError: instead."""
    with _as_symbol_errors():
        return elfsections.read_raw(elffile, offset, size, what)


def read_section(elffile: ELFFile, name: str) -> bytes | None:
    """:func:`unwinder.elfsections.read_section`; :raises SymbolError: instead."""
    with _as_symbol_errors():
        return elfsections.read_section(elffile, name)
