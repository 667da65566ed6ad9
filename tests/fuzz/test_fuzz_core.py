"""Fuzz the core parsers with mutations of real kernel cores.

Every mutated input goes through the file reader, the stream reader and memory reads. Only
:class:`CorruptCore` may escape parsing and only :class:`FaultError` may escape a memory read;
nothing may take longer than a few seconds (a SIGALRM timer turns a hang into a failure).
The run is bounded by ``FUZZ_SECONDS`` (default 20) and ``FUZZ_CASES`` (default 20000).
"""

from __future__ import annotations

import io
import os
import random
import struct
import time

import pytest

from tests.support.crash import Crash
from tests.support.fuzzing import CaseTimeout, deadline
from tests.support.report import report
from unwinder.core import CoreReader, read_core_head
from unwinder.core.arch import X86_64
from unwinder.core.constants import PN_XNUM
from unwinder.core.notes import (
    parse_auxv,
    parse_file_note,
    parse_prpsinfo,
    parse_prstatus,
    parse_siginfo,
)
from unwinder.errors import CorruptCore, FaultError

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECONDS = float(os.environ.get("FUZZ_SECONDS", "20"))
CASES = int(os.environ.get("FUZZ_CASES", "20000"))
CASE_DEADLINE_S = 5
INTERESTING = (0, 1, 2, 4, 0x7F, 0x80, 0xFF, 0xFFFF, PN_XNUM, 0x7FFFFFFF, 0xFFFFFFFF,
               2**63 - 1, 2**64 - 1, 56, 64, 4096)




def field_offsets(data: bytes) -> list[tuple[int, int]]:
    """(offset, width) of every header field a structure-aware mutation may hit."""
    out = [(16, 2), (18, 2), (32, 8), (40, 8), (54, 2), (56, 2), (58, 2), (60, 2)]
    phnum = struct.unpack_from("<H", data, 56)[0]
    for i in range(min(phnum, 512)):
        base = 64 + 56 * i
        out += [(base, 4), (base + 8, 8), (base + 16, 8), (base + 32, 8), (base + 40, 8)]
    note_off, note_size = struct.unpack_from("<Q", data, 72)[0], struct.unpack_from("<Q", data, 96)[0]
    pos = note_off
    while pos + 12 <= min(note_off + note_size, len(data)):
        out += [(pos, 4), (pos + 4, 4), (pos + 8, 4)]
        namesz, descsz = struct.unpack_from("<II", data, pos)
        out += [(pos + 12 + ((namesz + 3) & ~3) + k, 8) for k in (0, 8, 16, 32)]
        pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return [(o, w) for o, w in out if o + w <= len(data)]


def mutate(rng: random.Random, seed: bytes, head: int, fields: list[tuple[int, int]]) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        head = min(head, len(data))
        if head == 0:
            break
        fields = [(o, w) for o, w in fields if o + w <= len(data)]
        kind = rng.randrange(7) if fields else 0
        if kind == 0:  # bit flips in the head
            pos = rng.randrange(head)
            data[pos] ^= 1 << rng.randrange(8)
        elif kind in (1, 2):  # a header field set to an interesting or random value
            off, width = rng.choice(fields)
            value = rng.choice(INTERESTING) if kind == 1 else rng.getrandbits(width * 8)
            data[off:off + width] = (value & ((1 << (width * 8)) - 1)).to_bytes(width, "little")
        elif kind == 3:  # truncate
            del data[rng.randrange(len(data)):]
        elif kind == 4:  # random bytes over a span of the head
            pos = rng.randrange(head)
            data[pos:pos + 8] = rng.randbytes(8)
        elif kind == 5:  # insert or delete bytes inside the head
            pos = rng.randrange(head)
            if rng.random() < 0.5:
                data[pos:pos] = rng.randbytes(rng.randrange(1, 64))
            else:
                del data[pos:pos + rng.randrange(1, 64)]
        else:  # copy one part of the head over another
            a, b = rng.randrange(head), rng.randrange(head)
            n = rng.randrange(1, 256)
            data[b:b + n] = data[a:a + n]
    return bytes(data)


def exercise(data: bytes, rng: random.Random) -> str:
    """Parse ``data`` both ways and read memory; return what happened."""
    try:
        reader = CoreReader(io.BytesIO(data))
    except CorruptCore:
        file_result = "corrupt"
    else:
        file_result = "parsed"
        core = reader.core
        addresses = [t.prstatus.registers.sp for t in core.threads if t.prstatus]
        addresses += [p.p_vaddr for p in core.loads[:16]] + [rng.getrandbits(64) for _ in range(4)]
        for addr in addresses:
            for size in (1, 64, 8192):
                try:
                    reader.read(addr, size)
                except FaultError:
                    pass
                reader.read_partial(addr, size)
    try:
        head = read_core_head(io.BytesIO(data))
    except CorruptCore:
        stream_result = "corrupt"
    else:
        stream_result = "parsed"
        if file_result == "parsed" and head.core.ehdr.e_phnum != PN_XNUM:
            assert head.core == reader.core, "stream and file readers disagree"
    return f"{file_result}/{stream_result}"


def test_fuzz_mutated_real_cores(kernel_cores: dict[str, Crash]) -> None:
    seeds = []
    for name in ("threads8", "sort_vma", "segv", "sigbus"):
        if name in kernel_cores:
            data = kernel_cores[name].core.read_bytes()
            head = CoreReader(io.BytesIO(data)).core.head_size
            # The head plus some memory keeps each case cheap; the cut itself is a valid input.
            seeds.append((name, data[:head + 3 * 4096], head))
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "0")) or None)
    outcomes: dict[str, int] = {}
    start = time.monotonic()
    cases = 0
    while cases < CASES and time.monotonic() - start < SECONDS:
        name, seed, head = seeds[cases % len(seeds)]
        case_seed = rng.getrandbits(32)
        case_rng = random.Random(case_seed)
        data = mutate(case_rng, seed, head, field_offsets(seed))
        try:
            with deadline(CASE_DEADLINE_S):
                result = exercise(data, case_rng)
        except CaseTimeout:
            pytest.fail(f"case {case_seed} of {name} took over {CASE_DEADLINE_S}s")
        except (CorruptCore, FaultError):
            raise
        except Exception as err:  # noqa: BLE001 - the point: nothing else may escape
            raise AssertionError(f"case {case_seed} of {name} raised {type(err).__name__}: {err}") from err
        outcomes[result] = outcomes.get(result, 0) + 1
        cases += 1
    elapsed = time.monotonic() - start
    report(f"fuzz (core parsers): {cases} mutated real cores in {elapsed:.1f}s, outcomes {outcomes}")
    assert cases >= 1000, f"only {cases} cases ran"
    assert outcomes.get("parsed/parsed", 0) > 0 and outcomes.get("corrupt/corrupt", 0) > 0


@pytest.mark.parametrize("parse", [
    lambda d: parse_prstatus(d, X86_64), parse_prpsinfo, parse_siginfo, parse_auxv, parse_file_note,
])
def test_fuzz_note_payloads(parse) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(1)
    sizes = (0, 1, 15, 16, 17, 128, 136, 336, 392, 1000)
    for _ in range(3000):
        data = rng.randbytes(rng.choice(sizes))
        if rng.random() < 0.3 and len(data) >= 16:  # plausible NT_FILE count
            data = struct.pack("<QQ", rng.randrange(8), 4096) + data[16:]
        try:
            parse(data)
        except CorruptCore:
            pass
