"""Fixtures and markers shared by every test suite.

- ``compile_c``: compile a C source with gcc into the session's temp dir.
- ``crash_sysctls``: exclusive flock on core_pattern; saves and restores the crash sysctls.
- ``journald``: a running journald (the system's, or a standalone one for the session).
- every test, and every program it starts, keeps its caches (``XDG_CACHE_HOME``) in the
  session's temp dir, never in the user's home.
- markers ``e2e`` (root + writable core_pattern, skipped with the reason otherwise) and ``slow``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests.support.compile import Compiler
from tests.support.journald import Journald
from tests.support.report import SUMMARY_LINES
from tests.support.sysctl import CrashSysctls, e2e_unavailable_reason
from tests.support.sysctl import crash_sysctls as _crash_sysctls

pytest_plugins = ["tests.support.kernel_cores", "tests.support.unwind_corpus", "tests.support.pipe_door"]

_e2e_outcomes: Counter[str] = Counter()


@pytest.fixture(scope="session", autouse=True)
def _private_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache-home")))
        yield


@pytest.fixture(scope="session")
def compile_c(tmp_path_factory: pytest.TempPathFactory) -> Compiler:
    return Compiler(tmp_path_factory.mktemp("cbuild"))


@pytest.fixture
def crash_sysctls() -> Iterator[CrashSysctls]:
    reason = e2e_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with _crash_sysctls() as handle:
        yield handle


@pytest.fixture(scope="session")
def journald() -> Iterator[Journald]:
    service = Journald()
    service.start()
    try:
        yield service
    finally:
        service.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = e2e_unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"e2e: {reason}")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "e2e" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _e2e_outcomes[report.outcome] += 1


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _e2e_outcomes:
        parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(_e2e_outcomes.items()))
        terminalreporter.write_line(f"e2e tests (real crashes through the kernel): {parts}")
    elif not config.getoption("collectonly"):
        terminalreporter.write_line("e2e tests: none ran")
    for line in SUMMARY_LINES:
        terminalreporter.write_line(line)
