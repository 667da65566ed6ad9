"""The same crash unwound live (from /proc/<pid>/mem while the kernel holds the process in a
pipe-mode dump) and offline (from the stored core) gives the same backtrace."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.crash import short_pipe_pattern, wait_until
from tests.support.report import report
from tests.support.unwind_corpus import SCENARIOS, available, build
from unwinder.analyze import backtrace_from_core
from unwinder.core import CoreReader

pytestmark = pytest.mark.e2e
PROBE = Path(__file__).resolve().parents[2] / "support" / "live_probe.py"
LIVE_SCENARIOS = ["threads", "sighandler", "nested-O2-omit-fp", "vdso", "cxx-throw"]


@pytest.mark.parametrize("name", LIVE_SCENARIOS)
def test_live_equals_offline(name: str, crash_sysctls, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]
    if available(scenario):
        pytest.skip(available(scenario))
    exe = build(name, scenario, tmp_path / "build")
    out = tmp_path / "out"
    out.mkdir()
    pattern, wrapper_dir = short_pipe_pattern([sys.executable, str(PROBE), str(out)], "%P")
    try:
        crash_sysctls.set(core_pipe_limit=0, core_pattern=pattern)
        proc = subprocess.run([str(exe)], capture_output=True, timeout=60,
                              preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (-1, -1)))
        assert proc.returncode < 0
        wait_until(lambda: (out / "live.json").exists() or (out / "error.txt").exists(), 60,
                   "the probe")
    finally:
        shutil.rmtree(wrapper_dir, ignore_errors=True)
    assert not (out / "error.txt").exists(), (out / "error.txt").read_text()
    live = json.loads((out / "live.json").read_text())
    with CoreReader(out / "core", zero_fill=False) as reader:
        offline = backtrace_from_core(reader).to_dict()
    assert len(live["threads"]) == len(offline["threads"]) > 0
    for a, b in zip(live["threads"], offline["threads"], strict=True):
        assert a["tid"] == b["tid"]
        assert [(f["pc"], f["function"], f["module"], f["inline"]) for f in a["frames"]] == \
               [(f["pc"], f["function"], f["module"], f["inline"]) for f in b["frames"]]
    report(f"live unwind ({name}): {len(live['threads'])} threads, "
           f"{sum(len(t['frames']) for t in live['threads'])} frames in {(out / 'live_ms').read_text()} ms")
