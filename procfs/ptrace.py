"""ptrace(2) primitives for a supervisor that catches crashes of its descendants.

Every call is the raw syscall through :func:`procfs._libc.syscall` (glibc's wrapper rewrites
``PEEK*`` results), must come from the thread that attached, and addresses one *thread* (tid).
Errors become the layer's own: ``ESRCH`` → :class:`ProcessGone` (or :class:`TraceeNotStopped`
when the thread still lives: ptrace also says ``ESRCH`` for a running tracee), ``EPERM`` →
:class:`AccessDenied` with the likely reason, ``EIO``/``EFAULT`` on a peek → :class:`MemoryFault`.
"""

from __future__ import annotations

import ctypes
import errno

from procfs._libc import MACHINE, syscall
from procfs.errors import (
    AccessDenied,
    MemoryFault,
    ProcessGone,
    ProcfsError,
    TraceeNotStopped,
    Unsupported,
)
from procfs.ptrace_consts import NT, PtraceOptions, PtraceRequest
from procfs.registers import Registers, decode_registers
from procfs.siginfo import SIGINFO_SIZE, Siginfo, decode_siginfo

WORD_SIZE = 8
"""Bytes per ``PTRACE_PEEKDATA`` word on x86_64 and aarch64 (little-endian on both)."""

XSTATE_BUFFER = 16384
"""Bytes offered for ``NT_X86_XSTATE``; the kernel shrinks ``iov_len`` to the real size."""

