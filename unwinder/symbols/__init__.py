"""Symbolisation: addresses of a module → function, offset, file:line and inline frames.

- :class:`ModuleSymbols` — one module (by build-id): symbols, and lazily DWARF lines/inlines.
- :class:`DebugFileLocator` — separate debug files: build-id dirs, debuglink, debuginfod.
- :class:`SymbolCache` — on-disk cache of symbol arrays and line tables by build-id.
- :func:`demangle` — C++ (libstdc++), Rust legacy and v0.

Names are imported from their modules on first use (PEP 562): a warm backtrace imports only
the modules it needs. :func:`demangle` is imported at once: its module has the same name, and
an import of that module would otherwise leave the module where the function belongs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unwinder.lazy import lazy_exports
from unwinder.symbols.demangle import demangle

if TYPE_CHECKING:
    from unwinder.symbols.cache import SymbolCache
    from unwinder.symbols.locate import DebugFileLocator
    from unwinder.symbols.model import SourceLocation, SymbolizedFrame
    from unwinder.symbols.module import ModuleSymbols

#: exported name -> the submodule defining it
_EXPORTS = {
    "SymbolCache": "cache", "DebugFileLocator": "locate",
    "SourceLocation": "model", "SymbolizedFrame": "model", "ModuleSymbols": "module",
}

__all__ = [
    "DebugFileLocator", "ModuleSymbols", "SourceLocation", "SymbolCache", "SymbolizedFrame",
    "demangle",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
