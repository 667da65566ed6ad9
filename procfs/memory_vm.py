"""Reading a process's memory with process_vm_readv(2), many ranges per syscall.

Measured on 6.18 (research/procfs-sandbox.md §2.1–2.2): access is checked per call
(ATTACH_REALCREDS); PROT_NONE pages give ``EFAULT`` (no FOLL_FORCE); the kernel stops at the
first remote iovec it cannot read and — contrary to the man page — does split a single iovec at
a hole (8192 of 12288). One call with up to 1024 iovecs is the fastest way to do scattered small
reads (1000 × 64 B: 0.38 ms in C), so the iovec arrays are built as flat ``array('Q')`` buffers
pointing into one bytearray: no per-range ctypes objects.
"""

from __future__ import annotations

import ctypes
import errno
from array import array
from collections.abc import Sequence

from procfs._libc import syscall
from procfs.errors import ProcessGone, ProcfsError
from procfs.memory_base import MemoryMethod, MethodUnavailable

IOV_MAX = 1024
"""Most iovecs one call accepts (``UIO_MAXIOV``)."""


class VmReadvReader:
    """Reads with process_vm_readv(2); holds nothing but the pid.

    :param pid: the target (tgid or tid, in our pid namespace).
    """

    method = MemoryMethod.PROCESS_VM_READV

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def read(self, address: int, size: int) -> bytes:
        """The readable prefix of ``[address, address + size)``."""
        return self.read_many([(address, size)])[0]

    def read_many(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The readable prefix of each ``(address, size)`` range, ≤ 1024 ranges per syscall.

        A range that stops short costs one more call (the one that reports ``EFAULT`` at the
        first unreadable byte); the ranges after it are read by the next call.

        :raises MethodUnavailable: ``ENOSYS``, ``EPERM`` (access rules), and the like.
        :raises ProcessGone: ``ESRCH``.
        """
        offsets = []
        total = 0
        for _, size in ranges:
            offsets.append(total)
            total += size
        buf = bytearray(total)
        base = ctypes.addressof((ctypes.c_char * max(total, 1)).from_buffer(buf)) if total else 0
        done = [0] * len(ranges)
        index = 0
        while index < len(ranges):
            batch = []
            while index + len(batch) < len(ranges) and len(batch) < IOV_MAX:
                batch.append(index + len(batch))
            local = array("Q")
            remote = array("Q")
            want = 0
            for i in batch:
                address, size = ranges[i]
                left = size - done[i]
                want += left
                local.extend((base + offsets[i] + done[i], left))
                remote.extend((address + done[i], left))
            try:
                got = self._call(local, remote, len(batch)) if want else 0
            except _Fault:
                got = -1
            if got <= 0 and want:
                # Nothing at all: the first range with bytes left faults where it stands.
                index = next(i for i in batch if done[i] < ranges[i][1]) + 1
                continue
            index = self._distribute(got, batch, ranges, done, index)
        with memoryview(buf) as view:
            return [bytes(view[offsets[i] : offsets[i] + done[i]]) for i in range(len(ranges))]

    @staticmethod
    def _distribute(
        got: int, batch: list[int], ranges: Sequence[tuple[int, int]], done: list[int], index: int
    ) -> int:
        """Credit ``got`` bytes to the batch in order; return where the next call starts."""
        for i in batch:
            left = ranges[i][1] - done[i]
            take = min(left, got)
            done[i] += take
            got -= take
            if take < left:
                return i  # short: retry from here; the next call reports the fault
            index = i + 1
        return index

    def _call(self, local: array, remote: array, count: int) -> int:
        try:
            return syscall(
                "process_vm_readv",
                ctypes.c_long(self.pid),
                ctypes.c_void_p(local.buffer_info()[0]),
                ctypes.c_ulong(count),
                ctypes.c_void_p(remote.buffer_info()[0]),
                ctypes.c_ulong(count),
                ctypes.c_ulong(0),
            )
        except OSError as err:
            if err.errno == errno.EFAULT:
                raise _Fault() from err
            if err.errno == errno.ESRCH:
                raise ProcessGone(self.pid) from err
            if err.errno in (errno.EPERM, errno.EACCES):
                raise MethodUnavailable(f"process_vm_readv: {err.strerror}", denied=True) from err
            if err.errno in (errno.ENOSYS, errno.EOPNOTSUPP):
                raise MethodUnavailable(f"process_vm_readv: {err.strerror}") from err
            raise ProcfsError(f"process_vm_readv on pid {self.pid}: {err.strerror}") from err

    def close(self) -> None:
        """Nothing to release."""


class _Fault(Exception):
    """The first remote iovec of a call could not be read at all."""
