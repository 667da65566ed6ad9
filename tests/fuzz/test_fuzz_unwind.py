"""Fuzz the whole unwinder (``backtrace_from_core``) with corruptions of real crashes.

Cores come from the accuracy corpus (``unwind_corpus``); each case corrupts ONE of:

- ``stack``: words of a dumped ``PT_LOAD`` holding a thread's SP (bit flips, random values,
  pointers into other segments or into the same stack, zero);
- ``regs``: pc, sp or rbp of one thread in its ``NT_PRSTATUS`` (random, slightly off, zero,
  another segment);
- ``module``: bytes of ``.eh_frame``/``.eh_frame_hdr``/``.symtab``/``.dynsym``/``.debug_line``/
  ``.debug_info``/``.debug_abbrev`` in copies of the executable and libc, handed in through ``opener`` (their
  build-id note is left intact, so they are still used).

Properties: a :class:`Backtrace` comes back (only :class:`UnwindError` may escape, and only
for a core too broken to parse — never here, since the headers are not touched), every
thread has at least one frame and keeps its first pc unless its own registers changed,
nothing hangs (a CPU-time and a wall-clock timer per case), and a thread that never read the corrupted segment (or
whose registers were not touched) has exactly the frames it had before.

``FUZZ_SECONDS`` (default 25) bounds the run; ``FUZZ_SEED`` replays one.
"""

from __future__ import annotations

import io
import os
import random
import signal
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from elftools.elf.elffile import ELFFile

from tests.support.crash import Crash
from tests.support.report import report
from unwinder.analyze import backtrace_from_core
from unwinder.backtrace import Backtrace, ThreadBacktrace
from unwinder.core import CoreFile, CoreReader
from unwinder.core.arch import X86_64
from unwinder.core.constants import PT
from unwinder.core.notes import FileMapping
from unwinder.modules import open_by_path
from unwinder.symbols.locate import DebugFileLocator

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCENARIOS = ("threads", "sighandler", "cxx-throw", "nested-O2")
SECONDS = float(os.environ.get("FUZZ_SECONDS", "25"))
#: per case: seconds of CPU (a hang spins), and of wall time (a hang that blocks)
CASE_CPU_S = 10
CASE_WALL_S = 120
#: .debug_abbrev too: unwinder.symbols.abbrev decodes it for pyelftools' DIE parser
MODULE_SECTIONS = (".eh_frame", ".eh_frame_hdr", ".symtab", ".dynsym", ".debug_line",
                   ".debug_info", ".debug_abbrev")
REGISTERS = ("rip", "rsp", "rbp")
MASK64 = (1 << 64) - 1


class CaseTimeout(Exception):
    pass


