"""On-disk cache of derived symbol data, one file per build-id and kind.

Files are ``<directory>/<key>.<kind>`` (key: build-id hex plus a variant saying which debug
data produced it). Layout, all little-endian::

    magic "CDSYMC\\0\\n" | u32 version | u32 kind | u64 payload size | 16-byte BLAKE2b(payload)
    payload: u32 part count, then per part u64 size + bytes

Parts are ``array`` buffers (native byte order; the version encodes it) and name blobs.
Writers write a temp file in the directory and ``os.replace`` it, so concurrent writers are
safe and readers never see a partial file. A file with a wrong magic, version, size or
checksum, or with inconsistent parts, is ignored (and later overwritten), never trusted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import sys
import tempfile
from array import array
from enum import IntEnum
from pathlib import Path

from unwinder.errors import SymbolError
from unwinder.symbols.linetable import HOLE, LineTable
from unwinder.symbols.symtab import SymbolTable

log = logging.getLogger(__name__)

MAGIC = b"CDSYMC\0\n"
#: bump on any layout change; the byte order of ``array`` parts is part of the version
VERSION = 1 if sys.byteorder == "little" else 0x8001
_HEADER = struct.Struct("<8sIIQ16s")
_KEY = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")
MAX_CACHE_FILE = 1 << 31


class Kind(IntEnum):
    SYMBOLS = 1
    LINES = 2


_SUFFIX = {Kind.SYMBOLS: "sym", Kind.LINES: "lines"}


def _digest(payload: bytes | memoryview) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


def encode_parts(kind: Kind, parts: list[bytes]) -> bytes:
    body = [struct.pack("<I", len(parts))]
    for part in parts:
        body.append(struct.pack("<Q", len(part)))
        body.append(part)
    payload = b"".join(body)
    return _HEADER.pack(MAGIC, VERSION, kind, len(payload), _digest(payload)) + payload


def decode_parts(kind: Kind, data: bytes) -> list[bytes]:
    """The parts of a cache file; :class:`SymbolError` if it is not intact."""
    if len(data) < _HEADER.size:
        raise SymbolError("cache file truncated")
    magic, version, file_kind, size, digest = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or file_kind != kind:
        raise SymbolError("cache file of another format")
    payload = memoryview(data)[_HEADER.size:]
    if len(payload) != size or _digest(payload) != digest:
        raise SymbolError("cache file truncated or corrupt")
    (count,) = struct.unpack_from("<I", payload)
    pos, parts = 4, []
    for _ in range(count):
        if pos + 8 > size:
            raise SymbolError("cache part table truncated")
        (length,) = struct.unpack_from("<Q", payload, pos)
        pos += 8
        if pos + length > size:
            raise SymbolError("cache part truncated")
        parts.append(bytes(payload[pos:pos + length]))
        pos += length
    return parts


def _array(typecode: str, raw: bytes) -> array:
    out = array(typecode)
    if len(raw) % out.itemsize:
        raise SymbolError("cache array of a partial item")
    out.frombytes(raw)
    return out


class SymbolCache:
    """Symbol arrays and line tables by build-id under ``directory`` (created on demand)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path(self, key: str, kind: Kind) -> Path:
        if not _KEY.match(key):
            raise SymbolError(f"unusable cache key {key!r}")
        return self.directory / f"{key}.{_SUFFIX[kind]}"

    # -- generic -----------------------------------------------------------
    def _load(self, key: str, kind: Kind) -> list[bytes] | None:
        path = self.path(key, kind)
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_CACHE_FILE + 1)
        except FileNotFoundError:
            return None
        except OSError as err:
            log.warning("failed to read symbol cache %s, ignoring: %s", path, err)
            return None
        try:
            return decode_parts(kind, data)
        except SymbolError as err:
            log.warning("symbol cache %s is unusable, rebuilding: %s", path, err)
            return None

    def _store(self, key: str, kind: Kind, parts: list[bytes]) -> None:
        path = self.path(key, kind)
        data = encode_parts(kind, parts)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as err:
            log.warning("failed to write symbol cache %s, ignoring: %s", path, err)

    # -- symbols -----------------------------------------------------------
    def load_symbols(self, key: str) -> SymbolTable | None:
        """The cached symbol table for ``key``, ``None`` when absent or unusable."""
        parts = self._load(key, Kind.SYMBOLS)
        if parts is None:
            return None
        try:
            if len(parts) != 4:
                raise SymbolError("symbol cache has the wrong number of parts")
            addresses, ends = _array("Q", parts[0]), _array("Q", parts[1])
            offsets, names = _array("I", parts[2]), parts[3]
            if offsets and max(offsets) >= len(names):
                raise SymbolError("symbol cache name offset out of range")
            return SymbolTable(addresses, ends, offsets, names)
        except SymbolError as err:
            log.warning("symbol cache for %s is inconsistent, rebuilding: %s", key, err)
            return None

    def store_symbols(self, key: str, table: SymbolTable) -> None:
        self._store(key, Kind.SYMBOLS, [table.addresses.tobytes(), table.ends.tobytes(),
                                        table.name_offsets.tobytes(), table.names])

    # -- line tables -------------------------------------------------------
    def load_lines(self, key: str) -> LineTable | None:
        """The cached line table for ``key``, ``None`` when absent or unusable."""
        parts = self._load(key, Kind.LINES)
        if parts is None:
            return None
        try:
            if len(parts) != 5:
                raise SymbolError("line cache has the wrong number of parts")
            files = [f.decode("utf-8", "surrogateescape") for f in parts[4].split(b"\0")] \
                if parts[4] else []
            table = LineTable(_array("Q", parts[0]), _array("I", parts[1]),
                              _array("I", parts[2]), _array("I", parts[3]), files)
            if any(f != HOLE and f >= len(files) for f in set(table.file_ids)):
                raise SymbolError("line cache file index out of range")
            return table
        except SymbolError as err:
            log.warning("line cache for %s is inconsistent, rebuilding: %s", key, err)
            return None

    def store_lines(self, key: str, table: LineTable) -> None:
        blob = "\0".join(table.files).encode("utf-8", "surrogateescape")
        self._store(key, Kind.LINES, [table.addresses.tobytes(), table.file_ids.tobytes(),
                                      table.lines.tobytes(), table.columns.tobytes(), blob])
