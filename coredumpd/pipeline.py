"""One crash, from the kernel's stream to a stored, explained, findable record.

Every door (pipe helper, daemon hand-off, kernel socket, catcher) builds a
:class:`CrashContext` and hands the stream here. Steps, in DESIGN.md §3's order:

1. metadata from /proc while the task is held (the door may have done it already);
2. the stream head: ELF header, program headers, every thread's notes;
3. the live backtrace, from /proc/<pid>/mem, before the stream is drained;
4. storage: head + rest through streaming zstd, limits, completeness;
5. publish atomically (storage does it);
6. catalog row and journald entry;
7. release the task, then the slow work: symbols (addresses new to the symbol cache are
   described by a short-lived child, :mod:`unwinder.symbols.apart`, so a module's DWARF never
   weighs on a long-lived daemon), offline analysis if the live one failed, vacuum.
   (A core already in a regular file, the catcher's, releases the task right after step 3.)

No step after the head may lose the crash: each failure is logged and noted on the record.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from coredumpd import estimate, inflight
from coredumpd.catalog import Catalog
from coredumpd.context import CrashContext
from coredumpd.journal import build_entry, send_entry
from coredumpd.live import LiveAnalysis
from coredumpd.metadata import collect_metadata
from coredumpd.policy import CrashFacts, Policy, SignatureLimit
from coredumpd.signals import signal_name
from coredumpd.signature import crash_signature
from coredumpd.spool import Spool
from coredumpd.storage import StorageLimits, StoredCore, decompress_to, store_core
from coredumpd.vacuum import vacuum
from procfs.handle import ProcessHandle
from unwinder.analyze import Analysis
from unwinder.backtrace import Backtrace
from unwinder.core import CoreReader, read_core_head
from unwinder.errors import CorruptCore
from unwinder.format import format_systemd, to_json
from unwinder.symbols.cache import SymbolCache

if TYPE_CHECKING:
    from unwinder.symbols.apart import ChildUsage

log = logging.getLogger(__name__)
#: doors whose crashes the pipeline rate-limits (the kernel socket's door decides before the
#: ack, in its own process; the catcher and snapshots are asked for by a user)
RATE_LIMITED_DOORS = frozenset({"pipe"})
T = TypeVar("T")


@dataclass(frozen=True)
class PipelineResult:
    row_id: int | None
    context: CrashContext
    stored: StoredCore | None
    backtrace: Backtrace | None
    backtrace_source: str | None  # "live" | "offline" | None
    journal_sent: bool
    #: (step, seconds) in the order they ran: where a crash's time went
    steps: tuple[tuple[str, float], ...] = ()
    #: the child that described addresses new to the symbol cache, when one ran
    symbols_child: ChildUsage | None = None

    def summary(self) -> str:
        """One line for the daemon's log: the core's fate, each step's time, and the symbols
        child's cost (its memory is not the daemon's: this is where it is accounted for)."""
        core = self.stored.state if self.stored else "not stored"
        line = f"core {core}" + (" (into the spool)" if self.stored and self.stored.spooled else "")
        if self.steps:
            line += "; " + ", ".join(f"{step} {seconds * 1e3:.0f} ms" for step, seconds in self.steps)
        if self.symbols_child is not None:
            line += f"; symbols {self.symbols_child.summary()}"
        return line


class _Stopwatch:
    """Times a crash's steps, one after another."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self._last = time.monotonic()

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.steps.append((step, now - self._last))
        self._last = now

    def lap_before(self, step: str, then: Callable[[], None]) -> Callable[[], None]:
        """``then``, made to end ``step`` first (for a callback that marks a step's end)."""
        def lap_then() -> None:
            self.lap(step)
            then()
        return lap_then


