"""A crash storm: 200 crashes of one crash-looping program, under a limit of 5 per minute.

The program (``bench/programs/crashloop.c``, compiled in the run) fills 8 MiB of heap with
incompressible bytes, then 200 times forks a child that inherits it, sets ``RLIMIT_CORE``,
writes CLOCK_MONOTONIC into shared memory and crashes (SIGSEGV); the parent reaps each child,
notes the time and forks the next one at once (``--gap-us`` to space them). The same program
crashes under four handlers, each inside :func:`coredumpd.sysctl.crash_sysctls` (the
core_pattern flock; every crash sysctl restored on exit):

- ``no handler``: a file pattern in a temp dir and ``RLIMIT_CORE`` 0 in the children, so the
  kernel writes nothing: the kernel's own crash→reaped cost;
- ``coredumpd @@``: ``coredumpd serve`` with ``KernelSocket=``, ``RateLimitBurst=5`` and
  ``RateLimitIntervalSec=1min``, the socket door installed once the daemon listens (and
  uninstalled before it stops). The first 5 crashes get a core, the rest are REJECTed at the
  door and only counted in the catalog;
- ``coredumpd pipe``: the pipe door with the same daemon and configuration. The kernel
  writes every core into the pipe (the pipe has no way to refuse one); over the limit the
  daemon reads it, drops it and records the crash: 5 cores stored, 195 rejected.
  Both coredumpd runs start with a symbol cache filled from one core of the same program (a
  daemon that has seen libc before); ``--cold-cache`` skips that, and then the 5 concurrent
  dumps each build the same libc tables (seconds of CPU, hundreds of MiB);
- ``systemd-coredump 252``: Debian's pattern, ``core_pipe_limit=16``, ``suid_dumpable=2``,
  the per-crash service started by ``systemd-socket-activate`` on ``/run/systemd/coredump``,
  journald running (its cores of our program are deleted afterwards).

Measures, per handler:

- **last reap**: from the first child's crash to the last ``waitpid`` returning;
- **last record**: from the first crash to the last record written: catalog row (``created``),
  core file (its ctime: the link/rename that publishes it) or journald entry (its
  ``__MONOTONIC_TIMESTAMP``), whichever is last;
- **CPU** of the handler: the daemon's utime+stime delta from ``/proc/<pid>/stat`` (read once
  it is idle again), plus, for kernel-spawned helpers and systemd's service instances, the
  exact ``getrusage(RUSAGE_CHILDREN)`` of each, run under ``bench/programs/rusage_wrap.c``
  (as in ``bench_pipeline.py``). **dying tasks CPU** is the crash loop's own
  ``RUSAGE_CHILDREN``: the crashing children, the kernel writing their cores included;
- **disk**: ``st_blocks * 512`` of the core files stored (coredumpd: its fresh store;
  systemd: the new ``core.crashloop.*`` files);
- **peak RSS**: the daemon's ``VmHWM`` (reset with ``clear_refs`` 5 before the storm), and the
  largest ``ru_maxrss`` of the wrapped helpers;
- **crash→reaped**: per crash, the child's timestamp just before the faulting write to the
  parent's timestamp after ``waitpid``; p50/p90/max (nearest rank). For ``coredumpd @@`` over
  the REJECTed crashes (and, on a second row, the crashes whose core was taken).

The REJECT line subtracts the baseline's p50 crash→reaped (what the kernel needs to kill and
reap a task anyway) from the REJECTed crashes' p50, and prints the raw value too.

Only the crashes of our pids are counted: whatever else crashes on the machine meanwhile goes
to the installed handler too. Run as root (about a minute and a half, plus any wait for the
core_pattern flock, which each handler takes in turn; restores core_pattern):

    .venv/bin/python bench/bench_storm.py [--crashes 200] [--heap-mib 8] [--gap-us 0]
                                          [--cold-cache] [--only none,socket,pipe,systemd]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_pipeline import (  # noqa: E402 - the sibling benchmark's daemon runner and log reader
    SD_COREDUMP,
    SD_PATTERN_ARGS,
    SD_SOCKET,
    SD_STORE,
    Daemon,
    Usage,
    read_usages,
    start_systemd_service,
    systemd_unavailable,
)

from coredumpd.install import SAVED, install, uninstall  # noqa: E402
from coredumpd.sysctl import CrashSysctls, crash_sysctls  # noqa: E402
from socket_server.listening import is_listening  # noqa: E402
from tests.support.journald import Journald  # noqa: E402

T = TypeVar("T")

BIN = Path(sys.executable).parent

HANDLERS = ("none", "socket", "pipe", "systemd")
LABELS = {"none": "no handler (kernel only)", "socket": "coredumpd @@",
          "pipe": "coredumpd pipe", "systemd": "systemd-coredump 252"}
RATE_BURST, RATE_INTERVAL = 5, "1min"
GOAL_REJECT_MS = 1.0
MAX_PATTERN = 127
DEADLINE_S = 120.0
MESSAGE_ID = "fc2e22bc6ee647b6b90729ab34a250b1"
#: daemon log lines worth reporting
TROUBLE = re.compile(r"error|fail|impostor|watchdog|refused|traceback|exception", re.IGNORECASE)


@dataclass(frozen=True)
class Crash:
    pid: int
    status: int
    crashed: float  #: CLOCK_MONOTONIC seconds, just before the faulting write
    reaped: float  #: when the parent's waitpid returned

    @property
    def held_ms(self) -> float:
        return (self.reaped - self.crashed) * 1e3


@dataclass(frozen=True)
class Storm:
    crashes: list[Crash]
    dying_cpu: float  #: the children's utime+stime

    @property
    def pids(self) -> set[int]:
        return {c.pid for c in self.crashes}

    @property
    def first(self) -> float:
        return min(c.crashed for c in self.crashes)

    @property
    def last_reap(self) -> float:
        return max(c.reaped for c in self.crashes)


@dataclass
class Result:
    handler: str
    storm: Storm
    records: int | None = None  #: catalog rows (coredumpd), journal entries (systemd)
    cores: int = 0
    rejected: set[int] = field(default_factory=set)
    last_record: float | None = None  #: CLOCK_MONOTONIC seconds
    cpu: float | None = None
    disk: int = 0
    rss_kib: int | None = None
    journal: int | None = None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Work:
    dir: Path  # short: it goes into core_pattern
    crashloop: Path
    wrap: Path
    log: Path
    argv: tuple[str, ...]  # COUNT HEAP_MIB GAP_US
    warm_cache: bool


@dataclass(frozen=True)
class Served:
    daemon: Daemon
    state: Path
    config: Path
    helper_dir: Path
    kernel_socket: Path

    @property
    def catalog(self) -> Path:
        return self.state / "catalog.sqlite"


# -- helpers ---------------------------------------------------------------------------------


def build(work_dir: Path, argv: tuple[str, ...], warm_cache: bool) -> Work:
    programs = ROOT / "bench" / "programs"
    crashloop, wrap, log = work_dir / "crashloop", work_dir / "rw", work_dir / "rusage.log"
    for cmd in (["gcc", "-O2", "-o", str(crashloop), str(programs / "crashloop.c")],
                ["gcc", "-O2", f'-DLOG="{log}"', "-o", str(wrap), str(programs / "rusage_wrap.c")]):
        subprocess.run(cmd, check=True)
    return Work(work_dir, crashloop, wrap, log, argv, warm_cache)


def poll(read: Callable[[], T], done: Callable[[T], bool], timeout: float) -> T:
    """Read until ``done`` or ``timeout``; returns the last value read either way."""
    end = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < end:
        time.sleep(0.05)
        value = read()
    return value


def run_storm(work: Work, *, core: bool, count: int | None = None) -> Storm:
    argv = work.argv if count is None else (str(count), *work.argv[1:])
    out = subprocess.run([str(work.crashloop), *argv, "1" if core else "0"],
                         capture_output=True, text=True, check=True, timeout=DEADLINE_S).stdout
    *lines, last = out.splitlines()
    _, utime, stime = last.split()
    crashes = []
    for line in lines:
        pid, status, crashed, reaped = (int(v) for v in line.split())
        crashes.append(Crash(pid, status, crashed / 1e9, reaped / 1e9))
    return Storm(crashes, float(utime) + float(stime))


def storm_problems(storm: Storm) -> list[str]:
    odd = [c.pid for c in storm.crashes
           if not os.WIFSIGNALED(c.status) or os.WTERMSIG(c.status) != signal.SIGSEGV]
    return [f"{len(odd)} children did not die of SIGSEGV"] if odd else []


def pattern(text: str) -> str:
    if len(text) > MAX_PATTERN:
        raise RuntimeError(f"pattern too long ({len(text)} bytes): {text}")
    return text


def core_files(directory: Path, pids: set[int]) -> list[Path]:
    """Published cores (not ``.#`` temps) of ``pids``, named as systemd names them:
    ``core.<comm>.<uid>.<boot_id>.<pid>.<usec>[.zst]`` (comm escaped, no dots). Whatever else
    crashes on the machine meanwhile lands there too, and is not ours to count."""
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir()
            if p.name.startswith("core.") and p.name.count(".") >= 5
            and p.name.split(".")[4].isdigit() and int(p.name.split(".")[4]) in pids]


def disk_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_blocks * 512 for p in paths)


def ctime_mono(path: Path) -> float:
    """A file's ctime on the CLOCK_MONOTONIC scale."""
    return (path.stat().st_ctime_ns - (time.time_ns() - time.monotonic_ns())) / 1e9


def usages(work: Work, tag: str, storm: Storm, *, by_pid: bool) -> list[Usage]:
    pids = {str(p) for p in storm.pids}
    return [u for u in read_usages(work.log)
            if u.tag == tag and u.start >= storm.first - 1 and (not by_pid or u.arg in pids)]


def journal_entries(pids: set[int], since_wall: float) -> list[float]:
    """CLOCK_MONOTONIC receipt times of journald's coredump entries for ``pids``."""
    out = subprocess.run(["journalctl", "-o", "json", "--output-fields=COREDUMP_PID",
                          f"--since=@{int(since_wall) - 1}", f"MESSAGE_ID={MESSAGE_ID}"],
                         capture_output=True, text=True).stdout
    times = []
    for line in out.splitlines():
        entry = json.loads(line)
        pid = entry.get("COREDUMP_PID")
        if isinstance(pid, str) and pid.isdigit() and int(pid) in pids:
            times.append(int(entry["__MONOTONIC_TIMESTAMP"]) / 1e6)
    return times


def wait_journal(storm: Storm, since_wall: float, expected: int) -> list[float]:
    return poll(lambda: journal_entries(storm.pids, since_wall), lambda j: len(j) >= expected, 10)


# -- coredumpd ---------------------------------------------------------------------------------


@contextmanager
def serving(work: Work, sysctls: CrashSysctls) -> Iterator[Served]:
    """A daemon on a fresh state dir (symbol cache warmed unless ``--cold-cache``); on exit,
    uninstall first (never a pattern pointing at nobody), then stop it."""
    base = Path(tempfile.mkdtemp(prefix="cds-state-", dir="/var/tmp"))
    run_dir = Path(tempfile.mkdtemp(prefix="cds", dir="/run"))  # root, 0700: the kernel's rules
    state, config = base / "state", base / "coredump.conf"
    handoff, kernel = run_dir / "handoff.sock", run_dir / "kernel.sock"
    config.write_text(f"[Coredump]\n\n[Coredumpd]\nHandoffSocket={handoff}\n"
                      f"KernelSocket={kernel}\nRateLimitBurst={RATE_BURST}\n"
                      f"RateLimitIntervalSec={RATE_INTERVAL}\n")
    daemon = None
    try:
        if work.warm_cache:
            warm_symbols(work, sysctls, state / "cache" / "symbols")
        daemon = Daemon(config, state, handoff)
        if not poll(lambda: is_listening(kernel), bool, 30):
            raise RuntimeError("the daemon does not listen on its kernel socket:\n"
                               + "".join(daemon.lines))
        yield Served(daemon, state, config, work.dir / "h", kernel)
    finally:
        try:
            if (state / SAVED).exists():
                uninstall(state_dir=state, lock=False)
        finally:
            if daemon is not None:
                daemon.stop()
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.rmtree(work.dir / "h", ignore_errors=True)


def warm_symbols(work: Work, sysctls: CrashSysctls, cache: Path) -> None:
    """Fill the daemon's symbol cache from one core of the same program, as a daemon that has
    seen its libraries before would have it (a cold cache costs seconds per concurrent dump)."""
    sysctls.set(core_pattern=pattern(f"{work.dir}/core.%p"))
    storm = run_storm(work, core=True, count=1)
    core = work.dir / f"core.{storm.crashes[0].pid}"
    try:
        subprocess.run([str(BIN / "coredumpd"), "backtrace", str(core), "--cache-dir", str(cache)],
                       check=True, stdout=subprocess.DEVNULL)
    finally:
        core.unlink(missing_ok=True)


def catalog_rows(catalog: Path, pids: set[int]) -> list[tuple[int, str, str, int]]:
    """(pid, storage_state, notes, created µs since the epoch) of the rows for ``pids``."""
    if not catalog.exists():
        return []
    try:
        with closing(sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute("SELECT pid, storage_state, notes, created FROM crashes").fetchall()
    except sqlite3.Error:
        return []
    return [r for r in rows if r[0] in pids]


def settled_cpu(daemon: Daemon) -> float:
    """The daemon's CPU seconds once it has stopped using any (slow work after the record)."""
    end = time.monotonic() + 30
    last = daemon.cpu()
    while time.monotonic() < end:
        time.sleep(0.3)
        now = daemon.cpu()
        if now == last:
            break
        last = now
    return last


def measure_coredumpd(work: Work, served: Served, handler: str, helper_tag: str | None) -> Result:
    daemon = served.daemon
    daemon.reset_hwm()
    cpu_before, since_wall, log_start = daemon.cpu(), time.time(), len(daemon.lines)
    storm = run_storm(work, core=True)
    result = Result(handler, storm, problems=storm_problems(storm))
    rows = poll(lambda: catalog_rows(served.catalog, storm.pids),
                lambda r: len({row[0] for row in r}) >= len(storm.crashes), DEADLINE_S)
    result.cpu = settled_cpu(daemon) - cpu_before
    result.rss_kib = daemon.hwm_kib()
    result.records = len(rows)
    result.rejected = {pid for pid, state, notes, _ in rows
                       if state == "none" and "rejected" in (notes or "")}
    cores = core_files(served.state / "coredump", storm.pids)
    result.cores, result.disk = len(cores), disk_bytes(cores)
    journal = wait_journal(storm, since_wall, len(rows) - len(result.rejected))
    result.journal = len(journal)
    offset = time.time_ns() - time.monotonic_ns()
    result.last_record = max([(created * 1000 - offset) / 1e9 for *_, created in rows]
                             + [ctime_mono(p) for p in cores] + journal, default=None)
    if helper_tag is not None:
        helpers = poll(lambda: usages(work, helper_tag, storm, by_pid=True),
                       lambda u: len(u) >= len(storm.crashes), 30)
        result.cpu += sum(u.cpu for u in helpers)
        result.rss_kib = max([result.rss_kib, *(u.maxrss_kib for u in helpers)])
        if len(helpers) < len(storm.crashes):
            result.problems.append(f"only {len(helpers)} helpers seen exiting")
    missing = len(storm.pids - {row[0] for row in rows})
    if missing:
        result.problems.append(f"{missing} crashes have no catalog row")
    trouble = [line.strip() for line in daemon.lines[log_start:] if TROUBLE.search(line)]
    if trouble:
        result.problems.append(f"{len(trouble)} daemon log lines with errors, first: {trouble[0]}")
    return result


def run_socket(work: Work, sysctls: CrashSysctls) -> Result:
    with serving(work, sysctls) as served:
        install(state_dir=served.state, mode="socket", helper_dir=served.helper_dir,
                config=served.config, persist=False, lock=False, kernel_socket=served.kernel_socket)
        return measure_coredumpd(work, served, "socket", None)


def run_pipe(work: Work, sysctls: CrashSysctls) -> Result:
    with serving(work, sysctls) as served:
        installed = install(state_dir=served.state, mode="pipe", helper_dir=served.helper_dir,
                            config=served.config, persist=False, lock=False)
        sysctls.set(core_pattern=pattern(f"|{work.wrap} helper {installed.pattern[1:]}"))
        return measure_coredumpd(work, served, "pipe", "helper")


# -- the others ------------------------------------------------------------------------------


def run_none(work: Work, sysctls: CrashSysctls) -> Result:
    sysctls.set(core_pattern=pattern(f"{work.dir}/core.%p"))
    storm = run_storm(work, core=False)
    result = Result("none", storm, problems=storm_problems(storm))
    written = list(work.dir.glob("core.*"))
    if written:
        result.problems.append(f"the kernel wrote {len(written)} cores")
    return result


def run_systemd(work: Work, sysctls: CrashSysctls) -> Result | None:
    why = systemd_unavailable()
    if why is not None:
        print(f"{why}: systemd-coredump skipped", file=sys.stderr)
        return None
    SD_STORE.mkdir(parents=True, exist_ok=True)
    before = set(os.listdir(SD_STORE))
    activate = start_systemd_service(work.wrap)
    try:
        if not poll(lambda: SD_SOCKET.exists() or activate.poll() is not None, bool, 30) \
                or activate.poll() is not None:
            raise RuntimeError("systemd-socket-activate did not start")
        # Debian's 50-coredump.conf
        sysctls.set(core_pipe_limit=16, suid_dumpable=2, core_pattern=pattern(
            f"|{work.wrap} sdhelper {SD_COREDUMP} {SD_PATTERN_ARGS}"))
        since_wall = time.time()
        storm = run_storm(work, core=True)
        return measure_systemd(work, storm, before, since_wall)
    finally:
        sysctls.set(suid_dumpable=0)  # before the pattern is restored: no "unsafe pattern" warning
        os.kill(activate.pid, signal.SIGTERM)
        activate.wait(timeout=30)
        SD_SOCKET.unlink(missing_ok=True)
        for name in set(os.listdir(SD_STORE)) - before:  # ours only: new, of our program
            if name.startswith("core.crashloop."):
                (SD_STORE / name).unlink(missing_ok=True)


def measure_systemd(work: Work, storm: Storm, before: set[str], since_wall: float) -> Result:
    result = Result("systemd", storm, problems=storm_problems(storm))
    helpers = poll(lambda: usages(work, "sdhelper", storm, by_pid=True),
                   lambda u: len(u) >= len(storm.crashes), DEADLINE_S)
    services = poll(lambda: usages(work, "sdservice", storm, by_pid=False),
                    lambda u: len(u) >= len(helpers), DEADLINE_S)  # then every file is in place
    every = helpers + services
    result.cpu = sum(u.cpu for u in every)
    result.rss_kib = max((u.maxrss_kib for u in every), default=None)
    cores = [p for p in core_files(SD_STORE, storm.pids) if p.name not in before]
    result.cores, result.disk = len(cores), disk_bytes(cores)
    journal = wait_journal(storm, since_wall, len(storm.crashes))
    result.records = result.journal = len(journal)
    result.last_record = max([ctime_mono(p) for p in cores] + journal, default=None)
    if len(services) < len(helpers):
        result.problems.append(f"{len(helpers)} helpers but {len(services)} service instances")
    return result


# -- report ---------------------------------------------------------------------------------


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(crashes: list[Crash]) -> str:
    held = [c.held_ms for c in crashes]
    if not held:
        return "-"
    return f"{statistics.median(held):.2f} / {nearest_rank(held, 0.9):.2f} / {max(held):.2f}"


def fmt(value: float | int | None, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def rows_for(result: Result) -> list[tuple[str, ...]]:
    storm = result.storm
    taken = [c for c in storm.crashes if c.pid not in result.rejected]
    rejected = [c for c in storm.crashes if c.pid in result.rejected]
    over = [(f"all {len(storm.crashes)}", storm.crashes)]
    if result.handler == "socket":
        over = [(f"{len(rejected)} REJECTed", rejected), (f"{len(taken)} taken", taken)]
    since = storm.first
    main = (LABELS[result.handler], str(len(storm.crashes)), fmt(result.records), str(result.cores),
            str(len(result.rejected)), f"{storm.last_reap - since:.2f}",
            fmt(None if result.last_record is None else result.last_record - since, ".2f"),
            fmt(result.cpu, ".2f"), f"{storm.dying_cpu:.2f}", f"{result.disk / 2**20:.1f}",
            fmt(None if result.rss_kib is None else result.rss_kib / 1024, ".1f"),
            spread(over[0][1]), over[0][0])
    extra = [("",) * 11 + (spread(crashes), label) for label, crashes in over[1:]]
    return [main, *extra]


def print_table(results: list[Result]) -> None:
    header = ("handler", "crashes", "records", "cores", "rejected", "last reap s", "last record s",
              "CPU s", "dying tasks CPU s", "disk MiB", "peak RSS MiB",
              "crash→reaped ms p50 / p90 / max", "over")
    rows = [row for result in results for row in rows_for(result)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        print("  ".join(c.ljust(w) if j in (0, len(row) - 1) else c.rjust(w)
                        for j, (c, w) in enumerate(zip(row, widths, strict=True))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def reject_verdict(results: dict[str, Result]) -> bool | None:
    """Print the REJECT line; True if the goal is met, None if it cannot be judged."""
    socket, none = results.get("socket"), results.get("none")
    if socket is None or none is None or not socket.rejected:
        print("REJECT holds the task: not measured (needs the socket door and the baseline)")
        return None
    raw = statistics.median(c.held_ms for c in socket.storm.crashes if c.pid in socket.rejected)
    base = statistics.median(c.held_ms for c in none.storm.crashes)
    held = raw - base
    met = held < GOAL_REJECT_MS
    print(f"REJECT holds the task: p50 {held:.3f} ms (goal < {GOAL_REJECT_MS:g} ms) -> "
          f"{'met' if met else 'NOT met'}")
    print(f"  (REJECTed crashes' p50 crash→reaped {raw:.3f} ms minus the no-handler baseline's "
          f"p50 {base:.3f} ms)")
    return met


def report(results: dict[str, Result], work: Work) -> int:
    count, heap, gap = work.argv
    print(f"\nCrash storm: {count} crashes of one crash-looping program ({heap} MiB incompressible "
          f"heap, {gap} µs between crashes), coredumpd limit {RATE_BURST} per {RATE_INTERVAL} "
          f"(kernel {os.uname().release}, {os.cpu_count()} CPUs)\n")
    print_table(list(results.values()))
    print("\nNotes: times from the first crash. records = catalog rows (coredumpd), journal "
          "entries (systemd).\n"
          "  CPU s = the handler's processes (daemon /proc stat delta + wrapped helpers' rusage);\n"
          "  dying tasks CPU s = the crashing children (the kernel writing their cores included).\n"
          "  disk = st_blocks*512 of the stored cores. coredumpd's symbol cache: "
          f"{'warmed first' if work.warm_cache else 'cold'}.")
    if "pipe" in results:
        print("  coredumpd pipe: the kernel writes every core into the pipe; over the limit the "
              "daemon drains it without storing it and keeps the record.")
    for result in results.values():
        if result.journal is not None:
            print(f"  {LABELS[result.handler]}: {result.journal} journald entries")
        for problem in result.problems:
            print(f"  PROBLEM {LABELS[result.handler]}: {problem}")
    print()
    return 0 if reject_verdict(results) is not False else 1


RUNNERS: dict[str, Callable[[Work, CrashSysctls], Result | None]] = {
    "none": run_none, "socket": run_socket, "pipe": run_pipe, "systemd": run_systemd}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crashes", type=int, default=200)
    parser.add_argument("--heap-mib", type=int, default=8)
    parser.add_argument("--gap-us", type=int, default=0, help="pause between crashes")
    parser.add_argument("--cold-cache", action="store_true",
                        help="start coredumpd with an empty symbol cache (default: warmed)")
    parser.add_argument("--only", default=",".join(HANDLERS),
                        help="comma-separated subset of " + ", ".join(HANDLERS))
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 2
    handlers = [h for h in HANDLERS if h in args.only.split(",") or h == "none"]  # the baseline
    started = time.monotonic()
    work_dir = Path(tempfile.mkdtemp(prefix="cds-", dir="/tmp"))
    results: dict[str, Result] = {}
    try:
        work = build(work_dir, (str(args.crashes), str(args.heap_mib), str(args.gap_us)),
                     not args.cold_cache)
        for handler in handlers:
            asked = time.monotonic()
            with crash_sysctls() as sysctls:  # per handler: other users of the lock get turns
                t = time.monotonic()
                journald = Journald()
                journald.start()
                try:
                    result = RUNNERS[handler](work, sysctls)
                finally:
                    journald.stop()  # only if it started one
            if result is not None:
                results[handler] = result
            print(f"{LABELS[handler]}: {time.monotonic() - t:.0f} s (after {t - asked:.0f} s "
                  "waiting for the core_pattern flock)", file=sys.stderr)
        status = report(results, work)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    print(f"(whole bench: {time.monotonic() - started:.0f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
