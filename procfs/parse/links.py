"""Targets of the ``exe``, ``cwd``, ``root`` and ``fd/N`` symlinks.

The kernel appends `` (deleted)`` to the path of an unlinked file; non-file objects read as
``type:[inode]`` (``socket:[1234]``, ``pipe:[5]``) or ``anon_inode:name``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DELETED_SUFFIX = b" (deleted)"
_ANON = re.compile(rb"^([a-z_]+):\[([0-9]{1,20})\]$")  # an inode is an unsigned long: <= 20 digits


@dataclass(frozen=True)
class LinkTarget:
    """A symlink target: ``path`` without the `` (deleted)`` suffix, and whether it was there."""

    path: bytes
    deleted: bool

    @property
    def is_path(self) -> bool:
        """True for a filesystem path (starts with ``/``), False for sockets, pipes, anon inodes."""
        return self.path.startswith(b"/")

    @property
    def object_inode(self) -> tuple[bytes, int] | None:
        """``(b"socket", 1234)`` for ``socket:[1234]``-style targets, else ``None``."""
        m = _ANON.match(self.path)
        return (m.group(1), int(m.group(2))) if m else None


def parse_link(target: bytes) -> LinkTarget:
    """Split the `` (deleted)`` marker off a readlink result (only for absolute paths)."""
    if target.startswith(b"/") and target.endswith(DELETED_SUFFIX):
        return LinkTarget(target[: -len(DELETED_SUFFIX)], True)
    return LinkTarget(target, False)
