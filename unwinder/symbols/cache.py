"""On-disk cache of derived symbol data, one file per build-id and kind.

Files are ``<directory>/<key>.<kind>`` (key: build-id hex plus a variant saying which debug
data produced it). Layout, all little-endian::

    magic "CDSYMC\\0\\n" | u32 version | u32 kind | u64 payload size | u32 CRC-32(payload)
    payload: u32 part count, then per part u64 size + bytes

The checksum finds damaged files, which is all it is for: whoever can write the directory can
write any content. (Version 1 used BLAKE2b, five times slower on the megabytes of a big
module's symbols and lines; its files are ignored and rewritten.)

Parts are ``array`` buffers (native byte order; the version encodes it) and name blobs; the
described addresses (:mod:`.described`) are one JSON part.
Writers write a temp file in the directory and ``os.replace`` it, so concurrent writers are
safe and readers never see a partial file. A file with a wrong magic, version, size or
checksum, or with inconsistent parts, is ignored (and later overwritten), never trusted.
"""

from __future__ import annotations

import os
import re
import struct
import sys
import zlib
from array import array
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import TypeVar

from unwinder.errors import SymbolError
from unwinder.log import LazyLogger
from unwinder.symbols.described import DescribedAddresses
from unwinder.symbols.linetable import LineTable
from unwinder.symbols.symtab import SymbolTable

log = LazyLogger(__name__)

T = TypeVar("T")

MAGIC = b"CDSYMC\0\n"
#: bump on any layout change; the byte order of ``array`` parts is part of the version
VERSION = 2 if sys.byteorder == "little" else 0x8002
_HEADER = struct.Struct("<8sIIQI")
_KEY = re.compile(r"^[0-9a-zA-Z._-]{1,200}$")
MAX_CACHE_FILE = 1 << 31


class Kind(IntEnum):
    SYMBOLS = 1
    LINES = 2
    DESCRIBED = 3


_SUFFIX = {Kind.SYMBOLS: "sym", Kind.LINES: "lines", Kind.DESCRIBED: "desc"}
#: kind -> (parts in a file, what the log calls it)
_SHAPE = {Kind.SYMBOLS: (4, "symbol"), Kind.LINES: (5, "line"),
          Kind.DESCRIBED: (1, "described-address")}


def user_cache_dir(leaf: str) -> Path:
    """``$XDG_CACHE_HOME/coredumpd/<leaf>``, else ``~/.cache/coredumpd/<leaf>`` (a relative
    ``XDG_CACHE_HOME`` is ignored, as the XDG spec says): where the unwinder keeps what it
    derived or fetched for a user between runs (symbol tables, debuginfod downloads)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "coredumpd", leaf)


def _digest(payload: bytes | memoryview) -> int:
    return zlib.crc32(payload)


def framed_parts(kind: Kind, parts: list[bytes | memoryview]) -> list[bytes | memoryview]:
    """A cache file as pieces to write one after the other: the header, then each part after
    its length, the parts themselves not copied (a libc line table is megabytes: joining it
    once more cost the cold build a tenth of its peak memory)."""
    body: list[bytes | memoryview] = [struct.pack("<I", len(parts))]
    for part in parts:
        body.append(struct.pack("<Q", len(part)))
        body.append(part)
    digest = 0
    for piece in body:
        digest = zlib.crc32(piece, digest)
    size = sum(len(piece) for piece in body)
    return [_HEADER.pack(MAGIC, VERSION, kind, size, digest), *body]


def decode_parts(kind: Kind, data: bytes) -> list[memoryview]:
    """The parts of a cache file (views of ``data``); :class:`SymbolError` if it is not
    intact."""
    if len(data) < _HEADER.size:
        raise SymbolError("cache file truncated")
    magic, version, file_kind, size, digest = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or file_kind != kind:
        raise SymbolError("cache file of another format")
    payload = memoryview(data)[_HEADER.size:]
    if len(payload) != size or size < 4 or _digest(payload) != digest:
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
        parts.append(payload[pos:pos + length])
        pos += length
    return parts


def _bytes_of(values: array) -> memoryview:
    """An array's bytes, not copied (``tobytes`` copies)."""
    return memoryview(values).cast("B")


