"""Pure decoding of a userspace ``siginfo_t`` (128 bytes on x86_64 and aarch64).

Layout (``include/uapi/asm-generic/siginfo.h``): ``si_signo`` s32 @0, ``si_errno`` s32 @4,
``si_code`` s32 @8, then a union at 16. For SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP the union starts
with ``si_addr`` (u64 @16); for kill(2)/tkill(2)/sigqueue(3) with ``si_pid`` s32 @16 and
``si_uid`` u32 @20. It is the same blob a core keeps as ``NT_SIGINFO``.
"""

from __future__ import annotations

import signal
import struct
from dataclasses import dataclass

from procfs.errors import ParseError

SIGINFO_SIZE = 128
"""Size in bytes of the userspace ``siginfo_t``."""

FAULT_SIGNALS = frozenset(
    {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGTRAP}
)
"""Signals whose ``siginfo_t`` carries a fault address (``si_addr``) when the kernel raised them."""

SI_USER = 0
"""``si_code`` of kill(2)."""
SI_KERNEL = 0x80
"""``si_code`` of a signal the kernel sent without more detail."""
SI_TKILL = -6
"""``si_code`` of tkill(2)/tgkill(2) — raise(3) and abort(3)."""

_HEAD = struct.Struct("<iii4xQ")
_SENDER = struct.Struct("<iI")


@dataclass(frozen=True)
class Siginfo:
    """A decoded ``siginfo_t``.

    ``addr`` is ``si_addr`` (a virtual address in the target) for a fault signal the kernel raised
    (``si_code`` > 0), else ``None``; ``pid``/``uid`` are the sender's for signals from userspace
    (``si_code`` ≤ 0), else ``None``. ``raw`` keeps the 128 bytes unchanged.
    """

    raw: bytes
    signo: int
    errno: int
    code: int
    addr: int | None
    pid: int | None
    uid: int | None

    @property
    def from_user(self) -> bool:
        """True when userspace sent the signal (kill, tkill, sigqueue: ``si_code`` ≤ 0)."""
        return self.code <= 0


def decode_siginfo(raw: bytes) -> Siginfo:
    """Decode the 128-byte ``siginfo_t`` of x86_64 or aarch64.

    :raises ParseError: fewer than 128 bytes.
    """
    if len(raw) < SIGINFO_SIZE:
        raise ParseError("siginfo", f"siginfo_t is {SIGINFO_SIZE} bytes, got {len(raw)}")
    raw = bytes(raw[:SIGINFO_SIZE])
    signo, errno_, code, union = _HEAD.unpack_from(raw)
    addr = pid = uid = None
    if code <= 0:
        pid, uid = _SENDER.unpack_from(raw, 16)
    elif signo in FAULT_SIGNALS:
        addr = union
    return Siginfo(raw, signo, errno_, code, addr, pid, uid)
