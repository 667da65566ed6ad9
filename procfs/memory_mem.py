"""Reading a process's memory through ``/proc/<pid>/mem``.

Measured on 6.18 (research/procfs-sandbox.md §2.1): the access check happens once, at
``open()``; reads use FOLL_FORCE (PROT_NONE pages are readable); an unmapped address gives
``EIO``; a read that runs into a hole is short; once the mm is gone (exit, reap, exec) the old
fd reads 0 bytes. ``pread`` cannot reach offsets ≥ 2^63 (the x86_64 vsyscall page at
0xffffffffff600000) and Python's ``os.lseek`` raises ``SystemError`` there, although the kernel
accepts the seek (mem has ``FMODE_UNSIGNED_OFFSET``): those reads go through libc's ``lseek64``
with an int64 result, then ``read``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import threading
from collections.abc import Sequence

from procfs._libc import libc
from procfs.errors import ProcessGone, ProcfsError
from procfs.memory_base import MemoryMethod, MethodUnavailable

CHUNK = 1 << 20
"""Largest single read (bytes); gVisor buffers a whole request inside the Sentry."""

PROC_SUPER_MAGIC = 0x9FA0
"""``f_type`` of procfs (``include/uapi/linux/magic.h``)."""

_SIGNED_LIMIT = 1 << 63

_lseek64 = libc.lseek64
_lseek64.restype = ctypes.c_int64
_lseek64.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int)

_fstatfs = libc.fstatfs
_fstatfs.restype = ctypes.c_int
_fstatfs.argtypes = (ctypes.c_int, ctypes.c_void_p)


def fd_filesystem_magic(fd: int) -> int:
    """``f_type`` of the filesystem that holds ``fd`` (fstatfs(2); a ``long`` first on
    x86_64 and aarch64)."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on both
    if _fstatfs(fd, buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFFFFFFFFFF


def seek_unsigned(fd: int, offset: int) -> None:
    """Seek ``fd`` to an unsigned 64-bit ``offset``, also ≥ 2^63 (ctypes ``lseek64``)."""
    signed = offset - (1 << 64) if offset >= _SIGNED_LIMIT else offset
    ctypes.set_errno(0)
    if _lseek64(fd, signed, os.SEEK_SET) == -1 and ctypes.get_errno():
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class MemFileReader:
    """Reads through an fd of ``/proc/<pid>/mem``, opened here or handed in.

    :param pid: the target (tgid or tid, in our pid namespace).
    :param fd: an already open ``/proc/<pid>/mem`` (not closed by :meth:`close`); ``None``
        opens one now — early, while access is allowed: the check happens only at open.
    :raises MethodUnavailable: mem is missing, refused, or masked (not a procfs file, e.g.
        ``/dev/null`` bind-mounted over it as gVisor once had).
    :raises ProcessGone: the process does not exist.
    """

    method = MemoryMethod.MEM

    def __init__(self, pid: int, fd: int | None = None) -> None:
        self.pid = pid
        self._owned = fd is None
        self._seek_lock = threading.Lock()
        self.fd = self._open(pid) if fd is None else fd
        try:
            magic = fd_filesystem_magic(self.fd)
        except OSError as err:
            # gVisor answers ENOSYS to fstatfs on it: tell a mask by its file type instead
            # (the real file is a regular file; /dev/null bound over it is a character device)
            if not stat.S_ISREG(os.fstat(self.fd).st_mode):
                self.close()
                raise MethodUnavailable(f"/proc/{pid}/mem is masked (fstatfs: {err}; "
                                        "not a regular file)") from err
            magic = PROC_SUPER_MAGIC
        if magic != PROC_SUPER_MAGIC:
            self.close()
            raise MethodUnavailable(
                f"/proc/{pid}/mem is masked: filesystem magic {magic:#x}, not procfs"
            )

    @staticmethod
    def _open(pid: int) -> int:
        path = f"/proc/{pid}/mem"
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            if err.errno == errno.ESRCH:
                raise ProcessGone(pid) from err
            if err.errno == errno.ENOENT:
                if not os.path.exists(f"/proc/{pid}"):
                    raise ProcessGone(pid) from err
                raise MethodUnavailable(f"{path} does not exist") from err
            if err.errno in (errno.EACCES, errno.EPERM):
                raise MethodUnavailable(f"opening {path}: {err.strerror}", denied=True) from err
            raise MethodUnavailable(f"opening {path}: {err.strerror}") from err

    def _pread(self, size: int, offset: int) -> bytes:
        if offset < _SIGNED_LIMIT:
            return os.pread(self.fd, min(size, _SIGNED_LIMIT - offset), offset)
        with self._seek_lock:
            seek_unsigned(self.fd, offset)
            return os.read(self.fd, size)

    def read(self, address: int, size: int) -> bytes:
        """The readable prefix of ``[address, address + size)``, in chunks of ≤ 1 MiB.

        :raises ProcessGone: the address space is gone (a read returned 0 bytes, or ``ESRCH``).
        """
        pieces = []
        done = 0
        while done < size:
            try:
                got = self._pread(min(CHUNK, size - done), address + done)
            except OSError as err:
                if err.errno in (errno.EIO, errno.EFAULT, errno.EINVAL):
                    break  # unmapped, non-canonical, or beyond what the kernel accepts
                if err.errno == errno.ESRCH:
                    raise ProcessGone(self.pid) from err
                raise ProcfsError(f"reading /proc/{self.pid}/mem: {err.strerror}") from err
            if not got:
                raise ProcessGone(self.pid, "address space is gone (exit, reap or exec)")
            pieces.append(got)
            done += len(got)
        return b"".join(pieces)

    def read_many(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """:meth:`read` of each ``(address, size)``, one syscall (at least) per range."""
        return [self.read(address, size) for address, size in ranges]

    def close(self) -> None:
        """Close the fd if this reader opened it."""
        if self._owned and self.fd >= 0:
            os.close(self.fd)
        self.fd = -1
