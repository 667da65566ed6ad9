"""Pure layout of a core the way Linux lays one out (``fs/binfmt_elf.c: elf_core_dump``).

``Elf64_Ehdr``, then ``PT_NOTE`` as program header 0 followed by the other segments in the
given order, then the notes, zero padding to the page size, then each segment's
``p_filesz`` bytes back to back (a not-dumped segment has ``p_filesz == 0`` and the offset of
the next one), then, with more than 65534 segments, one ``Elf64_Shdr`` carrying the count.
For a kernel-written core, ``layout_core(core.ehdr.e_machine, core.notes, core.loads)`` gives
back the same headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from unwinder.core.constants import (
    EHDR64_SIZE,
    ELF_MAGIC,
    ELFCLASS,
    ELFDATA,
    ET,
    NOTE_ALIGN,
    PHDR64_SIZE,
    PN_XNUM,
    PT,
    SHDR64_SIZE,
)
from unwinder.core.elfstructs import Elf64_Ehdr, Elf64_Nhdr, Elf64_Phdr, Elf64_Shdr, align_up
from unwinder.core.model import CoreFile, Note

EV_CURRENT = 1
E_IDENT = ELF_MAGIC + bytes([ELFCLASS.ELF64, ELFDATA.LSB, EV_CURRENT, 0]) + bytes(8)


def build_note(note: Note) -> bytes:
    """One note as it appears in ``PT_NOTE``: header, NUL-terminated name, descriptor, padded."""
    name = note.name + b"\0"
    header = Elf64_Nhdr(len(name), len(note.desc), note.n_type).pack()
    return b"".join((
        header,
        name.ljust(align_up(len(name), NOTE_ALIGN), b"\0"),
        note.desc.ljust(align_up(len(note.desc), NOTE_ALIGN), b"\0"),
    ))


def build_notes(notes: Iterable[Note]) -> bytes:
    return b"".join(build_note(n) for n in notes)


def layout_core(
    machine: int,
    notes: Sequence[Note],
    segments: Sequence[Elf64_Phdr],
    *,
    page_size: int = 4096,
    e_flags: int = 0,
) -> CoreFile:
    """The :class:`CoreFile` a writer produces for these notes and segments.

    ``segments`` are the non-note program headers in file order; their ``p_offset`` (and for
    ``PT_LOAD`` ``p_paddr``/``p_align``) are recomputed. ``p_filesz`` says how many bytes of
    each segment the file holds (0 = not dumped).
    """
    count = 1 + len(segments)
    note_bytes = build_notes(notes)
    offset = EHDR64_SIZE + count * PHDR64_SIZE
    note_phdr = Elf64_Phdr(PT.NOTE, 0, offset, 0, 0, len(note_bytes), 0, NOTE_ALIGN)
    offset = align_up(offset + len(note_bytes), page_size)
    phdrs = [note_phdr]
    for seg in segments:
        if seg.p_type == PT.NOTE:
            raise ValueError("notes are laid out from the notes list, not from a PT_NOTE segment")
        if seg.p_filesz > seg.p_memsz and seg.p_type == PT.LOAD:
            raise ValueError(f"segment at {seg.p_vaddr:#x} has p_filesz > p_memsz")
        align = page_size if seg.p_type == PT.LOAD else seg.p_align
        phdrs.append(seg.replace(p_offset=offset, p_paddr=0, p_align=align))
        offset += seg.p_filesz
    extnum = count >= PN_XNUM
    ehdr = Elf64_Ehdr(
        e_ident=E_IDENT, e_type=ET.CORE, e_machine=machine, e_version=EV_CURRENT, e_entry=0,
        e_phoff=EHDR64_SIZE, e_shoff=offset if extnum else 0, e_flags=e_flags,
        e_ehsize=EHDR64_SIZE, e_phentsize=PHDR64_SIZE, e_phnum=PN_XNUM if extnum else count,
        e_shentsize=SHDR64_SIZE if extnum else 0, e_shnum=1 if extnum else 0, e_shstrndx=0,
    )
    return CoreFile(ehdr, tuple(phdrs), tuple(notes))


def extnum_shdr(core: CoreFile) -> Elf64_Shdr | None:
    """Section header 0 carrying the segment count, for cores with ``e_phnum == PN_XNUM``."""
    if core.ehdr.e_phnum != PN_XNUM:
        return None
    return Elf64_Shdr(0, 0, 0, 0, 0, core.ehdr.e_shnum, core.ehdr.e_shstrndx, len(core.phdrs), 0, 0)


def build_head(core: CoreFile) -> bytes:
    """The bytes from offset 0 to the end of the notes: header, program headers, notes."""
    parts = [core.ehdr.pack(), *(p.pack() for p in core.phdrs)]
    head = b"".join(parts)
    note_phdr = core.phdrs[0] if core.phdrs and core.phdrs[0].p_type == PT.NOTE else None
    if note_phdr is not None:
        head = head.ljust(note_phdr.p_offset, b"\0") + build_notes(core.notes)
    return head
