"""Fuzz the CFI engine with mutations of real ``.eh_frame``/``.eh_frame_hdr`` bytes and of DWARF
expressions.

Only :class:`UnwindError` subclasses may escape building a table, looking up rows or
evaluating an expression, and no case may run longer than ``CASE_DEADLINE_S`` (a SIGALRM
interval timer turns a hang into a failure). The run is bounded by ``FUZZ_CFI_SECONDS``
(default 12, shared between tables and expressions).
"""

from __future__ import annotations

import os
import random
import struct
import time
from bisect import bisect_right
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.support.fuzzing import CaseTimeout, deadline
from tests.support.report import report
from unwinder.cfi import CfiTable, evaluate
from unwinder.cfi.elfsource import FrameSections, load_frame_sections
from unwinder.cfi.hdr import parse_eh_frame_hdr
from unwinder.cfi.section import FrameSection
from unwinder.errors import FaultError, UnwindError

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("FUZZ_CFI_SECONDS", "12"))
CASE_DEADLINE_S = 2.0
LIBRARIES = [Path("/usr/lib/x86_64-linux-gnu/libc.so.6"),
             Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")]
INTERESTING = (0, 1, 2, 4, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFF)
SEED_EXPRESSIONS = [
    b"\x77\x08\x80\x00\x3f\x1a\x3b\x2a\x33\x24\x22",  # glibc's PLT CFA
    b"\x77\xa0\x01\x06",  # __restore_rt's CFA
    b"\x33\x31\x1c\x12\x28\xfa\xff",
    b"\x0c\x00\x20\x00\x00\x94\x02\x11\x7f\x26\x19",
    b"\x35\x36\x37\x15\x02\x17\x16\x1b\x1d",
]




def mutate(data: bytearray, rng: random.Random, around: int) -> None:
    """A few byte, word or range mutations near ``around``."""
    for _ in range(rng.randint(1, 4)):
        if not data:
            data.append(rng.randrange(256))
            continue
        pos = min(max(0, around + rng.randint(-16, 48)), len(data) - 1)
        kind = rng.random()
        if kind < 0.5:
            data[pos] = rng.randrange(256)
        elif kind < 0.8 and pos + 4 <= len(data):
            data[pos : pos + 4] = struct.pack("<I", rng.choice(INTERESTING))
        elif kind < 0.9:
            data[pos] ^= 1 << rng.randrange(8)
        else:
            del data[pos : pos + rng.randint(1, 8)]


def load(path: Path) -> FrameSections:
    with open(path, "rb") as f:
        return load_frame_sections(ELFFile(f))


def test_fuzz_tables():
    libraries = [load(p) for p in LIBRARIES if p.exists()]
    if not libraries:
        pytest.skip("no system libraries to fuzz")
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "1234")))
    originals = []
    for sections in libraries:
        table = CfiTable.from_sections(sections, arch="x86_64")
        fdes = [(f.offset, f.pc_begin, f.pc_end) for f in table.eh_frame.iter_fdes()]
        fdes.sort()
        originals.append((sections, fdes))
    stop = time.monotonic() + SECONDS * 0.75
    cases = escapes = lookups = rows = errors = 0
    while time.monotonic() < stop:
        sections, fdes = rng.choice(originals)
        offsets = [f[0] for f in fdes]
        eh = bytearray(sections.eh_frame.data)
        hdr_bytes = bytearray(sections.eh_frame_hdr.data)
        target = rng.choice(fdes)
        mode = rng.random()
        if mode < 0.75:
            mutate(eh, rng, target[0] + rng.choice((0, 0, 4, 8, 12)))
            if rng.random() < 0.2:  # the first CIE of libc/libstdc++ is at 0
                mutate(eh, rng, 0)
        else:
            mutate(hdr_bytes, rng, rng.choice((0, 4, 12 + 8 * rng.randrange(len(fdes)))))
        if rng.random() < 0.1:
            eh = eh[: rng.randrange(len(eh))]
        drop_hdr = rng.random() < 0.05  # header scan path (slower: whole section)
        arch = "aarch64" if rng.random() < 0.1 else "x86_64"
        as_debug_frame = rng.random() < 0.03  # .debug_frame rules on .eh_frame bytes
        cases += 1
        try:
            with deadline(CASE_DEADLINE_S):
                try:
                    eh_section = FrameSection(".eh_frame", bytes(eh), sections.eh_frame.address)
                    hdr_section = FrameSection(".eh_frame_hdr", bytes(hdr_bytes),
                                               sections.eh_frame_hdr.address,
                                               data_base=sections.eh_frame_hdr.address)
                    hdr = None if drop_hdr else parse_eh_frame_hdr(hdr_section)
                except UnwindError:
                    hdr = None
                debug = None
                if as_debug_frame:
                    debug = FrameSection(".debug_frame", bytes(eh), 0, is_eh=False)
                mutated = FrameSections(hdr_section, hdr, eh_section, debug)
                table = CfiTable.from_sections(mutated, arch=arch)
                near = bisect_right(offsets, target[0])
                pcs = [target[1], target[2] - 1, (target[1] + target[2]) // 2]
                for _, begin, end in fdes[max(0, near - 3) : near + 3]:
                    pcs.append(rng.randrange(begin, end))
                pcs += [rng.randrange(0, 2**64), 0, 2**64 - 1]
                for pc in pcs:
                    lookups += 1
                    try:
                        if table.find_row(pc) is not None:
                            rows += 1
                    except UnwindError:
                        errors += 1
        except UnwindError:
            errors += 1
        except CaseTimeout:
            pytest.fail(f"case {cases} hung (seed {rng.getstate()[1][0]})")
        except Exception as err:  # noqa: BLE001 - exactly what the fuzz test looks for
            escapes += 1
            raise AssertionError(f"case {cases}: {err!r} escaped") from err
    report(f"cfi fuzz tables: {cases} cases, {lookups} lookups, {rows} rows, "
           f"{errors} CfiErrors, {escapes} foreign exceptions")
    assert cases > 50


def test_fuzz_expressions():
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "1234")))
    memory = {0x1000 + 8 * i: rng.randrange(2**64) for i in range(64)}

    def read_word(address: int) -> int:
        if address in memory:
            return memory[address]
        raise FaultError(address, "not in the fuzz memory")

    def registers(number: int) -> int:
        if number > 20:
            raise FaultError(0, f"register {number} unknown")
        return 0x1000 + 8 * number

    stop = time.monotonic() + SECONDS * 0.25
    cases = values = errors = 0
    while time.monotonic() < stop:
        cases += 1
        if rng.random() < 0.3:
            expression = bytes(rng.randrange(256) for _ in range(rng.randint(0, 24)))
        else:
            data = bytearray(rng.choice(SEED_EXPRESSIONS))
            mutate(data, rng, rng.randrange(len(data)))
            expression = bytes(data)
        try:
            with deadline(CASE_DEADLINE_S):
                evaluate(expression, registers=registers, read_word=read_word,
                         initial_stack=[0x1010] if rng.random() < 0.5 else ())
                values += 1
        except UnwindError:
            errors += 1
        except CaseTimeout:
            pytest.fail(f"expression {expression.hex()} hung")
        except Exception as err:  # noqa: BLE001
            raise AssertionError(f"expression {expression.hex()}: {err!r} escaped") from err
    report(f"cfi fuzz expressions: {cases} cases, {values} values, {errors} errors")
    assert cases > 100