class _RecordingReader:
    """Reads a raw fd and keeps every byte, so a head that fails to parse is still stored."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = bytearray()

    def read(self, size: int) -> bytes:
        chunk = os.read(self.fd, size)
        self.data += chunk
        return chunk


class Pipeline:
    """Runs crashes through the steps; one instance serves many crashes (thread-safe as long
    as the catalog is)."""

    def __init__(self, *, state_dir: Path, limits: StorageLimits, catalog: Catalog,
                 storage: bool = True, journal: bool = True,
                 journal_size_max: int | None = None,
                 signatures: SignatureLimit | None = None,
                 policy: Policy | None = None, spool: Spool | None = None) -> None:
        self.journal_size_max = journal_size_max
        #: the rate limits, for the doors that cannot ask before the core comes (the pipe)
        self.policy = policy
        #: "a full core for the first K of each signature"; None: every core is kept
        self.signatures = signatures
        self.state_dir = state_dir
        self.core_dir = state_dir / "coredump"
        self.core_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        self.limits = limits
        self.catalog = catalog
        self.storage = storage
        self.journal = journal
        #: a file written ahead for big cores (a daemon's: :func:`coredumpd.runtime.pipeline_for`)
        self.spool = spool
        self.symbol_cache = _attempt("open the symbol cache", None,
                                     lambda: SymbolCache(state_dir / "cache" / "symbols"))
        #: one crash's symbols at a time: concurrent crashes of one program would each build
        #: the same libraries' tables in a cold cache (hundreds of MiB each), where the second
        #: one waiting finds them cached. Costs no throughput (the interpreter lock already
        #: serialises this pure-Python work) and holds no task: it runs after the release.
        self._symbolizing = threading.Lock()

    def process(self, context: CrashContext, stream: int, handle: ProcessHandle | None = None,
                *, metadata_done: bool = False,
                release: Callable[[], None] | None = None) -> PipelineResult:
        """Run ``context``'s crash: ``stream`` is the raw fd carrying the core (read to EOF
        here); ``release`` is called as soon as the whole core is in."""
        if context.signal is not None and context.signal_name is None:
            context.signal_name = signal_name(context.signal)
        if handle is not None and not metadata_done:
            _attempt("read /proc metadata", None, lambda: collect_metadata(context, handle), context)
        if context.boot_id is None:
            context.boot_id = _read_id("/proc/sys/kernel/random/boot_id")
        if context.machine_id is None:
            context.machine_id = _read_id("/etc/machine-id")
        if self.policy is not None and context.door in RATE_LIMITED_DOORS:
            verdict = self.policy.decide(CrashFacts(exe=context.exe, unit=context.unit,
                                                    uid=context.uid, signal=context.signal,
                                                    comm=context.comm))
            if not verdict.take:
                return self._rejected(context, stream, release, verdict.reason or "rejected")
        marker = inflight.mark(self.state_dir, context)  # a kill from here on: still counted
        try:
            return self._process(context, stream, handle, release)
        finally:
            inflight.clear(marker)

    def _process(self, context: CrashContext, stream: int, handle: ProcessHandle | None,
                 release: Callable[[], None] | None) -> PipelineResult:
        """Steps 2 to 7, once the metadata is in and the crash is taken."""
        watch = _Stopwatch()
        recorder = _RecordingReader(stream)
        head = None
        try:
            head = read_core_head(recorder)
        except CorruptCore as err:
            log.warning("core of pid %s: %s; storing the stream as it came", context.pid, err)
            context.notes.append(f"core head unreadable: {err}")
        except OSError as err:
            context.notes.append(f"core stream unreadable: {err}")
        if head is not None and head.core.siginfo is not None and context.si_code is None:
            context.si_code = head.core.siginfo.si_code
        watch.lap("head")

        # Unwind while the kernel holds the task (memory reads only); symbols come after the
        # release, from the module files opened meanwhile.
        live, raw = None, None
        if head is not None and handle is not None:
            live = _attempt("open the live process", None,
                            lambda: LiveAnalysis(head.core, handle.pid, cache=self.symbol_cache),
                            context)
            if live is not None:
                raw = _attempt("unwind the live process", None, live.unwind, context)
            watch.lap("unwind")

        # A core that is a regular file (the catcher's, a snapshot's) is safe already: the
        # process goes on (or dies) now, not after the compression.
        if release is not None and _is_regular_file(stream):
            release()
            release = None

        # Repeats of a known crash keep metadata and backtrace only (decided before a byte of
        # the core is written: the signature needs no symbols).
        keep_core = self.storage
        if keep_core and self.signatures is not None and self.signatures.enabled and raw:
            signature = _attempt("compute the crash signature", None,
                                 lambda: live.signature(raw), context)
            if not self.signatures.full_core(signature):
                keep_core = False
                context.notes.append(f"repeat of signature {signature}: full cores are kept for "
                                     f"the first {self.signatures.first}; metadata and backtrace only")

        stored, guess = None, None
        if keep_core and self.spool is not None and head is not None and handle is not None:
            # the spool is for cores big on disk, not for big runs of one byte
            guess = _attempt("guess the core's size on disk", None,
                             lambda: estimate.stored_size(head.core, handle.pid), context)
            watch.lap("guess")
        if keep_core:
            if release is not None:
                release = watch.lap_before("receive", release)
            stored = _attempt("store the core", None, lambda: store_core(
                self.core_dir, context, bytes(recorder.data), stream,
                expected=head.core.expected_size if head is not None else None,
                limits=self.limits, rlimit=context.rlimit, on_received=release,
                spool=self.spool, stored_guess=guess), context)
        _trim_heap()  # the store's buffers and compressor contexts, before symbols load
        if stored is None:
            _drain(stream)
            if release is not None:
                release()
        elif stored.path is not None:
            context.filename = str(stored.path)
            context.truncated = 1 if stored.state == "truncated" else None
        watch.lap("store" if stored is not None else "drain")
        if stored is not None and stored.reason:
            context.notes.append(stored.reason)

        backtrace, source, child = None, None, None
        if live is not None:
            if raw is not None:
                with self._symbolizing:
                    # what the symbol cache lacks is built by a child, whose memory goes with it
                    child = _attempt("describe new addresses in a child", None,
                                     lambda: live.symbolize_apart(raw), context)
                    if child is not None:
                        watch.lap("symbols apart")
                    backtrace = _attempt("symbolize the live backtrace", None,
                                         lambda: live.symbolize(raw), context)
                source = "live" if backtrace is not None else None
            live.close()
            watch.lap("symbols")

        if backtrace is None and stored is not None and stored.path is not None:
            with self._symbolizing:
                offline = _attempt("unwind the stored core", None,
                                   lambda: self._offline_backtrace(stored.path), context)
            if offline is not None:
                backtrace, child = offline[0], offline[1] or child
            source = "offline" if backtrace is not None else None
            watch.lap("offline")

        text = format_systemd(backtrace) if backtrace is not None else None
        signature = crash_signature(backtrace)
        row_id = _attempt("record the crash in the catalog", None, lambda: self.catalog.add(
            context, stored, backtrace_json=to_json(backtrace, indent=None) if backtrace else None,
            signature=signature), context)
        watch.lap("catalog")
        sent = False
        # a snapshot of a live process is not a crash: no coredump entry for coredumpctl
        if self.journal and context.door != "snapshot":
            core_received = head is not None or bool(stored and stored.received)
            sent = bool(_attempt("send the journal entry", False, lambda: send_entry(build_entry(
                context, text, core_stored=bool(stored and stored.path),
                core_received=core_received, journal_size_max=self.journal_size_max,
                signature=signature)), context))
            watch.lap("journal")
        if stored is not None and stored.path is not None:
            _attempt("vacuum", None, lambda: vacuum(
                self.core_dir, max_use=self.limits.max_use, keep_free=self.limits.keep_free,
                keep={stored.path}))
            watch.lap("vacuum")
        live = raw = None  # the analysis (module maps, symbols) goes before the memory is trimmed
        _give_back_memory()
        return PipelineResult(row_id, context, stored, backtrace, source, sent, tuple(watch.steps),
                              child)

    def _rejected(self, context: CrashContext, stream: int, release: Callable[[], None] | None,
                  reason: str) -> PipelineResult:
        """A crash over the rate limits: the core is read and dropped, the record kept (no
        unwind, no journal entry: a crash loop must not flood either)."""
        context.notes.append(reason)
        _drain(stream)
        if release is not None:
            release()
        row_id = _attempt("record the crash in the catalog", None, lambda: self.catalog.add(
            context, None, backtrace_json=None, signature=None), context)
        log.info("pid %s %s", context.pid, reason)
        return PipelineResult(row_id, context, None, None, None, False)

    def _offline_backtrace(self, path: Path) -> tuple[Backtrace, ChildUsage | None]:
        """The stored core's backtrace, its new addresses described by a child as the live
        path's are; and that child's cost, when one ran."""
        with tempfile.TemporaryDirectory(prefix="coredumpd-", dir=self.state_dir) as tmp:
            raw = Path(tmp) / "core"
            decompress_to(path, raw, sparse=True)
            with CoreReader(raw, zero_fill=False) as reader, \
                    Analysis.of_core(reader, cache=self.symbol_cache) as analysis:
                unwound = analysis.unwind()
                child = analysis.symbolize_apart(unwound)
                return analysis.symbolize(unwound), child


def _attempt(what: str, default: T, step: Callable[[], T], context: CrashContext | None = None) -> T:
    """Run one optional step; a failure is logged and noted, never raised: the crash must be
    recorded whatever else goes wrong."""
    try:
        return step()
    except Exception as err:  # noqa: BLE001 - the pipeline's outermost guard for one step
        log.warning("failed to %s, ignoring: %s: %s", what, type(err).__name__, err)
        if context is not None:
            context.notes.append(f"failed to {what}: {err}")
        return default


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc; absent from musl
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_malloc_trim = _find_malloc_trim()


def _trim_heap() -> None:
    """Hand every free page of every malloc arena back to the system. glibc keeps freed
    memory of non-main arenas (each worker thread has one) mapped, so without this a
    long-lived daemon's RSS only grows to the biggest crash it has seen."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _give_back_memory() -> None:
    """After a crash: free the analysis' reference cycles (pyelftools DIEs, the module map),
    then trim the heap."""
    gc.collect()
    _trim_heap()


def _is_regular_file(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def _drain(fd: int) -> int:
    total = 0
    try:
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
    except OSError:
        pass
    return total


def _read_id(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip().replace("-", "") or None
    except OSError:
        return None
