"""ProcessMemory where methods are missing: masked or absent mem, refused or absent
process_vm_readv. The mount tricks run in a reader child inside a private mount namespace."""

from __future__ import annotations

import errno

import pytest

from procfs.memory import ProcessMemory
from procfs.memory_base import MemoryMethod
from tests.support import procfs_mem
from tests.support.procfs_mem import PAGE, pattern

pytestmark = pytest.mark.e2e

READER = r"""
import json, os, subprocess, sys
from procfs.errors import ProcfsError
from procfs.memory import ProcessMemory
from procfs.memory_base import MemoryMethod

pid, base, size, setup, methods = sys.argv[1:6]
pid, base, size = int(pid), int(base, 0), int(size)
methods = [MemoryMethod(m) for m in methods.split(",")] if methods else None
mem_fd = None
if setup == "mask":
    subprocess.run(["mount", "--bind", "/dev/null", f"/proc/{pid}/mem"], check=True)
elif setup == "remove":
    subprocess.run(["mount", "-t", "tmpfs", "none", f"/proc/{pid}"], check=True)
elif setup.startswith("drop"):
    if setup == "drop-keep-fd":
        mem_fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)
out = {"mem_is_proc_file": os.path.exists(f"/proc/{pid}/mem")}
try:
    memory = ProcessMemory(pid, mem_fd=mem_fd, methods=methods)
    result = memory.read(base, size)
    again = memory.read(base, size)
    out.update(data=result.data.hex(), method=result.method, again=again.method,
               methods=list(result.methods), tried=memory.methods_tried, order=memory.order)
except ProcfsError as err:
    out.update(error=type(err).__name__, message=str(err))
print(json.dumps(out))
"""


@pytest.fixture
def target(compile_c):
    target = procfs_mem.spawn(procfs_mem.build(compile_c), "layout")
    try:
        yield target
    finally:
        target.stop()


def _read(target, setup: str, methods: str = "", size: int = 2 * PAGE) -> dict:
    args = (str(target.pid), hex(target.info["base"]), str(size), setup, methods)
    unshare = setup in ("mask", "remove")
    return procfs_mem.run_python(READER, *args, unshare_mount=unshare)


def test_masked_mem_falls_back_to_process_vm_readv(target):
    out = _read(target, "mask")
    assert out["data"] == pattern(0, 2 * PAGE).hex()
    assert out["method"] == out["again"] == "process_vm_readv"
    assert "masked" in out["tried"]["mem"]
    assert out["order"][0] == "process_vm_readv" and "mem" not in out["order"]
    # the bind mount lived only in the reader's namespace
    with ProcessMemory(target.pid, methods=[MemoryMethod.MEM]) as memory:
        assert memory.read(target.info["base"], 8).data == pattern(0, 8)


def test_masked_mem_alone_is_unsupported(target):
    out = _read(target, "mask", "mem")
    assert out["error"] == "Unsupported" and "masked" in out["message"]


def test_missing_mem_falls_back(target):
    out = _read(target, "remove")
    assert not out["mem_is_proc_file"]
    assert out["method"] == "process_vm_readv"
    assert "does not exist" in out["tried"]["mem"]


def test_refused_process_vm_readv_uses_preopened_mem(target):
    # mem opened as root, then privileges dropped: the open fd still reads (checked at open
    # only) while process_vm_readv now gets a real EPERM.
    out = _read(target, "drop-keep-fd", "process_vm_readv,mem")
    assert out["data"] == pattern(0, 2 * PAGE).hex()
    assert out["method"] == "mem"
    assert "Operation not permitted" in out["tried"]["process_vm_readv"]
    assert out["order"] == ["mem"]


def test_everything_refused_is_access_denied(target):
    out = _read(target, "drop")
    assert out["error"] == "AccessDenied"
    assert "mem" in out["message"] and "process_vm_readv" in out["message"]


def test_enosys_process_vm_readv_is_dropped(target, monkeypatch):
    calls = []

    def no_such_syscall(name, *args):
        calls.append(name)
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr("procfs.memory_vm.syscall", no_such_syscall)
    base = target.info["base"]
    with ProcessMemory(target.pid, methods=[MemoryMethod.PROCESS_VM_READV, MemoryMethod.MEM]) as m:
        first = m.read(base, 64)
        many = m.read_many([(base, 8), (base + PAGE, 8)])
        assert m.order == (MemoryMethod.MEM,)
    assert first.method == MemoryMethod.MEM and first.data == pattern(0, 64)
    assert [r.data for r in many] == [pattern(0, 8), pattern(PAGE, 8)]
    assert calls == ["process_vm_readv"]  # tried once, remembered as unavailable
