"""The systemd unit files shipped in units/ are valid for systemd-analyze."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[3] / "units"


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.glob("*.service")))
def test_unit_file_verifies(unit: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    out = subprocess.run([analyze, "verify", str(UNITS / unit)], capture_output=True, text=True)
    # ExecStart names the installed path, which need not exist on a build machine
    problems = [line for line in out.stderr.splitlines()
                if "/usr/local/bin/coredumpd" not in line and line.strip()]
    assert not problems, out.stderr


def test_service_is_a_notify_daemon_that_drains_on_stop() -> None:
    text = (UNITS / "coredumpd.service").read_text()
    assert "Type=notify" in text and "ExecStart=/usr/local/bin/coredumpd serve" in text
    assert "KillMode=mixed" in text
