"""``/proc/<pid>/environ``: NUL-terminated ``KEY=value`` strings read from the target's memory.

The process may have rewritten that memory: entries without ``=`` and a missing final NUL (a
truncated read) are kept as they are, never rejected.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Environ:
    """Environment strings in order; ``complete`` is False when the last one had no NUL."""

    entries: tuple[bytes, ...]
    complete: bool

    def find(self, key: bytes) -> bytes | None:
        """The value of the first ``key=`` entry, or ``None``."""
        prefix = key + b"="
        for entry in self.entries:
            if entry.startswith(prefix):
                return entry[len(prefix) :]
        return None

    def items(self) -> tuple[tuple[bytes, bytes | None], ...]:
        """``(key, value)`` pairs; ``value`` is ``None`` for an entry without ``=``."""
        out = []
        for entry in self.entries:
            key, sep, value = entry.partition(b"=")
            out.append((key, value if sep else None))
        return tuple(out)


def parse_environ(data: bytes) -> Environ:
    """Split ``environ`` at NULs (empty file: no entries, complete)."""
    if not data:
        return Environ((), True)
    complete = data.endswith(b"\0")
    parts = data[:-1].split(b"\0") if complete else data.split(b"\0")
    return Environ(tuple(parts), complete)
