"""Fuzz every procfs parser of untrusted bytes with mutations of real /proc files.

Seeds are the files of a spawned child (argv and environment with spaces, quotes, newlines and
invalid UTF-8) and of the test process itself, the raw ``PIDFD_GET_INFO`` buffer, a thread's
registers and siginfo from a ptrace-stop of the child, and the wait statuses the kernel reports.
Mutations: bit flips, truncation, inserted ``)``, ``\\n``, NUL, ``:``, ``-``, huge or negative
numbers, invalid UTF-8, spans deleted, duplicated or randomised.

Only :class:`procfs.errors.ProcfsError` (``ParseError`` and friends) may escape; a SIGALRM timer
per case turns a hang into a failure. The run is bounded by ``FUZZ_SECONDS`` (default 17, plus
3 s for the quoting round trip) and ``FUZZ_CASES`` (default 1,000,000); ``FUZZ_SEED`` replays a
run.
"""

from __future__ import annotations

import fcntl
import os
import random
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from procfs._libc import MACHINE
from procfs.errors import ProcfsError
from procfs.handle import ProcessHandle
from procfs.parse.auxv import AT, parse_auxv
from procfs.parse.cgroup import parse_cgroup
from procfs.parse.cmdline import cmdline_to_posix, parse_cmdline, parse_posix_cmdline
from procfs.parse.environ import parse_environ
from procfs.parse.fds import open_fds_to_text, parse_fdinfo, parse_open_fds
from procfs.parse.limits import Rlimit, parse_limits
from procfs.parse.links import parse_link
from procfs.parse.maps import parse_maps
from procfs.parse.mountinfo import parse_mountinfo
from procfs.parse.namespaces import parse_ns_link
from procfs.parse.stat import parse_stat
from procfs.parse.status import parse_status
from procfs.pidfd import (
    DEFAULT_INFO_MASK,
    PIDFD_GET_INFO,
    PIDFD_INFO_SIZE,
    parse_pidfd_fdinfo,
    parse_pidfd_info,
)
from procfs.ptrace import detach, interrupt, read_registers, read_siginfo, seize
from procfs.registers import decode_registers, regset_size
from procfs.siginfo import SIGINFO_SIZE, decode_siginfo
from procfs.snapshot import read_open_fds
from procfs.wait import decode_wait_status, read_wait
from tests.support.fuzzing import CaseTimeout, deadline
from tests.support.procfs_children import running, wait_state
from tests.support.report import report

pytestmark = [pytest.mark.slow]

SECONDS = float(os.environ.get("FUZZ_SECONDS", "17"))
CASES = int(os.environ.get("FUZZ_CASES", "1000000"))
ROUND_TRIP_SECONDS = 3.0
CASE_DEADLINE_S = 2.0

HOSTILE_ARGV = [
    "a b", "it's", 'say "hi"', "new\nline", "tab\there", "$'x'", "(paren)", "back\\slash",
    "", "ünïcödé", "*?[", "", "trailing",
]  # fmt: skip
CHILD = "import sys, time; print('ready', flush=True); time.sleep(60)"

INSERTS = (
    b")", b"(", b") (", b"\n", b"\0", b":", b" - ", b"-", b" ", b"\t", b"\\", b"\\012", b"$'",
    b"'", b'""', b"=", b"[", b"]", b"0x", b"_", b"+", b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80", b"9" * 20, b"18446744073709551616", b"-1", b"9" * 5000, b"f" * 40,
    b" (deleted)", b"unlimited", b"Limit                     Soft Limit           Hard Limit           Units",
)  # fmt: skip
INTERESTING_INTS = (
    0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7F7F, 0xFFFF, 0x137F, 0x57F, 0x8057F, 0x8B, 0x60057F,
    0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 2**63 - 1, 2**64 - 1, 2**64, -1, -(2**31), -(2**63),
)  # fmt: skip




