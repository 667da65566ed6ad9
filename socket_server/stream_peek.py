"""What the socket door learns from the first bytes of the core, without consuming them.

The socket modes carry no ``%s``/``%I``: the fatal signal and the dumping thread come from the
first ``NT_PRSTATUS`` note, which the kernel writes first (the dumping thread's), within the
first few KiB of the stream whatever the thread count. The bytes are peeked (``MSG_PEEK``), so
the pipeline still reads the stream from its first byte.

Layout (``struct elf_prstatus_common``, the same on x86_64 and aarch64): ``si_signo`` i32 @0,
``si_code`` i32 @4, ``si_errno`` i32 @8, ``pr_cursig`` u16 @12, ``pr_sigpend`` @16,
``pr_sighold`` @24, ``pr_pid`` i32 @32.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

PT_NOTE = 4
NT_PRSTATUS = 1
PEEK_BYTES = 65536
_EHDR_TAIL = struct.Struct("<Q8xIHHHH")  # e_phoff @32 ... e_phentsize @54, e_phnum @56
_PHDR = struct.Struct("<IIQQQQQQ")
_NHDR = struct.Struct("<III")


@dataclass(frozen=True)
class StreamFacts:
    """``signal``: the fatal signal; ``tid``: the dumping thread, in the process's pid
    namespace."""

    signal: int
    tid: int


def parse_first_prstatus(data: bytes) -> StreamFacts | None:
    """The first ``NT_PRSTATUS`` of a 64-bit little-endian core head, or None if ``data`` is not
    one or is too short."""
    try:
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            return None
        e_phoff, _, e_phentsize, e_phnum, _, _ = _EHDR_TAIL.unpack_from(data, 32)
        for i in range(min(e_phnum, 0xFFFF)):
            p_type, _, p_offset, _, _, p_filesz, _, _ = _PHDR.unpack_from(
                data, e_phoff + i * e_phentsize)
            if p_type != PT_NOTE or p_filesz < _NHDR.size:
                continue
            namesz, descsz, n_type = _NHDR.unpack_from(data, p_offset)
            if n_type != NT_PRSTATUS or descsz < 36:
                return None
            desc = p_offset + _NHDR.size + ((namesz + 3) & ~3)
            si_signo, = struct.unpack_from("<i", data, desc)
            cursig, = struct.unpack_from("<H", data, desc + 12)
            pr_pid, = struct.unpack_from("<i", data, desc + 32)
            return StreamFacts(cursig or si_signo, pr_pid)
    except (struct.error, IndexError):
        return None
    return None


def peek_stream_facts(fd: int, *, timeout: float = 5.0) -> StreamFacts | None:
    """Peek at the head of the core on socket ``fd`` (not consumed)."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.settimeout(timeout)
        data = sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_WAITALL)
    except OSError:
        return None
    finally:
        sock.close()
    return parse_first_prstatus(data)
