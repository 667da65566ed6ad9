"""Reading a process's memory word by word with ``PTRACE_PEEKDATA``: the last resort.

Works only when this thread traces ``tracee`` and it is in a ptrace-stop (``ESRCH`` otherwise).
Reads use FOLL_FORCE: PROT_NONE pages are readable, unmapped words give ``EIO``. About 1 µs per
8 bytes in C, several in Python (research/procfs-sandbox.md §2.2).
"""

from __future__ import annotations

from collections.abc import Sequence

from procfs.errors import AccessDenied, MemoryFault, TraceeNotStopped
from procfs.memory_base import MemoryMethod, MethodUnavailable
from procfs.ptrace import WORD_SIZE, peek_data


class PeekReader:
    """Reads through ``PTRACE_PEEKDATA`` on a stopped thread of the target.

    :param pid: the target process (for messages).
    :param tracee: a thread of the target that the calling thread has ptrace-stopped; any thread
        will do, they share one address space.
    """

    method = MemoryMethod.PTRACE

    def __init__(self, pid: int, tracee: int) -> None:
        self.pid = pid
        self.tracee = tracee

    def read(self, address: int, size: int) -> bytes:
        """The readable prefix of ``[address, address + size)``.

        :raises MethodUnavailable: the tracee is not stopped (not permanent) or not ours.
        :raises ProcessGone: the tracee no longer exists.
        """
        end = address + size
        word = address - address % WORD_SIZE
        out = bytearray()
        while word < end:
            try:
                value = peek_data(self.tracee, word)
            except MemoryFault:
                break
            except TraceeNotStopped as err:
                raise MethodUnavailable(str(err), permanent=False) from err
            except AccessDenied as err:
                raise MethodUnavailable(str(err), denied=True) from err
            out += value.to_bytes(WORD_SIZE, "little")
            word += WORD_SIZE
        skip = address % WORD_SIZE
        return bytes(out[skip : skip + size])

    def read_many(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """:meth:`read` of each ``(address, size)``."""
        return [self.read(address, size) for address, size in ranges]

    def close(self) -> None:
        """Nothing to release."""
