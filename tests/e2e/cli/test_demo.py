"""``coredumpd demo`` — the README's main job — crashes a real program and reports it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from unwinder.core import CoreReader

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def test_demo_crashes_and_reports(tmp_path) -> None:
    # The demo takes the core_pattern lock and restores the pattern itself.
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    out = subprocess.run([BIN / "coredumpd", "demo", "--dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "SIGSEGV (SEGV_MAPERR) at 0x8" in out.stdout
    assert "stream and file parse agree" in out.stdout
    assert "crashme+0x" in out.stdout and "libc.so.6" in out.stdout
    cores = list(tmp_path.glob("core.*"))
    assert len(cores) == 1
    with CoreReader(cores[0]) as reader:
        assert len(reader.core.threads) == 4
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before
