"""Run the reference tools (eu-readelf, readelf, gdb) and parse what they print."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MASK64 = (1 << 64) - 1


def _int(token: str) -> int:
    token = token.strip().rstrip(",")
    value = int(token, 16) if token.lower().startswith(("0x", "-0x")) else int(token)
    return value & MASK64


@dataclass
class EuNote:
    owner: str
    size: int
    type: str
    lines: list[str] = field(default_factory=list)

    def fields(self) -> dict[str, str]:
        """``key: value`` pairs of the note's body (several per line allowed)."""
        out: dict[str, str] = {}
        for line in self.lines:
            for match in re.finditer(r"([\w.]+):\s+(\S+)", line):
                out.setdefault(match.group(1), match.group(2).rstrip(","))
        return out


def eu_readelf_notes(core: Path) -> list[EuNote]:
    """The notes of ``core`` as elfutils' ``eu-readelf -n`` decodes them."""
    text = subprocess.run(["eu-readelf", "-n", str(core)], capture_output=True, text=True,
                          check=True, errors="backslashreplace").stdout
    notes: list[EuNote] = []
    header = re.compile(r"^  (\S+)\s+(\d+)\s+(\S+)")
    for line in text.splitlines():
        m = header.match(line)
        if m and not line.startswith("   ") and m.group(1) != "Owner":
            notes.append(EuNote(m.group(1), int(m.group(2)), m.group(3)))
        elif notes and line.startswith("    "):
            notes[-1].lines.append(line)
    return notes


def eu_prstatus_registers(note: EuNote) -> dict[str, int]:
    """x86_64 registers from an eu-readelf PRSTATUS body, with our (kernel) names."""
    rename = {"rflags": "eflags", "fs.base": "fs_base", "gs.base": "gs_base"}
    regs: dict[str, int] = {}
    for line in note.lines:
        for m in re.finditer(r"([a-z0-9_.]+):\s+(-?(?:0x)?[0-9a-fA-F]+)", line):
            name = rename.get(m.group(1), m.group(1))
            if name in ("si_signo", "si_code", "si_errno", "cursig", "pid", "ppid", "pgrp", "sid",
                        "fpvalid", "utime", "stime", "cutime", "cstime"):
                continue
            regs[name] = _int(m.group(2))
    return regs


def eu_file_entries(note: EuNote) -> list[tuple[int, int, int, str]]:
    entries = []
    for line in note.lines[1:]:
        m = re.match(r"\s+([0-9a-f]+)-([0-9a-f]+) ([0-9a-f]+) \d+\s+(.*)$", line)
        if m:
            entries.append((int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16), m.group(4)))
    return entries


def eu_auxv_values(note: EuNote) -> list[int]:
    values = []
    for line in note.lines:
        key, _, rest = line.strip().partition(":")
        values.append(0 if key == "NULL" else _int(rest.split()[0]))
    return values


def readelf_note_types(core: Path) -> list[tuple[str, int]]:
    """(owner, descsz) of every note per binutils' ``readelf -n --wide``."""
    text = subprocess.run(["readelf", "-n", "--wide", str(core)], capture_output=True, text=True,
                          check=True, errors="backslashreplace").stdout
    return [(m.group(1), int(m.group(2), 16))
            for m in re.finditer(r"^\s+(CORE|LINUX)\s+0x([0-9a-f]+)\s", text, re.M)]


@dataclass
class GdbThread:
    tid: int
    registers: dict[str, int]
    backtrace: list[str]


def gdb_threads(exe: Path | None, core: Path, *, backtrace: bool = True) -> dict[int, GdbThread]:
    """Threads of ``core`` per gdb: registers of every thread and (optionally) ``bt`` frames."""
    cmds = ["-ex", "set pagination off", "-ex", "thread apply all info registers"]
    if backtrace:
        cmds += ["-ex", "thread apply all bt"]
    args = ["gdb", "-nx", "-batch", *cmds]
    args += [str(exe), str(core)] if exe else ["-c", str(core)]
    return parse_gdb_threads(subprocess.run(args, capture_output=True, text=True, timeout=120,
                                            errors="backslashreplace").stdout)


def gdb_attached_threads(pid: int) -> dict[int, GdbThread]:
    """Threads of the running process ``pid`` per gdb attached to it (it detaches at the end)."""
    args = ["gdb", "-nx", "-batch", "-ex", "set pagination off", "-ex",
            "thread apply all info registers", "-ex", "thread apply all bt", "-p", str(pid)]
    return parse_gdb_threads(subprocess.run(args, capture_output=True, text=True, timeout=120,
                                            errors="backslashreplace").stdout)


def parse_gdb_threads(text: str) -> dict[int, GdbThread]:
    """``thread apply all info registers`` / ``bt`` output: tid → registers and functions."""
    threads: dict[int, GdbThread] = {}
    current: GdbThread | None = None
    thread_line = re.compile(r"^Thread \d+ \(.*?LWP (\d+)\)\)?:?")
    for line in text.splitlines():
        m = thread_line.match(line)
        if m:
            tid = int(m.group(1))
            current = threads.setdefault(tid, GdbThread(tid, {}, []))
            continue
        if current is None:
            continue
        frame = re.match(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+)", line)
        if frame:
            current.backtrace.append(frame.group(2))
            continue
        reg = re.match(r"^(\w+)\s+(0x[0-9a-f]+)\s", line)
        if reg:
            current.registers[reg.group(1)] = int(reg.group(2), 16)
    return threads


@dataclass
class EuStackFrame:
    pc: int
    function: str | None


def eu_stack_threads(exe: Path | None, core: Path) -> dict[int, list[EuStackFrame]]:
    """``eu-stack -i`` (inline frames included) of ``core``: tid → frames, with no debuginfod."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "DEBUGINFOD_URLS"}
    args = ["eu-stack", "-i", f"--core={core}"] + ([f"--executable={exe}"] if exe else [])
    text = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120,
                          errors="backslashreplace").stdout
    threads: dict[int, list[EuStackFrame]] = {}
    current: list[EuStackFrame] | None = None
    for line in text.splitlines():
        m = re.match(r"^TID (\d+):", line)
        if m:
            current = threads.setdefault(int(m.group(1)), [])
            continue
        m = re.match(r"^#\d+\s+0x([0-9a-f]+)(?:\s+- 1)?\s*(.*)$", line)
        if m and current is not None:
            name = m.group(2).strip() or None
            current.append(EuStackFrame(int(m.group(1), 16), None if name == "??" else name))
    return threads
