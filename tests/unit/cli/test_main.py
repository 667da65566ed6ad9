"""The command line's entry points, run as the installed console scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from coredumpd import __version__

BIN = Path(sys.executable).parent


def test_version() -> None:
    out = subprocess.run([BIN / "coredumpd", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"coredumpd {__version__}"


def test_help_lists_the_verbs() -> None:
    out = subprocess.run([BIN / "coredumpd", "--help"], capture_output=True, text=True, check=True)
    assert "demo" in out.stdout and "usage: coredumpd" in out.stdout


def test_unknown_verb_fails_cleanly() -> None:
    out = subprocess.run([BIN / "coredumpd", "frobnicate"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "invalid choice" in out.stderr and "Traceback" not in out.stderr


def test_verb_table_matches_discovery() -> None:
    """``VERBS`` names every verb and alias the modules register, each with its module."""
    import argparse

    from coredumpd.cli.main import VERBS, discover_verb_modules

    found = {}
    for module in discover_verb_modules():
        subparsers = argparse.ArgumentParser().add_subparsers()
        module.register(subparsers)
        found.update(dict.fromkeys(subparsers.choices, module.__name__.rsplit(".", 1)[1]))
    assert found == VERBS
