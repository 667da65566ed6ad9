"""Symbolisation: addresses of a module → function, offset, file:line and inline frames.

- :class:`ModuleSymbols` — one module (by build-id): symbols, and lazily DWARF lines/inlines.
- :class:`DebugFileLocator` — separate debug files: build-id dirs, debuglink, debuginfod.
- :class:`SymbolCache` — on-disk cache of symbol arrays and line tables by build-id.
- :func:`demangle` — C++ (libstdc++), Rust legacy and v0.
"""

from unwinder.symbols.cache import SymbolCache
from unwinder.symbols.demangle import demangle
from unwinder.symbols.locate import DebugFileLocator
from unwinder.symbols.model import SourceLocation, SymbolizedFrame
from unwinder.symbols.module import ModuleSymbols

__all__ = [
    "DebugFileLocator", "ModuleSymbols", "SourceLocation", "SymbolCache", "SymbolizedFrame",
    "demangle",
]
