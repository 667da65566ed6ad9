"""Frames glibc marks specially: the signal trampoline and the outermost frames."""

from __future__ import annotations

import io
import re

import pytest
from elftools.elf.elffile import ELFFile

from tests.e2e.cfi.cfi_oracles import LIBC
from tests.unit.cfi.cfi_builder import sleb
from unwinder.cfi import CfiTable, RuleKind, evaluate

#: mov $15,%rax; syscall -- the body of x86_64 __restore_rt
RESTORE_RT_CODE = bytes.fromhex("48c7c00f0000000f05")
#: gregs offsets in the ucontext at the trampoline's SP (r8..r15, rdi, rsi, rbp, rbx, rdx, rax,
#: rcx, rsp, rip), by DWARF register number
SIGCONTEXT = {8: 40, 9: 48, 10: 56, 11: 64, 12: 72, 13: 80, 14: 88, 15: 96, 5: 104, 4: 112,
              6: 120, 3: 128, 1: 136, 0: 144, 2: 152, 7: 160, 16: 168}


@pytest.fixture(scope="module")
def libc():
    if not LIBC.exists():
        pytest.skip("no x86_64 libc")
    with open(LIBC, "rb") as f:
        elf = ELFFile(f)
        yield elf, CfiTable.from_elf(elf, arch="x86_64")


def read_code(elf: ELFFile, address: int, size: int) -> bytes:
    for seg in elf.iter_segments("PT_LOAD"):
        if seg["p_vaddr"] <= address < seg["p_vaddr"] + seg["p_filesz"]:
            elf.stream.seek(seg["p_offset"] + address - seg["p_vaddr"])
            return elf.stream.read(size)
    raise AssertionError(f"{address:#x} not loaded")


def test_restore_rt_is_the_one_signal_frame(libc):
    elf, table = libc
    signal_fdes = [fde for fde in table.eh_frame.iter_fdes() if fde.cie.signal_frame]
    assert len(signal_fdes) == 1
    fde = signal_fdes[0]
    # the FDE starts one byte before the symbol, so that a pc-1 lookup lands in it
    assert read_code(elf, fde.pc_begin + 1, len(RESTORE_RT_CODE)) == RESTORE_RT_CODE
    for pc in (fde.pc_begin, fde.pc_begin + 1, fde.pc_end - 1):
        row = table.find_row(pc)
        assert row.signal_frame and row.return_address_column == 16
        assert row.cfa.expression == b"\x77\xa0\x01\x06"  # breg7 160; deref
        for regno, offset in SIGCONTEXT.items():
            assert row.registers[regno].kind == RuleKind.EXPRESSION
            assert row.registers[regno].expression == b"\x77" + sleb(offset)


def test_restore_rt_rules_evaluate_against_a_fake_sigframe(libc):
    _, table = libc
    fde = next(f for f in table.eh_frame.iter_fdes() if f.cie.signal_frame)
    row = table.find_row(fde.pc_begin + 1)
    sp = 0x7FFD0000
    memory = {sp + off: 0x1000 + regno for regno, off in SIGCONTEXT.items()}
    registers = {7: sp}
    cfa = evaluate(row.cfa.expression, registers=registers.__getitem__,
                   read_word=memory.__getitem__)
    assert cfa == 0x1000 + 7  # the interrupted rsp
    rule = row.registers[16]
    address = evaluate(rule.expression, registers=registers.__getitem__,
                       read_word=memory.__getitem__, initial_stack=[cfa])
    assert memory[address] == 0x1000 + 16  # the interrupted rip


def _ra_undefined_fdes(table):
    found = []
    for fde in table.eh_frame.iter_fdes():
        pc = fde.pc_begin
        while pc < fde.pc_end:
            row = table.find_row(pc)
            rule = row.registers.get(16)
            if rule is not None and rule.kind == RuleKind.UNDEFINED:
                found.append((fde, row))
                break
            pc = row.end
    return found


def test_clone_children_mark_the_end_of_the_stack(libc):
    elf, table = libc
    clone = elf.get_section_by_name(".dynsym").get_symbol_by_name("__clone")[0]
    begin, end = clone["st_value"], clone["st_value"] + clone["st_size"]
    found = _ra_undefined_fdes(table)
    in_clone = [fde for fde, _ in found if begin <= fde.pc_begin < end]
    others = [fde for fde, _ in found if not begin <= fde.pc_begin < end]
    assert in_clone, "clone's child has no FDE with an undefined return address"
    assert others, "no __clone3 child FDE with an undefined return address"
    # __clone3's child FDE leaves the syscall stub before it uncovered: gaps are real
    assert any(table.find_row(fde.pc_begin - 1) is None for fde in others)


def test_start_of_an_executable(compile_c):
    exe = compile_c("int main(void) { return 0; }\n", name="cfi_start")
    with open(exe, "rb") as f:
        elf = ELFFile(f)
        table = CfiTable.from_elf(elf, arch="x86_64")
        start = elf.get_section_by_name(".symtab").get_symbol_by_name("_start")[0]["st_value"]
        row = table.find_row(start)
        assert row is not None
        assert row.registers[16].kind == RuleKind.UNDEFINED


def test_vdso_from_memory():
    """The vDSO exists only in memory: no file, section headers inside the image, hdr via phdr."""
    maps = open("/proc/self/maps").read()
    match = re.search(r"^([0-9a-f]+)-([0-9a-f]+) .*\[vdso\]$", maps, re.M)
    if match is None:
        pytest.skip("no vDSO mapped")
    start, end = int(match[1], 16), int(match[2], 16)
    with open("/proc/self/mem", "rb") as mem:
        mem.seek(start)
        image = mem.read(end - start)
    elf = ELFFile(io.BytesIO(image))
    table = CfiTable.from_elf(elf, arch="x86_64")
    assert table is not None
    symbols = elf.get_section_by_name(".dynsym")
    clock = symbols.get_symbol_by_name("__vdso_clock_gettime")[0]["st_value"]
    row = table.find_row(clock)
    assert row is not None and row.cfa.register == 7 and row.cfa.offset == 8
