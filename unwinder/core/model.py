"""The model of a Linux ELF core: its ELF records, its notes, and their decoded meaning.

A :class:`CoreFile` is built from the raw ``Elf64_Ehdr``, the program headers and the notes;
on construction it groups the notes by thread the way ``write_note_info()`` emits them
(``NT_PRSTATUS`` opens a thread; ``NT_PRPSINFO``/``NT_SIGINFO``/``NT_AUXV``/``NT_FILE`` belong to
the process; ``NT_X86_XSAVE_LAYOUT`` follows all threads) and decodes the notes it knows.
Notes are matched by (name, type), never by position. Equality compares only the raw parts,
so ``parse(build(core)) == core`` is meaningful.
"""

from __future__ import annotations

from typing import NamedTuple

from unwinder.core.arch import Arch, find_arch
from unwinder.core.constants import NT, PN_XNUM, PROCESS_NOTES, PT, SHDR64_SIZE, TRAILING_NOTES
from unwinder.core.elfstructs import Elf64_Ehdr, Elf64_Phdr
from unwinder.core.notes import (
    Auxv,
    FileNote,
    PrPsInfo,
    PrStatus,
    SigInfo,
    parse_auxv,
    parse_file_note,
    parse_prpsinfo,
    parse_prstatus,
    parse_siginfo,
    peek_prstatus_tid,
)
from unwinder.errors import CorruptCore

CORE = b"CORE"
LINUX = b"LINUX"


class _EqualByKey:
    """Equality and hash on ``_key()`` (the raw parts), between records of one class."""

    __slots__ = ()

    def _key(self) -> tuple:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined,no-any-return]

    def __hash__(self) -> int:
        return hash(self._key())


class Note(_EqualByKey):
    """One ELF note: ``name`` without its NUL, ``n_type``, and the descriptor bytes.

    ``offset`` is where its ``Elf64_Nhdr`` starts in the core (not part of equality).
    """

    __slots__ = ("name", "n_type", "desc", "offset")

    def __init__(self, name: bytes, n_type: int, desc: bytes, offset: int = 0) -> None:
        self.name = name
        self.n_type = n_type
        self.desc = desc
        self.offset = offset

    def _key(self) -> tuple:
        return self.name, self.n_type, self.desc

    def __repr__(self) -> str:
        return f"Note(name={self.name!r}, n_type={self.n_type}, {len(self.desc)} bytes at {self.offset})"

    def is_core(self, n_type: NT) -> bool:
        """True for a ``CORE``-named note of this type (how the kernel names the classic ones)."""
        return self.n_type == n_type and self.name == CORE

    def is_linux(self, n_type: NT) -> bool:
        return self.n_type == n_type and self.name == LINUX


class Thread(NamedTuple):
    """One thread of the core: its ``NT_PRSTATUS`` and the notes that follow it.

    ``tid`` is ``pr_pid``, in the dumping process's pid namespace. ``prstatus`` is None only
    for an architecture this package cannot decode (the raw notes are still there).
    """

    tid: int
    prstatus: PrStatus | None
    notes: tuple[Note, ...]

    def find_note(self, name: bytes, n_type: int) -> Note | None:
        for note in self.notes:
            if note.name == name and note.n_type == n_type:
                return note
        return None

    @property
    def fpregset(self) -> bytes | None:
        """Raw ``NT_PRFPREG`` (x86_64: FXSAVE area; aarch64: ``user_fpsimd_state``)."""
        note = self.find_note(CORE, NT.PRFPREG)
        return note.desc if note else None

    @property
    def xstate(self) -> bytes | None:
        """Raw ``NT_X86_XSTATE`` (standard-format XSAVE image)."""
        note = self.find_note(LINUX, NT.X86_XSTATE)
        return note.desc if note else None


