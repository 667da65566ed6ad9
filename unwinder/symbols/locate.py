"""Finding a module's separate debug file: build-id directories, ``.gnu_debuglink``, debuginfod.

The order is gdb's and elfutils':

1. ``<debugdir>/.build-id/ab/cdef….debug``, accepted only if its own ``NT_GNU_BUILD_ID``
   matches;
2. the ``.gnu_debuglink`` name in the binary's directory, its ``.debug/`` subdirectory, then
   ``<debugdir>/<binary's directory>/``, accepted only if the CRC32 of the whole file matches;
3. debuginfod (:mod:`unwinder.symbols.debuginfod`) when servers are configured.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from unwinder.elffile import ElfFile
from unwinder.errors import UnwindError
from unwinder.log import LazyLogger
from unwinder.symbols.debuginfod import DebuginfodClient, default_cache_dir, urls_from_env
from unwinder.symbols.elfguard import guard
from unwinder.symbols.identity import find_build_id

log = LazyLogger(__name__)


def file_crc32(path: Path) -> int:
    """CRC32 of the whole file, as ``.gnu_debuglink`` stores it."""
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def read_file_build_id(path: Path) -> bytes | None:
    """The build-id of the ELF file at ``path``; ``None`` if unreadable or not ELF."""
    try:
        with open(path, "rb") as handle, guard(f"{path}"):
            return find_build_id(ElfFile(handle))
    except (OSError, UnwindError) as err:
        log.debug("cannot read build-id of %s: %s", path, err)
        return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class DebugFileLocator:
    """Finds separate debug files; one instance is shared by every module of a crash."""

    def __init__(self, debug_dirs: tuple[str, ...] | list[str] = ("/usr/lib/debug",),
                 debuginfod_urls: list[str] | None = None, cache_dir: Path | None = None,
                 timeout: float = 5.0) -> None:
        self.debug_dirs = [Path(d) for d in debug_dirs]
        urls = urls_from_env() if debuginfod_urls is None else list(debuginfod_urls)
        self.debuginfod = DebuginfodClient(urls, cache_dir or default_cache_dir(), timeout)

    def find(self, *, build_id: bytes | None, path: str | None,
             debuglink: tuple[str, int] | None) -> Path | None:
        """The debug file for the module, ``None`` when there is none to be found."""
        if build_id:
            found = self.find_by_build_id(build_id)
            if found:
                return found
        if debuglink and path:
            found = self.find_by_debuglink(path, *debuglink)
            if found:
                return found
        if build_id:
            return self.debuginfod.fetch_debuginfo(build_id)
        return None

    def find_by_build_id(self, build_id: bytes) -> Path | None:
        hexid = build_id.hex()
        if len(hexid) < 3:
            return None
        for directory in self.debug_dirs:
            candidate = directory / ".build-id" / hexid[:2] / f"{hexid[2:]}.debug"
            if candidate.is_file():
                if read_file_build_id(candidate) == build_id:
                    return candidate
                log.warning("debug file %s has another build-id, ignoring", candidate)
        return None

    def find_by_debuglink(self, path: str, name: str, crc: int) -> Path | None:
        if not name or "/" in name or name in (".", ".."):
            return None
        binary = Path(path)
        directory = binary.parent
        candidates = [directory / name, directory / ".debug" / name]
        candidates += [d / str(directory).lstrip("/") / name for d in self.debug_dirs]
        for candidate in candidates:
            try:
                if not candidate.is_file() or _same_file(candidate, binary):
                    continue
                if file_crc32(candidate) == crc:
                    return candidate
                log.warning("debug file %s fails its CRC check, ignoring", candidate)
            except OSError as err:
                log.debug("cannot check %s: %s", candidate, err)
        return None
