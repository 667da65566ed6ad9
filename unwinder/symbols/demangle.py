"""Demangling: C++ (Itanium) through libstdc++, Rust legacy and Rust v0 in Python.

- ``_Z…``: libstdc++'s ``__cxa_demangle`` via ctypes, loaded by soname on first use
  (``ctypes.util.find_library`` spawns processes: ~37 ms).
- ``_ZN…17h<16 hex>E``: Rust legacy. Our own: the path is length-prefixed identifiers with
  ``$..$`` escapes; the ``::h<hash>`` is dropped, as rustc-demangle's ``{:#}`` and c++filt do.
- ``_R…``: Rust v0, :mod:`unwinder.symbols.rustv0` (no PyPI package installs cleanly with
  the same output; the grammar is small).

Unknown schemes come back unchanged, and nothing here raises.
"""

from __future__ import annotations

import re
from functools import lru_cache

from unwinder.symbols.rustv0 import demangle_v0

_LEGACY_HASH = re.compile(r"17h[0-9a-f]{16}E(?:\..*)?$")
_LEGACY_ESCAPES = {
    "SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ",",
}


class _CxaDemangle:
    """``abi::__cxa_demangle`` loaded lazily; ``None`` results when libstdc++ is missing."""

    def __init__(self) -> None:
        self._fn = None
        self._free = None
        self._tried = False

    def __call__(self, name: str) -> str | None:
        import ctypes  # not at module import: a warm backtrace from the cache never demangles

        if not self._tried:
            self._tried = True
            try:
                lib = ctypes.CDLL("libstdc++.so.6")
                fn = getattr(lib, "__cxa_demangle")  # noqa: B009 - lib.__x is name-mangled
                fn.restype = ctypes.c_void_p
                fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.POINTER(ctypes.c_int)]
                free = ctypes.CDLL("libc.so.6").free
                free.argtypes = [ctypes.c_void_p]
                self._fn, self._free = fn, free
            except (OSError, AttributeError):
                return None
        if self._fn is None or "\0" in name:
            return None
        status = ctypes.c_int(0)
        pointer = self._fn(name.encode("utf-8", "surrogateescape"), None, None,
                           ctypes.byref(status))
        if not pointer:
            return None
        try:
            if status.value != 0:
                return None
            return ctypes.string_at(pointer).decode("utf-8", "surrogateescape")
        finally:
            self._free(pointer)


cxa_demangle = _CxaDemangle()


def demangle_rust_legacy(name: str) -> str | None:
    """``_ZN3std2rt10lang_start17h…E`` → ``std::rt::lang_start``; ``None`` if not legacy Rust."""
    if not name.startswith("_ZN") or not _LEGACY_HASH.search(name):
        return None
    pos, parts = 3, []
    while pos < len(name) and name[pos] != "E":
        start = pos
        while pos < len(name) and name[pos].isdigit():
            pos += 1
        if start == pos:
            return None
        length = int(name[start:pos])
        ident = name[pos:pos + length]
        if len(ident) != length or length == 0:
            return None
        pos += length
        parts.append(ident)
    if not parts or not (parts[-1].startswith("h") and len(parts[-1]) == 17):
        return None
    out = []
    for ident in parts[:-1]:
        text = _unescape_legacy(ident)
        if text is None:
            return None
        out.append(text)
    return "::".join(out)


def _unescape_legacy(ident: str) -> str | None:
    if ident.startswith("_$"):
        ident = ident[1:]
    out, i = [], 0
    while i < len(ident):
        ch = ident[i]
        if ch == ".":
            if ident.startswith("..", i):
                out.append("::")
                i += 2
            else:
                out.append(".")
                i += 1
        elif ch == "$":
            end = ident.find("$", i + 1)
            if end < 0:
                return None
            escape = ident[i + 1:end]
            if escape in _LEGACY_ESCAPES:
                out.append(_LEGACY_ESCAPES[escape])
            elif escape.startswith("u") and len(escape) > 1:
                try:
                    out.append(chr(int(escape[1:], 16)))
                except (ValueError, OverflowError):
                    return None
            else:
                return None
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@lru_cache(maxsize=65536)
def demangle(name: str) -> str:
    """The human-readable form of ``name``, or ``name`` itself when it is not mangled."""
    try:
        if name.startswith("_R"):
            return demangle_v0(name) or name
        if name.startswith("_Z"):
            rust = demangle_rust_legacy(name)
            if rust is not None:
                return rust
            return cxa_demangle(name) or name
    except Exception:  # noqa: BLE001 - a demangler must never take a backtrace down
        return name
    return name
