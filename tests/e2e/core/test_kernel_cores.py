"""The core parser against real kernel-written cores, with readelf, eu-readelf and gdb as oracles."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.support.crash import Crash
from tests.support.kernel_cores import symbol_address
from tests.support.oracles import (
    eu_auxv_values,
    eu_file_entries,
    eu_prstatus_registers,
    eu_readelf_notes,
    gdb_threads,
    readelf_note_types,
)
from unwinder.core import CoreReader, layout_core, read_core_head, write_core
from unwinder.core.constants import NT

pytestmark = pytest.mark.e2e

EU_TYPE_NAMES = {
    NT.PRSTATUS: "PRSTATUS", NT.PRPSINFO: "PRPSINFO", NT.SIGINFO: "SIGINFO", NT.AUXV: "AUXV",
    NT.FILE: "FILE", NT.PRFPREG: "FPREGSET", NT.X86_XSTATE: "X86_XSTATE",
}


def test_notes_match_eu_readelf(kernel_core: Crash) -> None:
    with CoreReader(kernel_core.core) as reader:
        core = reader.core
    eu = eu_readelf_notes(kernel_core.core)
    assert [(n.owner, n.size) for n in eu] == [(n.name.decode(), len(n.desc)) for n in core.notes]
    for ours, theirs in zip(core.notes, eu, strict=True):
        if ours.n_type in EU_TYPE_NAMES:
            assert theirs.type == EU_TYPE_NAMES[NT(ours.n_type)]

    prstatus_notes = [n for n in eu if n.type == "PRSTATUS"]
    assert len(prstatus_notes) == len(core.threads)
    for thread, note in zip(core.threads, prstatus_notes, strict=True):
        assert int(note.fields()["pid"]) == thread.tid
        theirs = eu_prstatus_registers(note)
        ours = thread.prstatus.registers.as_dict()
        assert {k: v for k, v in theirs.items() if k in ours} == {k: ours[k] for k in theirs if k in ours}
        assert len(set(theirs) & set(ours)) == 27

    psinfo = next(n for n in eu if n.type == "PRPSINFO").fields()
    assert int(psinfo["pid"]) == core.prpsinfo.pr_pid == kernel_core.pid
    assert psinfo["fname"] == core.prpsinfo.comm.decode()
    assert int(psinfo["uid"]) == core.prpsinfo.pr_uid

    siginfo = next(n for n in eu if n.type == "SIGINFO").fields()
    assert int(siginfo["si_signo"]) == core.siginfo.si_signo == kernel_core.signal
    assert int(siginfo["si_code"]) == core.siginfo.si_code
    if "address" in siginfo:
        assert int(siginfo["address"], 16) == core.siginfo.si_addr

    auxv = next(n for n in eu if n.type == "AUXV")
    assert eu_auxv_values(auxv) == [v for _, v in core.auxv.entries]

    files = next(n for n in eu if n.type == "FILE")
    assert eu_file_entries(files) == [
        (m.start, m.end, m.offset, m.path.decode()) for m in core.files.mappings]


def test_note_list_matches_binutils_readelf(kernel_core: Crash) -> None:
    with CoreReader(kernel_core.core) as reader:
        ours = [(n.name.decode(), len(n.desc)) for n in reader.core.notes]
    assert readelf_note_types(kernel_core.core) == ours


def test_threads_and_registers_match_gdb(kernel_core: Crash) -> None:
    with CoreReader(kernel_core.core) as reader:
        core = reader.core
    gdb = gdb_threads(kernel_core.exe if kernel_core.exe.exists() else None, kernel_core.core,
                      backtrace=False)
    assert set(gdb) == {t.tid for t in core.threads}
    for thread in core.threads:
        ours = thread.prstatus.registers.as_dict()
        theirs = gdb[thread.tid].registers
        shared = set(ours) & set(theirs)
        # gdb 13 shows no fs_base/gs_base for these cores: its XSAVE size table warns
        # ".reg-xstate too small" and it falls back to a description without them.
        assert {"rip", "rsp", "rbp", "rax", "r15", "eflags", "cs", "ss"} <= shared
        assert {k: theirs[k] for k in shared} == {k: ours[k] for k in shared}


def test_stream_head_equals_file_model(kernel_core: Crash) -> None:
    data = kernel_core.core.read_bytes()
    proc = subprocess.Popen(["cat", str(kernel_core.core)], stdout=subprocess.PIPE)
    try:
        head = read_core_head(proc.stdout)
        rest = proc.stdout.read()
    finally:
        proc.wait()
    with CoreReader(kernel_core.core) as reader:
        assert head.core == reader.core
        assert not reader.truncated
    assert head.head + rest == data
    assert len(head.head) == head.core.head_size < 64 * 1024
    assert head.core.expected_size == len(data)
    # Every register of every thread arrives before any memory.
    assert max(n.offset for n in head.core.notes) < len(head.head)


def test_relayout_and_rewrite_is_byte_identical(kernel_core: Crash, tmp_path) -> None:
    with CoreReader(kernel_core.core) as reader:
        core = reader.core
        again = layout_core(core.ehdr.e_machine, core.notes, core.phdrs[1:])
        assert again == core
        assert again.phdrs == core.phdrs and again.ehdr == core.ehdr
        out = tmp_path / "rewritten"
        with open(out, "wb") as f:
            size = write_core(f, again, reader)
    assert size == kernel_core.core.stat().st_size
    assert out.read_bytes() == kernel_core.core.read_bytes()
    # Holes stay holes: the rewritten file uses no more blocks than the kernel's.
    assert out.stat().st_blocks <= kernel_core.core.stat().st_blocks


def test_memory_reads_globals(kernel_core: Crash, crasher) -> None:
    # Every scenario runs the same non-PIE build (or a copy of it): symbol values are addresses.
    pattern = symbol_address(crasher, "g_pattern")
    with CoreReader(kernel_core.core) as reader:
        assert reader.read(pattern, 4096) == bytes((i * 7) & 0xFF for i in range(4096))
        assert reader.read(pattern + 4000, 96) == bytes((i * 7) & 0xFF for i in range(4000, 4096))


def test_segv_fault_address(kernel_cores: dict[str, Crash]) -> None:
    crash = kernel_cores["segv"]
    with CoreReader(crash.core) as reader:
        core = reader.core
    assert len(core.threads) == 1
    assert core.siginfo.si_signo == signal.SIGSEGV
    assert core.siginfo.si_code == 1  # SEGV_MAPERR
    assert core.siginfo.si_addr == 0x10
    assert core.threads[0].prstatus.pr_cursig == signal.SIGSEGV
    assert core.prpsinfo.comm == b"crasher"
    assert core.prpsinfo.psargs.split() == [str(crash.exe).encode(), b"segv"]


def test_eight_threads_dumping_thread_first(kernel_cores: dict[str, Crash]) -> None:
    crash = kernel_cores["threads8"]
    with CoreReader(crash.core) as reader:
        core = reader.core
    assert len(core.threads) == 8
    assert len({t.tid for t in core.threads}) == 8
    assert crash.pid in {t.tid for t in core.threads}
    gdb = gdb_threads(crash.exe, crash.core)
    # The kernel writes the dumping thread first; gdb agrees it is the one in crash_now.
    assert gdb[core.threads[0].tid].backtrace[0] == "crash_now"
    assert core.threads[0].tid != crash.pid
    for thread in core.threads[1:]:
        assert "crash_now" not in gdb[thread.tid].backtrace
        assert thread.fpregset is not None and len(thread.fpregset) == 512
        assert thread.xstate is not None


def test_abort_siginfo_names_the_sender(kernel_cores: dict[str, Crash]) -> None:
    crash = kernel_cores["abort"]
    with CoreReader(crash.core) as reader:
        info = reader.core.siginfo
    assert info.si_signo == signal.SIGABRT
    assert info.si_code == -6  # SI_TKILL
    assert info.si_pid == crash.pid
    assert info.si_addr is None


def test_sigbus_fault_address_matches_the_mapping(kernel_cores: dict[str, Crash]) -> None:
    crash = kernel_cores["sigbus"]
    with CoreReader(crash.core) as reader:
        info = reader.core.siginfo
        expected = int.from_bytes(reader.read(symbol_address(crash.exe, "g_fault_addr"), 8), "little")
    assert info.si_signo == signal.SIGBUS
    assert info.si_code == 2  # BUS_ADRERR
    assert info.si_addr == expected != 0


def test_deleted_executable_is_marked(kernel_cores: dict[str, Crash]) -> None:
    crash = kernel_cores["deleted_exe"]
    with CoreReader(crash.core) as reader:
        paths = {m.path for m in reader.core.files.mappings}
    assert f"{crash.exe} (deleted)".encode() in paths


def test_sorted_vma_core_is_not_in_address_order(kernel_cores: dict[str, Crash]) -> None:
    crash = kernel_cores.get("sort_vma")
    if crash is None:
        pytest.skip("core_sort_vma is not available")
    with CoreReader(crash.core) as reader:
        loads = reader.core.loads
        assert [p.p_vaddr for p in loads] != sorted(p.p_vaddr for p in loads)
        assert [p.p_filesz for p in loads] == sorted(p.p_filesz for p in loads)
        pattern = symbol_address(crash.exe, "g_pattern")
        assert reader.read(pattern, 256) == bytes((i * 7) & 0xFF for i in range(256))
        sp = reader.core.threads[0].prstatus.registers.sp
        assert len(reader.read(sp, 64)) == 64
