"""Describing addresses the symbol cache cannot answer yet, in a process of its own.

The first description of an address in a module reads its DWARF: for libc6-dbg, 8 MiB of
decompressed sections and a 6 MiB line table, and 42-48 MiB more resident memory at the peak
than the interpreter started with (55-62 MiB in all). A long-lived process (the daemon) would
keep that high-water mark and the fragmentation after it; a hostile debug file could take it
down. Done here, in a short-lived child, the work ends with the child: it writes what it
derived to the shared :class:`~unwinder.symbols.cache.SymbolCache` (symbol table, line table,
described addresses), and the parent then answers every address from the cache without
opening the DWARF.

The parent hands over each module's open file (``pass_fds``: the files of a released
process are reachable only through the descriptors kept from ``/proc/<pid>/map_files``; the
child reopens each through ``/proc/self/fd`` so that its reads do not move the file offset
the parent's buffered reader relies on) and, on stdin, one JSON request::

    {"cache": DIR, "locator": {"debug_dirs": [...], "debuginfod_urls": [...],
                               "debuginfod_cache": DIR, "timeout": S},
     "modules": [{"fd": N, "path": P, "build_id": HEX, "addresses": [A, ...]}]}

The child's warnings go to its stderr, which the parent logs. :func:`describe_apart` returns
the child's CPU time and peak RSS (``wait4``), so a caller can account for them.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from unwinder.log import LazyLogger

if TYPE_CHECKING:
    from unwinder.symbols.locate import DebugFileLocator

log = LazyLogger(__name__)

#: the longest a child may take (a cold libc6-dbg: about 1 s)
TIMEOUT = 120.0
#: at most this much of the child's stderr is kept for the log
MAX_STDERR = 64 << 10
#: the child's entry; the package root goes first on its path (the interpreter runs isolated)
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from unwinder.symbols.apart import child_main; child_main()")
_ROOT = str(Path(__file__).resolve().parents[2])


class ColdModule(NamedTuple):
    """One module's addresses the cache cannot answer: ``fd`` is its open ELF file."""

    fd: int
    path: str | None
    build_id: bytes | None
    addresses: tuple[int, ...]


class ChildUsage(NamedTuple):
    """What the child cost: CPU seconds and peak RSS (its wall time is the caller's step);
    ``error`` unless it succeeded."""

    cpu: float
    maxrss_kib: int
    error: str | None

    def summary(self) -> str:
        outcome = f"failed: {self.error}" if self.error else "ok"
        return (f"in a child: {outcome}, {self.cpu:.2f} s CPU, "
                f"peak RSS {self.maxrss_kib} KiB")


def request_for(modules: list[ColdModule], cache_dir: Path, locator: DebugFileLocator) -> bytes:
    """The child's stdin for ``modules``."""
    client = locator.debuginfod
    return json.dumps({
        "cache": str(cache_dir),
        "locator": {"debug_dirs": [str(d) for d in locator.debug_dirs],
                    "debuginfod_urls": client.urls, "debuginfod_cache": str(client.cache_dir),
                    "timeout": client.timeout},
        "modules": [{"fd": m.fd, "path": m.path, "build_id": m.build_id.hex() if m.build_id else None,
                     "addresses": list(m.addresses)} for m in modules],
    }).encode()


def describe_apart(modules: list[ColdModule], cache_dir: Path, locator: DebugFileLocator, *,
                   timeout: float = TIMEOUT) -> ChildUsage:
    """Run a child that describes ``modules``' addresses into the cache at ``cache_dir``; wait
    for it (killed at ``timeout``). Never raises for the child's failures: they are in the
    returned :attr:`ChildUsage.error` (the caller then describes in-process)."""
    start = time.monotonic()
    request = request_for(modules, cache_dir, locator)
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-c", _BOOT, _ROOT], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/",
                                pass_fds=sorted({m.fd for m in modules}))
    except OSError as err:
        return ChildUsage(0.0, 0, f"cannot start: {err}")
    assert proc.stdin is not None and proc.stderr is not None
    error = None
    try:
        proc.stdin.write(request)  # small; the child reads it all before anything else
        proc.stdin.close()
    except OSError as err:
        error = f"cannot send the request: {err}"
    stderr, timed_out = _read_until(proc.stderr.fileno(), start + timeout)
    proc.stderr.close()
    if timed_out:
        os.kill(proc.pid, signal.SIGKILL)
        error = f"killed after {timeout:g} s"
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    for line in stderr.decode("utf-8", "backslashreplace").splitlines():
        log.warning("symbols child: %s", line)
    if error is None and proc.returncode != 0:
        error = f"exit status {proc.returncode}"
    if error is not None:
        log.warning("symbols child %s; the rest is described in-process", error)
    return ChildUsage(usage.ru_utime + usage.ru_stime, usage.ru_maxrss, error)


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything on ``fd`` until EOF (kept up to :data:`MAX_STDERR`); ``True`` when the
    ``deadline`` came first."""
    kept = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return bytes(kept), True
            chunk = os.read(fd, 65536)
            if not chunk:
                return bytes(kept), False
            kept += chunk[:MAX_STDERR - len(kept)]


def child_main() -> None:
    """The child: read the request, describe every address (which fills the cache), exit 0;
    a module that fails is reported on stderr and the others go on."""
    import logging

    from unwinder.elffile import ElfFile
    from unwinder.symbols.cache import SymbolCache
    from unwinder.symbols.locate import DebugFileLocator
    from unwinder.symbols.module import ModuleSymbols

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    request = json.loads(sys.stdin.buffer.read())
    spec = request["locator"]
    locator = DebugFileLocator(spec["debug_dirs"], spec["debuginfod_urls"],
                               Path(spec["debuginfod_cache"]), spec["timeout"])
    cache = SymbolCache(request["cache"])
    failed = 0
    for module in request["modules"]:
        label = module["path"] or f"fd {module['fd']}"
        try:
            # an open file description of our own: the inherited one's offset is the parent's
            own = os.open(f"/proc/self/fd/{module['fd']}", os.O_RDONLY | os.O_CLOEXEC)
            os.close(module["fd"])
            with os.fdopen(own, "rb") as handle:
                build_id = bytes.fromhex(module["build_id"]) if module["build_id"] else None
                symbols = ModuleSymbols.load(ElfFile(handle), path=module["path"],
                                             build_id=build_id, locator=locator, cache=cache)
                for address in module["addresses"]:
                    symbols.describe(address)
                symbols.save()
        except Exception as err:  # noqa: BLE001 - one module's failure, reported to the parent
            failed += 1
            print(f"{label}: {type(err).__name__}: {err}", file=sys.stderr)
    sys.exit(1 if failed else 0)
