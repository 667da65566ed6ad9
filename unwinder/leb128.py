"""LEB128 variable-length integers (DWARF 5 §7.6), read from untrusted bytes.

Our own rather than pyelftools' construct-based ``ULEB128``: this sits on the hot path of
every CFI lookup and of line-table and abbreviation decoding, and a plain loop over ``bytes``
is an order of magnitude faster. Both readers take the end of the valid range and raise
``error`` (the caller's layer error: :class:`~unwinder.errors.CfiError` by default,
:class:`~unwinder.errors.SymbolError` for debug info) instead of running past it.
"""

from __future__ import annotations

from unwinder.errors import CfiError, UnwindError

#: longest encoding accepted; producers pad to at most 10 bytes for a 64-bit value, so anything
#: much longer is garbage and would only build huge integers.
MAX_LEB128_BYTES = 20


def read_uleb128(data: bytes, pos: int, end: int,
                 error: type[UnwindError] = CfiError) -> tuple[int, int]:
    """Decode an unsigned LEB128 at ``data[pos:end]``.

    :returns: ``(value, position after the encoding)``.
    :raises error: truncated or longer than :data:`MAX_LEB128_BYTES`.
    """
    if pos < end:
        byte = data[pos]
        if byte < 0x80:
            return byte, pos + 1
    return _groups(data, pos, end, error, "ULEB128")


def read_sleb128(data: bytes, pos: int, end: int,
                 error: type[UnwindError] = CfiError) -> tuple[int, int]:
    """Decode a signed LEB128 at ``data[pos:end]``: the unsigned value of the same bytes,
    sign-extended from its top bit (bit 6 of the last byte).

    :returns: ``(value, position after the encoding)``.
    :raises error: truncated or longer than :data:`MAX_LEB128_BYTES`.
    """
    if pos < end:
        byte = data[pos]
        if byte < 0x80:
            return (byte - 0x80 if byte & 0x40 else byte), pos + 1
    value, after = _groups(data, pos, end, error, "SLEB128")
    bits = 7 * (after - pos)
    if value >> (bits - 1) & 1:
        value -= 1 << bits
    return value, after


def _groups(data: bytes, pos: int, end: int, error: type[UnwindError],
            what: str) -> tuple[int, int]:
    """The 7-bit groups at ``data[pos:end]`` as an unsigned value, and the position after."""
    result = 0
    shift = 0
    limit = min(end, pos + MAX_LEB128_BYTES)
    while pos < limit:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise error(f"truncated or overlong {what} ending at {pos:#x}")
