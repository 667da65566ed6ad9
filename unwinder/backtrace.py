"""The symbolised backtrace of a crashed process: threads → frames, plus the modules seen.

Pure data. :mod:`unwinder.format` turns it into systemd-coredump's text, our richer text, or
JSON.
"""

from __future__ import annotations

from typing import NamedTuple

from unwinder.frames import FrameMethod


class Frame(NamedTuple):
    """One logical frame. Inline frames share the pc of the physical frame that holds them and
    come before it (innermost first), as in ``eu-stack -i`` and gdb."""

    pc: int
    method: FrameMethod
    module: str | None          # path of the module holding pc (``[vdso]`` for the vDSO)
    module_offset: int | None   # pc - the module's lowest mapped address
    build_id: str | None
    function: str | None        # demangled; None when unknown
    function_offset: int | None
    file: str | None = None
    line: int | None = None
    inline: bool = False
    signal_frame: bool = False

    @property
    def module_name(self) -> str | None:
        return self.module.rsplit("/", 1)[-1] if self.module else None


class ThreadBacktrace(NamedTuple):
    tid: int
    crashed: bool
    frames: tuple[Frame, ...]
    stop: str
    truncated: bool
    detail: str = ""


class ModuleInfo(NamedTuple):
    path: str
    start: int
    end: int
    build_id: str | None
    status: str
    debug_file: str | None = None


class Backtrace(NamedTuple):
    threads: tuple[ThreadBacktrace, ...]
    modules: tuple[ModuleInfo, ...]
    arch: str

    def find_thread(self, tid: int) -> ThreadBacktrace | None:
        return next((t for t in self.threads if t.tid == tid), None)

    def to_dict(self) -> dict:
        return {"threads": tuple({**t._asdict(), "frames": tuple(f._asdict() for f in t.frames)}
                                 for t in self.threads),
                "modules": tuple(m._asdict() for m in self.modules),
                "arch": self.arch}


def backtrace_from_dict(data: dict) -> Backtrace:
    """The inverse of :meth:`Backtrace.to_dict` (for backtraces stored as JSON)."""
    threads = tuple(
        ThreadBacktrace(t["tid"], t["crashed"],
                        tuple(Frame(**{**f, "method": FrameMethod(f["method"])}) for f in t["frames"]),
                        t["stop"], t["truncated"], t.get("detail", ""))
        for t in data["threads"])
    modules = tuple(ModuleInfo(**m) for m in data["modules"])
    return Backtrace(threads, modules, data["arch"])
