"""Backtraces as text and JSON.

- :func:`format_systemd`: systemd-coredump's exact layout (``elf-util.c``): ``Module X without
  build-id.`` lines, ``Stack trace of thread N:``, ``#%-2u 0x%016x %s (%s + 0x%x)`` per
  physical frame (``n/a`` when unknown), a blank line between threads, the architecture line.
- :func:`format_rich`: ours — inline frames, file:line, how each frame was found, truncation.
- :func:`to_json`.
"""

from __future__ import annotations

import json

from unwinder.backtrace import Backtrace, Frame

ARCH_NAMES = {"x86_64": "AMD x86-64", "aarch64": "AArch64"}


def format_systemd(backtrace: Backtrace) -> str:
    lines = [f"Module {m.path} without build-id." for m in backtrace.modules if not m.build_id]
    for index, thread in enumerate(backtrace.threads):
        if index:
            lines.append("")
        lines.append(f"Stack trace of thread {thread.tid}:")
        physical = [f for f in thread.frames if not f.inline]
        for n, frame in enumerate(physical):
            lines.append(f"#{n:<2} 0x{frame.pc:016x} {frame.function or 'n/a'} "
                         f"({frame.module_name or 'n/a'} + 0x{frame.module_offset or 0:x})")
    lines.append(f"ELF object binary architecture: {ARCH_NAMES.get(backtrace.arch, backtrace.arch)}")
    return "\n".join(lines) + "\n"


def _describe(frame: Frame) -> str:
    name = frame.function or "??"
    if frame.function is not None and frame.function_offset is not None and not frame.inline:
        name += f"+0x{frame.function_offset:x}"
    where = f" at {frame.file}:{frame.line}" if frame.file and frame.line else ""
    module = f" ({frame.module_name} + 0x{frame.module_offset:x})" if frame.module_name else ""
    return f"{name}{where}{module}"


def format_rich(backtrace: Backtrace) -> str:
    lines = []
    for index, thread in enumerate(backtrace.threads):
        if index:
            lines.append("")
        crashed = " (crashed)" if thread.crashed else ""
        lines.append(f"Thread {thread.tid}{crashed}:")
        number = 0
        for frame in thread.frames:
            tags = ["inline"] if frame.inline else [str(frame.method)]
            if frame.signal_frame:
                tags.append("signal handler called")
            pc = " " * 18 if frame.inline else f"0x{frame.pc:016x}"
            lines.append(f"#{number:<2} {pc} {_describe(frame)} [{', '.join(tags)}]")
            number += 1
        if thread.truncated:
            lines.append(f"   … truncated: {thread.detail}")
        elif thread.stop not in ("end-of-stack",):
            lines.append(f"   (unwinding stopped: {thread.stop}{': ' + thread.detail if thread.detail else ''})")
    problems = [m for m in backtrace.modules if m.status in ("build-id-mismatch", "missing")]
    for m in problems:
        lines.append(f"note: module {m.path}: {m.status}")
    return "\n".join(lines) + "\n"


def to_json(backtrace: Backtrace, *, indent: int | None = 2) -> str:
    return json.dumps(backtrace.to_dict(), indent=indent)
