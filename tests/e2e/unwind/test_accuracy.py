"""Backtraces of real crashes against the oracles: the pc of every frame (inline frames
included) equals ``eu-stack -i``'s, and the functions equal gdb's ``thread apply all bt``.

Differences allowed, and only these (listed per scenario below):
- gdb stops at ``main`` (``backtrace past-main`` is off): our frames after main are not
  compared with gdb's;
- gdb and eu-stack spell some aliases differently (``clone3``/``__clone3``): names are compared
  without leading underscores; C++ names without parameter lists and return types;
- gdb shows the signal trampoline as ``<signal handler called>``;
- scenarios where an oracle is known to be wrong are named in ``ORACLE_WRONG`` with the reason.
"""

from __future__ import annotations

import re

import pytest

from tests.support.crash import Crash
from tests.support.names import normalize
from tests.support.oracles import eu_stack_threads, gdb_threads
from tests.support.unwind_corpus import SCENARIOS
from unwinder.analyze import backtrace_from_core
from unwinder.backtrace import Backtrace, ThreadBacktrace
from unwinder.core import CoreReader

pytestmark = pytest.mark.e2e

ORACLE_WRONG = {
    # eu-stack reads a garbage frame after the NULL pc (research/unwinding.md §4.2)
    ("nullfn", "eu-stack"): "eu-stack does not recover the return address at [sp] when pc is 0",
    # level3 is a frameless leaf without CFI: eu-stack's frame-pointer fallback skips its
    # caller level2; gdb's prologue analysis finds it, and so do we (checked against gdb)
    ("nested-no-cfi-fp", "eu-stack"): "eu-stack skips the caller of a frameless leaf without CFI",
}
#: vDSO aliases: gdb names the weak alias, eu-stack and we the global __vdso_* symbol
GDB_ALIASES = {f: f"vdso_{f}" for f in ("clock_gettime", "gettimeofday", "time", "getcpu",
                                         "clock_getres")}
#: eu-stack (elfutils 0.188) shows no inline frames for these (Rust CUs): physical pcs only
EU_STACK_NO_INLINE = {"rust-panic": "elfutils 0.188 does not expand inline frames of Rust CUs"}
#: gdb-only tail-call frames it synthesises from DW_TAG_call_site (no CFI unwinder shows them)
GDB_TAIL_CALLS = {"___pthread_join", "__GI___futex_abstimed_wait_cancelable64",
                  "__pthread_kill_internal"}
#: Rust: gdb renders names from DWARF ({impl#171}, {closure#0}<&str>), we the demangled symbol
#: (<Iter<T> as Iterator>::fold, {{closure}}): compared by their last path segment.
RUST_SCENARIOS = {"rust-panic"}


def last_segment(name: str | None) -> str | None:
    """``fold`` for ``<core::slice::iter::Iter<T> as Iterator>::fold``; closures unified."""
    if name is None:
        return None
    depth, out = 0, []
    for ch in name:  # drop generic arguments
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append(ch)
    plain = "".join(out).rstrip(",").strip().rstrip(":")
    segment = plain.rsplit("::", 1)[-1]
    return re.sub(r"\{+closure(#\d+)?\}+", "{closure}", segment).lstrip("_")


def ours(crash: Crash) -> Backtrace:
    with CoreReader(crash.core, zero_fill=False) as reader:
        return backtrace_from_core(reader)


def our_names(thread: ThreadBacktrace) -> list[str | None]:
    return ["<signal handler called>" if f.signal_frame else normalize(f.function)
            for f in thread.frames]


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, unwind_corpus: dict[str, Crash]) -> str:
    if request.param not in unwind_corpus:
        pytest.skip(f"{request.param}: toolchain not installed")
    return request.param


def test_pcs_match_eu_stack(scenario: str, unwind_corpus: dict[str, Crash]) -> None:
    if (scenario, "eu-stack") in ORACLE_WRONG:
        pytest.skip(ORACLE_WRONG[(scenario, "eu-stack")])
    crash = unwind_corpus[scenario]
    backtrace = ours(crash)
    theirs = eu_stack_threads(crash.exe, crash.core)
    assert set(theirs) == {t.tid for t in backtrace.threads}
    for thread in backtrace.threads:
        expected = [f.pc for f in theirs[thread.tid]]
        got = [f.pc for f in thread.frames if scenario not in EU_STACK_NO_INLINE or not f.inline]
        assert got == expected, f"thread {thread.tid}:\n ours {[hex(p) for p in got]}\n eu-stack {[hex(p) for p in expected]}"


def test_functions_match_gdb(scenario: str, unwind_corpus: dict[str, Crash]) -> None:
    crash = unwind_corpus[scenario]
    backtrace = ours(crash)
    theirs = gdb_threads(crash.exe, crash.core)
    assert set(theirs) == {t.tid for t in backtrace.threads}
    for thread in backtrace.threads:
        expected = [GDB_ALIASES.get(normalize(n), normalize(n))  # type: ignore[arg-type]
                    for n in theirs[thread.tid].backtrace if n not in GDB_TAIL_CALLS]
        got = our_names(thread)
        if expected and expected[-1] == "main" and "main" in got:  # gdb stopped at main
            got = got[:got.index("main") + 1]
        if scenario in RUST_SCENARIOS:
            expected = [last_segment(n) for n in expected]
            got = [last_segment(n) for n in got]
        assert got == expected, f"thread {thread.tid}:\n ours {got}\n gdb  {expected}"


def test_crashing_thread_is_first_and_stack_ends_cleanly(scenario: str, unwind_corpus: dict[str, Crash]) -> None:
    backtrace = ours(unwind_corpus[scenario])
    assert backtrace.threads[0].crashed
    for thread in backtrace.threads:
        assert not thread.truncated
        assert thread.stop == "end-of-stack", f"thread {thread.tid} stopped: {thread.stop} {thread.detail}"
