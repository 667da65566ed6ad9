"""From a crashed image to a symbolised :class:`~unwinder.backtrace.Backtrace`.

Two entries, one path: :func:`backtrace_from_core` reads a stored core (its dumped segments,
then the build-id-verified files); :func:`backtrace_from_memory` takes the notes of a core
stream (registers, ``NT_FILE``, auxv) and any live memory reader — ``/proc/<pid>/mem`` of the
process the kernel still holds — so the same process gives the same backtrace live and offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from unwinder.addrspace import AddressSpace, MemoryReader
from unwinder.backtrace import Backtrace, Frame, ModuleInfo, ThreadBacktrace
from unwinder.cfi.table import CfiTable
from unwinder.core import CoreFile, CoreReader
from unwinder.core.constants import AT
from unwinder.core.notes import FileMapping
from unwinder.elfimage import ELF_PARSE_ERRORS, open_elf
from unwinder.errors import UnwindError
from unwinder.frames import RawFrame, ThreadUnwind
from unwinder.modules import FileOpener, Module, ModuleMap, build_module_map, open_by_path
from unwinder.symbols.identity import find_debuglink
from unwinder.symbols.locate import DebugFileLocator
from unwinder.symbols.module import ModuleSymbols
from unwinder.unwind import Unwinder
from unwinder.unwind_arch import UnwindArch, unwind_arch_for

if TYPE_CHECKING:
    from unwinder.symbols.apart import ChildUsage


class UnwindOptions(NamedTuple):
    max_frames: int = 256
    #: stack scanning finds plausible but false frames: off unless asked for
    scan: bool = False
    symbolize: bool = True


DEFAULT_OPTIONS = UnwindOptions()


def backtrace_from_core(
    reader: CoreReader,
    *,
    exe: Path | None = None,
    opener: FileOpener = open_by_path,
    locator: DebugFileLocator | None = None,
    cache=None,  # type: ignore[no-untyped-def]
    options: UnwindOptions = DEFAULT_OPTIONS,
) -> Backtrace:
    """Unwind and symbolise every thread of a stored core.

    ``reader`` should be opened with ``zero_fill=False`` so that undumped text comes from the
    files; ``exe`` replaces the main executable's recorded path (it moved, or was rebuilt —
    it is still used only if its build-id matches).
    """
    with Analysis.of_core(reader, exe=exe, opener=opener, locator=locator, cache=cache,
                          options=options) as analysis:
        return analysis.symbolize(analysis.unwind())


def backtrace_from_memory(
    core: CoreFile,
    memory: MemoryReader,
    *,
    mappings: Sequence[FileMapping] | None = None,
    opener: FileOpener = open_by_path,
    locator: DebugFileLocator | None = None,
    cache=None,  # type: ignore[no-untyped-def]
    options: UnwindOptions = DEFAULT_OPTIONS,
) -> Backtrace:
    """Unwind the threads of ``core``'s notes against live ``memory``.

    ``mappings`` replace ``NT_FILE`` (absent when it exceeded the kernel's size limit).
    """
    with Analysis(core, memory, mappings, opener, locator, cache, options) as analysis:
        return analysis.symbolize(analysis.unwind())


def _with_exe(core: CoreFile, exe: Path | None, opener: FileOpener) -> FileOpener:
    if exe is None:
        return opener
    main = main_executable_path(core)

    def open_with_exe(mapping: FileMapping) -> BinaryIO | None:
        if main is not None and mapping.path == main:
            return open(exe, "rb")  # noqa: SIM115 - owned by the ModuleMap
        return opener(mapping)

    return open_with_exe


def main_executable_path(core: CoreFile) -> bytes | None:
    """The path of the mapping holding ``AT_ENTRY`` (the main executable)."""
    entry = core.auxv.find(AT.ENTRY) if core.auxv else None
    if entry is None or core.files is None:
        return None
    return next((m.path for m in core.files.mappings if m.start <= entry < m.end), None)


class Analysis:
    """One crashed image being analysed, in two phases.

    :meth:`unwind` needs the memory (for a live process: while the kernel still holds it);
    :meth:`symbolize` needs only the module files, which stay open until :meth:`close`, so
    a live analysis can let the task go in between.
    """

    def __init__(self, core: CoreFile, primary: MemoryReader, mappings: Sequence[FileMapping] | None,
                 opener: FileOpener, locator, cache, options: UnwindOptions) -> None:  # type: ignore[no-untyped-def]
        if core.arch is None or (arch := unwind_arch_for(core.arch)) is None:
            raise UnwindError(f"cannot unwind e_machine {core.ehdr.e_machine}")
        self.core = core
        self.arch = arch
        self.options = options
        self.locator = locator if locator is not None else DebugFileLocator()
        self.cache = cache
        self.space = AddressSpace(primary)
        maps = mappings if mappings is not None else (core.files.mappings if core.files else ())
        vdso = core.auxv.find(AT.SYSINFO_EHDR) if core.auxv else None
        self.modules = build_module_map(maps, self.space, vdso_base=vdso, opener=opener)

    @classmethod
    def of_core(cls, reader: CoreReader, *, exe: Path | None = None,
                opener: FileOpener = open_by_path, locator: DebugFileLocator | None = None,
                cache=None, options: UnwindOptions = DEFAULT_OPTIONS) -> Analysis:  # type: ignore[no-untyped-def]
        """The analysis of a stored core, its phases the caller's (see
        :func:`backtrace_from_core` for the arguments)."""
        return cls(reader.core, reader, None, _with_exe(reader.core, exe, opener), locator, cache,
                   options)

    def unwind(self) -> list[tuple[int, bool, ThreadUnwind]]:
        """``(tid, crashed, raw frames)`` for every thread; reads memory."""
        unwinder = Unwinder(self.space, self.modules, self.arch,
                            cfi_for=lambda m: _cfi(m, self.arch, self.locator, self.modules),
                            function_start=self._function_start,
                            max_frames=self.options.max_frames, scan=self.options.scan)
        out = []
        for index, thread in enumerate(self.core.threads):
            if thread.prstatus is None:
                continue
            regs = thread.prstatus.registers
            out.append((thread.tid, index == 0,
                        unwinder.unwind(regs.pc, self.arch.registers_from_prstatus(regs.as_dict()))))
        return out

    def symbolize(self, raw: list[tuple[int, bool, ThreadUnwind]]) -> Backtrace:
        """The backtrace of ``raw`` with symbols; reads only module files (and the cache, where
        it stores the addresses described)."""
        threads = tuple(
            ThreadBacktrace(tid, crashed, _symbolize(unwound, self.modules, self.locator, self.cache,
                                                     self.options.symbolize),
                            str(unwound.stop), unwound.truncated, unwound.detail)
            for tid, crashed, unwound in raw)
        infos = tuple(_module_info(m) for m in sorted(self.modules.modules, key=lambda m: m.start))
        for module in self.modules.modules:
            symbols = module.cache.get("symbols")
            if isinstance(symbols, ModuleSymbols):
                symbols.save()
        return Backtrace(threads, infos, self.arch.name)

    def symbolize_apart(self, raw: list[tuple[int, bool, ThreadUnwind]], *,
                        timeout: float | None = None) -> ChildUsage | None:
        """Describe, in a child process, the addresses of ``raw`` the symbol cache cannot
        answer yet (:mod:`unwinder.symbols.apart`), so that :meth:`symbolize` then reads
        the cache only. ``None`` when there was nothing to do (or no cache to carry the
        results back); a child's failure leaves the rest to :meth:`symbolize`."""
        if self.cache is None or not self.options.symbolize:
            return None
        from unwinder.symbols.apart import TIMEOUT, ColdModule, describe_apart  # the daemon's

        cold: list[ColdModule] = []
        touched: list[ModuleSymbols] = []
        for module, addresses in _addresses_by_module(raw, self.modules).items():
            symbols = _symbols(module, self.locator, self.cache)
            fd = _fileno(module)
            if symbols is None or fd is None:
                continue
            unanswered = symbols.unanswered(sorted(addresses))
            if unanswered:
                cold.append(ColdModule(fd, module.name, module.build_id, tuple(unanswered)))
                touched.append(symbols)
        if not cold:
            return None
        usage = describe_apart(cold, self.cache.directory, self.locator,
                               timeout=TIMEOUT if timeout is None else timeout)
        for symbols in touched:
            symbols.refresh()
        return usage

    def close(self) -> None:
        self.modules.close()

    def __enter__(self) -> Analysis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _function_start(self, pc: int) -> int | None:
        module = self.modules.find(pc)
        symbols = _symbols(module, self.locator, self.cache) if module is not None else None
        if symbols is None:
            return None
        try:
            described = symbols.describe(pc - module.bias)
        except UnwindError:
            return None
        outer = described[-1] if described else None
        if outer is None or outer.function_offset is None:
            return None
        return pc - outer.function_offset


