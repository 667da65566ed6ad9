"""The octal escapes seq_file uses in paths (``\\040`` for space, ``\\012`` for newline)."""

from __future__ import annotations

import re

_OCTAL = re.compile(rb"\\([0-3][0-7]{2})")


def unescape_octal(raw: bytes) -> bytes:
    """Undo ``mangle_path()``/``seq_escape()``: every ``\\ooo`` becomes that byte."""
    if b"\\" not in raw:
        return raw
    return _OCTAL.sub(lambda m: bytes((int(m.group(1), 8),)), raw)
