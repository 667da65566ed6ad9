"""The symbol cache changes nothing: every scenario's backtrace is the same without a cache,
with an empty one, from the described addresses it stored, from its symbol and line tables
alone (a new crash of the same builds), and from what a child process described into it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.crash import Crash
from tests.support.unwind_corpus import SCENARIOS
from unwinder.analyze import Analysis, backtrace_from_core
from unwinder.backtrace import Backtrace
from unwinder.core import CoreReader
from unwinder.symbols.cache import SymbolCache
from unwinder.symbols.dwarf import DwarfData

pytestmark = pytest.mark.e2e


def _backtrace(crash: Crash, cache: SymbolCache | None) -> Backtrace:
    with CoreReader(crash.core, zero_fill=False) as reader:
        return backtrace_from_core(reader, cache=cache)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_cached_backtraces_are_identical(scenario: str, unwind_corpus: dict[str, Crash],
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if scenario not in unwind_corpus:
        pytest.skip(f"{scenario}: toolchain not installed")
    crash = unwind_corpus[scenario]
    expected = _backtrace(crash, None)
    cache = SymbolCache(tmp_path / "cache")
    assert _backtrace(crash, cache) == expected  # cold: fills the cache
    assert list((tmp_path / "cache").glob("*.desc"))
    for path in (tmp_path / "cache").glob("*.desc"):
        path.rename(path.with_suffix(".kept"))
    assert _backtrace(crash, cache) == expected  # tables cached, every address new
    for path in (tmp_path / "cache").glob("*.kept"):
        path.replace(path.with_suffix(".desc"))

    def no_dwarf(elffile):  # type: ignore[no-untyped-def]
        raise AssertionError("DWARF opened for an address the cache had described")

    monkeypatch.setattr(DwarfData, "load", staticmethod(no_dwarf))
    assert _backtrace(crash, cache) == expected  # warm: answers from the described addresses


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_backtraces_described_apart_are_identical(scenario: str, unwind_corpus: dict[str, Crash],
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's way: unwind, let a child describe the new addresses into the cache, then
    symbolise from the cache alone (this process never opens the DWARF)."""
    if scenario not in unwind_corpus:
        pytest.skip(f"{scenario}: toolchain not installed")
    crash = unwind_corpus[scenario]
    expected = _backtrace(crash, None)
    cache = SymbolCache(tmp_path / "cache")
    with CoreReader(crash.core, zero_fill=False) as reader, \
            Analysis.of_core(reader, cache=cache) as analysis:
        raw = analysis.unwind()

        def no_dwarf(elffile):  # type: ignore[no-untyped-def]
            raise AssertionError("DWARF opened in the parent after the child described it")

        monkeypatch.setattr(DwarfData, "load", staticmethod(no_dwarf))
        usage = analysis.symbolize_apart(raw)
        assert usage is not None and usage.error is None, usage
        assert usage.maxrss_kib > 0 and usage.cpu > 0
        assert analysis.symbolize(raw) == expected
        assert analysis.symbolize_apart(raw) is None  # nothing new is left for a child
