import pytest

from procfs.errors import ParseError
from procfs.parse.stat import parse_stat
from procfs.parse.status import parse_status

TAIL = b" S 1 100 100 0 -1 4194560 10 0 0 0 3 4 0 0 20 0 1 0 12345 2195456 120 " + b" ".join(
    [b"18446744073709551615"] + [b"0"] * 29
) + b"\n"


def test_stat_plain():
    stat = parse_stat(b"42 (sleep)" + TAIL)
    assert (stat.pid, stat.comm, stat.state, stat.ppid) == (42, b"sleep", b"S", 1)
    assert stat.num_threads == 1 and stat.starttime == 12345 and stat.vsize == 2195456
    assert stat.get("rsslim") == 18446744073709551615
    assert stat.exit_code == 0 and not stat.stopped and not stat.zombie


@pytest.mark.parametrize(
    "comm", [b"a) (b", b"x) S 1 2 3", b"))))", b"a\nb", b"(", b"", b"with space", b"\xff\xfe"]
)
def test_stat_hostile_comm(comm):
    stat = parse_stat(b"7 (" + comm + b")" + TAIL)
    assert stat.comm == comm and stat.pid == 7 and stat.state == b"S" and stat.ppid == 1


def test_stat_old_kernel_short_line():
    stat = parse_stat(b"1 (init) T 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 100 2")
    assert stat.stopped and stat.exit_code is None and stat.kstkeip is None


@pytest.mark.parametrize(
    "data",
    [b"", b"42", b"42 (sleep", b"x (sleep) S 1", b"42 (sleep) S 1 2 3", b"42 (a) S x" + TAIL[4:]],
)
def test_stat_malformed(data):
    with pytest.raises(ParseError):
        parse_stat(data)


STATUS = b"""Name:\ta) (b
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
Ngid:\t0
Pid:\t4242
PPid:\t1
TracerPid:\t0
Uid:\t1000\t1001\t1002\t1003
Gid:\t100\t101\t102\t103
FDSize:\t64
NSpid:\t4242\t7
Threads:\t3
CoreDumping:\t1
CapInh:\t0000000000000000
CapPrm:\t000001ffffffffff
CapEff:\t000001ffffffffff
CapBnd:\t000001ffffffffff
CapAmb:\t0000000000000000
NoNewPrivs:\t0
Seccomp:\t2
ShadowCallStack:\t0 kB
"""


def test_status_fields():
    status = parse_status(STATUS)
    assert status.name == b"a) (b" and status.state == b"S"
    assert (status.tgid, status.pid, status.ppid, status.tracer_pid) == (4242, 4242, 1, 0)
    assert status.uids.real == 1000 and status.uids.saved == 1002 and status.uids.fs == 1003
    assert status.gids.effective == 101
    assert status.ns_pids == (4242, 7) and status.threads == 3 and status.core_dumping is True
    assert status.cap_eff == 0x1FFFFFFFFFF and status.cap_inh == 0
    assert status.seccomp == 2 and status.no_new_privs is False
    assert status.get(b"Umask") == b"0022" and status.get(b"Nope") is None


def test_status_gvisor_like_minimal():
    status = parse_status(b"Name:\tx\nState:\tR (running)\nTgid:\t1\nPid:\t1\nPPid:\t0\n"
                          b"Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n")  # fmt: skip
    assert status.core_dumping is None and status.cap_eff is None and status.ns_pids == ()


def test_status_name_with_colon_and_escape():
    data = STATUS.replace(b"Name:\ta) (b", b"Name:\tx: y\\nz")
    assert parse_status(data).name == b"x: y\\nz"


@pytest.mark.parametrize("cut", [10, 60, 120])
def test_status_truncated(cut):
    with pytest.raises(ParseError):
        parse_status(STATUS[:cut])


def test_status_bad_number():
    with pytest.raises(ParseError):
        parse_status(STATUS.replace(b"Tgid:\t4242", b"Tgid:\tzz"))