@contextmanager
def deadline(cpu_seconds: float, wall_seconds: float) -> Iterator[None]:
    """Fail a case that spins for ``cpu_seconds`` of CPU (``ITIMER_PROF``: other tests loading
    the machine do not count) or blocks for ``wall_seconds``. The handler also leaves a mark,
    for an exception raised where Python swallows it (a weakref callback, ``__del__``)."""
    fired: list[int] = []

    def expire(signum, frame):  # type: ignore[no-untyped-def]
        fired.append(signum)
        raise CaseTimeout(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, expire) for sig in (signal.SIGPROF, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    signal.setitimer(signal.ITIMER_REAL, wall_seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if fired:
        raise CaseTimeout(f"{signal.Signals(fired[0]).name} (swallowed where it was raised)")


class _Recording:
    """A core reader that remembers which addresses were read (the reference run)."""

    def __init__(self, reader: CoreReader, core: CoreFile) -> None:
        self.core = core
        self._reader = reader
        self.reads: list[tuple[int, int]] = []

    def read_partial(self, address: int, size: int) -> tuple[bytes, int | None]:
        self.reads.append((address, size))
        return self._reader.read_partial(address, size)


@dataclass(frozen=True)
class Segment:
    vaddr: int
    offset: int
    filesz: int


@dataclass
class Subject:
    name: str
    data: bytes
    segments: list[Segment]
    #: per thread (core order): indices into ``segments`` it read in the reference run
    reads: list[set[int]]
    #: per thread: file offset of its ``pr_reg``
    pr_reg: list[int]
    #: per thread: register values
    regs: list[dict[str, int]]
    #: per thread: stack slots above SP holding a pointer into a mapped file or into the stack
    #: itself (return addresses, saved frame pointers: what an unwinder reads)
    slots: list[list[int]]
    reference: Backtrace
    #: module path in NT_FILE -> (file bytes, [(offset, size) of sections to mutate])
    modules: dict[bytes, tuple[bytes, list[tuple[str, int, int]]]]


def _locator(debug_dirs: bool) -> DebugFileLocator:
    return DebugFileLocator(("/usr/lib/debug",) if debug_dirs else (), debuginfod_urls=[])


def _segments_read(reads: list[tuple[int, int]], segments: list[Segment]) -> set[int]:
    out = set()
    for address, size in reads:
        for i, seg in enumerate(segments):
            if address < seg.vaddr + seg.filesz and seg.vaddr < address + size:
                out.add(i)
    return out


def _single_thread_core(core: CoreFile, keep: int) -> CoreFile:
    others = {id(n) for i, t in enumerate(core.threads) if i != keep for n in t.notes}
    return CoreFile(core.ehdr, core.phdrs, tuple(n for n in core.notes if id(n) not in others))


def _walk(thread: ThreadBacktrace) -> tuple[object, ...]:
    return thread.frames, thread.stop, thread.truncated, thread.detail


def _mutable_sections(data: bytes) -> list[tuple[str, int, int]]:
    elf = ELFFile(io.BytesIO(data))
    out = []
    for name in MODULE_SECTIONS:
        section = elf.get_section_by_name(name)
        if section is not None and section["sh_type"] != "SHT_NOBITS" and section["sh_size"]:
            out.append((name, section["sh_offset"], section["sh_size"]))
    return out


def _load_subject(name: str, crash: Crash) -> Subject:
    data = crash.core.read_bytes()
    with CoreReader(io.BytesIO(data), zero_fill=False) as reader:
        core = reader.core
        segments = [Segment(p.p_vaddr, p.p_offset, p.p_filesz)
                    for p in core.phdrs if p.p_type == PT.LOAD and p.p_filesz]
        reference = backtrace_from_core(reader, locator=_locator(True))
        reads, pr_reg, regs, slots = [], [], [], []
        files = [(m.start, m.end) for m in core.files.mappings] if core.files else []
        for index, thread in enumerate(core.threads):
            recording = _Recording(reader, _single_thread_core(core, index))
            alone = backtrace_from_core(recording, locator=_locator(True))  # type: ignore[arg-type]
            assert _walk(alone.threads[0]) == _walk(reference.threads[index]), \
                "reference is not deterministic"
            reads.append(_segments_read(recording.reads, segments))
            note = thread.notes[0]
            desc = note.offset + 12 + ((len(note.name) + 1 + 3) & ~3)
            pr_reg.append(desc + 112)
            assert thread.prstatus is not None
            regs.append(thread.prstatus.registers.as_dict())
            slots.append(_pointer_slots(data, segments, regs[-1]["rsp"], files))
        modules = {}
        main = crash.exe.resolve()
        for mapping in core.files.mappings if core.files else ():
            path = Path(os.fsdecode(mapping.path))
            if mapping.path in modules or not (path == main or path.name.startswith("libc.so")):
                continue
            blob = path.read_bytes()
            modules[mapping.path] = (blob, _mutable_sections(blob))
    assert len(modules) == 2, f"{name}: expected the executable and libc, got {list(modules)}"
    return Subject(name, data, segments, reads, pr_reg, regs, slots, reference, modules)


def _pointer_slots(data: bytes, segments: list[Segment], sp: int,
                   files: list[tuple[int, int]]) -> list[int]:
    seg = next((s for s in segments if s.vaddr <= sp < s.vaddr + s.filesz), None)
    if seg is None:
        return []
    out = []
    for address in range(sp & ~7, min(sp + 16384, seg.vaddr + seg.filesz) - 7, 8):
        (value,) = struct.unpack_from("<Q", data, seg.offset + address - seg.vaddr)
        if seg.vaddr <= value < seg.vaddr + seg.filesz or any(a <= value < b for a, b in files):
            out.append(address)
    return out


@pytest.fixture(scope="module")
def subjects(unwind_corpus: dict[str, Crash]) -> list[Subject]:
    missing = [s for s in SCENARIOS if s not in unwind_corpus]
    if missing:
        pytest.skip(f"corpus scenarios not built: {missing}")
    return [_load_subject(name, unwind_corpus[name]) for name in SCENARIOS]


# -- mutations -------------------------------------------------------------------------------

def _pointer(rng: random.Random, subject: Subject, near: int) -> int:
    kind = rng.random()
    if kind < 0.4:
        seg = rng.choice(subject.segments)
        return seg.vaddr + rng.randrange(0, max(seg.filesz, 8), 8)
    if kind < 0.7:
        return (near + rng.randrange(-256, 257, 8)) & MASK64  # into the same stack: loops
    if kind < 0.85:
        return near
    return rng.choice((0, 1, MASK64, 1 << 63, 4096))


def _word(rng: random.Random, subject: Subject, old: int, near: int) -> int:
    kind = rng.random()
    if kind < 0.25:
        return old ^ (1 << rng.randrange(64))
    if kind < 0.45:
        return rng.getrandbits(64)
    if kind < 0.75:
        return _pointer(rng, subject, near)
    if kind < 0.9:
        return 0
    return (old + rng.choice((-16, -8, -1, 1, 8, 16))) & MASK64


@dataclass
class Case:
    kind: str
    what: str
    core: bytes
    #: thread indices whose frames may change (all of them for module cases)
    touched: set[int]
    #: thread indices whose registers changed (their first pc may change)
    regs_changed: set[int]
    replacements: dict[bytes, bytes]
    debug_dirs: bool


def _mutate_stack(rng: random.Random, subject: Subject) -> Case:
    thread = rng.randrange(len(subject.regs))
    sp = subject.regs[thread]["rsp"]
    index = next((i for i, s in enumerate(subject.segments) if s.vaddr <= sp < s.vaddr + s.filesz),
                 None)
    if index is None:
        index = rng.randrange(len(subject.segments))
    seg = subject.segments[index]
    core = bytearray(subject.data)
    changes = []
    slots = subject.slots[thread]
    for _ in range(rng.randint(1, 8)):
        if slots and rng.random() < 0.6:
            address = rng.choice(slots)
        elif rng.random() < 0.8 and seg.vaddr <= sp < seg.vaddr + seg.filesz:
            low = max(seg.vaddr, sp - 64)
            high = min(seg.vaddr + seg.filesz - 8, sp + 2048)
            address = (rng.randrange(low, max(high, low + 1)) & ~7)
        else:
            address = seg.vaddr + rng.randrange(0, seg.filesz - 7) & ~7
        at = seg.offset + (address - seg.vaddr)
        old = struct.unpack_from("<Q", core, at)[0]
        new = _word(rng, subject, old, sp)
        struct.pack_into("<Q", core, at, new)
        changes.append(f"[{address:#x}] {old:#x}->{new:#x}")
    touched = {t for t, segs in enumerate(subject.reads) if index in segs}
    return Case("stack", f"thread #{thread} segment {seg.vaddr:#x}: " + ", ".join(changes),
                bytes(core), touched, set(), {}, True)


def _mutate_regs(rng: random.Random, subject: Subject) -> Case:
    thread = rng.randrange(len(subject.regs))
    register = rng.choice(REGISTERS)
    old = subject.regs[thread][register]
    if rng.random() < 0.3:
        new = (old + rng.choice((-4096, -64, -8, -1, 1, 2, 8, 64, 4096))) & MASK64
    elif rng.random() < 0.3:
        other = rng.randrange(len(subject.regs))
        new = subject.regs[other][rng.choice(REGISTERS)]
    else:
        new = _word(rng, subject, old, subject.regs[thread]["rsp"])
    core = bytearray(subject.data)
    at = subject.pr_reg[thread] + 8 * X86_64.registers.index(register)
    assert struct.unpack_from("<Q", core, at)[0] == old
    struct.pack_into("<Q", core, at, new)
    return Case("regs", f"thread #{thread} {register} {old:#x}->{new:#x}", bytes(core),
                {thread}, {thread} if register in ("rip",) else set(), {}, True)


def _mutate_bytes(rng: random.Random, blob: bytearray, start: int, size: int) -> str:
    edits = []
    for _ in range(rng.randint(1, 16)):
        if rng.random() < 0.3 and size > 8:
            # aim at the head of the section: headers, CIEs, the hdr's table
            pos = start + rng.randrange(min(size, 64))
        else:
            pos = start + rng.randrange(size)
        kind = rng.random()
        if kind < 0.4:
            blob[pos] ^= 1 << rng.randrange(8)
        elif kind < 0.7:
            blob[pos] = rng.randrange(256)
        else:
            n = min(rng.randint(1, 8), start + size - pos)
            blob[pos:pos + n] = rng.choice((b"\xff", b"\0", b"\x7f", b"\x80")) * n
        edits.append(f"{pos - start:#x}")
    return ",".join(edits)


def _mutate_module(rng: random.Random, subject: Subject, directory: Path) -> Case:
    path = rng.choice(sorted(subject.modules))
    blob, sections = subject.modules[path]
    mutated = bytearray(blob)
    name, start, size = rng.choice(sections)
    edits = _mutate_bytes(rng, mutated, start, size)
    copy = directory / Path(os.fsdecode(path)).name
    copy.write_bytes(mutated)
    return Case("module", f"{os.fsdecode(path)} {name} at {edits}", subject.data,
                set(range(len(subject.regs))), set(), {path: os.fsencode(copy)},
                rng.random() < 0.5)


def _opener(replacements: dict[bytes, bytes]) -> Callable[[FileMapping], BinaryIO | None]:
    def open_mutated(mapping: FileMapping) -> BinaryIO | None:
        replacement = replacements.get(mapping.path)
        if replacement is None:
            return open_by_path(mapping)
        return open(replacement, "rb")  # noqa: SIM115 - owned by the ModuleMap

    return open_mutated


# -- the property ----------------------------------------------------------------------------

def _check(subject: Subject, case: Case) -> bool:
    """Run one case; True when some thread's backtrace changed (the corruption was seen)."""
    with CoreReader(io.BytesIO(case.core), zero_fill=False) as reader:
        with deadline(CASE_CPU_S, CASE_WALL_S):
            backtrace = backtrace_from_core(reader, opener=_opener(case.replacements),
                                            locator=_locator(case.debug_dirs))
    assert isinstance(backtrace, Backtrace)
    assert len(backtrace.threads) == len(subject.reference.threads)
    changed = False
    for index, (got, want) in enumerate(zip(backtrace.threads, subject.reference.threads,
                                            strict=True)):
        assert got.frames, f"thread #{index} has no frame"
        if index not in case.regs_changed:
            assert got.frames[0].pc == want.frames[0].pc
        if index not in case.touched:
            assert got == want, f"thread #{index} changed though it read nothing corrupted"
        changed = changed or _walk(got) != _walk(want)
    return changed


def test_fuzz_backtrace_from_core(subjects: list[Subject], tmp_path: Path) -> None:
    seed = int(os.environ.get("FUZZ_SEED", str(random.randrange(1 << 32))))
    rng = random.Random(seed)
    mutators = (
        ("stack", lambda: _mutate_stack(rng, subject)),
        ("regs", lambda: _mutate_regs(rng, subject)),
        ("module", lambda: _mutate_module(rng, subject, tmp_path)),
    )
    counts = {kind: 0 for kind, _ in mutators}
    changed = {kind: 0 for kind, _ in mutators}
    stop = time.monotonic() + SECONDS
    while time.monotonic() < stop:
        subject = rng.choice(subjects)
        kind, mutate = rng.choice(mutators)
        case = mutate()
        try:
            changed[kind] += _check(subject, case)
        except (Exception, CaseTimeout) as err:
            raise AssertionError(f"FUZZ_SEED={seed} case {sum(counts.values())} "
                                 f"{subject.name} {case.kind}: {case.what}: "
                                 f"{type(err).__name__}: {err}") from err
        counts[kind] += 1
    total = sum(counts.values())
    report(f"fuzz unwinder: {total} cases in {SECONDS:.0f} s (seed {seed}): "
           + ", ".join(f"{n} {kind} ({changed[kind]} changed a backtrace)"
                       for kind, n in counts.items()))
    assert total > 0