class CoreFile(_EqualByKey):
    """A parsed core: ELF header, all program headers (real count even with ``PN_XNUM``), notes.

    Derived, decoded on construction (``CorruptCore`` if a known note is malformed):
    ``arch``, ``threads`` (the dumping thread first), ``prpsinfo``, ``siginfo``, ``auxv``,
    ``files``, ``other_notes`` (process-wide notes not decoded here).
    """

    __slots__ = ("ehdr", "phdrs", "notes", "arch", "threads", "prpsinfo", "siginfo", "auxv",
                 "files", "other_notes")

    def __init__(self, ehdr: Elf64_Ehdr, phdrs: tuple[Elf64_Phdr, ...],
                 notes: tuple[Note, ...]) -> None:
        self.ehdr = ehdr
        self.phdrs = phdrs
        self.notes = notes
        arch = find_arch(self.ehdr.e_machine)
        threads: list[tuple[Note, list[Note]]] = []
        process: list[Note] = []
        for note in notes:
            if note.is_core(NT.PRSTATUS):
                threads.append((note, [note]))
            elif note.name == CORE and note.n_type in PROCESS_NOTES:
                process.append(note)
            elif note.name == LINUX and note.n_type in TRAILING_NOTES:
                process.append(note)
            elif threads:
                threads[-1][1].append(note)
            else:
                process.append(note)
        decoded = tuple(_decode_thread(status, notes, arch) for status, notes in threads)
        self.arch: Arch | None = arch
        self.threads: tuple[Thread, ...] = decoded
        self.prpsinfo: PrPsInfo | None = _decode_first(process, NT.PRPSINFO, parse_prpsinfo)
        self.siginfo: SigInfo | None = _decode_first(process, NT.SIGINFO, parse_siginfo)
        self.auxv: Auxv | None = _decode_first(process, NT.AUXV, parse_auxv)
        self.files: FileNote | None = _decode_first(process, NT.FILE, parse_file_note)
        self.other_notes: tuple[Note, ...] = tuple(
            n for n in process if not (n.name == CORE and n.n_type in PROCESS_NOTES))

    def _key(self) -> tuple:
        return self.ehdr, self.phdrs, self.notes

    def __repr__(self) -> str:
        return f"CoreFile({len(self.phdrs)} program headers, {len(self.notes)} notes)"

    # -- segments ----------------------------------------------------------------------

    @property
    def loads(self) -> tuple[Elf64_Phdr, ...]:
        """``PT_LOAD`` headers in file order (address order only if ``core_sort_vma=0``)."""
        return tuple(p for p in self.phdrs if p.p_type == PT.LOAD)

    @property
    def note_segments(self) -> tuple[Elf64_Phdr, ...]:
        return tuple(p for p in self.phdrs if p.p_type == PT.NOTE)

    @property
    def expected_size(self) -> int:
        """Bytes a complete core has: ``max(p_offset + p_filesz)``, or the extended-numbering
        section header at ``e_shoff`` when it lies further."""
        end = max((p.file_end for p in self.phdrs), default=self.ehdr.e_phoff)
        end = max(end, self.ehdr.e_phoff + len(self.phdrs) * self.ehdr.e_phentsize)
        if self.ehdr.e_phnum == PN_XNUM and self.ehdr.e_shoff:
            end = max(end, self.ehdr.e_shoff + SHDR64_SIZE)
        return end

    @property
    def head_size(self) -> int:
        """Bytes from the start of the core through the end of the last note segment."""
        ends = [p.file_end for p in self.note_segments]
        ends.append(self.ehdr.e_phoff + len(self.phdrs) * self.ehdr.e_phentsize)
        return max(ends)

    # -- threads -----------------------------------------------------------------------

    @property
    def crashing_thread(self) -> Thread | None:
        """The dumping thread (the kernel writes it first)."""
        return self.threads[0] if self.threads else None

    def find_thread(self, tid: int) -> Thread | None:
        for thread in self.threads:
            if thread.tid == tid:
                return thread
        return None

    @property
    def pid(self) -> int | None:
        """The thread-group id in the dumper's pid namespace (``NT_PRPSINFO.pr_pid``)."""
        if self.prpsinfo is not None:
            return self.prpsinfo.pr_pid
        return self.threads[0].tid if self.threads else None


def _decode_thread(status: Note, notes: list[Note], arch: Arch | None) -> Thread:
    if arch is not None:
        prstatus = parse_prstatus(status.desc, arch, status.offset)
        tid = prstatus.pr_pid
    else:
        prstatus = None
        tid = peek_prstatus_tid(status.desc)
        if tid is None:
            raise CorruptCore(status.offset, "NT_PRSTATUS too short to hold a tid")
    return Thread(tid, prstatus, tuple(notes))


def _decode_first(notes: list[Note], n_type: NT, parse):  # type: ignore[no-untyped-def]
    for note in notes:
        if note.is_core(n_type):
            return parse(note.desc, note.offset)
    return None
