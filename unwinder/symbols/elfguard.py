"""The one choke point turning third-party parser failures into :class:`SymbolError`.

pyelftools and ``struct`` raise a zoo of exceptions on corrupt input (``ELFError``,
``DWARFError`` — not an ``ELFError`` —, ``ConstructError``, ``struct.error``,
``OverflowError``, ``ValueError``, ``IndexError``, ``KeyError``, ``ZeroDivisionError``,
``lzma.LZMAError``, ``zlib.error``, ``RecursionError``, …); everything that reads untrusted symbol data goes through
:func:`guard`. The list is built on the first failure: construct is not imported before.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from elftools.common.exceptions import DWARFError, ELFError

from unwinder.errors import SymbolError, UnwindError


@cache
def parser_errors() -> tuple[type[BaseException], ...]:
    """What the parsers behind :func:`guard` raise on corrupt input."""
    from construct import ConstructError

    return (
        ELFError, DWARFError, ConstructError, struct.error, OverflowError, ValueError,
        IndexError, KeyError, AttributeError, TypeError, AssertionError, ZeroDivisionError,
        NotImplementedError, lzma.LZMAError, zlib.error, RecursionError, EOFError, MemoryError,
    )


@contextmanager
def guard(what: str) -> Iterator[None]:
    """Re-raise parser errors inside the block as ``SymbolError("<what>: <error>")``."""
    try:
        yield
    except UnwindError:
        raise
    except Exception as err:
        if not isinstance(err, parser_errors()):
            raise
        raise SymbolError(f"{what}: {type(err).__name__}: {err}") from err
