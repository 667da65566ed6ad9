"""``coredumpd catch`` on the host: crashes anywhere in the tree are captured, the exit status is
the command's, and the cores we write load in gdb like the kernel's."""

from __future__ import annotations

import resource
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.catch.conftest import (
    COREDUMPD,
    REPO,
    Store,
    core_file,
    kernel_core_of,
    our_backtraces,
    run,
)
from tests.support.crash import Crash
from tests.support.oracles import gdb_threads
from unwinder.analyze import backtrace_from_core
from unwinder.core import CoreReader

pytestmark = pytest.mark.e2e

#: the catcher and its tree in a private mount namespace: the mask is seen by the catcher only
PRIVATE_MOUNTS = ("unshare", "--mount", "--propagation", "private", "--")
OWN_FUNCTIONS = {"crash_now", "main", "crashing", "parked", "on_usr1_crash", "wait_here"}


def own_frames(names: list[str]) -> list[str]:
    """The program's own functions, in order: what must match whatever libc symbols exist."""
    return [n for n in names if n in OWN_FUNCTIONS]


def check_core(core: Path, exe: Path, ours: dict[int, list[str]]) -> dict[int, list[str]]:
    """gdb loads ``core``; its registers are the ones we read with ptrace (the NT_PRSTATUS we
    wrote), and its ``bt`` has the same functions as our recorded backtrace. Returns gdb's."""
    with CoreReader(core) as reader:
        ptrace_regs = {t.tid: t.prstatus.registers.as_dict() for t in reader.core.threads}
    threads = gdb_threads(exe, core)
    assert set(threads) == set(ptrace_regs) == set(ours)
    for tid, thread in threads.items():
        for name in ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "r12", "eflags"):
            assert thread.registers[name] == ptrace_regs[tid][name], (tid, name)
        assert thread.backtrace, f"gdb could not unwind thread {tid}"
        assert own_frames(thread.backtrace) == own_frames(ours[tid]), (tid, thread.backtrace, ours[tid])
    return {tid: t.backtrace for tid, t in threads.items()}


@pytest.mark.parametrize("scenario", ["segv", "threads8", "abort"])
def test_crasher_under_catch_matches_kernel(catch_sysctls, store: Store, crasher: Path,
                                            kernel_cores: dict[str, Crash], scenario: str,
                                            tmp_path: Path) -> None:
    args = {"segv": ["segv"], "threads8": ["threads", "8"], "abort": ["abort"]}[scenario]
    direct = run([str(crasher), *args])
    caught, rows = store.catch([str(crasher), *args])
    assert direct.returncode < 0
    assert caught.returncode == direct.returncode, caught.stderr
    assert len(rows) == 1
    row = rows[0]
    assert row.door == "catch" and row.signal == -direct.returncode
    assert row.context.memory_method.startswith("mem"), row.context.memory_method
    ours = our_backtraces(row)
    gdb = check_core(core_file(row, tmp_path), crasher, ours)
    kernel = gdb_threads(crasher, kernel_cores[scenario].core)
    assert sorted(gdb.values()) == sorted(t.backtrace for t in kernel.values())
    assert sorted(ours.values()) == sorted(offline_backtraces(kernel_cores[scenario].core,
                                                              crasher).values())


@pytest.mark.parametrize("mode", ["fork", "exec", "handler"])
def test_tree_crashes_are_caught(catch_sysctls, store: Store, catchme: Path, crasher: Path,
                                 mode: str, tmp_path: Path) -> None:
    args = {"fork": ["fork"], "exec": ["exec", str(crasher)], "handler": ["handler"]}[mode]
    direct, kernel_core = kernel_core_of([str(catchme), *args])
    caught, rows = store.catch([str(catchme), *args])
    assert caught.returncode == direct.returncode, caught.stderr
    if mode == "fork":
        assert direct.returncode == 100 + signal.SIGSEGV
    else:
        assert direct.returncode == -signal.SIGSEGV
    assert len(rows) == 1, [r.notes for r in rows]
    row = rows[0]
    ours = our_backtraces(row)
    exe = crasher if mode == "exec" else catchme
    gdb = check_core(core_file(row, tmp_path), exe, ours)
    assert own_frames(gdb[row.tid])[0] == "crash_now"
    if mode == "handler":
        assert "on_usr1_crash" in gdb[row.tid] and "main" in gdb[row.tid]
    # the kernel's core of the same program: gdb's bt and ours agree with those of our core
    kernel = gdb_threads(exe, kernel_core)
    assert sorted(gdb.values()) == sorted(t.backtrace for t in kernel.values())
    assert sorted(ours.values()) == sorted(offline_backtraces(kernel_core, exe).values())


def offline_backtraces(core: Path, exe: Path) -> dict[int, list[str]]:
    """tid → function names of our offline backtrace of ``core``."""
    with CoreReader(core) as reader:
        backtrace = backtrace_from_core(reader, exe=exe)
    return {t.tid: [f.function or "??" for f in t.frames] for t in backtrace.threads}


def test_clean_program_is_unchanged(catch_sysctls, store: Store, catchme: Path) -> None:
    direct = run([str(catchme), "handled"])
    caught, rows = store.catch([str(catchme), "handled"])
    assert (caught.returncode, caught.stdout) == (direct.returncode, direct.stdout) == (7, "handled\n")
    assert rows == []


def test_masked_mem_falls_back_to_peekdata(catch_sysctls, store: Store, crasher: Path,
                                           tmp_path: Path) -> None:
    """``/proc/<pid>/mem`` masked by a bind mount in a private mount namespace, and
    process_vm_readv not allowed: the core still comes through PTRACE_PEEKDATA."""
    inner = f"mount --bind /dev/null /proc/$$/mem && exec {crasher} segv"
    caught, rows = store.catch(["sh", "-c", inner], "--memory-methods", "mem,ptrace",
                               prefix=PRIVATE_MOUNTS)
    assert caught.returncode == -signal.SIGSEGV, caught.stderr
    (row,) = rows
    method = row.context.memory_method
    assert method.startswith("ptrace") and "masked" in method, method
    check_core(core_file(row, tmp_path), crasher, our_backtraces(row))


def test_masked_mem_uses_process_vm_readv(catch_sysctls, store: Store, crasher: Path) -> None:
    inner = f"mount --bind /dev/null /proc/$$/mem && exec {crasher} segv"
    caught, rows = store.catch(["sh", "-c", inner], prefix=PRIVATE_MOUNTS)
    assert caught.returncode == -signal.SIGSEGV, caught.stderr
    (row,) = rows
    assert row.context.memory_method.startswith("process_vm_readv (mem:"), row.context.memory_method
    assert own_frames(our_backtraces(row)[row.tid]) == ["crash_now", "main"]


def test_caught_crash_is_not_dumped_again_by_the_kernel(catch_sysctls, store: Store,
                                                         crasher: Path) -> None:
    """The catcher writes the core; the kernel must not write a second one into core_pattern
    (here a file pattern, RLIMIT_CORE unlimited: without the guard the kernel would dump)."""
    pattern = Path(Path("/proc/sys/kernel/core_pattern").read_text().strip())
    before = set(pattern.parent.glob("core.*"))
    proc = subprocess.run([*COREDUMPD, "catch", "--state-dir", str(store.path), "--",
                           str(crasher), "segv"], capture_output=True, cwd=REPO, timeout=90,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (-1, -1)))
    assert proc.returncode == -signal.SIGSEGV
    rows = store.new_rows()
    assert len(rows) == 1 and rows[0].storage_state == "present"
    assert set(pattern.parent.glob("core.*")) == before
