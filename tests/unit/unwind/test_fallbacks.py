"""The unwind loop's fallbacks and stop rules on synthetic memory (no CFI anywhere)."""

from __future__ import annotations

import struct

from unwinder.addrspace import AddressSpace
from unwinder.frames import FrameMethod, StopReason
from unwinder.modules import ModuleMap
from unwinder.unwind import Unwinder
from unwinder.unwind_arch import X86_64

RSP, RBP = 7, 6
CODE = 0x400000
STACK = 0x7FFF0000


class FakeMemory:
    """Memory made of a few regions, faulting everywhere else."""

    def __init__(self, regions: dict[int, bytes]) -> None:
        self.regions = regions

    def read_partial(self, address: int, size: int) -> tuple[bytes, int | None]:
        for start, data in self.regions.items():
            if start <= address < start + len(data):
                chunk = data[address - start:address - start + size]
                return chunk, None if len(chunk) == size else start + len(data)
        return b"", address


def words(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}Q", *values)


def make(regions: dict[int, bytes], **kw) -> Unwinder:  # type: ignore[no-untyped-def]
    return Unwinder(AddressSpace(FakeMemory(regions)), ModuleMap([]), X86_64,
                    cfi_for=lambda m: None, **kw)


def fp_chain_stack(depth: int) -> bytes:
    """``depth`` frame records at STACK + 0x100 * i: [saved rbp, return address]."""
    stack = bytearray(0x100 * (depth + 1))
    for i in range(depth):
        saved = STACK + 0x100 * (i + 1) if i + 1 < depth else 0
        struct.pack_into("<QQ", stack, 0x100 * i, saved, CODE + 0x10 * (i + 1))
    return bytes(stack)


def test_frame_pointer_chain_until_zero() -> None:
    u = make({CODE: bytes(0x1000), STACK: fp_chain_stack(4)})
    result = u.unwind(CODE + 1, {RSP: STACK - 0x20, RBP: STACK})
    assert [f.pc for f in result.frames] == [CODE + 1] + [CODE + 0x10 * i for i in range(1, 5)]
    assert [f.method for f in result.frames] == [FrameMethod.CONTEXT] + [FrameMethod.FRAME_POINTER] * 4
    assert result.stop == StopReason.NO_METHOD
    assert not result.frames[1].exact_pc and result.frames[1].lookup_pc == CODE + 0xF


def test_call_through_null_uses_the_return_address_at_sp() -> None:
    stack = words(CODE + 0x42) + bytes(64)
    u = make({CODE: bytes(0x1000), STACK: stack})
    result = u.unwind(0, {RSP: STACK})
    assert result.frames[1].pc == CODE + 0x42
    assert result.frames[1].method == FrameMethod.RA_AT_SP
    assert result.frames[1].sp == STACK + 8


def test_signal_trampoline_by_code_pattern() -> None:
    code = bytearray(0x1000)
    code[0x100:0x109] = X86_64.sigreturn_code
    frame = bytearray(0x200)
    struct.pack_into("<Q", frame, X86_64.sigcontext_pc, CODE + 0x500)
    struct.pack_into("<Q", frame, X86_64.sigcontext_registers[RSP], STACK + 0x1000)
    struct.pack_into("<Q", frame, X86_64.sigcontext_registers[RBP], 0)
    u = make({CODE: bytes(code), STACK: bytes(frame)})
    result = u.unwind(CODE + 0x100, {RSP: STACK})
    assert result.frames[0].signal_frame
    assert result.frames[1].pc == CODE + 0x500
    assert result.frames[1].method == FrameMethod.SIGNAL
    assert result.frames[1].exact_pc  # interrupted: its pc is the exact instruction


def test_loop_and_shrinking_sp_stop_the_walk() -> None:
    # a frame record that points at itself
    stack = words(STACK, CODE + 0x10) + bytes(32)
    result = make({CODE: bytes(0x1000), STACK: stack}).unwind(CODE + 0x10, {RSP: STACK - 8, RBP: STACK})
    assert result.stop in (StopReason.LOOP, StopReason.NO_METHOD)
    assert len(result.frames) <= 3


def test_frame_limit_truncates_and_says_so() -> None:
    u = make({CODE: bytes(0x1000), STACK: fp_chain_stack(50)}, max_frames=10)
    result = u.unwind(CODE + 1, {RSP: STACK - 0x20, RBP: STACK})
    assert len(result.frames) == 10
    assert result.truncated and result.stop == StopReason.FRAME_LIMIT


def test_unreadable_everything_is_a_clean_stop() -> None:
    result = make({}).unwind(0xDEAD0000, {RSP: 0x1000})
    assert [f.method for f in result.frames] == [FrameMethod.CONTEXT]
    assert result.stop == StopReason.NO_METHOD
