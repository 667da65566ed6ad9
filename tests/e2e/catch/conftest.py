"""Running programs directly and under ``coredumpd catch``, and reading back what was recorded.

Every crash happens under the core_pattern flock with a file pattern and ``RLIMIT_CORE`` 0,
so neither the direct runs nor the processes the catcher lets die reach anyone else's door.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coredumpd.catalog import Catalog, CatalogRow
from coredumpd.storage import decompress_to
from tests.support.compile import Compiler
from tests.support.sysctl import CrashSysctls

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
COREDUMPD = [sys.executable, "-m", "coredumpd.cli.main"]


def no_core() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.RLIM_INFINITY))


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def unlimited_core() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def run(argv: list[str], *, timeout: float = 90, core: bool = False) -> Run:
    """Run ``argv`` with ``RLIMIT_CORE`` 0, or unlimited when ``core`` (the kernel then writes
    its core into the module's file pattern: see :func:`kernel_core_of`)."""
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=timeout,
                          preexec_fn=unlimited_core if core else no_core, errors="backslashreplace")
    return Run(proc.returncode, proc.stdout, proc.stderr)


def kernel_core_of(argv: list[str]) -> tuple[Run, Path]:
    """Run ``argv`` directly and return the one core the kernel wrote for it (into the file
    pattern :func:`catch_sysctls` set: ``DIR/core.%p``)."""
    pattern = Path(Path("/proc/sys/kernel/core_pattern").read_text().strip())
    assert pattern.name == "core.%p", pattern
    before = set(pattern.parent.glob("core.*"))
    result = run(argv, core=True)
    new = sorted(set(pattern.parent.glob("core.*")) - before)
    assert len(new) == 1, (new, result)
    return result, new[0]


class Store:
    """One state directory shared by a module's tests (the symbol cache stays warm)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def catch(self, cmd: list[str], *extra: str, prefix: tuple[str, ...] = ()) -> tuple[Run, list[CatalogRow]]:
        """``coredumpd catch`` ``cmd`` (the catcher run under ``prefix``); the run and the
        records it added."""
        result = run([*prefix, *COREDUMPD, "catch", "--state-dir", str(self.path), *extra, "--",
                      *cmd])
        return result, self.new_rows()

    def new_rows(self) -> list[CatalogRow]:
        db = self.path / "catalog.sqlite"
        if not db.exists():
            return []
        catalog = Catalog.open(db)
        try:
            rows = [r for r in catalog.query(newest_first=False) if r.id > self.seen]
        finally:
            catalog.close()
        if rows:
            self.seen = max(r.id for r in rows)
        return rows


def core_file(row: CatalogRow, directory: Path) -> Path:
    assert row.path is not None, f"no core stored: {row.notes}"
    out = directory / f"core.{row.id}"
    decompress_to(row.path, out)
    return out


def our_backtraces(row: CatalogRow) -> dict[int, list[str]]:
    """tid → function names of the recorded backtrace."""
    assert row.backtrace_json, f"no backtrace recorded: {row.notes}"
    data = json.loads(row.backtrace_json)
    return {t["tid"]: [f.get("function") or "??" for f in t["frames"]] for t in data["threads"]}


@pytest.fixture(scope="module")
def catch_sysctls(kernel_cores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrashSysctls]:  # type: ignore[no-untyped-def]
    """The flock for the whole module. Depends on ``kernel_cores`` so that the session's kernel
    cores (which take the same flock) exist before we hold it."""
    from tests.support.sysctl import crash_sysctls, e2e_unavailable_reason

    reason = e2e_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with crash_sysctls() as sysctls:
        sysctls.set(core_pattern=str(tmp_path_factory.mktemp("kernel-cores") / "core.%p"))
        yield sysctls


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(tmp_path_factory.mktemp("catch-state"))


@pytest.fixture(scope="session")
def catchme(compile_c: Compiler) -> Path:
    return compile_c((HERE / "catchme.c").read_text(), name="catchme",
                     flags=("-g", "-O0", "-pthread"))
