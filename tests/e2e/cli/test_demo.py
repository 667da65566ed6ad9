"""``coredumpd demo`` — the README's main job: real crashes caught, stored, listed, explained."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from coredumpd.catalog import Catalog
from coredumpd.vacuum import SPOOL

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def test_demo_catches_lists_and_explains_real_crashes(tmp_path: Path) -> None:
    # The demo takes the core_pattern lock itself and restores what it found when it took it
    # (other tests may change the pattern before or after, under the same lock).
    helper_dir = Path(tempfile.mkdtemp(prefix="cdt-", dir="/tmp"))
    try:
        out = subprocess.run([BIN / "coredumpd", "demo", "--state-dir", str(tmp_path / "state"),
                              "--helper-dir", str(helper_dir)],
                             capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(helper_dir, ignore_errors=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert str(helper_dir) not in Path("/proc/sys/kernel/core_pattern").read_text()
    installed = re.search(r"installed: core_pattern = (.*)", out.stdout)
    restored = re.search(r"restored core_pattern = (.*)", out.stdout)
    assert installed and restored and str(helper_dir) in installed.group(1)
    assert str(helper_dir) not in restored.group(1)
    text = out.stdout
    for expected in ("crashed sample 'segv'", "crashed sample 'abort'", "crashed sample 'threads'",
                     "coredumpd list", "SIGSEGV", "parse_request", "busy_worker", "start_thread",
                     "restored core_pattern"):
        assert expected in text, expected
    with Catalog.open(tmp_path / "state" / "catalog.sqlite") as catalog:
        rows = catalog.query()
    assert sorted(r.signal for r in rows) == [6, 11, 11]
    assert all(r.storage_state == "present" and r.backtrace_json for r in rows)
    assert any("check_balance" in r.backtrace_json for r in rows)
    # the daemon it started writes a spool (SpoolSize= is on by default): uninstall took it away
    assert not (tmp_path / "state" / "coredump" / SPOOL).exists()
