"""Pure decoding of ptrace regsets and siginfo from byte fixtures."""

from __future__ import annotations

import signal
import struct

import pytest

from procfs.errors import ProcfsError
from procfs.registers import (
    AARCH64_REGISTERS,
    X86_64_REGISTERS,
    decode_registers,
    regset_size,
)
from procfs.siginfo import SI_TKILL, decode_siginfo


def _words(count: int) -> bytes:
    return struct.pack(f"<{count}Q", *(0x1111 * (i + 1) for i in range(count)))


def test_x86_64_user_regs_struct():
    raw = _words(27)
    regs = decode_registers(raw, "x86_64")
    assert regset_size("x86_64") == 216 and len(X86_64_REGISTERS) == 27
    assert list(regs.values)[:3] == ["r15", "r14", "r13"]
    assert regs["r15"] == 0x1111
    assert regs["orig_rax"] == 0x1111 * 16  # offset 120 of user_regs_struct (232 in prstatus)
    assert regs.pc == regs["rip"] == 0x1111 * 17
    assert regs.sp == regs["rsp"] == 0x1111 * 20
    assert regs["gs"] == 0x1111 * 27
    assert regs.raw == raw


def test_x86_64_full_width_values():
    raw = bytearray(216)
    raw[128:136] = (0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")  # rip
    assert decode_registers(bytes(raw), "x86_64").pc == 0xFFFFFFFFFFFFFFFF


@pytest.mark.parametrize("machine", ["aarch64", "arm64"])
def test_aarch64_user_pt_regs(machine):
    regs = decode_registers(_words(34), machine)
    assert regs.machine == "aarch64" and regset_size(machine) == 272
    assert len(AARCH64_REGISTERS) == 34
    assert regs["x0"] == 0x1111 and regs["x30"] == 0x1111 * 31
    assert regs.sp == 0x1111 * 32 and regs.pc == 0x1111 * 33
    assert regs["pstate"] == 0x1111 * 34


@pytest.mark.parametrize(
    ("raw", "machine"), [(b"\0" * 215, "x86_64"), (b"", "aarch64"), (b"\0" * 216, "riscv64")]
)
def test_bad_regsets_raise_our_error(raw, machine):
    with pytest.raises(ProcfsError):
        decode_registers(raw, machine)


def _siginfo(signo: int, errno: int, code: int, union: bytes) -> bytes:
    return struct.pack("<iii4x", signo, errno, code) + union.ljust(112, b"\0")


def test_siginfo_fault_address():
    info = decode_siginfo(_siginfo(signal.SIGSEGV, 0, 1, struct.pack("<Q", 0xDEADBEEF000)))
    assert (info.signo, info.code, info.addr) == (signal.SIGSEGV, 1, 0xDEADBEEF000)
    assert info.pid is None and not info.from_user and len(info.raw) == 128


def test_siginfo_sender_of_tkill():
    raw = _siginfo(signal.SIGABRT, 0, SI_TKILL, struct.pack("<iI", 4242, 1000))
    info = decode_siginfo(raw)
    assert (info.pid, info.uid, info.addr) == (4242, 1000, None) and info.from_user


def test_siginfo_non_fault_kernel_signal_has_no_address():
    info = decode_siginfo(_siginfo(signal.SIGSTOP, 0, 0x8013, b"\x01" * 8))
    assert info.addr is None and info.pid is None


def test_siginfo_too_short():
    with pytest.raises(ProcfsError):
        decode_siginfo(b"\0" * 127)
