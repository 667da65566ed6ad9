import pytest

from procfs.errors import ParseError
from procfs.parse.cgroup import parse_cgroup
from procfs.parse.limits import Rlimit, parse_limits
from procfs.parse.mountinfo import parse_mountinfo

LIMITS = (
    b"Limit                     Soft Limit           Hard Limit           Units     \n"
    b"Max cpu time              unlimited            unlimited            seconds   \n"
    b"Max core file size        0                    unlimited            bytes     \n"
    b"Max open files            1024                 524288               files     \n"
    b"Max realtime priority     0                    0                    \n"
    b"Max realtime timeout      unlimited            unlimited            us        \n"
)


def test_limits():
    limits = parse_limits(LIMITS)
    assert len(limits.rows) == 5
    core = limits.find(Rlimit.CORE)
    assert core and core.soft == 0 and core.hard is None and core.unit == b"bytes"
    nofile = limits.find(Rlimit.NOFILE)
    assert nofile and (nofile.soft, nofile.hard) == (1024, 524288)
    assert limits.find(Rlimit.RTPRIO).unit == b""
    assert limits.find(Rlimit.STACK) is None


@pytest.mark.parametrize(
    "data", [b"", b"garbage\n", LIMITS.replace(b"1024 ", b"lots "), LIMITS[:100] + b"\nMax x\n"]
)
def test_limits_malformed(data):
    with pytest.raises(ParseError):
        parse_limits(data)


def test_cgroup_v1_and_v2():
    cgroups = parse_cgroup(b"12:cpu,cpuacct:/a:b\n1:name=systemd:/x\n0::/user.slice/s:1.scope\n")
    assert cgroups.entries[0].controllers == (b"cpu", b"cpuacct")
    assert cgroups.entries[0].path == b"/a:b"
    assert cgroups.unified == b"/user.slice/s:1.scope"
    assert parse_cgroup(b"").entries == ()
    assert parse_cgroup(b"1:cpu:/\n").unified is None


@pytest.mark.parametrize("data", [b"no colons\n", b"x::/\n"])
def test_cgroup_malformed(data):
    with pytest.raises(ParseError):
        parse_cgroup(data)


def test_mountinfo():
    data = (
        b"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n"
        b"40 36 0:50 / /with\\040space\\012nl rw - tmpfs my\\134src rw\n"
    )
    first, second = parse_mountinfo(data)
    assert (first.mount_id, first.parent_id, first.dev_major, first.dev_minor) == (36, 35, 98, 0)
    assert first.optional == (b"master:1", b"shared:7") and first.fstype == b"ext3"
    assert first.super_options == b"rw,errors=continue"
    assert second.mount_point == b"/with space\nnl" and second.source == b"my\\src"
    assert second.optional == ()


@pytest.mark.parametrize("data", [b"36 35 98:0 / / rw\n", b"x 35 98:0 / / rw - a b c\n",
                                  b"36 35 98:0 / / rw - ext4\n"])  # fmt: skip
def test_mountinfo_malformed(data):
    with pytest.raises(ParseError):
        parse_mountinfo(data)