MAX_INPUT = 1 << 20  # growth stops here: a case must stay cheap, repetition cannot go on forever


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        kind = rng.randrange(9)
        pos = rng.randrange(len(data) + 1)
        if kind == 0 and data:  # bit flip
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncate
            del data[pos:]
        elif kind in (2, 3):  # a hostile token inserted
            data[pos:pos] = rng.choice(INSERTS)
        elif kind == 4:  # a run of digits replaced with a huge, negative or odd number
            start = pos
            while start < len(data) and not data[start : start + 1].isdigit():
                start += 1
            end = start
            while end < len(data) and data[end : end + 1].isalnum():
                end += 1
            data[start:end] = rng.choice(
                (b"9" * rng.choice((20, 40, 4400, 5000)), b"-1", b"1_0", b" 7", b"\xff", b"",
                 b"%x" % rng.getrandbits(128), b"0" * 300 + b"1")
            )  # fmt: skip
        elif kind == 5:  # a span deleted
            del data[pos : pos + rng.randrange(1, 64)]
        elif kind == 6:  # a span duplicated elsewhere
            n = rng.randrange(1, 200)
            data[rng.randrange(len(data) + 1) : 0] = data[pos : pos + n]
            data[pos:pos] = data[pos : pos + n]
        elif kind == 7:  # random bytes over a span
            data[pos : pos + 8] = rng.randbytes(rng.randrange(1, 9))
        else:  # a line swapped for another
            lines = bytes(data).split(b"\n")
            if len(lines) > 1:
                a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[a] = lines[b] * min(rng.choice((1, 2, 50)), MAX_INPUT // (len(lines[b]) + 1))
                data = bytearray(b"\n".join(lines))
        del data[MAX_INPUT:]
    return bytes(data)


def mutate_int(rng: random.Random, seed: int) -> int:
    kind = rng.randrange(4)
    if kind == 0:
        return seed ^ (1 << rng.randrange(40))
    if kind == 1:
        return rng.choice(INTERESTING_INTS)
    if kind == 2:
        return rng.getrandbits(rng.choice((8, 16, 24, 32, 64)))
    return seed | (rng.randrange(256) << 16)


# --- what each parser does with an input (touching the derived properties as well) -----------


def use_stat(data: bytes) -> Any:
    stat = parse_stat(data)
    return stat.stopped, stat.zombie, stat.get("rsslim"), stat.get("exit_code")


def use_status(data: bytes) -> Any:
    status = parse_status(data)
    return status.get(b"VmRSS"), status.uids, status.ns_pids


def use_limits(data: bytes) -> Any:
    return parse_limits(data).find(Rlimit.CORE)


def use_cgroup(data: bytes) -> Any:
    return parse_cgroup(data).unified


def use_environ(data: bytes) -> Any:
    env = parse_environ(data)
    return env.items(), env.find(b"PATH")


def use_cmdline(data: bytes) -> Any:
    args = parse_cmdline(data)
    quoted = cmdline_to_posix(args)
    assert parse_posix_cmdline(quoted) == args, f"round trip of {args!r} via {quoted!r}"
    return args


def use_auxv(data: bytes) -> Any:
    return (
        parse_auxv(data).find(AT.PAGESZ),
        parse_auxv(data, 4).find(AT.ENTRY),
        parse_auxv(data, 8, "big").complete,
    )


def use_maps(data: bytes) -> Any:
    return [(m.size, m.perms_text, m.deleted) for m in parse_maps(data)]


def use_fdinfo(data: bytes) -> Any:
    return parse_fdinfo(data).flags


def use_open_fds(data: bytes) -> Any:
    fds = parse_open_fds(data)
    return open_fds_to_text(fds)


def use_link(data: bytes) -> Any:
    link = parse_link(data)
    return link.is_path, link.object_inode


def use_registers(data: bytes) -> Any:
    out = []
    for machine in ("x86_64", "aarch64", "arm64"):
        try:
            regs = decode_registers(data, machine)
        except ProcfsError:
            continue
        out.append((regs.pc, regs.sp))
    return out


def use_siginfo(data: bytes) -> Any:
    info = decode_siginfo(data)
    return info.from_user, info.addr


def use_wait_status(status: int) -> Any:
    result = decode_wait_status(1234, status)
    return result.stopped, result.gone, result.kind


PARSERS: dict[str, Callable[[Any], Any]] = {
    "stat": use_stat,
    "status": use_status,
    "limits": use_limits,
    "cgroup": use_cgroup,
    "mountinfo": parse_mountinfo,
    "environ": use_environ,
    "cmdline": use_cmdline,
    "posix cmdline": parse_posix_cmdline,
    "auxv": use_auxv,
    "maps": use_maps,
    "fdinfo": use_fdinfo,
    "open fds": use_open_fds,
    "link": use_link,
    "ns link": parse_ns_link,
    "pidfd info": parse_pidfd_info,
    "pidfd fdinfo": parse_pidfd_fdinfo,
    "registers": use_registers,
    "siginfo": use_siginfo,
    "wait status": use_wait_status,
}


# --- seeds ---------------------------------------------------------------------------------


def proc_seeds(handle: ProcessHandle) -> dict[str, list[bytes]]:
    seeds: dict[str, list[bytes]] = {name: [] for name in PARSERS}
    for name in ("stat", "status", "limits", "cgroup", "mountinfo", "environ", "cmdline",
                 "auxv", "maps"):  # fmt: skip
        seeds[name].append(handle.read_bytes(name))
    for tid in handle.listdir("task")[:4]:
        seeds["stat"].append(handle.read_bytes(f"task/{tid}/stat"))
    seeds["posix cmdline"].append(cmdline_to_posix(parse_cmdline(handle.read_bytes("cmdline"))))
    fds = read_open_fds(handle)
    seeds["fdinfo"] += [fd.info.raw for fd in fds[:8] if fd.info is not None]
    seeds["open fds"].append(open_fds_to_text(fds))
    seeds["link"] += [fd.target for fd in fds] + [
        handle.readlink(n) for n in ("exe", "cwd", "root")
    ]
    seeds["ns link"] += [handle.readlink(f"ns/{n}") for n in handle.listdir("ns")]
    return seeds


def pidfd_seeds(pidfd: int) -> tuple[bytes, bytes]:
    buf = bytearray(PIDFD_INFO_SIZE)
    struct.pack_into("=Q", buf, 0, int(DEFAULT_INFO_MASK))
    fcntl.ioctl(pidfd, PIDFD_GET_INFO, buf, True)
    with open(f"/proc/self/fdinfo/{pidfd}", "rb") as file:
        return bytes(buf), file.read()


def ptrace_seeds(pid: int) -> tuple[bytes, bytes, int]:
    """The child's registers and siginfo at an interrupt stop, and that stop's wait status;
    zero-filled blobs where ptrace is refused (a sandbox without it still fuzzes the rest)."""
    try:
        seize(pid)
    except ProcfsError:
        return bytes(regset_size(MACHINE)), bytes(SIGINFO_SIZE), 0x80057F
    try:
        interrupt(pid)
        stop = read_wait(pid, timeout=5)
        return read_registers(pid).raw, read_siginfo(pid).raw, stop.status
    finally:
        detach(pid)


@pytest.fixture(scope="module")
def seeds() -> dict[str, list[Any]]:
    argv = [sys.executable, "-c", CHILD, *HOSTILE_ARGV]
    env = {"PATH": "/usr/bin:/bin", "WEIRD": "a b\nc=d", "EMPTY": "", "NOEQUALS_SURVIVES": "x"}
    with running(argv, env=env) as child:
        wait_state(child.pid, "S")
        with ProcessHandle.from_pid(child.pid) as handle:
            out = proc_seeds(handle)
            info, fdinfo = pidfd_seeds(handle.pidfd)
        regs, siginfo, stop_status = ptrace_seeds(child.pid)
    with ProcessHandle.from_pid(os.getpid()) as handle:
        for name, values in proc_seeds(handle).items():
            out[name] += values
        own_info, own_fdinfo = pidfd_seeds(handle.pidfd)
    out["pidfd info"] += [info, own_info]
    out["pidfd fdinfo"] += [fdinfo, own_fdinfo]
    out["registers"] += [regs]
    out["siginfo"] += [siginfo]
    # exited 0 / 1, killed by SIGSEGV with a core, stopped by SIGSTOP, continued, group stop and
    # interrupt stop under SEIZE, a clone event stop, a syscall stop
    out["wait status"] += [
        0,
        0x100,
        0x8B,
        0x137F,
        0xFFFF,
        0x80137F,
        0x80057F,
        stop_status,
        0x3057F,
        0x857F,
    ]
    for name, values in out.items():
        assert values, f"no seed for {name}"
    return out


# --- the runs ------------------------------------------------------------------------------


def test_seeds_parse(seeds: dict[str, list[Any]]) -> None:
    """Every unmutated seed parses: the fuzzer starts from valid inputs."""
    for name, values in seeds.items():
        for value in values:
            PARSERS[name](value)


def test_fuzz_procfs_parsers(seeds: dict[str, list[Any]]) -> None:
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "0")) or None)
    names = sorted(seeds)
    outcomes = {name: [0, 0] for name in names}  # [parsed, rejected]
    start = time.monotonic()
    cases = 0
    while cases < CASES and time.monotonic() - start < SECONDS:
        name = names[cases % len(names)]
        case_seed = rng.getrandbits(32)
        case_rng = random.Random(case_seed)
        seed = case_rng.choice(seeds[name])
        data = mutate_int(case_rng, seed) if isinstance(seed, int) else mutate(case_rng, seed)
        try:
            with deadline(CASE_DEADLINE_S):
                PARSERS[name](data)
        except CaseTimeout:
            pytest.fail(f"{name} case {case_seed} took over {CASE_DEADLINE_S}s: {data[:200]!r}")
        except ProcfsError:
            outcomes[name][1] += 1
        except Exception as err:  # noqa: BLE001 - the point: nothing else may escape
            raise AssertionError(
                f"{name} case {case_seed} raised {type(err).__name__}: {err} on {data!r:.400}"
            ) from err
        else:
            outcomes[name][0] += 1
        cases += 1
    elapsed = time.monotonic() - start
    rejected = sum(r for _, r in outcomes.values())
    report(
        f"fuzz (procfs parsers): {cases} cases in {elapsed:.1f} s over {len(names)} parsers, "
        f"{cases - rejected} parsed, {rejected} rejected with ProcfsError"
    )
    assert cases >= 2000, f"only {cases} cases ran"
    for name, (parsed, _) in outcomes.items():
        assert parsed > 0, f"{name}: no mutated input parsed"


