"""A tiny, independent ELF64 core builder for unit tests (plain struct.pack, no unwinder code).

It lets tests make cores the kernel would never write (bad sizes, odd orders, PN_XNUM) and
check the parser against bytes it did not produce itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

PT_LOAD, PT_NOTE = 1, 4


def note(name: bytes, n_type: int, desc: bytes) -> bytes:
    raw = name + b"\0"
    pad = lambda b: b + bytes(-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(raw), len(desc), n_type) + pad(raw) + pad(desc)


def prstatus_x86_64(tid: int, signo: int = 11, regs: dict[str, int] | None = None) -> bytes:
    names = ("r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs "
             "eflags rsp ss fs_base gs_base ds es fs gs").split()
    values = [(regs or {}).get(n, 0) for n in names]
    head = struct.pack("<iiih2xQQiiii", signo, 0, 0, signo, 0, 0, tid, 1, tid, tid) + bytes(64)
    return head + struct.pack("<27Q", *values) + struct.pack("<i4x", 1)


def prpsinfo(pid: int, comm: bytes, psargs: bytes, uid: int = 0, gid: int = 0) -> bytes:
    return struct.pack("<bBBb4xQIIiiii16s80s", 0, ord("R"), 0, 0, 0, uid, gid, pid, 1, pid, pid,
                       comm, psargs)


def siginfo(signo: int, code: int, addr: int) -> bytes:
    return struct.pack("<iii4xQ", signo, 0, code, addr) + bytes(104)


def auxv(pairs: list[tuple[int, int]]) -> bytes:
    return b"".join(struct.pack("<QQ", t, v) for t, v in pairs) + struct.pack("<QQ", 0, 0)


def file_note(entries: list[tuple[int, int, int, bytes]], page_size: int = 4096) -> bytes:
    body = struct.pack("<QQ", len(entries), page_size)
    body += b"".join(struct.pack("<QQQ", s, e, off) for s, e, off, _ in entries)
    return body + b"".join(p + b"\0" for _, _, _, p in entries)


@dataclass
class Segment:
    vaddr: int
    memsz: int
    data: bytes = b""  # p_filesz = len(data)
    flags: int = 6


@dataclass
class CoreSpec:
    notes: list[bytes] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    machine: int = 62
    page: int = 4096
    force_xnum: bool = False

    def build(self) -> bytes:
        count = 1 + len(self.segments)
        xnum = count >= 0xFFFF or self.force_xnum
        notes = b"".join(self.notes)
        off = 64 + 56 * count
        phdrs = [struct.pack("<IIQQQQQQ", PT_NOTE, 0, off, 0, 0, len(notes), 0, 4)]
        data_off = -(-(off + len(notes)) // self.page) * self.page
        cursor = data_off
        for seg in self.segments:
            phdrs.append(struct.pack("<IIQQQQQQ", PT_LOAD, seg.flags, cursor, seg.vaddr, 0,
                                     len(seg.data), seg.memsz, self.page))
            cursor += len(seg.data)
        shoff = cursor if xnum else 0
        ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 4, self.machine,
                           1, 0, 64, shoff, 0, 64, 56, 0xFFFF if xnum else count,
                           64 if xnum else 0, 1 if xnum else 0, 0)
        out = bytearray(ehdr + b"".join(phdrs) + notes)
        out += bytes(data_off - len(out))
        for seg in self.segments:
            out += seg.data
        if xnum:
            out += struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 1, 0, count, 0, 0)
        return bytes(out)
