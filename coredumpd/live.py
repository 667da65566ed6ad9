"""Live analysis of a process the kernel still holds: the unwinder fed by the procfs layer.

The unwinder does not import :mod:`procfs`; this module adapts one to the other: memory through
:class:`procfs.memory.ProcessMemory` (``/proc/<pid>/mem`` with its fallbacks) and mapped files
through ``/proc/<pid>/map_files`` (which still reaches deleted files) or ``/proc/<pid>/root``
(the process's own mount namespace).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, BinaryIO

from coredumpd.signature import signature_from_parts
from procfs.errors import MemoryFault, ProcfsError
from procfs.memory import ProcessMemory
from unwinder.analyze import DEFAULT_OPTIONS, Analysis, UnwindOptions, backtrace_from_memory
from unwinder.backtrace import Backtrace
from unwinder.core import CoreFile
from unwinder.core.notes import FileMapping
from unwinder.modules import DELETED, FileOpener

if TYPE_CHECKING:
    from unwinder.symbols.apart import ChildUsage


class LiveMemory:
    """``read_partial`` over a live process, as the unwinder's address space expects."""

    def __init__(self, memory: ProcessMemory) -> None:
        self.memory = memory

    def read_partial(self, address: int, size: int) -> tuple[bytes, int | None]:
        try:
            result = self.memory.read(address, size)
        except MemoryFault as err:
            return b"", err.address
        except (ProcfsError, ValueError, OverflowError):
            return b"", address
        return result.data, result.fault_address


def live_file_opener(pid: int) -> FileOpener:
    """Open a mapping's file as the process sees it: ``map_files`` first, then its root."""

    def opener(mapping: FileMapping) -> BinaryIO | None:
        candidates = [f"/proc/{pid}/map_files/{mapping.start:x}-{mapping.end:x}"]
        path = mapping.path[:-len(DELETED)] if mapping.path.endswith(DELETED) else mapping.path
        if path.startswith(b"/"):
            candidates.append(os.fsdecode(b"/proc/%d/root" % pid + path))
        for candidate in candidates:
            try:
                return open(candidate, "rb")  # noqa: SIM115 - owned by the ModuleMap
            except OSError:
                continue
        return None

    return opener


def live_backtrace(core: CoreFile, pid: int, *, options: UnwindOptions = DEFAULT_OPTIONS,
                   locator=None, cache=None) -> Backtrace:  # type: ignore[no-untyped-def]
    """Backtrace of every thread of ``pid``: registers from ``core``'s notes (the head of its
    core stream), memory and files from the live process."""
    with ProcessMemory(pid) as memory:
        return backtrace_from_memory(core, LiveMemory(memory), opener=live_file_opener(pid),
                                     locator=locator, cache=cache, options=options)


class LiveAnalysis:
    """A live process analysed in two phases: :meth:`unwind` while the kernel holds it (reads
    its memory), :meth:`symbolize` after it was released (reads only the module files, opened
    through /proc/<pid>/map_files during the first phase and kept open)."""

    def __init__(self, core: CoreFile, pid: int, *, options: UnwindOptions = DEFAULT_OPTIONS,
                 locator=None, cache=None) -> None:  # type: ignore[no-untyped-def]
        self._memory = ProcessMemory(pid)
        try:
            self._analysis = Analysis(core, LiveMemory(self._memory), None, live_file_opener(pid),
                                      locator, cache, options)
        except BaseException:
            self._memory.close()
            raise

    def unwind(self) -> list:  # type: ignore[type-arg]
        try:
            return self._analysis.unwind()
        finally:
            self._memory.close()

    def symbolize_apart(self, raw: list) -> ChildUsage | None:  # type: ignore[type-arg]
        """What the symbol cache lacks for ``raw``, built in a child (before :meth:`symbolize`)."""
        return self._analysis.symbolize_apart(raw)

    def symbolize(self, raw: list) -> Backtrace:  # type: ignore[type-arg]
        return self._analysis.symbolize(raw)

    def signature(self, raw: list) -> str | None:  # type: ignore[type-arg]
        """The crash signature from the raw frames (no symbols needed): the same value
        :func:`~coredumpd.signature.crash_signature` gives the symbolised backtrace."""
        crashed = next((unwound for _, was_crashed, unwound in raw if was_crashed), None)
        if crashed is None:
            return None
        parts = []
        for frame in crashed.frames:
            module = self._analysis.modules.find(frame.pc)
            if module is None:
                parts.append((None, None, None))
                continue
            key = module.build_id.hex() if module.build_id else module.path.rsplit(b"/", 1)[-1].decode(
                "utf-8", "backslashreplace")
            parts.append((key, frame.pc - module.start, None))
        return signature_from_parts(parts)

    def close(self) -> None:
        self._memory.close()
        self._analysis.close()
