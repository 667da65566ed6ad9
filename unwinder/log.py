"""A module's logger that imports :mod:`logging` on first use.

Importing :mod:`logging` costs milliseconds (threading, traceback, string) and a warm
``coredumpd backtrace`` never logs, so the modules on that path hold a :class:`LazyLogger`.
"""

from __future__ import annotations

from typing import Any


class LazyLogger:
    """Stands for ``logging.getLogger(name)``: attributes are looked up on that logger."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attr: str) -> Any:
        import logging

        return getattr(logging.getLogger(self.name), attr)
