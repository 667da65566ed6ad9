"""Figures measured during a test run, printed in pytest's terminal summary by tests/conftest.py."""

from __future__ import annotations

SUMMARY_LINES: list[str] = []


def report(line: str) -> None:
    """Print ``line`` in the summary at the end of the run."""
    SUMMARY_LINES.append(line)
