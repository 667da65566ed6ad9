"""One process's memory, read through whichever method works, with fallbacks.

Order by default: ``/proc/<pid>/mem`` → process_vm_readv(2) → ``PTRACE_PEEKDATA`` (only when a
ptrace-stopped ``tracee`` is given). A method that cannot serve the process (missing, masked,
refused, ``ENOSYS``) is dropped for the life of the object, and the first method that answers
moves to the front, so the order is remembered per process. When a method stops short, the
remainder is offered to the methods after it — but only after process_vm_readv, since what
FOLL_FORCE readers (mem, PEEKDATA) cannot read no method can. :meth:`ProcessMemory.read_many`
prefers one batched process_vm_readv call whatever the order, and hands short ranges to the
other methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from procfs.errors import AccessDenied, MemoryFault, Unsupported
from procfs.memory_base import (
    FORCED_METHODS,
    MemoryMethod,
    MemoryRead,
    MethodUnavailable,
    Reader,
    check_range,
)
from procfs.memory_mem import MemFileReader
from procfs.memory_peek import PeekReader
from procfs.memory_vm import VmReadvReader

DEFAULT_ORDER = (MemoryMethod.MEM, MemoryMethod.PROCESS_VM_READV, MemoryMethod.PTRACE)
"""The order tried when the caller names none."""

OK = "ok"
"""Outcome recorded in :attr:`ProcessMemory.methods_tried` for a method that answered."""


class ProcessMemory:
    """Reads the address space of process ``pid`` (virtual addresses of the target).

    :param pid: the target (tgid, in our pid namespace).
    :param mem_fd: an open ``/proc/<pid>/mem`` to use (e.g. from a pidfd-verified handle);
        not closed by :meth:`close`. Otherwise mem is opened here, at once: its access check
        happens only at open.
    :param tracee: a thread of ``pid`` that the calling thread has ptrace-stopped; enables
        ``PTRACE_PEEKDATA``.
    :param methods: the methods allowed, in order of preference (default :data:`DEFAULT_ORDER`).
    :raises ProcessGone: the process does not exist.
    """

    def __init__(
        self,
        pid: int,
        *,
        mem_fd: int | None = None,
        tracee: int | None = None,
        methods: Iterable[MemoryMethod] | None = None,
    ) -> None:
        self.pid = pid
        self._mem_fd = mem_fd
        self._tracee = tracee
        self._order = [MemoryMethod(m) for m in (DEFAULT_ORDER if methods is None else methods)]
        self._readers: dict[MemoryMethod, Reader] = {}
        self._denied = False
        #: Each method consulted so far → ``"ok"`` or why it cannot serve this process.
        self.methods_tried: dict[MemoryMethod, str] = {}
        #: The method that produced the bytes of the latest read (``None`` before any).
        self.method: MemoryMethod | None = None
        if MemoryMethod.MEM in self._order:
            self._reader(MemoryMethod.MEM)

    @property
    def order(self) -> tuple[MemoryMethod, ...]:
        """The methods still usable, in the order the next read tries them."""
        return tuple(self._order)

    def _reader(self, method: MemoryMethod) -> Reader | None:
        reader = self._readers.get(method)
        if reader is not None:
            return reader
        try:
            reader = self._make(method)
        except MethodUnavailable as err:
            self._unavailable(method, err)
            return None
        self._readers[method] = reader
        return reader

    def _make(self, method: MemoryMethod) -> Reader:
        if method == MemoryMethod.MEM:
            return MemFileReader(self.pid, self._mem_fd)
        if method == MemoryMethod.PROCESS_VM_READV:
            return VmReadvReader(self.pid)
        if self._tracee is None:
            raise MethodUnavailable("no ptrace-stopped tracee was given")
        return PeekReader(self.pid, self._tracee)

    def _unavailable(self, method: MemoryMethod, err: MethodUnavailable) -> None:
        self.methods_tried[method] = err.reason
        self._denied = self._denied or err.denied
        if method in self._order:
            self._order.remove(method)
            if not err.permanent:
                self._order.append(method)  # may work later: keep it, last
        reader = self._readers.pop(method, None)
        if reader is not None and err.permanent:
            reader.close()

    def _answered(self, method: MemoryMethod) -> None:
        if self._order and self._order[0] != method:
            self._order.remove(method)
            self._order.insert(0, method)

    def read(self, address: int, size: int) -> MemoryRead:
        """Read ``size`` bytes at ``address``; a short result carries the first fault address.

        :raises ProcessGone: the address space is gone (exit, exec, reap).
        :raises AccessDenied, Unsupported: no method can serve this process.
        """
        check_range(address, size)
        if size == 0:
            return MemoryRead(address, 0, b"", None, None)
        return self._finish(address, size, b"", (), tuple(self._order))

    def read_exact(self, address: int, size: int) -> bytes:
        """Read all ``size`` bytes at ``address``.

        :raises MemoryFault: some byte is unreadable; ``.address`` is the first one.
        """
        result = self.read(address, size)
        if result.fault_address is not None:
            raise MemoryFault(self.pid, result.fault_address, size - len(result.data))
        return result.data

    def read_many(self, ranges: Iterable[tuple[int, int]]) -> list[MemoryRead]:
        """Read each ``(address, size)``: batched process_vm_readv first when allowed.

        Results come in the order of ``ranges``.
        """
        ranges = list(ranges)
        for address, size in ranges:
            check_range(address, size)
        vm = MemoryMethod.PROCESS_VM_READV
        if vm in self._order and len(ranges) > 1:
            reader = self._reader(vm)
            if reader is not None:
                try:
                    prefixes = reader.read_many(ranges)
                except MethodUnavailable as err:
                    self._unavailable(vm, err)
                else:
                    self.methods_tried[vm] = OK
                    self.method = vm
                    rest = tuple(m for m in self._order if m != vm)
                    return [
                        MemoryRead(a, s, data, None, vm if s else None, (vm,))
                        if len(data) == s
                        else self._finish(a, s, data, (vm,), rest)
                        for (a, s), data in zip(ranges, prefixes, strict=True)
                    ]
        return [self.read(address, size) for address, size in ranges]

    def _finish(
        self,
        address: int,
        size: int,
        data: bytes,
        consulted: tuple[MemoryMethod, ...],
        candidates: Sequence[MemoryMethod],
    ) -> MemoryRead:
        """Complete ``data`` (already read by ``consulted``) through ``candidates`` in turn."""
        pieces = [data] if data else []
        contributors = [consulted[0]] if data else []
        done = len(data)
        last = consulted[-1] if consulted else None
        for method in candidates:
            if done == size or (last in FORCED_METHODS):
                break
            reader = self._reader(method)
            if reader is None:
                continue
            try:
                got = reader.read(address + done, size - done)
            except MethodUnavailable as err:
                self._unavailable(method, err)
                continue
            if not consulted:
                self._answered(method)  # the first method that answers leads next time
            self.methods_tried[method] = OK
            consulted += (method,)
            last = method
            if got:
                pieces.append(got)
                contributors.append(method)
                done += len(got)
        if not consulted:
            raise self._no_method()
        first = contributors[0] if contributors else None
        if first is not None:
            self.method = first
        fault = None if done == size else address + done
        return MemoryRead(address, size, b"".join(pieces), fault, first, consulted)

    def _no_method(self) -> Exception:
        reasons = "; ".join(f"{m}: {why}" for m, why in self.methods_tried.items() if why != OK)
        if self._denied:
            return AccessDenied(self.pid, "memory", reasons or None)
        return Unsupported("reading process memory", reasons or "no method allowed")

    def close(self) -> None:
        """Release the readers (closes ``/proc/<pid>/mem`` if this object opened it)."""
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def __enter__(self) -> ProcessMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
