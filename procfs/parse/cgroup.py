"""``/proc/<pid>/cgroup``: ``hierarchy-ID:controllers:path`` per line (cgroup v2: ``0::/path``).

The path comes last and may itself contain ``:``, so each line is split at most twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from procfs.errors import ParseError


@dataclass(frozen=True)
class CgroupEntry:
    """One hierarchy; ``path`` is relative to the cgroup namespace root of the *reader*."""

    hierarchy: int
    controllers: tuple[bytes, ...]
    path: bytes


@dataclass(frozen=True)
class Cgroups:
    """All lines of ``cgroup``."""

    entries: tuple[CgroupEntry, ...]

    @property
    def unified(self) -> bytes | None:
        """The cgroup v2 path (the ``0::`` line), or ``None`` on a v1-only system."""
        for entry in self.entries:
            if entry.hierarchy == 0 and not entry.controllers:
                return entry.path
        return None


def parse_cgroup(data: bytes) -> Cgroups:
    """Parse ``cgroup``; an empty file (a zombie's) gives no entries."""
    entries = []
    for line in data.split(b"\n"):
        if not line:
            continue
        parts = line.split(b":", 2)
        if len(parts) != 3:
            raise ParseError("cgroup", f"bad line {line!r}")
        try:
            hierarchy = int(parts[0])
        except ValueError as err:
            raise ParseError("cgroup", f"bad hierarchy id in {line!r}") from err
        controllers = tuple(c for c in parts[1].split(b",") if c)
        entries.append(CgroupEntry(hierarchy, controllers, parts[2]))
    return Cgroups(tuple(entries))
