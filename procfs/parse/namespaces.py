"""``/proc/<pid>/ns/*`` link targets: ``type:[inode]``, e.g. ``mnt:[4026531841]``.

Two processes share a namespace exactly when the inode numbers (on the nsfs device) are equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from procfs.errors import ParseError

_NS = re.compile(rb"^([a-z_]+):\[([0-9]{1,20})\]$")  # the inode is an unsigned long: <= 20 digits


@dataclass(frozen=True)
class NamespaceRef:
    """One namespace: ``kind`` as the kernel names it (``b"pid_for_children"``), nsfs inode."""

    kind: bytes
    inode: int


@dataclass(frozen=True)
class Namespaces:
    """The namespaces of a process, by the entry name under ``ns/`` (``"mnt"``, ``"user"``)."""

    refs: tuple[tuple[str, NamespaceRef], ...]

    def find(self, name: str) -> int | None:
        """The inode of namespace ``name``, or ``None`` if it was not read."""
        for entry, ref in self.refs:
            if entry == name:
                return ref.inode
        return None


def parse_ns_link(target: bytes) -> NamespaceRef:
    """Parse one ``ns/*`` readlink result."""
    m = _NS.match(target)
    if not m:
        raise ParseError("ns link", f"unexpected target {target!r}")
    return NamespaceRef(m.group(1), int(m.group(2)))
