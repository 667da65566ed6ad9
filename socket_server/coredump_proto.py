"""The kernel's ``@@`` coredump socket protocol (Linux 6.17+), byte for byte.

::

    kernel -> server : struct coredump_req   (req.size bytes; 16 in 6.18)
    server -> kernel : struct coredump_ack   (ack.size bytes; 16 <= size <= req.size_ack)
    kernel -> server : u32 mark              (4 bytes, little endian; the uapi comment says 1)
    kernel -> server : the ELF core          (only after COREDUMP_KERNEL), then EOF

The names are the kernel's (``include/uapi/linux/coredump.h``). Measured on 6.18 in
research/kernel-interfaces.md §1: the request is ``10 00 00 00 | 10 00 00 00 | 0f 00 ...``;
an ack breaking a rule is answered with one error mark, then the connection is closed (the
server's next read may be ``ECONNRESET`` when part of its ack was never read).

The schemas parse untrusted bytes: never ``.compile()`` them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from construct import ConstructError, Int32ul, Int64ul, Struct

from coredumpd.errors import CoredumpError


class CoredumpFlag(IntFlag):
    """``enum coredump_*`` (u64): what the server wants done with the core."""

    KERNEL = 1 << 0  #: the kernel writes the ELF core into the socket
    USERSPACE = 1 << 1  #: the kernel writes nothing; userspace dumps (no registers)
    REJECT = 1 << 2  #: no core at all; the task is released at once
    WAIT = 1 << 3  #: hold the task after the data until the server closes


#: exactly one of these per ack (0 or 2+ is CONFLICTING)
ACTIONS = CoredumpFlag.KERNEL | CoredumpFlag.USERSPACE | CoredumpFlag.REJECT


class CoredumpMark(IntEnum):
    """``enum coredump_mark``: the kernel's verdict on the ack (a u32 on the wire)."""

    REQACK = 0  #: the ack was accepted
    MINSIZE = 1  #: ack.size < COREDUMP_ACK_SIZE_VER0
    MAXSIZE = 2  #: ack.size > req.size_ack
    UNSUPPORTED = 3  #: a mask bit the kernel did not offer, or spare != 0
    CONFLICTING = 4  #: not exactly one of KERNEL/USERSPACE/REJECT


COREDUMP_REQ_SIZE_VER0 = 16
COREDUMP_ACK_SIZE_VER0 = 16
MARK_SIZE = 4
#: the largest request we read; anything bigger is not a kernel we know
MAX_REQ_SIZE = 4096

coredump_req = Struct(
    "size" / Int32ul,
    "size_ack" / Int32ul,
    "mask" / Int64ul,
)
coredump_ack = Struct(
    "size" / Int32ul,
    "spare" / Int32ul,
    "mask" / Int64ul,
)
coredump_mark = Int32ul
assert coredump_req.sizeof() == COREDUMP_REQ_SIZE_VER0
assert coredump_ack.sizeof() == COREDUMP_ACK_SIZE_VER0


class ProtocolError(CoredumpError):
    """The peer did not speak the coredump socket protocol we know.

    :ivar data: the offending bytes (at most the first 64).
    """

    def __init__(self, message: str, data: bytes = b"") -> None:
        self.data = data[:64]
        super().__init__(message)


@dataclass(frozen=True)
class CoredumpRequest:
    """``struct coredump_req``: ``size`` of the request, the largest ack the kernel reads
    (``size_ack``), and the flags it offers (``mask``)."""

    size: int
    size_ack: int
    mask: CoredumpFlag


def parse_request_size(prefix: bytes) -> int:
    """The ``size`` field (first 4 bytes) of a request: how many bytes to read in all."""
    if len(prefix) < 4:
        raise ProtocolError(f"request ended after {len(prefix)} bytes", prefix)
    size = int.from_bytes(prefix[:4], "little")
    if not COREDUMP_REQ_SIZE_VER0 <= size <= MAX_REQ_SIZE:
        raise ProtocolError(f"request size {size} outside {COREDUMP_REQ_SIZE_VER0}..{MAX_REQ_SIZE}",
                            prefix)
    return size


def parse_request(data: bytes) -> CoredumpRequest:
    """Decode a whole request (``size`` bytes; a tail we do not understand is ignored)."""
    size = parse_request_size(data)
    if len(data) != size:
        raise ProtocolError(f"request is {len(data)} bytes, its size field says {size}", data)
    try:
        req = coredump_req.parse(data[:COREDUMP_REQ_SIZE_VER0])
    except (ConstructError, ValueError) as err:
        raise ProtocolError(f"undecodable request: {err}", data) from err
    if req.size_ack < COREDUMP_ACK_SIZE_VER0:
        raise ProtocolError(f"kernel takes acks of at most {req.size_ack} bytes, "
                            f"we need {COREDUMP_ACK_SIZE_VER0}", data)
    return CoredumpRequest(req.size, req.size_ack, CoredumpFlag(req.mask))


def build_ack(mask: CoredumpFlag | int, *, size: int = COREDUMP_ACK_SIZE_VER0, spare: int = 0) -> bytes:
    """``struct coredump_ack`` padded (or cut) to ``size`` bytes.

    ``size`` and ``spare`` other than the defaults exist for the test hook, which sends acks the
    kernel must refuse.
    """
    body = coredump_ack.build({"size": size, "spare": spare, "mask": int(mask)})
    return body[:size] if size < len(body) else body + bytes(size - len(body))


def parse_mark(data: bytes) -> CoredumpMark | int:
    """The 4-byte mark; an unknown value comes back as a plain int (a newer kernel)."""
    if len(data) != MARK_SIZE:
        raise ProtocolError(f"mark is {len(data)} bytes, expected {MARK_SIZE}", data)
    value = coredump_mark.parse(data)
    try:
        return CoredumpMark(value)
    except ValueError:
        return value


def mark_name(mark: CoredumpMark | int) -> str:
    return mark.name if isinstance(mark, CoredumpMark) else f"unknown mark {mark}"


def choose_ack(req: CoredumpRequest, wanted: CoredumpFlag) -> CoredumpFlag:
    """``wanted`` if the kernel offers every bit of it.

    :raises ProtocolError: it does not (then nothing valid can be sent: close instead).
    """
    missing = wanted & ~req.mask
    if missing:
        raise ProtocolError(f"kernel does not offer {missing!r} (offers {req.mask!r})")
    return wanted
