"""Core file names as systemd-coredump makes them, and the ACL/auxv helpers behind storage."""

from __future__ import annotations

import struct

import pytest

from coredumpd import acl
from coredumpd.context import CrashContext
from coredumpd.errors import StorageError
from coredumpd.storage import StorageLimits, _keep_limit, _with_counter, core_filename, escape_comm

BOOT = "62ac89af-ada2-47dc-84e0-03c0548fd64c"


def context(**kw: object) -> CrashContext:
    base: dict[str, object] = dict(pid=11951, uid=1000, gid=1000, signal=11,
                                   timestamp=1795433691000000, comm=b"crash", boot_id=BOOT)
    base.update(kw)
    return CrashContext(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("comm", "escaped"), [
    (b"crash", "crash"),
    (b"a.out", "a\\x2eout"),  # the example in systemd's own notes
    (b"a/b\n\x1b", "a\\x2fb\\x0a\\x1b"),
    (b"sp ace", "sp\\x20ace"),
    (b"back\\slash", "back\\x5cslash"),
    (b"\x7f\xff\xc3\xa9", "\\x7f\\xff\\xc3\\xa9"),
    (b"(sd-pam)", "(sd-pam)"),
    (b"", ""),
])
def test_escape_comm_like_xescape(comm: bytes, escaped: str) -> None:
    assert escape_comm(comm) == escaped


def test_core_filename_systemd_shape() -> None:
    name = core_filename(context(), compress=True)
    assert name == "core.crash.1000.62ac89afada247dc84e003c0548fd64c.11951.1795433691000000.zst"
    assert core_filename(context(), compress=False) == name.removesuffix(".zst")


def test_core_filename_hostile_comm_is_one_safe_component() -> None:
    name = core_filename(context(comm=b"a/b\n\x1b"), compress=True)
    assert name.startswith("core.a\\x2fb\\x0a\\x1b.1000.")
    assert "/" not in name and "\n" not in name and "\x1b" not in name
    assert name.count(".") == 6  # comm cannot add fields: uid parsing stays right


def test_core_filename_long_comm_stays_under_name_max() -> None:
    assert len(core_filename(context(comm=b"\xff" * 64), compress=True)) < 255


def test_core_filename_missing_fields() -> None:
    with pytest.raises(StorageError, match="comm, uid"):
        core_filename(context(comm=None, uid=None), compress=True)


def test_core_filename_reads_boot_id_when_unknown() -> None:
    name = core_filename(context(boot_id=None), compress=True)
    with open("/proc/sys/kernel/random/boot_id") as f:
        assert f.read().strip().replace("-", "") in name


def test_counter_suffix_keeps_extension() -> None:
    assert _with_counter("core.a.0.b.1.2.zst", 1) == "core.a.0.b.1.2~1.zst"
    assert _with_counter("core.a.0.b.1.2", 3) == "core.a.0.b.1.2~3"


@pytest.mark.parametrize(("process", "external", "rlimit", "limit", "what"), [
    (100, 50, None, 100, "ProcessSizeMax=100"),
    (50, 100, None, 100, "ExternalSizeMax=100"),       # systemd: max(process, storage)
    (100, 100, 70, 70, "RLIMIT_CORE=70"),
    (100, 100, (1 << 64) - 1, 100, "ProcessSizeMax=100"),  # unlimited
    (100, 100, 1000, 100, "ProcessSizeMax=100"),
])
def test_keep_limit(process: int, external: int, rlimit: int | None, limit: int, what: str) -> None:
    assert _keep_limit(StorageLimits(process, external), rlimit) == (limit, what)


# -- ACL ------------------------------------------------------------------------------------


def test_acl_xattr_layout() -> None:
    data = acl.build_acl(0o640, (1000,))
    version, = struct.unpack_from("<I", data)
    assert version == 2
    assert acl.parse_acl(data) == [
        (acl.ACL_TAG.USER_OBJ, acl.ACL_PERM.READ | acl.ACL_PERM.WRITE, None),
        (acl.ACL_TAG.USER, acl.ACL_PERM.READ, 1000),
        (acl.ACL_TAG.GROUP_OBJ, acl.ACL_PERM.READ, None),
        (acl.ACL_TAG.MASK, acl.ACL_PERM.READ, None),
        (acl.ACL_TAG.OTHER, acl.ACL_PERM.NONE, None),
    ]


def test_parse_acl_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        acl.parse_acl(b"\x02\x00\x00\x00\x01")
    with pytest.raises(ValueError):
        acl.parse_acl(struct.pack("<I", 1))


def auxv64(**values: int) -> bytes:
    keys = {"SECURE": 23, "UID": 11, "EUID": 12, "GID": 13, "EGID": 14}
    pairs = [(keys[k], v) for k, v in values.items()] + [(0, 0)]
    return b"".join(struct.pack("<QQ", k, v) for k, v in pairs)


def test_parse_auxv_stops_at_null() -> None:
    data = auxv64(UID=5, EUID=6) + struct.pack("<QQ", 11, 99)
    assert acl.parse_auxv(data) == {11: 5, 12: 6}
    data32 = struct.pack("<IIII", 23, 1, 0, 0)
    assert acl.parse_auxv(data32, is_64=False) == {23: 1}


@pytest.mark.parametrize(("uid", "dumpable", "auxv", "allowed"), [
    (1000, 1, None, True),
    (1000, 2, None, False),          # setuid / suid_dumpable=2: root only
    (1000, 0, None, False),
    (1000, None, None, False),
    (0, 1, None, False),             # system users get nothing (systemd)
    (999, 1, None, False),
    (65534, 1, None, False),
    (61184, 1, None, False),         # dynamic users
    (1000, 1, {23: 1}, False),       # AT_SECURE
    (1000, 1, {11: 1000, 12: 0}, False),
    (1000, 1, {13: 1000, 14: 0}, False),
    (1000, 1, {23: 0, 11: 1000, 12: 1000, 13: 1000, 14: 1000}, True),
])
def test_may_read_own_core(uid: int, dumpable: int | None, auxv: dict[int, int] | None,
                           allowed: bool) -> None:
    assert acl.may_read_own_core(uid, dumpable, auxv) is allowed
