"""The fallback logic of ProcessMemory, with fake readers standing in for the kernel."""

from __future__ import annotations

import pytest

from procfs.errors import AccessDenied, MemoryFault, ProcessGone, Unsupported
from procfs.memory import ProcessMemory
from procfs.memory_base import MemoryMethod, MethodUnavailable

MEM = MemoryMethod.MEM
VM = MemoryMethod.PROCESS_VM_READV
PTRACE = MemoryMethod.PTRACE


class FakeReader:
    """Readable ``[start, end)`` windows; or an exception raised on every read."""

    def __init__(self, method, readable=((0x1000, 0x3000),), error=None):
        self.method = method
        self.readable = readable
        self.error = error
        self.calls = 0
        self.batches = 0
        self.closed = False

    def read(self, address, size):
        self.calls += 1
        if self.error is not None:
            raise self.error
        out = bytearray()
        for at in range(address, address + size):
            if not any(lo <= at < hi for lo, hi in self.readable):
                break
            out.append(at & 0xFF)
        return bytes(out)

    def read_many(self, ranges):
        self.batches += 1
        return [self.read(a, s) for a, s in ranges]

    def close(self):
        self.closed = True


def _memory(monkeypatch, readers, methods=None) -> ProcessMemory:
    """A ProcessMemory whose readers are ``readers`` (an exception: construction fails)."""

    def make(self, method):
        reader = readers[method]
        if isinstance(reader, Exception):
            raise reader
        return reader

    monkeypatch.setattr(ProcessMemory, "_make", make)
    return ProcessMemory(1234, methods=methods)


def _expected(address, size):
    return bytes(a & 0xFF for a in range(address, address + size))


def test_unavailable_method_is_dropped_and_remembered(monkeypatch):
    vm = FakeReader(VM)
    memory = _memory(monkeypatch, {MEM: MethodUnavailable("masked"), VM: vm}, [MEM, VM])
    assert memory.order == (VM,) and memory.methods_tried == {MEM: "masked"}
    result = memory.read(0x1000, 16)
    memory.read(0x1000, 16)
    assert result.data == _expected(0x1000, 16) and result.method == VM == memory.method
    assert memory.methods_tried == {MEM: "masked", VM: "ok"}


def test_short_vm_read_continues_with_forced_method(monkeypatch):
    vm = FakeReader(VM, readable=((0x1000, 0x2000),))  # PROT_NONE from 0x2000
    mem = FakeReader(MEM, readable=((0x1000, 0x3000),))
    memory = _memory(monkeypatch, {MEM: mem, VM: vm}, [VM, MEM])
    result = memory.read(0x1800, 0x2000)
    assert result.data == _expected(0x1800, 0x1800) and result.fault_address == 0x3000
    assert result.methods == (VM, MEM) and result.method == VM
    assert memory.order == (VM, MEM)


def test_fault_of_forced_method_is_final(monkeypatch):
    mem = FakeReader(MEM)
    vm = FakeReader(VM)
    memory = _memory(monkeypatch, {MEM: mem, VM: vm})
    result = memory.read(0x2F00, 0x200)
    assert result.fault_address == 0x3000 and result.methods == (MEM,)
    assert vm.calls == 0
    with pytest.raises(MemoryFault) as caught:
        memory.read_exact(0x2F00, 0x200)
    assert caught.value.address == 0x3000 and caught.value.size == 0x100


def test_transient_unavailability_keeps_method_last(monkeypatch):
    peek = FakeReader(PTRACE, error=MethodUnavailable("running", permanent=False))
    vm = FakeReader(VM)
    memory = _memory(monkeypatch, {PTRACE: peek, VM: vm}, [PTRACE, VM])
    assert memory.read(0x1000, 8).method == VM
    assert memory.order == (VM, PTRACE)


def test_process_gone_stops_everything(monkeypatch):
    mem = FakeReader(MEM, error=ProcessGone(1234))  # e.g. the mm was replaced by exec
    vm = FakeReader(VM)
    memory = _memory(monkeypatch, {MEM: mem, VM: vm}, [MEM, VM])
    with pytest.raises(ProcessGone):
        memory.read(0x1000, 8)
    assert vm.calls == 0  # never mix bytes of a new image into an old read


def test_all_refused_is_access_denied(monkeypatch):
    readers = {
        MEM: FakeReader(MEM, error=MethodUnavailable("EACCES", denied=True)),
        VM: FakeReader(VM, error=MethodUnavailable("EPERM", denied=True)),
    }
    memory = _memory(monkeypatch, readers, [MEM, VM])
    with pytest.raises(AccessDenied) as caught:
        memory.read(0x1000, 8)
    assert "EACCES" in str(caught.value) and "EPERM" in str(caught.value)


def test_nothing_available_is_unsupported(monkeypatch):
    readers = {VM: FakeReader(VM, error=MethodUnavailable("ENOSYS"))}
    memory = _memory(monkeypatch, readers, [VM])
    with pytest.raises(Unsupported):
        memory.read(0x1000, 8)


def test_read_many_batches_on_vm_and_patches_short_ranges(monkeypatch):
    vm = FakeReader(VM, readable=((0x1000, 0x2000),))
    mem = FakeReader(MEM, readable=((0x1000, 0x3000),))
    memory = _memory(monkeypatch, {MEM: mem, VM: vm})
    results = memory.read_many([(0x1000, 4), (0x2000, 4), (0x3000, 4), (0x1FFE, 4)])
    assert vm.batches == 1
    assert [r.method for r in results] == [VM, MEM, None, VM]
    assert [r.data for r in results] == [
        _expected(0x1000, 4),
        _expected(0x2000, 4),
        b"",
        _expected(0x1FFE, 4),
    ]
    assert [r.fault_address for r in results] == [None, None, 0x3000, None]


def test_empty_and_invalid_ranges(monkeypatch):
    memory = _memory(monkeypatch, {MEM: FakeReader(MEM)})
    assert memory.read(0x5000, 0).complete
    for address, size in ((-1, 1), (0, -1), ((1 << 64) - 4, 8)):
        with pytest.raises(ValueError):
            memory.read(address, size)


def test_close_closes_readers(monkeypatch):
    mem = FakeReader(MEM)
    with _memory(monkeypatch, {MEM: mem}):
        pass
    assert mem.closed