def _array(typecode: str, raw: memoryview) -> array:
    out = array(typecode)
    if len(raw) % out.itemsize:
        raise SymbolError("cache array of a partial item")
    out.frombytes(raw)
    return out


class SymbolCache:
    """Symbol arrays, line tables and described addresses by build-id under ``directory``
    (created on demand)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path(self, key: str, kind: Kind) -> Path:
        if not _KEY.match(key):
            raise SymbolError(f"unusable cache key {key!r}")
        return self.directory / f"{key}.{_SUFFIX[kind]}"

    # -- generic -----------------------------------------------------------
    def _load(self, key: str, kind: Kind) -> list[memoryview] | None:
        path = self.path(key, kind)
        try:
            with open(path, "rb", buffering=0) as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > MAX_CACHE_FILE:
                    log.warning("symbol cache %s is too large (%d bytes), rebuilding", path, size)
                    return None
                # exactly its size: read(n) allocates n bytes first (it asked for 2 GiB a load)
                data = handle.read(size)
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

    def _build(self, key: str, kind: Kind, build: Callable[[list[memoryview]], T]) -> T | None:
        """``build(parts)`` of the cached file, ``None`` when absent or unusable (wrong number
        of parts, or ``build`` raising :class:`SymbolError`): the caller rebuilds it."""
        parts = self._load(key, kind)
        if parts is None:
            return None
        count, what = _SHAPE[kind]
        try:
            if len(parts) != count:
                raise SymbolError(f"{what} cache has the wrong number of parts")
            return build(parts)
        except SymbolError as err:
            log.warning("%s cache for %s is inconsistent, rebuilding: %s", what, key, err)
            return None

    def _store(self, key: str, kind: Kind, parts: list[bytes | memoryview]) -> None:
        path = self.path(key, kind)
        import tempfile  # only writers need it

        pieces = framed_parts(kind, parts)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.writelines(pieces)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as err:
            log.warning("failed to write symbol cache %s, ignoring: %s", path, err)

    # -- symbols -----------------------------------------------------------
    def load_symbols(self, key: str) -> SymbolTable | None:
        """The cached symbol table for ``key``, ``None`` when absent or unusable."""

        def build(parts: list[memoryview]) -> SymbolTable:
            addresses, ends = _array("Q", parts[0]), _array("Q", parts[1])
            offsets, names = _array("I", parts[2]), bytes(parts[3])
            if offsets and max(offsets) >= len(names):
                raise SymbolError("symbol cache name offset out of range")
            return SymbolTable(addresses, ends, offsets, names)

        return self._build(key, Kind.SYMBOLS, build)

    def store_symbols(self, key: str, table: SymbolTable) -> None:
        self._store(key, Kind.SYMBOLS, [_bytes_of(table.addresses), _bytes_of(table.ends),
                                        _bytes_of(table.name_offsets), table.names])

    # -- line tables -------------------------------------------------------
    def load_lines(self, key: str) -> LineTable | None:
        """The cached line table for ``key``, ``None`` when absent or unusable."""

        def build(parts: list[memoryview]) -> LineTable:
            blob = bytes(parts[4])
            files = [f.decode("utf-8", "surrogateescape") for f in blob.split(b"\0")] \
                if blob else []
            # file indexes are not scanned here (5 ms for libc): lookup() checks the one it uses
            return LineTable(_array("Q", parts[0]), _array("I", parts[1]),
                             _array("I", parts[2]), _array("I", parts[3]), files)

        return self._build(key, Kind.LINES, build)

    def store_lines(self, key: str, table: LineTable) -> None:
        blob = "\0".join(table.files).encode("utf-8", "surrogateescape")
        self._store(key, Kind.LINES, [_bytes_of(table.addresses), _bytes_of(table.file_ids),
                                      _bytes_of(table.lines), _bytes_of(table.columns), blob])

    # -- described addresses -------------------------------------------------
    def load_described(self, key: str) -> DescribedAddresses | None:
        """The cached answers of ``describe()`` for ``key``, ``None`` when absent or unusable."""
        return self._build(key, Kind.DESCRIBED,
                           lambda parts: DescribedAddresses.from_bytes(bytes(parts[0])))

    def store_described(self, key: str, described: DescribedAddresses) -> None:
        self._store(key, Kind.DESCRIBED, [described.to_bytes()])