def _cfi(module: Module, arch: UnwindArch, locator: DebugFileLocator | None = None,
         modules: ModuleMap | None = None) -> CfiTable | _CfiWithDebugFile | None:
    """The module's CFI: its own ``.eh_frame``/``.debug_frame``, and for pcs those do not
    cover, the ``.debug_frame`` of its separate debug file (code built without unwind tables
    whose debug info was split off) — looked up only on such a miss."""
    if "cfi" not in module.cache:
        table = None
        if module.elffile is not None:
            try:
                table = CfiTable.from_elf(module.elffile, arch=arch.name)
            except (UnwindError, *ELF_PARSE_ERRORS):
                table = None  # this module degrades to the fallbacks
            if locator is not None:
                table = _CfiWithDebugFile(module, arch, table, locator, modules)
        module.cache["cfi"] = table
    return module.cache["cfi"]  # type: ignore[return-value]


class _CfiWithDebugFile:
    """A module's own CFI table, completed on a miss by its debug file's ``.debug_frame``."""

    def __init__(self, module: Module, arch: UnwindArch, own: CfiTable | None,
                 locator: DebugFileLocator, modules: ModuleMap | None) -> None:
        self.module, self.arch, self.own = module, arch, own
        self.locator, self.modules = locator, modules
        self._debug: CfiTable | None | bool = False  # False: not looked for yet

    def find_row(self, pc: int):  # type: ignore[no-untyped-def]
        row = self.own.find_row(pc) if self.own is not None else None
        if row is not None:
            return row
        debug = self._debug_table()
        return debug.find_row(pc) if debug is not None else None

    def _debug_table(self) -> CfiTable | None:
        if self._debug is False:
            self._debug = None
            try:
                path = self.locator.find(build_id=self.module.build_id, path=self.module.name,
                                         debuglink=_debuglink(self.module))
                if path is not None:
                    debug = open(path, "rb")  # noqa: SIM115 - closed with the module map
                    if self.modules is not None:
                        self.modules.adopt(debug)
                    table = CfiTable.from_elf(open_elf(debug), arch=self.arch.name)
                    self._debug = table if table is not None and table.debug_frame else None
            except (UnwindError, OSError, *ELF_PARSE_ERRORS):
                self._debug = None
        return self._debug  # type: ignore[return-value]


