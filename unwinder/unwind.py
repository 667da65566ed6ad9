"""Walking one thread's stack: CFI first, then the fallbacks, each frame labelled.

Per frame, the first method that works is used: CFI → signal trampoline by code pattern →
return address at SP (only when the pc itself is unreadable: a call through NULL) → validated
frame-pointer record → (optional) stack scan. The walk stops at an undefined return address or
pc 0 (a normal end), when SP does not increase (except out of a signal frame, which may switch
to an alternate stack), when a (pc, sp) pair repeats, or at ``max_frames`` (marked truncated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from unwinder.addrspace import AddressSpace
from unwinder.cfi.expr import evaluate
from unwinder.cfi.rules import CfiRow, RuleKind
from unwinder.cfi.table import CfiTable
from unwinder.errors import FaultError, UnwindError
from unwinder.frames import FrameMethod, RawFrame, StopReason, ThreadUnwind
from unwinder.modules import ModuleMap
from unwinder.unwind_arch import UnwindArch

MASK64 = (1 << 64) - 1
MIN_PC = 4096
#: A frame-pointer record further than this above SP is not believed.
MAX_FRAME_SIZE = 64 << 20
SCAN_WORDS = 64

CfiLoader = Callable[..., CfiTable | None]
#: pc -> start address of the function holding it (from symbols), or None
FunctionStart = Callable[[int], int | None]

ENDBR64 = bytes.fromhex("f30f1efa")
MOV_RSP_RBP = (bytes.fromhex("4889e5"), bytes.fromhex("488bec"))


class _State(NamedTuple):
    pc: int
    regs: dict[int, int]
    exact_pc: bool


class _EndOfStack(Exception):
    pass


class Unwinder:
    """Unwinds threads of one address space.

    :param cfi_for: returns the :class:`CfiTable` of a module, or None (no CFI, or unusable).
    """

    def __init__(self, space: AddressSpace, modules: ModuleMap, arch: UnwindArch, *,
                 cfi_for: CfiLoader, function_start: FunctionStart | None = None,
                 max_frames: int = 256, scan: bool = False) -> None:
        self.function_start = function_start
        self.space = space
        self.modules = modules
        self.arch = arch
        self.cfi_for = cfi_for
        self.max_frames = max_frames
        self.scan = scan
        #: (module start, lookup pc) -> its CFI row, or None (no row, or a malformed FDE):
        #: threads of one process mostly wait in the same few functions (futex, poll,
        #: pthread_cond_wait), so most rows are computed once for all of them
        self._rows: dict[tuple[int, int], CfiRow | None] = {}

    def unwind(self, pc: int, regs: dict[int, int]) -> ThreadUnwind:
        """Unwind from a thread's registers (DWARF numbering; ``pc`` separately)."""
        state = _State(pc, dict(regs), exact_pc=True)
        frames = [RawFrame(pc, regs.get(self.arch.sp), FrameMethod.CONTEXT, True)]
        seen = {(pc, regs.get(self.arch.sp))}
        detail = ""
        while True:
            current = frames[-1]
            try:
                step = self._step(state, first=len(frames) == 1)
            except _EndOfStack:
                return ThreadUnwind(tuple(frames), StopReason.END_OF_STACK)
            if step is None:
                return ThreadUnwind(tuple(frames), StopReason.NO_METHOD, detail or
                                    f"no way to unwind past {state.pc:#x}")
            method, signal_frame, new = step
            if signal_frame:
                frames[-1] = RawFrame(current.pc, current.sp, current.method, current.exact_pc, True)
            if new.pc < MIN_PC:
                return ThreadUnwind(tuple(frames), StopReason.END_OF_STACK)
            old_sp, new_sp = state.regs.get(self.arch.sp), new.regs.get(self.arch.sp)
            # A call pushes the return address (x86): SP must grow. Where it stays in a
            # register (aarch64 leaf functions) SP may stay equal, never shrink.
            if (not signal_frame and old_sp is not None and new_sp is not None
                    and (new_sp < old_sp or (new_sp == old_sp and self.arch.ra_on_stack))):
                return ThreadUnwind(tuple(frames), StopReason.SP_NOT_INCREASING,
                                    f"{method} gave sp {new_sp:#x} <= {old_sp:#x}")
            if (new.pc, new_sp) in seen:
                return ThreadUnwind(tuple(frames), StopReason.LOOP)
            if len(frames) >= self.max_frames:
                return ThreadUnwind(tuple(frames), StopReason.FRAME_LIMIT,
                                    f"stopped after {self.max_frames} frames")
            seen.add((new.pc, new_sp))
            frames.append(RawFrame(new.pc, new_sp, method, new.exact_pc))
            state = new

    # -- one step ---------------------------------------------------------------------

    def _step(self, state: _State, first: bool) -> tuple[FrameMethod, bool, _State] | None:
        cfi = self._try_cfi(state)
        if cfi is not None:
            return cfi
        sig = self._try_sigreturn(state)
        if sig is not None:
            return FrameMethod.SIGNAL, True, sig
        if state.exact_pc and not self._readable(state.pc):
            ra = self._try_ra_at_sp(state)
            if ra is not None:
                return FrameMethod.RA_AT_SP, False, ra
        if state.exact_pc:
            ra = self._try_prologue(state)
            if ra is not None:
                return FrameMethod.RA_AT_SP, False, ra
        fp = self._try_frame_pointer(state)
        if fp is not None:
            return FrameMethod.FRAME_POINTER, False, fp
        if self.scan:
            found = self._try_scan(state)
            if found is not None:
                return FrameMethod.SCAN, False, found
        return None

    def _readable(self, address: int) -> bool:
        try:
            self.space.read(address, 1)
            return True
        except FaultError:
            return False

    def _try_cfi(self, state: _State) -> tuple[FrameMethod, bool, _State] | None:
        module = self.modules.find(state.pc)
        if module is None:
            return None
        lookup = state.pc if state.exact_pc else state.pc - 1
        key = (module.start, lookup)
        if key in self._rows:
            row = self._rows[key]
        else:
            table = self.cfi_for(module)
            try:
                row = table.find_row(lookup - module.bias) if table is not None else None
            except (UnwindError, KeyError):
                row = None  # a bad FDE: let the fallbacks try
            self._rows[key] = row
        if row is None:
            return None
        try:
            new = self._apply_row(row, state)
        except (UnwindError, KeyError):
            return None  # an unreadable save slot: let the fallbacks try
        return FrameMethod.CFI, row.signal_frame, new

    def _apply_row(self, row: CfiRow, state: _State) -> _State:
        regs = state.regs
        arch = self.arch

        def register(number: int) -> int:
            if number not in regs:
                raise UnwindError(f"register {number} is not known in this frame")
            return regs[number]

        read_word = self.space.read_word
        if row.cfa.expression is not None:
            cfa = evaluate(row.cfa.expression, registers=register, read_word=read_word)
        else:
            cfa = (register(row.cfa.register) + row.cfa.offset) & MASK64
        new = {n: v for n, v in regs.items() if n in arch.callee_saved}
        new[arch.sp] = cfa
        ra_value: int | None = regs.get(arch.ra) if arch.ra in arch.callee_saved else None
        for number, rule in row.registers.items():
            kind = rule.kind
            if kind == RuleKind.UNDEFINED:
                if number == row.return_address_column:
                    raise _EndOfStack
                new.pop(number, None)
                continue
            if kind == RuleKind.SAME_VALUE:
                value = regs.get(number)
            elif kind == RuleKind.OFFSET:
                value = read_word((cfa + rule.value) & MASK64)
            elif kind == RuleKind.VAL_OFFSET:
                value = (cfa + rule.value) & MASK64
            elif kind == RuleKind.REGISTER:
                value = regs.get(rule.value)
            elif kind == RuleKind.EXPRESSION:
                value = read_word(evaluate(rule.expression, registers=register, read_word=read_word,
                                           initial_stack=(cfa,)))
            else:  # VAL_EXPRESSION
                value = evaluate(rule.expression, registers=register, read_word=read_word,
                                 initial_stack=(cfa,))
            if number == row.return_address_column:
                ra_value = value
            if value is None:
                new.pop(number, None)
            else:
                new[number] = value
        if ra_value is None:
            raise UnwindError("return address not recoverable from this row")
        if not arch.ra_on_stack:
            new[arch.ra] = ra_value
        else:
            new.pop(arch.ra, None)
        return _State(ra_value & arch.pc_mask, new, exact_pc=row.signal_frame)

    def _try_sigreturn(self, state: _State) -> _State | None:
        arch = self.arch
        code = arch.sigreturn_code
        for offset in arch.sigreturn_pc_offsets:
            try:
                if self.space.read(state.pc - offset, len(code)) != code:
                    continue
                sp = state.regs[arch.sp]
                regs = {n: self.space.read_word(sp + off) for n, off in arch.sigcontext_registers.items()}
                pc = self.space.read_word(sp + arch.sigcontext_pc)
            except (FaultError, KeyError):
                return None
            return _State(pc, regs, exact_pc=True)
        return None

    def _try_ra_at_sp(self, state: _State) -> _State | None:
        arch = self.arch
        sp = state.regs.get(arch.sp)
        if sp is None:
            return None
        regs = {n: v for n, v in state.regs.items() if n in arch.callee_saved}
        try:
            if arch.ra_on_stack:
                pc = self.space.read_word(sp)
                regs[arch.sp] = sp + 8
            else:
                pc = state.regs[arch.ra]
                regs[arch.sp] = sp
        except (FaultError, KeyError):
            return None
        return _State(pc & arch.pc_mask, regs, exact_pc=False)

    def _try_prologue(self, state: _State) -> _State | None:
        """x86_64 code without CFI, stopped before its frame is set up (or in a frameless
        leaf): the return address is at [rsp], or at [rsp+8] right after ``push %rbp``.

        Like gdb's ``amd64_analyze_prologue``; the result is used only when the return address
        follows a call instruction.
        """
        arch = self.arch
        if not arch.ra_on_stack or self.function_start is None:
            return None
        start = self.function_start(state.pc)
        sp = state.regs.get(arch.sp)
        if start is None or sp is None or not start <= state.pc < start + 4096:
            return None
        try:
            code = self.space.read(start, 16)
        except FaultError:
            return None
        at = len(ENDBR64) if code.startswith(ENDBR64) else 0
        into = state.pc - start
        if code[at] == 0x55:  # push %rbp
            if into <= at:
                slot = 0
            elif code[at + 1:at + 4] in MOV_RSP_RBP and into <= at + 1:
                slot = 8
            else:
                return None  # the frame is set up: the frame pointer knows the way
        elif _adjusts_stack(code[at:]):
            return None
        else:
            slot = 0  # frameless leaf
        try:
            ra = self.space.read_word(sp + slot)
            saved_fp = self.space.read_word(sp) if slot else state.regs.get(arch.fp)
        except FaultError:
            return None
        if ra < MIN_PC or not self._follows_call(ra):
            return None
        regs = {n: v for n, v in state.regs.items() if n in arch.callee_saved}
        if saved_fp is not None:
            regs[arch.fp] = saved_fp
        regs[arch.sp] = sp + slot + 8
        return _State(ra, regs, exact_pc=False)

    def _follows_call(self, ra: int) -> bool:
        """Whether the bytes before ``ra`` end with an x86 call (rel32, or ``ff /2``)."""
        try:
            code = self.space.read(ra - 7, 7)
        except FaultError:
            return False
        if code[-5] == 0xE8:
            return True
        return any(code[-n] == 0xFF and (code[-n + 1] >> 3) & 7 == 2 for n in (2, 3, 6, 7))

    def _try_frame_pointer(self, state: _State) -> _State | None:
        arch = self.arch
        fp = state.regs.get(arch.fp)
        sp = state.regs.get(arch.sp)
        if not fp or sp is None or fp % 8 or fp < sp or fp - sp > MAX_FRAME_SIZE:
            return None
        try:
            caller_fp = self.space.read_word(fp)
            pc = self.space.read_word(fp + 8) & arch.pc_mask
        except FaultError:
            return None
        # The caller's saved frame pointer is not checked here: code with CFI (libc) keeps any
        # value in it. It is checked when (and if) the next step uses it.
        if pc < MIN_PC or not self._readable(pc):
            return None
        regs = {n: v for n, v in state.regs.items() if n in arch.callee_saved}
        regs[arch.fp] = caller_fp
        regs[arch.sp] = fp + 16
        return _State(pc, regs, exact_pc=False)

    def _try_scan(self, state: _State) -> _State | None:
        sp = state.regs.get(self.arch.sp)
        if sp is None:
            return None
        for i in range(1 if self.arch.ra_on_stack else 0, SCAN_WORDS):
            slot = sp + 8 * i
            try:
                value = self.space.read_word(slot) & self.arch.pc_mask
            except FaultError:
                return None
            module = self.modules.find(value)
            if module is not None and value >= MIN_PC:
                regs = {n: v for n, v in state.regs.items() if n in self.arch.callee_saved}
                regs[self.arch.sp] = slot + 8
                return _State(value, regs, exact_pc=False)
        return None


def _adjusts_stack(code: bytes) -> bool:
    """Whether the first instruction pushes a register or subtracts from %rsp."""
    if 0x50 <= code[0] <= 0x57:
        return True
    if code[0] == 0x41 and 0x50 <= code[1] <= 0x57:  # push %r8-%r15
        return True
    return code[:3] in (bytes.fromhex("4883ec"), bytes.fromhex("4881ec"))
