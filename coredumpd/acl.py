"""POSIX ACLs on stored cores: who, besides root, may read a core.

The ACL is written directly as the kernel's ``system.posix_acl_access`` xattr (the
``posix_acl_xattr_header`` + entries of ``include/uapi/linux/posix_acl_xattr.h``), so no
libacl is needed. The decision follows systemd-coredump's ``grant_user_access``: only a
process that was dumpable (``%d`` == 1), did not change credentials (auxv ``AT_SECURE`` 0,
``AT_UID`` == ``AT_EUID``, ``AT_GID`` == ``AT_EGID``) and ran as a regular user gets to
read its own core.
"""

from __future__ import annotations

import logging
import os
import struct
from enum import IntEnum, IntFlag

log = logging.getLogger(__name__)

XATTR_NAME = "system.posix_acl_access"
POSIX_ACL_XATTR_VERSION = 2
ACL_UNDEFINED_ID = 0xFFFFFFFF

#: systemd's defaults on Debian (``SYSTEM_UID_MAX``, dynamic range, ``nobody``)
SYSTEM_UID_MAX = 999
DYNAMIC_UID_MIN, DYNAMIC_UID_MAX = 61184, 65519
UID_NOBODY = 65534

_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")


class ACL_TAG(IntEnum):  # noqa: N801 - the kernel's names
    USER_OBJ = 0x01
    USER = 0x02
    GROUP_OBJ = 0x04
    GROUP = 0x08
    MASK = 0x10
    OTHER = 0x20


class ACL_PERM(IntFlag):  # noqa: N801
    NONE = 0
    EXECUTE = 1
    WRITE = 2
    READ = 4


class AT(IntEnum):
    """auxv keys used here (``include/uapi/linux/auxvec.h``)."""

    NULL = 0
    UID = 11
    EUID = 12
    GID = 13
    EGID = 14
    SECURE = 23


def build_acl(mode: int, readers: tuple[int, ...] = ()) -> bytes:
    """The ``system.posix_acl_access`` value for a file of ``mode`` plus read access for the
    uids in ``readers``. The mask is the union of the group class (as setfacl computes it)."""
    def perm(bits: int) -> int:
        return bits & 0o7

    entries = [(ACL_TAG.USER_OBJ, perm(mode >> 6), ACL_UNDEFINED_ID)]
    entries += [(ACL_TAG.USER, int(ACL_PERM.READ), uid) for uid in sorted(set(readers))]
    entries.append((ACL_TAG.GROUP_OBJ, perm(mode >> 3), ACL_UNDEFINED_ID))
    if readers:
        mask = perm(mode >> 3) | int(ACL_PERM.READ)
        entries.append((ACL_TAG.MASK, mask, ACL_UNDEFINED_ID))
    entries.append((ACL_TAG.OTHER, perm(mode), ACL_UNDEFINED_ID))
    return _HEADER.pack(POSIX_ACL_XATTR_VERSION) + b"".join(
        _ENTRY.pack(int(tag), p, ident) for tag, p, ident in entries)


def parse_acl(data: bytes) -> list[tuple[ACL_TAG, ACL_PERM, int | None]]:
    """Entries of a ``system.posix_acl_access`` value: (tag, perm, id or None)."""
    if len(data) < _HEADER.size or (len(data) - _HEADER.size) % _ENTRY.size:
        raise ValueError(f"ACL xattr of {len(data)} bytes is not a header plus entries")
    (version,) = _HEADER.unpack_from(data)
    if version != POSIX_ACL_XATTR_VERSION:
        raise ValueError(f"ACL xattr version {version}, expected {POSIX_ACL_XATTR_VERSION}")
    out = []
    for tag, p, ident in _ENTRY.iter_unpack(data[_HEADER.size:]):
        out.append((ACL_TAG(tag), ACL_PERM(p), None if ident == ACL_UNDEFINED_ID else ident))
    return out


def parse_auxv(data: bytes, *, is_64: bool = True, little_endian: bool = True) -> dict[int, int]:
    """``/proc/<pid>/auxv`` (or ``NT_AUXV``) as {key: value}, up to ``AT_NULL``."""
    fmt = ("<" if little_endian else ">") + ("QQ" if is_64 else "II")
    pair = struct.Struct(fmt)
    out: dict[int, int] = {}
    for key, value in pair.iter_unpack(data[: len(data) - len(data) % pair.size]):
        if key == AT.NULL:
            break
        out[key] = value
    return out


def may_read_own_core(uid: int | None, dumpable: int | None, auxv: dict[int, int] | None) -> bool:
    """systemd's rule: grant ``uid`` read access only when the process was dumpable (1), did
    not gain or change credentials, and ``uid`` is a regular user."""
    if uid is None or dumpable != 1:
        return False
    if uid <= SYSTEM_UID_MAX or DYNAMIC_UID_MIN <= uid <= DYNAMIC_UID_MAX or uid == UID_NOBODY:
        return False
    if auxv:
        if auxv.get(AT.SECURE, 0) != 0:
            return False
        if AT.UID in auxv and AT.EUID in auxv and auxv[AT.UID] != auxv[AT.EUID]:
            return False
        if AT.GID in auxv and AT.EGID in auxv and auxv[AT.GID] != auxv[AT.EGID]:
            return False
    return True


def grant_read(fd: int, mode: int, uid: int) -> bool:
    """Give ``uid`` read access to the open file ``fd`` (whose mode is ``mode``). Returns False
    (after a warning) when the filesystem has no ACL support."""
    try:
        os.setxattr(fd, XATTR_NAME, build_acl(mode, (uid,)))
    except OSError as err:
        log.warning("failed to grant uid %d read access to its core, ignoring: %s", uid, err)
        return False
    return True
