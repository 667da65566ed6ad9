"""Pytest fixtures: real kernel-written cores, made once per session under the core_pattern lock.

Loaded as a plugin by tests/conftest.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.support.compile import Compiler
from tests.support.crash import Crash, crash_to_core_file, rm_f, wait_sleeping
from tests.support.sysctl import crash_sysctls, e2e_unavailable_reason

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
SCENARIOS = ("segv", "threads8", "abort", "sigbus", "deleted_exe", "sort_vma")


def symbol_address(exe: Path, name: str) -> int:
    with open(exe, "rb") as f:
        symbol = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
        assert symbol, f"{name} not in {exe}"
        return symbol[0]["st_value"]


@pytest.fixture(scope="session")
def crasher(compile_c: Compiler) -> Path:
    return compile_c((PROGRAMS / "crasher.c").read_text(), name="crasher",
                     flags=("-g", "-O0", "-no-pie", "-pthread"))


@pytest.fixture(scope="session")
def kernel_cores(crasher: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Crash]:
    """One kernel-written core per scenario (file mode of core_pattern)."""
    reason = e2e_unavailable_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("kernel-cores")
    cores: dict[str, Crash] = {}
    with crash_sysctls() as sysctls:
        cores["segv"] = crash_to_core_file(sysctls, crasher, base / "segv", ["segv"])
        cores["threads8"] = crash_to_core_file(sysctls, crasher, base / "threads8", ["threads", "8"])
        cores["abort"] = crash_to_core_file(sysctls, crasher, base / "abort", ["abort"])
        cores["sigbus"] = crash_to_core_file(sysctls, crasher, base / "sigbus",
                                             ["sigbus", str(base / "sigbus" / "victim")])
        copy = base / "deleted" / "crasher-copy"
        copy.parent.mkdir()
        shutil.copy2(crasher, copy)

        def unlink_exe(proc):  # type: ignore[no-untyped-def]
            wait_sleeping(proc.pid)
            rm_f(copy)

        cores["deleted_exe"] = crash_to_core_file(sysctls, copy, base / "deleted", ["stdin-segv"],
                                                  stdin=b"x", before_input=unlink_exe)
        if os.path.exists("/proc/sys/kernel/core_sort_vma"):
            cores["sort_vma"] = crash_to_core_file(sysctls, crasher, base / "sort_vma",
                                                   ["threads", "3"], core_sort_vma=1)
    return cores


@pytest.fixture(params=SCENARIOS)
def kernel_core(request: pytest.FixtureRequest, kernel_cores: dict[str, Crash]) -> Crash:
    if request.param not in kernel_cores:
        pytest.skip(f"{request.param}: not available on this kernel")
    return kernel_cores[request.param]
