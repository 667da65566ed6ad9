"""``/proc/<pid>/mountinfo`` (proc(5)): one mount per line.

``36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue``. Paths and
the source are octal-escaped by the kernel (space, tab, newline, backslash); they are unescaped
here. The optional fields end at a lone ``-``.
"""

from __future__ import annotations

from dataclasses import dataclass

from procfs.errors import ParseError
from procfs.parse._escape import unescape_octal


@dataclass(frozen=True)
class Mount:
    """One mount as seen from the reading process's mount namespace and root."""

    mount_id: int
    parent_id: int
    dev_major: int
    dev_minor: int
    root: bytes
    mount_point: bytes
    options: bytes
    optional: tuple[bytes, ...]
    fstype: bytes
    source: bytes
    super_options: bytes


def parse_mountinfo_line(line: bytes) -> Mount:
    """Parse one line of ``mountinfo`` (without the newline)."""
    parts = line.split(b" ")
    try:
        dash = parts.index(b"-", 6)
    except ValueError:
        raise ParseError("mountinfo", f"no ' - ' separator in {line!r}") from None
    if len(parts) < dash + 3:
        raise ParseError("mountinfo", f"short line {line!r}")
    try:
        major, minor = (int(v) for v in parts[2].split(b":"))
        mount_id, parent_id = int(parts[0]), int(parts[1])
    except ValueError as err:
        raise ParseError("mountinfo", f"bad numbers in {line!r}") from err
    return Mount(
        mount_id=mount_id,
        parent_id=parent_id,
        dev_major=major,
        dev_minor=minor,
        root=unescape_octal(parts[3]),
        mount_point=unescape_octal(parts[4]),
        options=parts[5],
        optional=tuple(parts[6:dash]),
        fstype=unescape_octal(parts[dash + 1]),
        source=unescape_octal(parts[dash + 2]),
        super_options=b" ".join(parts[dash + 3 :]),
    )


def parse_mountinfo(data: bytes) -> tuple[Mount, ...]:
    """Parse the whole file; an empty file (zombie) gives no mounts."""
    return tuple(parse_mountinfo_line(line) for line in data.split(b"\n") if line)
