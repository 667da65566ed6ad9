import struct

import pytest

from procfs.access import (
    ATTACH_FSCREDS,
    ATTACH_REALCREDS,
    CAP_SYS_PTRACE,
    PtraceSubject,
    explain_ptrace_access,
)
from procfs.errors import ParseError
from procfs.parse.status import IdSet
from procfs.pidfd import (
    PIDFD_GET_INFO,
    CoredumpMask,
    PidfdInfoMask,
    parse_pidfd_fdinfo,
    parse_pidfd_info,
)

LAYOUT = struct.Struct("=QQIIIIIIIIIIIiII")


def test_ioctl_number():
    assert PIDFD_GET_INFO == 0xC048FF0B


def test_pidfd_info_alive():
    raw = LAYOUT.pack(0x17, 99, 10, 10, 1, 1000, 100, 1001, 101, 1002, 102, 1003, 103, 0, 5, 0)
    info = parse_pidfd_info(raw)
    assert info.pid == 10 and info.ppid == 1 and info.cgroupid == 99
    assert info.creds.euid == 1001 and info.creds.fsgid == 103
    assert info.exit_code is None and not info.reaped and info.core_dumped is None
    assert info.coredump_mask == CoredumpMask.COREDUMPED | CoredumpMask.USER
    assert info.coredump_signal is None  # bit 64 did not come back


def test_pidfd_info_reaped_trusts_only_mask():
    raw = LAYOUT.pack(0x1C, 5, 777, 777, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x8B, 0, 11)
    info = parse_pidfd_info(raw + b"\0" * 16)
    assert info.mask == PidfdInfoMask.CGROUPID | PidfdInfoMask.EXIT | PidfdInfoMask.COREDUMP
    assert info.pid is None and info.creds is None  # garbage in unreturned fields is ignored
    assert info.reaped and info.core_dumped and info.term_signal == 11
    assert info.coredump_mask == CoredumpMask(0)


def test_pidfd_info_short():
    with pytest.raises(ParseError):
        parse_pidfd_info(b"\0" * 64)


def test_pidfd_fdinfo():
    assert parse_pidfd_fdinfo(b"pos:\t0\nflags:\t02000002\nPid:\t1234\nNSpid:\t1234\n") == 1234
    assert parse_pidfd_fdinfo(b"Pid:\t-1\n") is None
    with pytest.raises(ParseError):
        parse_pidfd_fdinfo(b"pos:\t0\n")
    with pytest.raises(ParseError):
        parse_pidfd_fdinfo(b"Pid:\tx\n")


def subject(tgid, uid, gid=None, cap=0, prm=None, ns=1, dumpable=1):
    gid = uid if gid is None else gid
    return PtraceSubject(
        tgid, IdSet(uid, uid, uid, uid), IdSet(gid, gid, gid, gid), cap,
        cap if prm is None else prm, ns, dumpable,
    )  # fmt: skip


ROOT_CAPS = (1 << 41) - 1


def test_same_thread_group():
    assert explain_ptrace_access(subject(5, 1000), subject(5, 0)).allowed


def test_same_user_allowed_mentions_lsm():
    verdict = explain_ptrace_access(subject(1, 1000), subject(2, 1000))
    assert verdict.allowed and "LSM" in str(verdict)


def test_uid_mismatch():
    verdict = explain_ptrace_access(subject(1, 1000), subject(2, 0))
    assert not verdict.allowed and "real uid 1000" in str(verdict)
    assert "lack CAP_SYS_PTRACE" in str(verdict)


def test_setuid_target_saved_uid_differs():
    target = PtraceSubject(2, IdSet(1000, 0, 0, 0), IdSet(1000, 1000, 1000, 1000), 0, 0, 1, 2)
    verdict = explain_ptrace_access(subject(1, 1000), target, ATTACH_FSCREDS)
    assert not verdict.allowed
    assert any("fsuid 1000" in r for r in verdict.reasons)
    assert any("not dumpable" in r for r in verdict.reasons)


def test_not_dumpable_same_user():
    verdict = explain_ptrace_access(subject(1, 1000), subject(2, 1000, dumpable=0))
    assert not verdict.allowed and "not dumpable" in str(verdict)


def test_capabilities_not_subset():
    verdict = explain_ptrace_access(subject(1, 1000), subject(2, 1000, prm=1 << 12))
    assert not verdict.allowed and "not a subset" in str(verdict)


def test_root_with_cap_sys_ptrace():
    assert explain_ptrace_access(subject(1, 0, cap=ROOT_CAPS), subject(2, 1000, dumpable=0)).allowed


def test_cap_in_other_user_namespace_unknown():
    caller = subject(1, 0, cap=1 << CAP_SYS_PTRACE, ns=1)
    verdict = explain_ptrace_access(caller, subject(2, 1000, ns=2), ATTACH_REALCREDS)
    assert not verdict.allowed and "unknown" in str(verdict)
