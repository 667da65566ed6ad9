"""A process handle: a pidfd that pins the identity plus a ``/proc/<pid>`` dirfd for the content.

Order matters (as in systemd's ``pidref``): open the pidfd first, then the ``/proc/<pid>``
directory, read relative to that directory, then :meth:`ProcessHandle.verify`. If the process
died and its pid was reused between the two opens, the dirfd names the wrong process, but the
pidfd no longer resolves to that pid, so ``verify()`` fails.

How ``verify()`` decides: it asks the pidfd for its pid (``PIDFD_GET_INFO`` with
``PIDFD_INFO_PID``, falling back to the ``Pid:`` line of ``/proc/self/fdinfo/<pidfd>``). That
pid is reported for as long as the process is alive *or a zombie* and equals the pid we opened;
after the reap it is gone (``ESRCH``, or ``Pid: -1``). A zombie therefore still verifies: what was
read belongs to the right process, though its memory and maps are already empty.
"""

from __future__ import annotations

import os
from types import TracebackType

from procfs.errors import ProcessGone, translate_oserror
from procfs.pidfd import (
    DEFAULT_INFO_MASK,
    PidfdInfo,
    PidfdInfoMask,
    get_pidfd_info,
    pidfd_open,
    pidfd_send_signal,
    read_pidfd_pid,
)

READ_CHUNK = 64 * 1024
"""Bytes asked for per ``read(2)``; single_open files come back whole in the first read."""


def read_fd_all(fd: int, limit: int | None = None) -> bytes:
    """Read ``fd`` sequentially from its current offset to EOF (or ``limit`` bytes).

    One fd and sequential reads only: that is what keeps a ``single_open`` /proc file consistent.
    """
    chunks: list[bytes] = []
    total = 0
    while limit is None or total < limit:
        want = READ_CHUNK if limit is None else min(READ_CHUNK, limit - total)
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


class ProcessHandle:
    """One process: ``pidfd`` (identity) and ``dirfd``, an ``O_PATH`` fd on ``/proc/<pid>``.

    ``pid`` is the tgid in the pid namespace of the ``/proc`` mount we use (normally ours).
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, pid: int, pidfd: int, dirfd: int, *, owns_pidfd: bool = True) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.dirfd = dirfd
        self._owns_pidfd = owns_pidfd

    @classmethod
    def from_pid(cls, pid: int, *, proc: str = "/proc") -> ProcessHandle:
        """Open a handle on ``pid`` (a tgid in our pid namespace).

        :raises ProcessGone: no such process, or it was reaped while we opened it.
        """
        pidfd = pidfd_open(pid)
        try:
            return cls._with_pidfd(pid, pidfd, proc, owns_pidfd=True)
        except BaseException:
            os.close(pidfd)
            raise

    @classmethod
    def from_pidfd(cls, pidfd: int, *, take: bool = True, proc: str = "/proc") -> ProcessHandle:
        """Open a handle on the process behind a pidfd handed over by the kernel.

        That is fd 3 of the pipe helper (``%F``) or ``SO_PEERPIDFD`` of a coredump socket
        connection. With ``take`` the handle closes ``pidfd`` when it is closed.
        """
        pid = read_pidfd_pid(pidfd)
        return cls._with_pidfd(pid, pidfd, proc, owns_pidfd=take)

    @classmethod
    def _with_pidfd(cls, pid: int, pidfd: int, proc: str, *, owns_pidfd: bool) -> ProcessHandle:
        try:
            dirfd = os.open(f"{proc}/{pid}", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as err:
            raise translate_oserror(err, pid, "/proc directory") from err
        handle = cls(pid, pidfd, dirfd, owns_pidfd=owns_pidfd)
        try:
            handle.verify()
        except BaseException:
            os.close(dirfd)
            raise
        return handle

    # -- reading ------------------------------------------------------------------------------

    def open(self, name: str, flags: int = os.O_RDONLY) -> int:
        """Open ``/proc/<pid>/<name>`` relative to the dirfd; the caller closes the fd."""
        try:
            return os.open(name, flags | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=self.dirfd)
        except OSError as err:
            raise translate_oserror(err, self.pid, name) from err

    def read_bytes(self, name: str, *, limit: int | None = None) -> bytes:
        """The content of ``/proc/<pid>/<name>``: one fd, sequential reads to EOF.

        Consistent for ``single_open`` files (stat, status, limits, cgroup, ...). Multi-record
        files (maps, mountinfo) are only consistent while the process is frozen.
        """
        fd = self.open(name)
        try:
            return read_fd_all(fd, limit)
        except OSError as err:
            raise translate_oserror(err, self.pid, name) from err
        finally:
            os.close(fd)

    def readlink(self, name: str) -> bytes:
        """The target of the symlink ``/proc/<pid>/<name>`` (``exe``, ``cwd``, ``fd/3``...)."""
        try:
            return os.readlink(os.fsencode(name), dir_fd=self.dirfd)
        except OSError as err:
            raise translate_oserror(err, self.pid, name) from err

    def listdir(self, name: str) -> list[str]:
        """Entry names of the directory ``/proc/<pid>/<name>`` (``task``, ``fd``, ``ns``)."""
        fd = self.open(name, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return os.listdir(fd)
        except OSError as err:
            raise translate_oserror(err, self.pid, name) from err
        finally:
            os.close(fd)

    def stat(self, name: str = ".") -> os.stat_result:
        """``fstatat`` of ``/proc/<pid>/<name>`` without following a final symlink.

        The owner of ``/proc/<pid>`` is root when the process is not dumpable.
        """
        try:
            return os.stat(name, dir_fd=self.dirfd, follow_symlinks=False)
        except OSError as err:
            raise translate_oserror(err, self.pid, name) from err

    # -- identity -----------------------------------------------------------------------------

    def verify(self) -> None:
        """Prove that the pidfd still names a live or zombie process with our pid.

        Call it *after* reading: then everything read through the dirfd came from that process.

        :raises ProcessGone: the process was reaped (its pid may name another process now).
        """
        try:
            pid = read_pidfd_pid(self.pidfd)
        except ProcessGone as err:
            raise ProcessGone(self.pid, "process was reaped") from err
        if pid != self.pid:
            raise ProcessGone(self.pid, f"pidfd now resolves to pid {pid}")

    def info(self, mask: PidfdInfoMask = DEFAULT_INFO_MASK) -> PidfdInfo:
        """``PIDFD_GET_INFO`` of the process (see :func:`procfs.pidfd.get_pidfd_info`)."""
        return get_pidfd_info(self.pidfd, mask)

    def send_signal(self, sig: int) -> None:
        """Signal the thread group through the pidfd (no pid-reuse race)."""
        try:
            pidfd_send_signal(self.pidfd, sig)
        except ProcessGone as err:
            raise ProcessGone(self.pid) from err

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the dirfd and, if we own it, the pidfd. Idempotent."""
        if self.dirfd >= 0:
            os.close(self.dirfd)
            self.dirfd = -1
        if self.pidfd >= 0 and self._owns_pidfd:
            os.close(self.pidfd)
        self.pidfd = -1

    def __enter__(self) -> ProcessHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProcessHandle(pid={self.pid}, pidfd={self.pidfd}, dirfd={self.dirfd})"

