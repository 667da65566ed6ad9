"""Independent oracles for CFI rows: pyelftools' decoded tables and readelf's frames-interp."""

from __future__ import annotations

import random
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from elftools.dwarf.callframe import FDE
from elftools.dwarf.callframe import RegisterRule as PyRule
from elftools.dwarf.constants import DW_CFA_GNU_args_size
from elftools.elf.elffile import ELFFile

from unwinder.cfi import CfiRow, CfiTable, RuleKind

LIBC = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")
LIBSTDCXX = Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")

_KIND = {
    PyRule.UNDEFINED: RuleKind.UNDEFINED, PyRule.SAME_VALUE: RuleKind.SAME_VALUE,
    PyRule.OFFSET: RuleKind.OFFSET, PyRule.VAL_OFFSET: RuleKind.VAL_OFFSET,
    PyRule.REGISTER: RuleKind.REGISTER, PyRule.EXPRESSION: RuleKind.EXPRESSION,
    PyRule.VAL_EXPRESSION: RuleKind.VAL_EXPRESSION,
}
_EXPRESSIONS = (RuleKind.EXPRESSION, RuleKind.VAL_EXPRESSION)


def row_key(row: CfiRow) -> tuple:
    """A comparable form of a row: CFA rule and every register rule."""
    cfa = row.cfa
    regs = {n: (r.kind, r.expression if r.kind in _EXPRESSIONS else r.value)
            for n, r in row.registers.items()}
    return (cfa.register, cfa.offset, cfa.expression), regs


@dataclass
class Comparison:
    compared: int = 0
    mismatches: int = 0
    misses: int = 0
    examples: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(what)

    def __str__(self) -> str:
        return (f"{self.compared} compared, {self.mismatches} mismatches, {self.misses} misses"
                + "".join(f"\n  {e}" for e in self.examples))


def compare_with_pyelftools(path: Path, *, samples: int, seed: int = 4,
                            debug_frame: bool = False) -> Comparison:
    """Compare ``CfiTable.find_row`` at random pcs inside random FDEs with pyelftools."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        table = CfiTable.from_elf(elf, arch="x86_64")
        dwarf = elf.get_dwarf_info()
        entries = dwarf.CFI_entries() if debug_frame else dwarf.EH_CFI_entries()
        fdes = [e for e in entries if isinstance(e, FDE) and e.header.address_range > 0
                and e.header.initial_location > 0]
        source = table.debug_frame if debug_frame else table.eh_frame
        rng = random.Random(seed)
        result = Comparison()
        for _ in range(samples):
            fde = rng.choice(fdes)
            begin = fde.header.initial_location
            end = begin + fde.header.address_range
            pc = rng.randrange(begin, end)
            # pyelftools' decoder asserts on GNU_args_size; it does not affect unwinding
            fde.instructions[:] = [i for i in fde.instructions if i.opcode != DW_CFA_GNU_args_size]
            rows = fde.get_decoded().table
            before = [r for r in rows if r["pc"] <= pc]
            after = [r["pc"] for r in rows if r["pc"] > pc]
            result.compared += 1
            got = source.find_row(pc)
            if got is None or not before:
                result.misses += 1
                result.note(f"miss at {pc:#x}")
                continue
            expected = before[-1]
            cfa = expected["cfa"]
            regs = {n: (_KIND[r.type], bytes(r.arg) if _KIND[r.type] in _EXPRESSIONS else r.arg or 0)
                    for n, r in expected.items() if isinstance(n, int)}
            want = ((cfa.reg, cfa.offset, None) if cfa.expr is None else (None, 0, bytes(cfa.expr)),
                    regs)
            bounds = (expected["pc"], min(after) if after else end)
            signal = b"S" in fde.cie.header["augmentation"]
            if (row_key(got) != want or (got.start, got.end) != bounds
                    or got.signal_frame != signal
                    or got.return_address_column != fde.cie["return_address_register"]):
                result.mismatches += 1
                result.note(f"{pc:#x}: want {want} {bounds}, got {got}")
        return result


_X86_64_NAMES = ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
                 *(f"r{i}" for i in range(8, 16)), "ra"]
_REGNO = {name: i for i, name in enumerate(_X86_64_NAMES)}
_REGISTER_CELL = re.compile(r"\br(\d+) \((\w+)\)")
_FDE_LINE = re.compile(r"^[0-9a-f]+ [0-9a-f]+ [0-9a-f]+ FDE cie=[0-9a-f]+ pc=([0-9a-f]+)\.\.")


def readelf_rows(path: Path) -> list[tuple[int, str, dict[str, str]]]:
    """Every row of ``readelf --debug-dump=frames-interp``: (pc, CFA text, {column: text})."""
    text = subprocess.run(["readelf", "--debug-dump=frames-interp", str(path)],
                          capture_output=True, text=True).stdout  # exits 1 on warnings
    rows: dict[int, tuple[int, str, dict[str, str]]] = {}
    columns: list[str] = []
    in_fde = False
    for line in text.splitlines():
        if _FDE_LINE.match(line):
            in_fde = True
        elif " CIE " in line or not line.strip():
            in_fde = False
        elif line.startswith("   LOC"):
            columns = line.split()[2:]
        elif in_fde:
            # register rules print as "r5 (rdi)": keep the name so columns stay aligned
            fields = _REGISTER_CELL.sub(r"\2", line).split()
            pc = int(fields[0], 16)
            rows[pc] = (pc, fields[1], dict(zip(columns, fields[2:], strict=True)))  # the last row at pc wins
    return list(rows.values())


def readelf_cell(row: CfiRow, regno: int) -> str:
    """What readelf prints for our rule of ``regno`` ('u' also stands for "no rule")."""
    rule = row.registers.get(regno)
    if rule is None or rule.kind == RuleKind.UNDEFINED:
        return "u"
    return {
        RuleKind.SAME_VALUE: lambda r: "s",
        RuleKind.OFFSET: lambda r: f"c{r.value:+d}",
        RuleKind.VAL_OFFSET: lambda r: f"v{r.value:+d}",
        RuleKind.REGISTER: lambda r: _X86_64_NAMES[r.value] if r.value < 16 else str(r.value),
        RuleKind.EXPRESSION: lambda r: "exp",
        RuleKind.VAL_EXPRESSION: lambda r: "vexp",
    }[rule.kind](rule)


def readelf_cfa(row: CfiRow) -> str:
    if row.cfa.expression is not None:
        return "exp"
    return f"{_X86_64_NAMES[row.cfa.register]}{row.cfa.offset:+d}"


def compare_with_readelf(path: Path, table: CfiTable) -> Comparison:
    result = Comparison()
    for pc, cfa, cells in readelf_rows(path):
        got = table.find_row(pc)
        result.compared += 1
        if got is None:
            result.misses += 1
            result.note(f"miss at {pc:#x}")
            continue
        mine = {name: readelf_cell(got, _REGNO[name]) for name in cells if name in _REGNO}
        theirs = {name: cell for name, cell in cells.items() if name in _REGNO}
        if readelf_cfa(got) != cfa or mine != theirs or got.start != pc:
            result.mismatches += 1
            result.note(f"{pc:#x}: readelf {cfa} {theirs}, ours {readelf_cfa(got)} {mine}")
    return result