def _debuglink(module: Module) -> tuple[str, int] | None:
    try:
        return find_debuglink(module.elffile) if module.elffile is not None else None
    except UnwindError:
        return None  # a malformed section: the build-id can still find the debug file


def _symbols(module: Module, locator, cache) -> ModuleSymbols | None:  # type: ignore[no-untyped-def]
    if "symbols" not in module.cache:
        symbols = None
        if module.elffile is not None:
            try:
                symbols = ModuleSymbols.load(module.elffile, path=module.name,
                                             build_id=module.build_id, locator=locator, cache=cache)
            except (UnwindError, *ELF_PARSE_ERRORS):
                symbols = None
        module.cache["symbols"] = symbols
    return module.cache["symbols"]  # type: ignore[return-value]


def _symbolize(raw: ThreadUnwind, modules: ModuleMap, locator, cache, enabled: bool) -> tuple[Frame, ...]:  # type: ignore[no-untyped-def]
    frames: list[Frame] = []
    for rf in raw.frames:
        frames.extend(_frames_for(rf, modules, locator, cache, enabled))
    return tuple(frames)


def _frames_for(rf: RawFrame, modules: ModuleMap, locator, cache, enabled: bool) -> list[Frame]:  # type: ignore[no-untyped-def]
    module = modules.find(rf.pc)
    if module is None:
        return [Frame(rf.pc, rf.method, None, None, None, None, None, signal_frame=rf.signal_frame)]
    base = dict(pc=rf.pc, method=rf.method, module=module.name, module_offset=rf.pc - module.start,
                build_id=module.build_id.hex() if module.build_id else None)
    symbols = _symbols(module, locator, cache) if enabled else None
    if symbols is None:
        return [Frame(**base, function=None, function_offset=None, signal_frame=rf.signal_frame)]
    address = _lookup_pc(rf)
    try:
        described = symbols.describe(address - module.bias)
    except UnwindError:
        described = []
    if not described:
        return [Frame(**base, function=None, function_offset=None, signal_frame=rf.signal_frame)]
    out = []
    for sf in described:
        offset = sf.function_offset
        if offset is not None and not sf.inline and address != rf.pc:
            offset += rf.pc - address  # report the offset of the real pc, as gdb and eu-stack do
        out.append(Frame(**base, function=sf.function, function_offset=offset,
                         file=sf.location.file if sf.location else None,
                         line=sf.location.line if sf.location else None,
                         inline=sf.inline, signal_frame=rf.signal_frame and not sf.inline))
    return out


def _lookup_pc(rf: RawFrame) -> int:
    """The pc whose symbols a frame shows: the exact pc for the innermost frame, interrupted
    frames and the signal trampoline (its "return address" is its first instruction); pc - 1
    (inside the call) for return addresses."""
    return rf.pc if (rf.exact_pc or rf.signal_frame) else rf.pc - 1


def _addresses_by_module(raw: list[tuple[int, bool, ThreadUnwind]],
                         modules: ModuleMap) -> dict[Module, set[int]]:
    """The link-time addresses :func:`_frames_for` will describe, by module."""
    out: dict[Module, set[int]] = {}
    for _tid, _crashed, unwound in raw:
        for rf in unwound.frames:
            module = modules.find(rf.pc)
            if module is not None:
                out.setdefault(module, set()).add(_lookup_pc(rf) - module.bias)
    return out


def _fileno(module: Module) -> int | None:
    """The descriptor of the module's open file; ``None`` for an image read from memory."""
    stream = module.elffile.stream if module.elffile is not None else None
    try:
        return stream.fileno() if stream is not None else None
    except (AttributeError, OSError, ValueError):  # BytesIO: io.UnsupportedOperation
        return None


def _module_info(module: Module) -> ModuleInfo:
    symbols = module.cache.get("symbols")
    debug = getattr(symbols, "debug_file", None)
    return ModuleInfo(module.name, module.start, module.end,
                      module.build_id.hex() if module.build_id else None, str(module.status), debug)
