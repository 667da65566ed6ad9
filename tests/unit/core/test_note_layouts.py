"""The struct readers of :mod:`unwinder.core.notes` read every input as the construct schemas
of :mod:`unwinder.core.noteschemas` do: same fields, and malformed exactly when they are."""

from __future__ import annotations

import random
import struct

import pytest
from construct import ConstructError

from unwinder.core.arch import AARCH64, X86_64, Arch
from unwinder.core.notes import (
    parse_auxv,
    parse_file_note,
    parse_prpsinfo,
    parse_prstatus,
    parse_siginfo,
)
from unwinder.core.noteschemas import (
    AuxvSchema,
    FileNoteSchema,
    PrPsInfoSchema,
    SigInfoSchema,
    prstatus_schema,
)
from unwinder.errors import CorruptCore

RNG = random.Random(4)
SCHEMA_ERRORS = (ConstructError, struct.error, OverflowError, ValueError, IndexError)


def _schema(schema, desc: bytes):  # type: ignore[no-untyped-def]
    try:
        return schema.parse(desc)
    except SCHEMA_ERRORS:
        return None


def _ours(parse, desc: bytes):  # type: ignore[no-untyped-def]
    try:
        return parse(desc)
    except CorruptCore:
        return None


def _samples(size: int) -> list[bytes]:
    return [RNG.randbytes(n) for n in (size, size, size - 1, size + 1, 0)]


@pytest.mark.parametrize("arch", [X86_64, AARCH64], ids=lambda a: a.name)
def test_prstatus(arch: Arch) -> None:
    for desc in _samples(arch.prstatus_size):
        theirs = _schema(prstatus_schema(len(arch.registers)), desc)
        mine = _ours(lambda d: parse_prstatus(d, arch), desc)
        assert (theirs is None) == (mine is None)
        if mine is not None:
            for name in ("si_signo", "si_code", "si_errno", "pr_cursig", "pr_sigpend",
                         "pr_sighold", "pr_pid", "pr_ppid", "pr_pgrp", "pr_sid", "pr_fpvalid"):
                assert getattr(mine, name) == theirs[name], name
            for name in ("pr_utime", "pr_stime", "pr_cutime", "pr_cstime"):
                assert (getattr(mine, name).tv_sec, getattr(mine, name).tv_usec) == \
                    (theirs[name].tv_sec, theirs[name].tv_usec)
            nregs = len(arch.registers)
            assert mine.registers.values == struct.unpack(f"<{nregs}Q", theirs.pr_reg)


def test_prpsinfo() -> None:
    for desc in _samples(136):
        theirs, mine = _schema(PrPsInfoSchema, desc), _ours(parse_prpsinfo, desc)
        assert (theirs is None) == (mine is None)
        if mine is not None:
            assert mine._asdict() == {k: v for k, v in theirs.items() if not k.startswith("_")}


def test_siginfo() -> None:
    for desc in _samples(128):
        theirs, mine = _schema(SigInfoSchema, desc), _ours(parse_siginfo, desc)
        assert (theirs is None) == (mine is None)
        if mine is not None:
            assert (mine.si_signo, mine.si_errno, mine.si_code, mine.sifields) == \
                (theirs.si_signo, theirs.si_errno, theirs.si_code, theirs.sifields)


def test_auxv() -> None:
    for desc in _samples(16 * 20):
        theirs, mine = _schema(AuxvSchema, desc), _ours(parse_auxv, desc)
        if mine is not None:
            assert mine.entries == tuple((e.a_type, e.a_val) for e in theirs.entries)
        else:
            assert len(desc) % 16


def _file_note(names: list[bytes], tail: bytes = b"") -> bytes:
    out = struct.pack("<QQ", len(names), 4096)
    for i in range(len(names)):
        out += struct.pack("<QQQ", 0x1000 * i, 0x1000 * (i + 1), i)
    return out + b"".join(names) + tail


@pytest.mark.parametrize("desc", [
    _file_note([b"/a\0", b"/lib/b (deleted)\0"]),
    _file_note([b"/a\0", b"\0"], tail=b"junk"),
    _file_note([b"/a\0", b"/no-nul-at-the-end" + b"x" * 30]),
    _file_note([]),
    _file_note([RNG.randbytes(40).replace(b"\0", b"") + b"\0" for _ in range(5)]),
])
def test_file_note(desc: bytes) -> None:
    theirs, mine = _schema(FileNoteSchema, desc), _ours(parse_file_note, desc)
    assert (theirs is None) == (mine is None)
    if mine is not None:
        assert [(m.start, m.end, m.offset, m.path) for m in mine.mappings] == [
            (e.start, e.end, e.file_ofs * theirs.page_size, name)
            for e, name in zip(theirs.entries, theirs.names, strict=True)]
