"""``/proc/<pid>/cmdline`` and the POSIX-quoted form systemd-coredump stores as
``COREDUMP_CMDLINE``.

systemd (``pid_get_cmdline(..., PROCESS_CMDLINE_QUOTE_POSIX)`` → ``quote_command_line()`` →
``shell_maybe_quote(SHELL_ESCAPE_EMPTY|SHELL_ESCAPE_POSIX)``) drops trailing empty arguments,
writes an empty argument as ``""``, leaves an argument alone unless it contains whitespace,
a control byte, invalid UTF-8 or one of ``"\\`$*?['()<>|&;!``, and otherwise writes
``$'…'``: the part before the first such character verbatim, then C escapes for control bytes
and invalid UTF-8 (``\\n``, ``\\t``, ``\\ooo``) and a backslash before ``\\`` and ``'``.
"""

from __future__ import annotations

import re

from procfs.errors import ParseError

_OCTAL3 = re.compile(rb"[0-3][0-7][0-7]")
_WHITESPACE = b" \t\n\r"
_NEED_QUOTES = b'"\\`$' + b"*?[" + b"'()<>|&;!"
_NEED_ESCAPE_POSIX = b"\\'"
_C_ESCAPES = {7: b"\\a", 8: b"\\b", 12: b"\\f", 10: b"\\n", 13: b"\\r", 9: b"\\t", 11: b"\\v",
              0x5C: b"\\\\", 0x22: b'\\"', 0x27: b"\\'"}  # fmt: skip
_C_UNESCAPES = {b"a": 7, b"b": 8, b"f": 12, b"n": 10, b"r": 13, b"t": 9, b"v": 11, b"e": 27,
                b"\\": 0x5C, b'"': 0x22, b"'": 0x27, b"?": 0x3F}  # fmt: skip


def parse_cmdline(data: bytes) -> tuple[bytes, ...]:
    """Split ``cmdline`` at NULs, dropping trailing empty strings (as systemd does).

    A process that rewrote its argv (``setproctitle``) may leave no NUL at all: that is one
    argument. A zombie's or kernel thread's empty file gives ``()``.
    """
    args = data.split(b"\0")
    while args and not args[-1]:
        args.pop()
    return tuple(args)


def _utf8_len(data: bytes, i: int) -> int:
    """Length of the valid UTF-8 character at ``data[i]``, or -1 (systemd's rules, which also
    reject the noncharacters U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF)."""
    lead = data[i]
    if lead < 0x80:
        return 1
    size = 2 if lead & 0xE0 == 0xC0 else 3 if lead & 0xF0 == 0xE0 else 4 if lead & 0xF8 == 0xF0 else 0
    if not size:
        return -1
    try:
        char = ord(data[i : i + size].decode("utf-8"))
    except (UnicodeDecodeError, TypeError):
        return -1
    if 0xFDD0 <= char <= 0xFDEF or char & 0xFFFE == 0xFFFE:
        return -1
    return size


def _is_cc(byte: int) -> bool:
    return byte < 0x20 or byte == 0x7F


def _c_escape(byte: int) -> bytes:
    if byte in _C_ESCAPES:
        return _C_ESCAPES[byte]
    if byte < 0x20 or byte >= 0x7F:
        return b"\\%03o" % byte
    return bytes((byte,))


def quote_posix(arg: bytes) -> bytes:
    """One argument quoted exactly like systemd's ``shell_maybe_quote(..., POSIX)``."""
    if not arg:
        return b'""'
    i = 0
    while i < len(arg):
        size = _utf8_len(arg, i)
        if size < 0 or _is_cc(arg[i]) or arg[i] in _WHITESPACE or arg[i] in _NEED_QUOTES:
            break
        i += size
    else:
        return arg
    out = bytearray(b"$'")
    out += arg[:i]
    while i < len(arg):
        size = _utf8_len(arg, i)
        if size < 0 or _is_cc(arg[i]):
            out += _c_escape(arg[i])
            i += 1
            continue
        if size == 1 and arg[i] in _NEED_ESCAPE_POSIX:
            out += b"\\"
        out += arg[i : i + size]
        i += size
    out += b"'"
    return bytes(out)


def cmdline_to_posix(args: tuple[bytes, ...] | list[bytes]) -> bytes:
    """The ``COREDUMP_CMDLINE`` text for ``args``: quoted arguments joined by single spaces."""
    return b" ".join(quote_posix(arg) for arg in args)


def _unquote_dollar(text: bytes, i: int) -> tuple[bytes, int]:
    """Decode ``$'…'`` starting after the opening quote; return (value, index after ``'``)."""
    out = bytearray()
    while i < len(text):
        byte = text[i : i + 1]
        if byte == b"'":
            return bytes(out), i + 1
        if byte != b"\\":
            out += byte
            i += 1
            continue
        esc = text[i + 1 : i + 2]
        if esc in _C_UNESCAPES:
            out.append(_C_UNESCAPES[esc])
            i += 2
        elif _OCTAL3.fullmatch(text[i + 1 : i + 4]):
            out.append(int(text[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        elif esc == b"x" and len(text[i + 2 : i + 4]) == 2:
            try:
                out.append(int(text[i + 2 : i + 4], 16))
            except ValueError as err:
                raise ParseError("quoted cmdline", f"bad \\x escape at {i}") from err
            i += 4
        else:
            raise ParseError("quoted cmdline", f"unknown escape {esc!r} at {i}")
    raise ParseError("quoted cmdline", "unterminated $'")


def parse_posix_cmdline(text: bytes) -> tuple[bytes, ...]:
    """Invert :func:`cmdline_to_posix`: split a ``COREDUMP_CMDLINE`` value into arguments.

    Accepts what systemd writes (bare words, ``""``, ``$'…'`` after a verbatim prefix), not
    general shell syntax.
    """
    args: list[bytes] = []
    i = 0
    while i < len(text):
        end = i
        current = bytearray()
        while end < len(text) and text[end : end + 1] != b" ":
            if text[end : end + 2] == b"$'":
                value, end = _unquote_dollar(text, end + 2)
                current += value
            elif text[end : end + 2] == b'""':
                end += 2
            else:
                current += text[end : end + 1]
                end += 1
        args.append(bytes(current))
        i = end + 1
    return tuple(args)
