"""A core written from typed models loads in gdb exactly like the kernel's core."""

from __future__ import annotations

import pytest

from tests.support.crash import Crash
from tests.support.oracles import gdb_threads
from unwinder.core import CoreReader, Note, layout_core, write_core
from unwinder.core.constants import NT
from unwinder.core.model import CORE
from unwinder.core.notes import (
    build_auxv,
    build_file_note,
    build_prpsinfo,
    build_prstatus,
    build_siginfo,
)

pytestmark = pytest.mark.e2e


def notes_from_models(reader: CoreReader) -> list[Note]:
    """Notes as a userspace core writer makes them: typed models built back into bytes,
    in the kernel's order (dumping thread with the process notes, others, trailing notes)."""
    core = reader.core
    notes: list[Note] = []
    for index, thread in enumerate(core.threads):
        notes.append(Note(CORE, NT.PRSTATUS, build_prstatus(thread.prstatus)))
        if index == 0:
            notes += [
                Note(CORE, NT.PRPSINFO, build_prpsinfo(core.prpsinfo)),
                Note(CORE, NT.SIGINFO, build_siginfo(core.siginfo)),
                Note(CORE, NT.AUXV, build_auxv(core.auxv)),
                Note(CORE, NT.FILE, build_file_note(core.files)),
            ]
        notes += [Note(n.name, n.n_type, n.desc) for n in thread.notes[1:]]
    return notes + list(core.other_notes)


@pytest.mark.parametrize("scenario", ["threads8", "segv"])
def test_written_core_matches_kernel_core_in_gdb(kernel_cores: dict[str, Crash], scenario: str,
                                                 tmp_path) -> None:
    crash = kernel_cores[scenario]
    out = tmp_path / "written.core"
    with CoreReader(crash.core) as reader:
        original = reader.core
        notes = notes_from_models(reader)
        assert notes == list(original.notes)
        # Segments in reverse address order: a reader must not rely on file order.
        segments = sorted(original.phdrs[1:], key=lambda p: p.p_vaddr, reverse=True)
        written = layout_core(original.ehdr.e_machine, notes, segments)
        with open(out, "wb") as f:
            write_core(f, written, reader)
    with CoreReader(out) as again:
        assert again.core == written
        assert [t.prstatus for t in again.core.threads] == [t.prstatus for t in original.threads]
    theirs = gdb_threads(crash.exe, crash.core)
    ours = gdb_threads(crash.exe, out)
    assert set(ours) == set(theirs) == {t.tid for t in original.threads}
    for tid, thread in theirs.items():
        assert ours[tid].registers == thread.registers
        assert ours[tid].backtrace == thread.backtrace
        assert thread.backtrace  # gdb did unwind something
