"""ProcessMemory against a real target: each method, holes, PROT_NONE, vsyscall, batches, exit."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from pathlib import Path

import pytest

from procfs import ptrace
from procfs.errors import MemoryFault, ProcessGone
from procfs.memory import ProcessMemory
from procfs.memory_base import MemoryMethod
from procfs.memory_mem import seek_unsigned
from procfs.wait import read_wait
from tests.support import procfs_mem
from tests.support.procfs_mem import PAGE, pattern

pytestmark = pytest.mark.e2e

MEM = MemoryMethod.MEM
VM = MemoryMethod.PROCESS_VM_READV
PTRACE = MemoryMethod.PTRACE
VSYSCALL = 0xFFFFFFFFFF600000


@pytest.fixture
def target(compile_c):
    target = procfs_mem.spawn(procfs_mem.build(compile_c), "layout")
    try:
        yield target
    finally:
        target.stop()


@pytest.fixture
def stopped(target):
    """The target, seized and interrupted: PTRACE_PEEKDATA works on it."""
    ptrace.seize(target.pid)
    ptrace.interrupt(target.pid)
    assert read_wait(target.pid, timeout=10).stopped
    try:
        yield target
    finally:
        ptrace.detach(target.pid)


@pytest.mark.parametrize("method", [MEM, VM, PTRACE])
def test_each_method_reads_the_pattern(stopped, method):
    base = stopped.info["base"]
    with ProcessMemory(stopped.pid, tracee=stopped.pid, methods=[method]) as memory:
        result = memory.read(base + 100, 4 * PAGE - 100)
        unaligned = memory.read(base + 3, 13)
    assert result.data == pattern(100, 4 * PAGE - 100)
    assert result.complete and result.method == method and memory.method == method
    assert unaligned.data == pattern(3, 13)


@pytest.mark.parametrize(
    ("methods", "fault_page", "used"),
    [
        ([MEM], 5, (MEM,)),  # mem reads the PROT_NONE page 4, stops at the hole
        ([PTRACE], 5, (PTRACE,)),  # PEEKDATA uses FOLL_FORCE too
        ([VM], 4, (VM,)),  # process_vm_readv stops at PROT_NONE
        ([VM, MEM], 5, (VM, MEM)),  # ... and mem takes over from there
    ],
)
def test_read_across_protnone_and_hole(stopped, methods, fault_page, used):
    base = stopped.info["base"]
    with ProcessMemory(stopped.pid, tracee=stopped.pid, methods=methods) as memory:
        result = memory.read(base + 3 * PAGE + 8, 4 * PAGE)
    assert result.fault_address == base + fault_page * PAGE
    assert result.data == pattern(3 * PAGE + 8, (fault_page - 3) * PAGE - 8)
    assert result.methods == used and result.method == used[0]


def test_read_starting_in_hole_and_read_exact(target):
    base = target.info["base"]
    with ProcessMemory(target.pid) as memory:
        hole = memory.read(base + 5 * PAGE + 1, 10)
        assert hole.data == b"" and hole.fault_address == base + 5 * PAGE + 1
        assert hole.method is None
        assert memory.read_exact(base + 6 * PAGE, PAGE) == pattern(6 * PAGE, PAGE)
        with pytest.raises(MemoryFault) as caught:
            memory.read_exact(base + 3 * PAGE, 4 * PAGE)
    assert caught.value.address == base + 5 * PAGE


def test_protnone_falls_back_from_vm_to_mem(target):
    base = target.info["base"]
    with ProcessMemory(target.pid, methods=[VM, MEM]) as memory:
        result = memory.read(base + 4 * PAGE, PAGE)
        assert result.data == pattern(4 * PAGE, PAGE)
        assert result.method == MEM and result.methods == (VM, MEM)
        # process_vm_readv answered first (with nothing), so it still leads the order
        assert memory.order == (VM, MEM)


def _vsyscall_perms(pid: int) -> str | None:
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            if line.rstrip().endswith("[vsyscall]"):
                return line.split()[1]
    return None


def test_vsyscall_page_is_reached(target):
    perms = _vsyscall_perms(target.pid)
    if perms is None:
        pytest.skip("no [vsyscall] mapping (vsyscall=none)")
    fd = os.open(f"/proc/{target.pid}/mem", os.O_RDONLY)
    try:
        seek_unsigned(fd, VSYSCALL)  # os.lseek raises SystemError here
        try:
            direct = os.read(fd, 16)
        except OSError as err:
            # xonly mode: the kernel got the offset and said "not readable", not EINVAL
            assert err.errno == errno.EIO
            direct = b""
    finally:
        os.close(fd)
    with ProcessMemory(target.pid, methods=[MEM]) as memory:
        result = memory.read(VSYSCALL, 16)
    assert result.data == direct
    if "r" in perms:
        assert result.complete and len(result.data) == 16
    else:
        assert result.fault_address == VSYSCALL


def test_read_many_scattered(target):
    base = target.info["base"]
    ranges = [(base + (i * 389) % (8 * PAGE - 64), 64) for i in range(300)]
    with ProcessMemory(target.pid) as memory:
        results = memory.read_many(ranges)
    assert [r.address for r in results] == [a for a, _ in ranges]
    for (address, size), result in zip(ranges, results, strict=True):
        offset = address - base
        page, end_page = offset // PAGE, (offset + size - 1) // PAGE
        if page == 5:
            assert result.data == b"" and result.fault_address == address
        elif end_page == 5:
            assert result.fault_address == base + 5 * PAGE
            assert result.data == pattern(offset, 5 * PAGE - offset)
        else:
            assert result.complete and result.data == pattern(offset, size)
        expected = VM if page not in (4, 5) else (MEM if page == 4 else None)
        assert result.method == expected


def test_many_reads_beyond_one_batch(target):
    base = target.info["base"]
    ranges = [(base + (i * 61) % (4 * PAGE - 8), 8) for i in range(2500)]
    with ProcessMemory(target.pid, methods=[VM]) as memory:
        results = memory.read_many(ranges)
    assert all(r.data == pattern(a - base, 8) for (a, _), r in zip(ranges, results, strict=True))


def _kill_and_wait_zombie(target) -> None:
    os.kill(target.pid, signal.SIGKILL)
    procfs_mem.wait_until(lambda: procfs_mem.read_state(target.pid) == "Z", what="zombie")


def test_reads_after_exit(target):
    base = target.info["base"]
    memory = ProcessMemory(target.pid)  # mem opened while the target lived
    assert memory.read(base, 8).data == pattern(0, 8)
    _kill_and_wait_zombie(target)
    with pytest.raises(ProcessGone):
        memory.read(base, 8)  # the old fd reads 0 bytes: that is "gone", not data
    with pytest.raises(ProcessGone):
        ProcessMemory(target.pid, methods=[VM]).read(base, 8)
    target.proc.wait(timeout=10)
    with pytest.raises(ProcessGone):
        memory.read(base, 8)
    with pytest.raises(ProcessGone):
        ProcessMemory(target.pid)
    memory.close()


def test_reads_after_exec_see_no_new_image():
    proc = subprocess.Popen(["sh", "-c", "read x; exec sleep 60"], stdin=subprocess.PIPE)
    try:
        procfs_mem.wait_until(lambda: procfs_mem.read_state(proc.pid) == "S", what="sh asleep")
        with open(f"/proc/{proc.pid}/maps") as maps:
            start = int(maps.readline().split("-")[0], 16)
        memory = ProcessMemory(proc.pid)
        assert memory.read(start, 4).data == b"\x7fELF"
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        procfs_mem.wait_until(
            lambda: Path(f"/proc/{proc.pid}/comm").read_text() == "sleep\n", what="exec"
        )
        with pytest.raises(ProcessGone):
            memory.read(start, 4)  # bound to the old mm: 0 bytes, never the new image
        memory.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdin.close()
