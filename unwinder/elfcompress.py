"""Compressed ELF sections: ``SHF_COMPRESSED`` (zlib or zstd) and old-style ``.zdebug_*``.

Our own because pyelftools only knows zlib: ``ELFCOMPRESS_ZSTD`` (binutils >= 2.40,
``--compress-debug-sections=zstd``) raises ``ELFCompressionError`` there. One place for the
CFI reader (``.debug_frame``) and the symboliser (``.debug_*``, ``.symtab``). Output is
capped by the size the header declares, and never inflated past it: a 16 KiB zstd section of
zeros declaring 100 bytes made the symboliser's old decoder allocate 512 MiB before it
compared the sizes.
"""

from __future__ import annotations

import io
import struct
import zlib
from enum import IntEnum

from unwinder.errors import SectionError

#: refuse to inflate a section beyond this
MAX_DECOMPRESSED = 1 << 30
SHF_COMPRESSED = 0x800


class ELFCOMPRESS(IntEnum):  # noqa: N801 - the header's spelling
    ZLIB = 1
    ZSTD = 2


def decompress_section(raw: bytes, *, elfclass: int, big_endian: bool, name: str) -> bytes:
    """Inflate an ``SHF_COMPRESSED`` section: an ``Elf32_Chdr``/``Elf64_Chdr`` and the data.

    :raises SectionError: unknown compression, corrupt data, or a size other than declared.
    """
    endian = ">" if big_endian else "<"
    if elfclass == 64:
        fmt, header_size = endian + "IIQQ", 24
    else:
        fmt, header_size = endian + "III", 12
    if len(raw) < header_size:
        raise SectionError(f"{name}: compression header truncated")
    fields = struct.unpack_from(fmt, raw, 0)
    ch_type, ch_size = fields[0], fields[2] if elfclass == 64 else fields[1]
    payload = raw[header_size:]
    if ch_type == ELFCOMPRESS.ZLIB:
        return _inflate_zlib(payload, ch_size, name)
    if ch_type == ELFCOMPRESS.ZSTD:
        return _inflate_zstd(payload, ch_size, name)
    raise SectionError(f"{name}: unknown compression type {ch_type}")


def decompress_zdebug(raw: bytes, *, name: str) -> bytes:
    """Inflate a GNU ``.zdebug_*`` section: ``b"ZLIB"``, a big-endian u64 size, zlib data."""
    if len(raw) < 12 or raw[:4] != b"ZLIB":
        raise SectionError(f"{name}: not a ZLIB-prefixed section")
    (size,) = struct.unpack_from(">Q", raw, 4)
    return _inflate_zlib(raw[12:], size, name)


def _check_size(size: int, name: str) -> None:
    if size > MAX_DECOMPRESSED:
        raise SectionError(f"{name}: declared size {size} too large")


def _inflate_zlib(payload: bytes, size: int, name: str) -> bytes:
    _check_size(size, name)
    try:
        inflater = zlib.decompressobj()
        out = inflater.decompress(payload, size)
        more = bool(inflater.decompress(inflater.unconsumed_tail, 1)) if len(out) == size else False
    except zlib.error as err:
        raise SectionError(f"{name}: corrupt zlib data: {err}") from err
    if len(out) != size or more:
        raise SectionError(f"{name}: inflated to {'more than ' if more else ''}{len(out)} bytes, "
                           f"header says {size}")
    return out


def _inflate_zstd(payload: bytes, size: int, name: str) -> bytes:
    import zstandard  # only for zstd-compressed sections

    _check_size(size, name)
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(payload), read_across_frames=True
        )
        chunks = []
        remaining = size
        while remaining > 0:
            chunk = reader.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        more = remaining == 0 and bool(reader.read(1))  # one block more at most
    except zstandard.ZstdError as err:
        raise SectionError(f"{name}: corrupt zstd data: {err}") from err
    out = b"".join(chunks)
    if len(out) != size or more:
        raise SectionError(f"{name}: inflated to {'more than ' if more else ''}{len(out)} bytes, "
                           f"header says {size}")
    return out
