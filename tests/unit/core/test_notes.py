"""Note payloads: decoding of hand-built bytes, and build(parse(x)) == x."""

from __future__ import annotations

import struct

import pytest

from tests.support import elfbuild
from unwinder.core.arch import AARCH64, X86_64
from unwinder.core.constants import AT
from unwinder.core.notes import (
    build_auxv,
    build_file_note,
    build_prpsinfo,
    build_prstatus,
    build_siginfo,
    parse_auxv,
    parse_file_note,
    parse_prpsinfo,
    parse_prstatus,
    parse_siginfo,
)
from unwinder.errors import CorruptCore


def test_prstatus_x86_64_registers_by_name() -> None:
    desc = elfbuild.prstatus_x86_64(1234, 11, {"rip": 0x401000, "rsp": 0x7FFC0000, "rax": 2**64 - 1})
    status = parse_prstatus(desc, X86_64)
    assert status.pr_pid == 1234 and status.si_signo == 11 and status.pr_cursig == 11
    assert status.registers.pc == 0x401000
    assert status.registers.sp == 0x7FFC0000
    assert status.registers["rax"] == 2**64 - 1
    assert status.pr_fpvalid == 1
    assert build_prstatus(status) == desc


def test_prstatus_aarch64_layout() -> None:
    regs = list(range(100, 131)) + [0xFFFF0000, 0x400500, 0x60000000]
    desc = (struct.pack("<iiih2xQQiiii", 6, 0, 0, 6, 0, 0, 77, 1, 77, 77) + bytes(64)
            + struct.pack("<34Q", *regs) + struct.pack("<i4x", 1))
    assert len(desc) == 392
    status = parse_prstatus(desc, AARCH64)
    assert status.registers.pc == 0x400500
    assert status.registers.sp == 0xFFFF0000
    assert status.registers["x29"] == 129
    assert status.registers["pstate"] == 0x60000000
    assert build_prstatus(status) == desc


def test_prstatus_of_wrong_size_is_corrupt() -> None:
    with pytest.raises(CorruptCore, match="NT_PRSTATUS of 335 bytes"):
        parse_prstatus(bytes(335), X86_64, 0x100)


def test_prpsinfo_with_hostile_comm() -> None:
    desc = elfbuild.prpsinfo(42, b"a) (b\x1b[31m", b"./x --flag \xff\xfe", uid=1000, gid=100)
    info = parse_prpsinfo(desc)
    assert info.comm == b"a) (b\x1b[31m"
    assert info.psargs == b"./x --flag \xff\xfe"
    assert (info.pr_uid, info.pr_gid, info.pr_pid) == (1000, 100, 42)
    assert build_prpsinfo(info) == desc


def test_siginfo_union_by_signal_and_code() -> None:
    segv = parse_siginfo(elfbuild.siginfo(11, 1, 0xDEAD0000))
    assert segv.si_addr == 0xDEAD0000 and segv.si_pid is None
    killed = parse_siginfo(struct.pack("<iii4xiI", 11, 0, 0, 321, 1000) + bytes(104))
    assert killed.si_addr is None and killed.si_pid == 321 and killed.si_uid == 1000
    assert build_siginfo(segv) == elfbuild.siginfo(11, 1, 0xDEAD0000)


def test_auxv_lookup_and_round_trip() -> None:
    desc = elfbuild.auxv([(AT.PAGESZ, 4096), (AT.SYSINFO_EHDR, 0x7FFF0000)])
    auxv = parse_auxv(desc)
    assert auxv.find(AT.SYSINFO_EHDR) == 0x7FFF0000
    assert auxv.find(AT.BASE) is None
    assert auxv.entries[-1] == (0, 0)
    assert build_auxv(auxv) == desc
    with pytest.raises(CorruptCore):
        parse_auxv(desc[:-3])


def test_file_note_paths_offsets_and_round_trip() -> None:
    entries = [(0x400000, 0x401000, 0, b"/bin/x"), (0x7F0000, 0x7F2000, 3, b"/lib/y (deleted)")]
    desc = elfbuild.file_note(entries)
    note = parse_file_note(desc)
    assert note.page_size == 4096
    assert note.mappings[1].offset == 3 * 4096
    assert note.mappings[1].path == b"/lib/y (deleted)"
    assert build_file_note(note) == desc


@pytest.mark.parametrize("desc", [
    b"",
    struct.pack("<QQ", 2**40, 4096),           # absurd count
    struct.pack("<QQ", 1, 4096) + bytes(24),   # no name
    struct.pack("<QQQQQ", 1, 0, 1, 2, 0) + b"x\0",  # page size 0
])
def test_malformed_file_note(desc: bytes) -> None:
    with pytest.raises(CorruptCore):
        parse_file_note(desc, 0x40)
