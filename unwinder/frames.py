"""The unwinder's raw result: for each thread, the frames found and why the walk stopped."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class FrameMethod(StrEnum):
    """How a frame's pc and sp were recovered, most trusted first (Breakpad's trust levels)."""

    CONTEXT = "context"              # the thread's registers, from NT_PRSTATUS or ptrace
    CFI = "cfi"                      # unwound with DWARF CFI (.eh_frame / .debug_frame)
    SIGNAL = "signal"                # out of a signal trampoline by its code pattern
    RA_AT_SP = "ra-at-sp"            # pc unreadable (a call through a bad pointer): RA at [SP]
    FRAME_POINTER = "frame-pointer"  # a validated frame-pointer record
    SCAN = "scan"                    # a stack word that looks like a return address


class StopReason(StrEnum):
    END_OF_STACK = "end-of-stack"        # return address undefined (CFI) or zero
    NO_METHOD = "no-method"              # no CFI, no trampoline, no usable frame pointer
    SP_NOT_INCREASING = "sp-not-increasing"
    LOOP = "loop"                        # the same (pc, sp) twice
    FRAME_LIMIT = "frame-limit"          # truncated: the walk went on past max_frames


class RawFrame(NamedTuple):
    """One physical frame.

    ``exact_pc`` means ``pc`` is the instruction that was executing (the innermost frame, or a
    frame interrupted by a signal); otherwise ``pc`` is a return address and lookups use
    ``pc - 1``. ``signal_frame`` marks a signal trampoline (``__restore_rt``).
    """

    pc: int
    sp: int | None
    method: FrameMethod
    exact_pc: bool
    signal_frame: bool = False

    @property
    def lookup_pc(self) -> int:
        return self.pc if self.exact_pc else self.pc - 1


class ThreadUnwind(NamedTuple):
    frames: tuple[RawFrame, ...]
    stop: StopReason
    #: a short explanation of the stop (what failed last), for people
    detail: str = ""

    @property
    def truncated(self) -> bool:
        return self.stop == StopReason.FRAME_LIMIT