_SEIZE_DENIED = (
    "already traced by another process, or the ptrace access rules refuse it (different "
    "uid/gid without CAP_SYS_PTRACE, a non-dumpable target, Yama ptrace_scope, an LSM)"
)


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def _thread_alive(tid: int) -> bool:
    """True when ``tid`` exists and is neither a zombie nor dead (``/proc/<tid>/stat`` state)."""
    try:
        with open(f"/proc/{tid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"x", b"")


def ptrace(request: PtraceRequest, tid: int, addr: int = 0, data: int = 0) -> int:
    """Issue one raw ptrace request; return the syscall's result.

    :param addr: the request's ``addr`` argument (an address, a note type, or 0).
    :param data: the request's ``data`` argument (a pointer, options, a signal number, or 0).
    :raises ProcessGone, TraceeNotStopped, AccessDenied, ProcfsError: on failure.
    """
    try:
        return syscall(
            "ptrace",
            ctypes.c_long(int(request)),
            ctypes.c_long(tid),
            ctypes.c_ulong(addr),
            ctypes.c_ulong(data),
        )
    except OSError as err:
        raise _translate(err, request, tid, addr) from err


def _translate(err: OSError, request: PtraceRequest, tid: int, addr: int) -> ProcfsError:
    what = f"PTRACE_{request.name}"
    if err.errno == errno.ESRCH:
        if request not in (PtraceRequest.SEIZE, PtraceRequest.ATTACH) and _thread_alive(tid):
            return TraceeNotStopped(tid, what)
        return ProcessGone(tid, f"{what}: no such thread")
    if err.errno == errno.EPERM:
        reason = _SEIZE_DENIED if request in (PtraceRequest.SEIZE, PtraceRequest.ATTACH) else None
        return AccessDenied(tid, what, reason)
    if err.errno in (errno.EIO, errno.EFAULT) and request in (
        PtraceRequest.PEEKDATA,
        PtraceRequest.PEEKTEXT,
    ):
        return MemoryFault(tid, addr, 8)
    if err.errno in (errno.EINVAL, errno.ENODEV) and request == PtraceRequest.GETREGSET:
        return Unsupported(what, f"regset not available here ({err.strerror})")
    return ProcfsError(f"{what} on thread {tid}: {err.strerror or err}")


def seize(tid: int, options: PtraceOptions | int = 0) -> None:
    """Attach to thread ``tid`` without stopping it (``PTRACE_SEIZE``) with ``options``.

    Seizing one thread does not trace its siblings: seize every tid of ``/proc/<pid>/task``.
    """
    ptrace(PtraceRequest.SEIZE, tid, 0, int(options))


def set_options(tid: int, options: PtraceOptions) -> None:
    """Replace the ptrace options of a stopped tracee."""
    ptrace(PtraceRequest.SETOPTIONS, tid, 0, int(options))


def interrupt(tid: int) -> None:
    """Ask a seized thread to enter a ptrace-stop (reported as ``PTRACE_EVENT_STOP``)."""
    ptrace(PtraceRequest.INTERRUPT, tid)


def cont(tid: int, signo: int = 0) -> None:
    """Resume a stopped tracee, delivering ``signo`` (0: none) — how a fatal signal goes through."""
    ptrace(PtraceRequest.CONT, tid, 0, signo)


def listen(tid: int) -> None:
    """Leave a group-stopped tracee stopped but let it report the next event (``PTRACE_LISTEN``)."""
    ptrace(PtraceRequest.LISTEN, tid)


def detach(tid: int, signo: int = 0) -> None:
    """Detach from a stopped tracee, which then runs on (with ``signo`` delivered if not 0)."""
    ptrace(PtraceRequest.DETACH, tid, 0, signo)


def read_event_message(tid: int) -> int:
    """``PTRACE_GETEVENTMSG``: new child's pid (fork/vfork/clone), former tid (exec), wait
    status (exit) — an unsigned long, pids in the tracer's pid namespace."""
    out = ctypes.c_ulong(0)
    ptrace(PtraceRequest.GETEVENTMSG, tid, 0, ctypes.addressof(out))
    return out.value


def peek_data(tid: int, address: int) -> int:
    """One machine word (8 bytes, unsigned) of the tracee's memory at ``address``.

    The tracee must be in a ptrace-stop. PROT_NONE pages are readable (FOLL_FORCE).

    :raises MemoryFault: the word is not mapped (``EIO``).
    """
    out = ctypes.c_ulong(0)
    ptrace(PtraceRequest.PEEKDATA, tid, address, ctypes.addressof(out))
    return out.value


def read_regset(tid: int, note_type: NT, size: int) -> bytes:
    """``PTRACE_GETREGSET``: the raw regset ``note_type`` of a stopped thread.

    :param size: bytes offered; the result is as long as the kernel's returned ``iov_len``.
    """
    buf = ctypes.create_string_buffer(size)
    iov = _Iovec(ctypes.cast(buf, ctypes.c_void_p), size)
    ptrace(PtraceRequest.GETREGSET, tid, int(note_type), ctypes.addressof(iov))
    return buf.raw[: iov.iov_len]


def read_registers(tid: int, machine: str = MACHINE) -> Registers:
    """General-purpose registers of a stopped thread (``NT_PRSTATUS``), raw and decoded."""
    return decode_registers(read_regset(tid, NT.PRSTATUS, 512), machine)


def read_fpregs(tid: int) -> bytes:
    """Floating-point regset ``NT_PRFPREG`` (x86_64: FXSAVE, 512 B; aarch64: 528 B)."""
    return read_regset(tid, NT.PRFPREG, 1024)


def read_xstate(tid: int) -> bytes:
    """x86_64 ``NT_X86_XSTATE`` (standard-format XSAVE image; its size is the kernel's).

    :raises Unsupported: not x86_64, or no XSAVE on this CPU.
    """
    return read_regset(tid, NT.X86_XSTATE, XSTATE_BUFFER)


def read_siginfo(tid: int) -> Siginfo:
    """``PTRACE_GETSIGINFO``: at a signal-delivery stop, the pending signal's ``siginfo_t``.

    At a ``PTRACE_EVENT_STOP`` of a seized tracee the kernel synthesizes one: ``si_code`` =
    ``PTRACE_EVENT_STOP << 8 | signo`` (measured on 6.18: 0x8013 in a SIGSTOP group-stop).

    :raises ProcfsError: the kernel has no siginfo for this stop (``EINVAL``).
    """
    buf = ctypes.create_string_buffer(SIGINFO_SIZE)
    try:
        ptrace(PtraceRequest.GETSIGINFO, tid, 0, ctypes.addressof(buf))
    except ProcfsError as err:
        if isinstance(err, (ProcessGone, TraceeNotStopped, AccessDenied)):
            raise
        raise ProcfsError(f"no siginfo for thread {tid}: {err}") from err
    return decode_siginfo(buf.raw)
