"""Errors of the product layer: one root, a few precise kinds.

Lower layers (``procfs``, ``unwinder``) have their own roots and never import this module.
"""

from __future__ import annotations

from pathlib import Path


class CoredumpError(Exception):
    """Root of every error raised by :mod:`coredumpd`."""


class StorageError(CoredumpError):
    """A core could not be stored or read back.

    :ivar path: the file or directory concerned, when there is one.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path is not None else message)


class ConfigError(CoredumpError):
    """A configuration file is unusable.

    :ivar path: the file; :ivar line: 1-based line number; :ivar key: the setting (all
        ``None`` when not tied to one place). :ivar reason: what is wrong, in a few words.
    """

    def __init__(self, reason: str, *, path: Path | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.reason = reason
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        what = f"{key}=: " if key is not None else ""
        super().__init__(f"{where}{what}{reason}")


class CatalogError(CoredumpError):
    """The crash catalog (SQLite) is unusable: corrupt, too new, or locked for too long.

    :ivar path: the database file.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path is not None else message)
