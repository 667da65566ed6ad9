"""The pipeline without a live process (no pidfd: the task is gone, or the door had none):
the core is stored, then unwound offline from the stored file, its new addresses described
by a symbols child as on the live path, and the backtrace is the one the unwinder gives the
same core directly."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from coredumpd.catalog import Catalog
from coredumpd.context import CrashContext
from coredumpd.pipeline import Pipeline
from coredumpd.storage import StorageLimits
from tests.support.crash import Crash
from unwinder.analyze import backtrace_from_core
from unwinder.core import CoreReader

pytestmark = pytest.mark.e2e


def _process(pipeline: Pipeline, crash: Crash):  # type: ignore[no-untyped-def]
    read_end, write_end = os.pipe()
    data = crash.core.read_bytes()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as out:
            out.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        context = CrashContext(pid=crash.pid, uid=0, gid=0, signal=crash.signal, timestamp=1,
                               comm=b"threads", boot_id="0" * 32)
        return pipeline.process(context, read_end, None)
    finally:
        feeder.join()
        os.close(read_end)


def test_a_crash_without_its_process_is_unwound_offline(unwind_corpus: dict[str, Crash],
                                                        tmp_path: Path) -> None:
    if "threads" not in unwind_corpus:
        pytest.skip("threads: toolchain not installed")
    crash = unwind_corpus["threads"]
    with CoreReader(crash.core, zero_fill=False) as reader:
        expected = backtrace_from_core(reader)
    with Catalog.open(tmp_path / "catalog.sqlite") as catalog:
        pipeline = Pipeline(state_dir=tmp_path, limits=StorageLimits(1 << 40, 1 << 40, keep_free=0),
                            catalog=catalog, journal=False)
        first = _process(pipeline, crash)
        again = _process(pipeline, crash)
    for result in (first, again):
        assert result.stored is not None and result.stored.state == "present"
        assert result.backtrace_source == "offline"
        assert result.backtrace == expected
    assert first.symbols_child is not None and first.symbols_child.error is None
    assert again.symbols_child is None  # every address was in the cache by then
    assert "offline" in dict(first.steps) and "symbols in a child: ok" in first.summary()
