"""The unwinder's accuracy corpus: programs built in the test run and crashed into real cores.

Loaded as a pytest plugin (tests/conftest.py). Each scenario is built once and crashed once
per session (file mode of core_pattern, under the crash-sysctl lock).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.crash import Crash, crash_to_core_file
from tests.support.sysctl import crash_sysctls, e2e_unavailable_reason

SOURCES = Path(__file__).resolve().parents[1] / "programs" / "unwind"


@dataclass(frozen=True)
class Scenario:
    source: str
    flags: tuple[str, ...]
    post: str | None = None   # "strip" | "minidebuginfo" | "split-debug"


SCENARIOS: dict[str, Scenario] = {
    "nested-O0": Scenario("nested.c", ("-g", "-O0")),
    "nested-O2": Scenario("nested.c", ("-g", "-O2")),
    "nested-O2-omit-fp": Scenario("nested.c", ("-g", "-O2", "-fomit-frame-pointer")),
    "nested-no-pie": Scenario("nested.c", ("-g", "-O2", "-no-pie")),
    "nested-static": Scenario("nested.c", ("-g", "-O2", "-static")),
    "nested-no-cfi-fp": Scenario("nested.c", ("-O1", "-fno-omit-frame-pointer",
                                              "-fno-asynchronous-unwind-tables", "-fno-unwind-tables")),
    "nested-stripped": Scenario("nested.c", ("-g", "-O2"), post="strip"),
    "nested-minidebuginfo": Scenario("nested.c", ("-g", "-O2"), post="minidebuginfo"),
    # no unwind tables: CFI only in .debug_frame, split off into a debuglink'd debug file
    "nested-split-debug-frame": Scenario("nested.c", ("-g", "-O2", "-fomit-frame-pointer",
                                                      "-fno-asynchronous-unwind-tables",
                                                      "-fno-unwind-tables"), post="split-debug"),
    "abort": Scenario("abort.c", ("-g", "-O2")),
    "sighandler": Scenario("sighandler.c", ("-g", "-O0")),
    "threads": Scenario("threads.c", ("-g", "-O2", "-pthread")),
    "nullfn": Scenario("nullfn.c", ("-g", "-O2")),
    "vdso": Scenario("vdso.c", ("-g", "-O2", "-pthread")),
    "cxx-throw": Scenario("throw.cpp", ("-g", "-O2")),
    "rust-panic": Scenario("panic.rs", ("-g", "-C", "panic=abort", "-C", "opt-level=1")),
}


def _run(cmd: list[str], **kw) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")


def build(name: str, scenario: Scenario, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / name
    src = SOURCES / scenario.source
    if src.suffix == ".rs":
        _run(["rustc", *scenario.flags, "-o", str(exe), str(src)])
    elif src.suffix == ".cpp":
        _run(["g++", *scenario.flags, "-o", str(exe), str(src)])
    else:
        _run(["gcc", *scenario.flags, "-o", str(exe), str(src)])
    if scenario.post == "strip":
        _run(["strip", "--strip-all", str(exe)])
    elif scenario.post == "minidebuginfo":
        add_minidebuginfo(exe)
    elif scenario.post == "split-debug":
        debug = exe.with_name(exe.name + ".debug")
        _run(["objcopy", "--only-keep-debug", str(exe), str(debug)])
        _run(["objcopy", "--strip-debug", f"--add-gnu-debuglink={debug}", str(exe)])
    return exe


def add_minidebuginfo(exe: Path) -> None:
    """Fedora's recipe: keep the function symbols missing from .dynsym in an xz-compressed
    ELF in .gnu_debugdata, and strip the rest."""
    work = exe.parent
    dyn = subprocess.run(["nm", "-D", "--format=posix", "--defined-only", str(exe)],
                         capture_output=True, text=True).stdout
    funcs = subprocess.run(["nm", "--format=posix", "--defined-only", str(exe)],
                           capture_output=True, text=True, check=True).stdout
    dynsyms = {line.split()[0] for line in dyn.splitlines() if line.strip()}
    keep = sorted({line.split()[0] for line in funcs.splitlines()
                   if len(line.split()) > 1 and line.split()[1] in ("T", "t")} - dynsyms)
    (work / "keep_symbols").write_text("\n".join(keep) + "\n")
    debug, mini = work / "debug", work / "mini_debuginfo"
    _run(["objcopy", "--only-keep-debug", str(exe), str(debug)])
    _run(["objcopy", "-S", "--remove-section", ".gdb_index", "--remove-section", ".comment",
          f"--keep-symbols={work / 'keep_symbols'}", str(debug), str(mini)])
    _run(["xz", "-f", str(mini)])
    _run(["strip", "--strip-all", "--remove-section", ".comment", str(exe)])
    _run(["objcopy", "--add-section", f".gnu_debugdata={mini}.xz", str(exe)])


def available(scenario: Scenario) -> str | None:
    tool = {".rs": "rustc", ".cpp": "g++"}.get(Path(scenario.source).suffix, "gcc")
    return None if shutil.which(tool) else f"{tool} is not installed"


@pytest.fixture(scope="session")
def unwind_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Crash]:
    reason = e2e_unavailable_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("unwind-corpus")
    built = {name: build(name, s, base / name) for name, s in SCENARIOS.items() if available(s) is None}
    crashes = {}
    with crash_sysctls() as sysctls:
        for name, exe in built.items():
            crashes[name] = crash_to_core_file(sysctls, exe, exe.parent / "cores")
    return crashes
