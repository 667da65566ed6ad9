"""The one choke point turning third-party parser failures into :class:`SymbolError`.

pyelftools and ``struct`` raise a zoo of exceptions on corrupt input (``ELFError``,
``DWARFError`` — not an ``ELFError`` —, ``ConstructError``, ``struct.error``,
``OverflowError``, ``ValueError``, ``IndexError``, ``KeyError``, ``ZeroDivisionError``,
``lzma.LZMAError``, ``zlib.error``, ``RecursionError``, …); everything that reads untrusted symbol data goes through
:func:`guard`.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from construct import ConstructError
from elftools.common.exceptions import DWARFError, ELFError

from unwinder.errors import SymbolError, UnwindError

PARSER_ERRORS: tuple[type[BaseException], ...] = (
    ELFError, DWARFError, ConstructError, struct.error, OverflowError, ValueError, IndexError,
    KeyError, AttributeError, TypeError, AssertionError, ZeroDivisionError, NotImplementedError,
    lzma.LZMAError, zlib.error, RecursionError, EOFError, MemoryError,
)


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Re-raise parser errors inside the block as ``SymbolError("<what>: <error>")``."""
    try:
        yield
    except UnwindError:
        raise
    except PARSER_ERRORS as err:
        raise SymbolError(f"{what}: {type(err).__name__}: {err}") from err