def random_arg(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    size = rng.choice((0, 1, 2, 5, 20, 100))
    if kind == 0:
        return rng.randbytes(size)
    if kind == 1:  # the characters that need quoting, more often
        return bytes(
            rng.choice(b" \t\n\r\"\\`$*?['()<>|&;!\x7f\x01az\xc3\xa9\xff") for _ in range(size)
        )
    if kind == 2:  # valid UTF-8 with noncharacters and surrogates among it
        chars = [chr(rng.choice((rng.randrange(0x20, 0x7F), rng.randrange(0x80, 0x10FFFF),
                                 0xFDD0, 0xFFFE, 0x1FFFF, 0xA0))) for _ in range(size)]  # fmt: skip
        return "".join(chars).encode("utf-8", "surrogatepass")
    return rng.randbytes(size).replace(b"\0", b"x")


def test_posix_cmdline_round_trip() -> None:
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "0")) or None)
    start = time.monotonic()
    cases = 0
    while cases < CASES and time.monotonic() - start < ROUND_TRIP_SECONDS:
        args = tuple(random_arg(rng) for _ in range(rng.randrange(6)))
        quoted = cmdline_to_posix(args)
        assert parse_posix_cmdline(quoted) == args, f"{args!r} quoted as {quoted!r}"
        cases += 1
    report(f"fuzz (posix cmdline round trip): {cases} argv in {time.monotonic() - start:.1f} s")
