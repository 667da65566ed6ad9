"""Shared vocabulary of the memory readers: the methods, a read's result, and the reader contract.

A *reader* is one way into a process's address space. Its ``read(address, size)`` returns the
readable prefix of ``[address, address + size)``; a short prefix means the byte right after it
faulted. A reader raises :class:`MethodUnavailable` when it cannot serve this process at all
(the syscall is missing, access is refused, ``/proc/<pid>/mem`` is masked), and
:class:`~procfs.errors.ProcessGone` when the address space no longer exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class MemoryMethod(StrEnum):
    """A way to read another process's memory."""

    MEM = "mem"
    """``/proc/<pid>/mem`` (pread; ctypes lseek + read above 2^63). Reads PROT_NONE pages."""
    PROCESS_VM_READV = "process_vm_readv"
    """process_vm_readv(2), batched. Fails on PROT_NONE pages (no FOLL_FORCE)."""
    PTRACE = "ptrace"
    """``PTRACE_PEEKDATA`` word by word; needs a ptrace-stopped thread we trace."""


FORCED_METHODS = frozenset({MemoryMethod.MEM, MemoryMethod.PTRACE})
"""Methods that read with FOLL_FORCE: what they cannot read, no other method can."""


@dataclass(frozen=True)
class MemoryRead:
    """The outcome of reading ``size`` bytes at ``address`` (virtual addresses of the target).

    ``data`` is the readable prefix (``len(data) <= size``). ``fault_address`` is ``None`` when
    every byte was read, else the first address that could not be read
    (``address + len(data)``). ``method`` produced the first byte (``None`` when nothing was
    read); ``methods`` lists every method consulted for this read, in order.
    """

    address: int
    size: int
    data: bytes
    fault_address: int | None
    method: MemoryMethod | None
    methods: tuple[MemoryMethod, ...] = ()

    @property
    def complete(self) -> bool:
        """True when all ``size`` bytes were read."""
        return self.fault_address is None


class MethodUnavailable(Exception):
    """A reader cannot serve this process (internal to the memory layer).

    ``denied`` marks a refusal by the access rules (EPERM/EACCES); ``permanent`` is False when
    the condition may pass (a tracee that is running now may be ptrace-stopped later).
    """

    def __init__(self, reason: str, *, denied: bool = False, permanent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.denied = denied
        self.permanent = permanent


class Reader(Protocol):
    """What :class:`~procfs.memory.ProcessMemory` needs from a method."""

    method: MemoryMethod

    def read(self, address: int, size: int) -> bytes:
        """The readable prefix of ``[address, address + size)``."""
        ...

    def read_many(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The readable prefix of each ``(address, size)`` range."""
        ...

    def close(self) -> None:
        """Release what the reader holds (file descriptors)."""
        ...


ADDRESS_LIMIT = 1 << 64
"""One past the highest virtual address of a 64-bit process."""


def check_range(address: int, size: int) -> None:
    """Reject ranges outside the 64-bit address space.

    :raises ValueError: negative address or size, or a range past 2^64.
    """
    if address < 0 or size < 0 or address + size > ADDRESS_LIMIT:
        raise ValueError(f"range {address:#x}+{size:#x} is outside the 64-bit address space")
