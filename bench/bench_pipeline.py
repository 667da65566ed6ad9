"""The capture pipeline against systemd-coredump 252 and the physical limit, on the same crashes.

Three programs are compiled in the run (``bench/programs/pipecrash.c``): 1 GiB of
random-filled heap, 1 GiB of constant-filled heap, and 100 idle threads with a small heap.
Each one fills its memory, says "ready", and crashes (SIGSEGV) when a byte arrives on stdin,
so the clock covers the crash and not the fill. Every program crashes under each handler:

- ``pipe limit``: ``core_pattern`` pipes to ``cat > /dev/null`` (through a script in a
  short /tmp dir: the kernel runs no shell, and keeps 127 bytes of pattern);
- ``kernel file mode``: ``core_pattern`` is a file on the file system the other handlers
  store on: the kernel writes the core itself (uncompressed, holes skipped, no fsync). Not
  a handler to beat, the floor of *storing* the bytes here: on these VMs every page of page
  cache taken fresh costs a host fault (the balloon's free page reporting hands freed
  memory back to the host), so writing 1 GiB of random bytes costs more than piping it;
- ``coredumpd``: the pipe door from :func:`coredumpd.install.install` (inside
  :func:`coredumpd.sysctl.crash_sysctls`), with ``coredumpd serve`` taking the hand-off;
- ``coredumpd, no spool``: the same with ``SpoolSize=0`` (:mod:`coredumpd.spool`): what the
  spool buys, measured in the same rounds;
- ``coredumpd, no daemon``: the same door, the helper runs the pipeline itself (no spool:
  that is the daemon's);
- ``systemd-coredump``: Debian's pattern
  ``|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h %d`` with
  ``core_pipe_limit=16``, the per-crash service started by ``systemd-socket-activate`` on
  ``/run/systemd/coredump`` (standing in for ``systemd-coredump.socket``), journald running.

Measures, median of ``--reps`` × ``--rounds`` runs (by default 2 × 3: the handlers take turns
round by round, as the speed of these VMs drifts, up to 2x over minutes for the pipe limit
itself, and a ratio is only fair between handlers measured in the same stretches of time;
even so one run's "x limit" for the random core moved between 0.76 and 1.37 for the same
code, 27 trials pooled over three runs gave 1.13):

- **reaped**: from just before the trigger byte is written to ``waitpid`` returning in the
  parent (the parent sees the death when the kernel releases the task);
- **CPU** and **peak RSS** of the handler. A kernel-spawned helper is nobody's child we can
  wait for, so each one runs under ``bench/programs/rusage_wrap.c``: it forks the real
  helper, waits, and appends ``getrusage(RUSAGE_CHILDREN)`` (user+sys CPU and ``ru_maxrss``
  of the helper and anything it waited for) to a log. Exact, not sampled, and it costs one
  fork. systemd's service instances run under the same wrapper. The long-lived daemon is
  measured directly: CPU as the change of utime+stime+cutime+cstime in ``/proc/<pid>/stat``
  across the crash (with ``--spool``, the writing of a new spool after a core that took the
  old one too, :mod:`coredumpd.spool`: the next crash waits for it), peak RSS as ``VmHWM``
  after resetting it (``echo 5 > /proc/<pid>/clear_refs``) before the crash; the child it
  runs when the symbol cache lacks a crash's addresses reports its own peak RSS (``wait4``)
  in the daemon's record line. A handler's CPU is the sum over its processes, its peak RSS
  the maximum;
- **durable**: from the trigger to the core's final name appearing (both tools fsync before
  the link), plus, for coredumpd, until its catalog row is there;
- **hand-off** (coredumpd with the daemon): the helper's own kernel-log line, from its
  ``main()`` to ``hand_off()`` returning True; and from the wrapper's exec of the helper
  (interpreter start-up included) to that same instant, both CLOCK_MONOTONIC.

Run as root (takes the core_pattern flock per handler, restores everything):

    .venv/bin/python bench/bench_pipeline.py [--reps 2] [--rounds 3] [--spool SIZE] [--only coredumpd,limit,…] [--programs random,…] [--gib 1] [--trials]

(``--spool``: the daemon's ``SpoolSize=``, the product's default when not given.)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coredumpd.install import install, uninstall  # noqa: E402
from coredumpd.sysctl import CrashSysctls, crash_sysctls  # noqa: E402
from coredumpd.vacuum import SPOOL  # noqa: E402
from tests.support.journald import Journald  # noqa: E402

BIN = Path(sys.executable).parent
SD_COREDUMP = Path("/lib/systemd/systemd-coredump")
SD_SOCKET = Path("/run/systemd/coredump")
SD_STORE = Path("/var/lib/systemd/coredump")
SD_PATTERN_ARGS = "%P %u %g %s %t 9223372036854775808 %h %d"
MAX_PATTERN = 127
DEVKMSG = Path("/proc/sys/kernel/printk_devkmsg")
DEADLINE_S = 180.0

PROGRAMS: dict[str, tuple[str, ...]] = {
    "1 GiB random": ("random", "1024", "1"),
    "1 GiB constant": ("constant", "1024", "1"),
    "100 idle threads": ("constant", "4", "100"),
}
HANDLERS = ("limit", "file", "coredumpd", "coredumpd-nospool", "coredumpd-nodaemon", "systemd")
LABELS = {"limit": "pipe limit (cat)", "file": "kernel file mode", "coredumpd": "coredumpd",
          "coredumpd-nospool": "coredumpd, no spool", "coredumpd-nodaemon": "coredumpd, no daemon",
          "systemd": "systemd-coredump 252"}
GOAL_REAPED_X = 1.3
GOAL_RSS_MIB = 64
GOAL_HANDOFF_MS = 30.0
CHILD_RSS = re.compile(r"symbols in a child: .* peak RSS (\d+) KiB")
HANDOFF_LINE = re.compile(r"pid (\d+) handed off to the daemon in ([\d.]+) ms "
                          r"\(at monotonic ([\d.]+)\)")


@dataclass
class Trial:
    reaped: float
    cpu: float | None = None
    rss_kib: int | None = None
    durable: float | None = None
    recorded: float | None = None
    handoff_ms: float | None = None
    exec_handoff_ms: float | None = None
    stored_bytes: int | None = None
    steps: str | None = None  # the daemon's own account of where the time went


@dataclass
class Usage:
    tag: str
    arg: str
    start: float
    end: float
    cpu: float
    maxrss_kib: int


@dataclass
class Work:
    dir: Path  # short: it goes into core_pattern
    crasher: Path
    wrap: Path
    log: Path
    results: dict[tuple[str, str], list[Trial]] = field(default_factory=dict)
    spool_lines: list[str] = field(default_factory=list)  # the daemon's, about its spool


# -- building -------------------------------------------------------------------------------


def build(work_dir: Path) -> Work:
    log = work_dir / "rusage.log"
    crasher, wrap = work_dir / "pipecrash", work_dir / "rw"
    programs = ROOT / "bench" / "programs"
    for cmd in (["gcc", "-O2", "-pthread", "-o", str(crasher), str(programs / "pipecrash.c")],
                ["gcc", "-O2", f'-DLOG="{log}"', "-o", str(wrap), str(programs / "rusage_wrap.c")]):
        subprocess.run(cmd, check=True)
    return Work(work_dir, crasher, wrap, log)


def read_usages(log: Path) -> list[Usage]:
    try:
        lines = log.read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        tag, arg, start, end, utime, stime, rss, _status = line.split()
        out.append(Usage(tag, arg, int(start) / 1e9, int(end) / 1e9, float(utime) + float(stime),
                         int(rss)))
    return out


def wait_until(predicate: Callable[[], object], what: str, timeout: float = DEADLINE_S) -> object:
    end = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)
    return value


# -- one crash ------------------------------------------------------------------------------


class FileWatch(threading.Thread):
    """Notes when a file whose name contains ``.<pid>.`` (not a ``.#`` temp) shows up."""

    def __init__(self, directory: Path, t0_box: list[float]) -> None:
        super().__init__(daemon=True)
        self.directory, self.t0_box = directory, t0_box
        self.pid: int | None = None
        self.seen: float | None = None
        self.path: Path | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.pid is not None:
                key = f".{self.pid}."
                for entry in os.scandir(self.directory):
                    if key in entry.name and entry.name.startswith("core."):
                        self.seen = time.monotonic()
                        self.path = Path(entry.path)
                        return
            time.sleep(0.002)


def crash(work: Work, args: tuple[str, ...], watch_dir: Path | None) -> tuple[int, float, Trial, FileWatch | None]:
    """Start the program, wait for "ready", trigger the crash; returns (pid, t0, trial)."""
    proc = subprocess.Popen([str(work.crasher), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: __import__("resource").setrlimit(
                                __import__("resource").RLIMIT_CORE, (-1, -1)))
    assert proc.stdout is not None and proc.stdin is not None
    if proc.stdout.readline() != b"ready\n":
        proc.kill()
        raise RuntimeError("the crasher did not get ready")
    watch = None
    if watch_dir is not None:
        watch = FileWatch(watch_dir, [])
        watch.pid = proc.pid
        watch.start()
    t0 = time.monotonic()
    proc.stdin.write(b"x")
    proc.stdin.flush()
    _, status = os.waitpid(proc.pid, 0)
    reaped = time.monotonic() - t0
    proc.returncode = -1  # reaped here; keep Popen from waiting again
    proc.stdin.close()
    proc.stdout.close()
    if not os.WIFSIGNALED(status):
        raise RuntimeError(f"the crasher did not crash (status {status:#x})")
    return proc.pid, t0, Trial(reaped), watch


def finish_watch(watch: FileWatch | None, t0: float, trial: Trial) -> Path | None:
    if watch is None:
        return None
    watch.join(timeout=DEADLINE_S)
    watch.stop.set()
    if watch.seen is not None:
        trial.durable = watch.seen - t0
    return watch.path


def usage_for(work: Work, tag: str, pid: int | None, t0: float) -> Usage:
    def find() -> Usage | None:
        for usage in read_usages(work.log):
            if usage.tag == tag and usage.start >= t0 - 1 and (pid is None or usage.arg == str(pid)):
                return usage
        return None

    return wait_until(find, f"the {tag} process to exit")  # type: ignore[return-value]


# -- handlers -------------------------------------------------------------------------------


def wrapped_pattern(work: Work, tag: str, command: str) -> str:
    pattern = f"|{work.wrap} {tag} {command}"
    if len(pattern) > MAX_PATTERN:
        raise RuntimeError(f"pattern too long ({len(pattern)} bytes): {pattern}")
    return pattern


def run_limit(work: Work, sysctls: CrashSysctls, reps: int) -> None:
    script = work.dir / "catnull"
    script.write_text("#!/bin/sh\nexec cat > /dev/null\n")
    script.chmod(0o755)
    sysctls.set(core_pipe_limit=0, suid_dumpable=0,
                core_pattern=wrapped_pattern(work, "limit", f"{script} %P"))
    for name, args in PROGRAMS.items():
        for _ in range(reps):
            pid, t0, trial, _w = crash(work, args, None)
            usage = usage_for(work, "limit", pid, t0)
            trial.cpu, trial.rss_kib = usage.cpu, usage.maxrss_kib
            work.results.setdefault(("limit", name), []).append(trial)


def run_file(work: Work, sysctls: CrashSysctls, reps: int) -> None:
    """The kernel writing the core itself, uncompressed, into a file on the file system the
    cores of coredumpd and systemd go to: what storing the bytes costs on this machine,
    with no pipe and no program in the way (no fsync; CPU is the crashing task's own)."""
    directory = Path(tempfile.mkdtemp(prefix="cdb-file-", dir="/var/tmp"))
    try:
        sysctls.set(core_pipe_limit=0, suid_dumpable=0, core_pattern=f"{directory}/core.%p")
        for name, args in PROGRAMS.items():
            for _ in range(reps):
                pid, _t0, trial, _w = crash(work, args, None)
                core = directory / f"core.{pid}"
                trial.stored_bytes = core.stat().st_blocks * 512 if core.exists() else None
                core.unlink(missing_ok=True)
                work.results.setdefault(("file", name), []).append(trial)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Daemon:
    """``coredumpd serve``, its output collected line by line; stopped by its PID."""

    def __init__(self, config: Path, state: Path, socket_path: Path) -> None:
        # `coredumpd serve`'s own function, without the CLI's verb discovery (other verbs are
        # being edited while this runs; serve is what is measured)
        code = ("import argparse, sys; from coredumpd.cli.serve import run; "
                f"sys.exit(run(argparse.Namespace(config={str(config)!r}, state_dir={str(state)!r})))")
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_until(lambda: socket_path.exists() or self.proc.poll() is not None, "the daemon", 30)
        if self.proc.poll() is not None:
            raise RuntimeError("coredumpd serve exited: " + "".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.decode(errors="replace"))

    def cpu(self) -> float:
        """utime + stime, and cutime + cstime: the children it waited for (the symbols
        child) are its cost too."""
        data = Path(f"/proc/{self.proc.pid}/stat").read_bytes()
        fields = data[data.rindex(b")") + 2:].split()
        return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def reset_hwm(self) -> None:
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def hwm_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.reader.join(timeout=5)


def spool_back(core_dir: Path, timeout: float = 60.0) -> None:
    """Wait for the daemon's spool to be written again (it may not be, when the file system
    has no room for one: then, for at most ``timeout``)."""
    end = time.monotonic() + timeout
    while not (core_dir / SPOOL).exists() and time.monotonic() < end:
        time.sleep(0.02)


def catalog_has(catalog: Path, pid: int) -> bool:
    if not catalog.exists():
        return False
    try:
        with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=1) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            return any(db.execute(f"SELECT 1 FROM {t} WHERE pid = ?", (pid,)).fetchone()
                       for t in tables if t.startswith("crashes"))
    except sqlite3.Error:
        return False


def child_rss_kib(line: str) -> int:
    """The peak RSS of the daemon's symbols child for this crash, from its record line
    (0 when none ran: every address was in the symbol cache)."""
    match = CHILD_RSS.search(line)
    return int(match.group(1)) if match else 0


def handoff_from_dmesg(pid: int) -> tuple[float, float] | None:
    out = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    for match in HANDOFF_LINE.finditer(out):
        if int(match.group(1)) == pid:
            return float(match.group(2)), float(match.group(3))
    return None


def run_coredumpd(work: Work, sysctls: CrashSysctls, reps: int, *, tag: str,
                  spool: str | None = None) -> None:
    daemon = tag != "coredumpd-nodaemon"
    if tag == "coredumpd-nospool":
        spool = "0"
    base = Path(tempfile.mkdtemp(prefix="cdb-state-", dir="/var/tmp"))
    socket_dir = Path(tempfile.mkdtemp(prefix="cdb-", dir="/run"))
    state, config = base / "state", base / "coredump.conf"
    socket_path = socket_dir / "handoff.sock"
    # one program crashes again and again here: no rate limit may turn a trial away
    config.write_text(f"[Coredump]\n\n[Coredumpd]\nHandoffSocket={socket_path}\n"
                      "RateLimitBurst=100000\nUnitRateLimitBurst=100000\n"
                      + (f"SpoolSize={spool}\n" if spool is not None else ""))
    helper_dir = work.dir / tag[-3:]
    server = None
    try:
        installed = install(state_dir=state, mode="pipe", helper_dir=helper_dir, config=config,
                            persist=False, lock=False)
        sysctls.set(core_pattern=wrapped_pattern(work, "helper", installed.pattern[1:]))
        if daemon:
            server = Daemon(config, state, socket_path)
        core_dir, catalog = state / "coredump", state / "catalog.sqlite"
        core_dir.mkdir(parents=True, exist_ok=True)
        if server is not None and spool != "0":
            spool_back(core_dir)  # written as the daemon starts: a running machine has it
        for name, args in PROGRAMS.items():
            for _ in range(reps):
                if server is not None:
                    server.reset_hwm()
                    cpu_before = server.cpu()
                pid, t0, trial, watch = crash(work, args, core_dir)
                path = finish_watch(watch, t0, trial)
                wait_until(lambda p=pid: catalog_has(catalog, p), f"the catalog row of {pid}")
                trial.recorded = time.monotonic() - t0  # an upper bound (polled after the file)
                helper = usage_for(work, "helper", pid, t0)
                trial.cpu, trial.rss_kib = helper.cpu, helper.maxrss_kib
                if server is not None:
                    line = wait_until(lambda p=pid: next((line for line in server.lines
                                                          if f"recorded pid {p} " in line), None),
                                      f"the daemon to finish pid {pid}")
                    trial.steps = str(line).rstrip().partition("recorded ")[2]
                    # a core written into the spool is followed by a new spool: its writing
                    # is this crash's cost too
                    if "(into the spool)" in trial.steps:
                        spool_back(core_dir)
                    trial.cpu += server.cpu() - cpu_before
                    trial.rss_kib = max(trial.rss_kib, server.hwm_kib(), child_rss_kib(line))
                    found = wait_until(lambda p=pid: handoff_from_dmesg(p), "the hand-off line", 10)
                    ms, at = found  # type: ignore[misc]
                    trial.handoff_ms = ms
                    trial.exec_handoff_ms = (at - helper.start) * 1e3
                if path is not None:
                    trial.stored_bytes = path.stat().st_size
                    path.unlink()
                work.results.setdefault((tag, name), []).append(trial)
    finally:
        if server is not None:
            server.stop()
            work.spool_lines += [line.strip() for line in server.lines if "core spool" in line]
        try:
            uninstall(state_dir=state, lock=False)
        except Exception as err:  # noqa: BLE001 - crash_sysctls restores the values anyway
            print(f"uninstall: {err}", file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(socket_dir, ignore_errors=True)
        shutil.rmtree(helper_dir, ignore_errors=True)


def systemd_unavailable() -> str | None:
    """Why systemd-coredump cannot be measured here, or None."""
    if not SD_COREDUMP.exists() or not shutil.which("systemd-socket-activate"):
        return "systemd-coredump or systemd-socket-activate missing"
    if SD_SOCKET.exists():
        return f"{SD_SOCKET} exists (someone else's)"
    return None


def start_systemd_service(wrap: Path) -> subprocess.Popen[bytes]:
    """systemd-coredump's per-crash service behind ``/run/systemd/coredump`` (standing in for
    ``systemd-coredump.socket``), each instance under the rusage wrapper."""
    return subprocess.Popen(["systemd-socket-activate", "--seqpacket", "-a", "-l", str(SD_SOCKET),
                             str(wrap), "sdservice", str(SD_COREDUMP)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_systemd(work: Work, sysctls: CrashSysctls, reps: int) -> None:
    why = systemd_unavailable()
    if why is not None:
        print(f"{why}: systemd-coredump skipped", file=sys.stderr)
        return
    journald = Journald()
    journald.start()
    SD_STORE.mkdir(parents=True, exist_ok=True)
    before = set(os.listdir(SD_STORE))
    activate = start_systemd_service(work.wrap)
    try:
        wait_until(lambda: SD_SOCKET.exists() or activate.poll() is not None, "the coredump socket", 30)
        # Debian's 50-coredump.conf; suid_dumpable with the pattern (set, then restored first)
        sysctls.set(core_pipe_limit=16, suid_dumpable=2,
                    core_pattern=wrapped_pattern(work, "sdhelper", f"{SD_COREDUMP} {SD_PATTERN_ARGS}"))
        for name, args in PROGRAMS.items():
            for _ in range(reps):
                pid, t0, trial, watch = crash(work, args, SD_STORE)
                path = finish_watch(watch, t0, trial)
                helper = usage_for(work, "sdhelper", pid, t0)
                service = usage_for(work, "sdservice", None, t0)
                trial.cpu = helper.cpu + service.cpu
                trial.rss_kib = max(helper.maxrss_kib, service.maxrss_kib)
                if path is not None:
                    trial.stored_bytes = path.stat().st_size
                    path.unlink()
                work.results.setdefault(("systemd", name), []).append(trial)
                _clear_log_tag(work.log, "sdservice")
    finally:
        sysctls.set(suid_dumpable=0)  # before the pattern is restored: no "unsafe pattern" warning
        os.kill(activate.pid, signal.SIGTERM)
        activate.wait(timeout=30)
        try:
            SD_SOCKET.unlink()
        except FileNotFoundError:
            pass
        for leftover in set(os.listdir(SD_STORE)) - before:
            if ".pipecrash." in leftover:
                (SD_STORE / leftover).unlink(missing_ok=True)
        journald.stop()  # only if it started one


def _clear_log_tag(log: Path, tag: str) -> None:
    """Service records carry no pid: drop them once used so the next crash finds its own."""
    lines = [line for line in log.read_text().splitlines(keepends=True) if not line.startswith(tag + " ")]
    log.write_text("".join(lines))


# -- report ---------------------------------------------------------------------------------


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(work: Work, handlers: list[str], reps: int) -> int:
    rows = []
    header = ("program", "handler", "reaped s", "x limit", "CPU s", "peak RSS MiB", "durable s",
              "recorded s", "hand-off ms", "exec→hand-off ms", "stored MiB")
    missed: list[str] = []
    for name in PROGRAMS:
        limit = median([t.reaped for t in work.results.get(("limit", name), [])])
        for handler in handlers:
            trials = work.results.get((handler, name))
            if not trials:
                continue
            reaped = median([t.reaped for t in trials])
            rss = median([t.rss_kib for t in trials])
            ratio = reaped / limit if (limit and reaped is not None) else None
            stored = median([t.stored_bytes for t in trials])
            rows.append((name, LABELS[handler], fmt(reaped, ".3f"), fmt(ratio, ".2f"),
                         fmt(median([t.cpu for t in trials]), ".2f"),
                         fmt(rss / 1024 if rss else None, ".1f"),
                         fmt(median([t.durable for t in trials]), ".3f"),
                         fmt(median([t.recorded for t in trials]), ".3f"),
                         fmt(median([t.handoff_ms for t in trials]), ".1f"),
                         fmt(median([t.exec_handoff_ms for t in trials]), ".1f"),
                         fmt(stored / 2**20 if stored is not None else None, ".1f")))
            if handler.startswith("coredumpd"):
                worst_rss = max((t.rss_kib for t in trials if t.rss_kib is not None), default=None)
                checks = [(f"crash→reaped ≤ {GOAL_REAPED_X}× limit", ratio, GOAL_REAPED_X, ".2f"),
                          (f"peak RSS ≤ {GOAL_RSS_MIB} MiB (median)", rss / 1024 if rss else None,
                           GOAL_RSS_MIB, ".1f"),
                          (f"peak RSS ≤ {GOAL_RSS_MIB} MiB (worst of {len(trials)})",
                           worst_rss / 1024 if worst_rss else None, GOAL_RSS_MIB, ".1f")]
                if handler == "coredumpd":
                    worst = max((t.handoff_ms for t in trials if t.handoff_ms is not None), default=None)
                    checks.append((f"hand-off ≤ {GOAL_HANDOFF_MS:.0f} ms (worst of {len(trials)})",
                                   worst, GOAL_HANDOFF_MS, ".1f"))
                for goal, value, bound, spec in checks:
                    met = value is not None and value <= bound
                    line = f"{LABELS[handler]:22} {name:17} {goal:38} {fmt(value, spec):>8}  " \
                           f"{'met' if met else 'MISSED'}"
                    rows_goals.append(line)
                    if not met and handler == "coredumpd":
                        missed.append(line)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\nCapture pipeline, median of {reps} (kernel {os.uname().release}, "
          f"{os.cpu_count()} CPUs)\n")
    for i, row in enumerate([header, *rows]):
        print("  ".join(str(c).ljust(w) if j < 2 else str(c).rjust(w)
                        for j, (c, w) in enumerate(zip(row, widths, strict=True))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("\nGoals (coredumpd is judged with its daemon; without it, shown for information):")
    for line in rows_goals:
        print("  " + line)
    return 1 if missed else 0


rows_goals: list[str] = []


def disk_floor(size: int, directory: Path = Path("/var/tmp")) -> tuple[float, float]:
    """Seconds to write ``size`` bytes of random data from memory to a new file in
    ``directory`` (the state directory's file system) through coredumpd's O_DIRECT writer,
    close included, and to write them again over the same blocks: the floors under storing
    an incompressible core into new blocks, and into a spool's (:mod:`coredumpd.spool`)."""
    from coredumpd.directout import SEGMENT, open_direct

    block = os.urandom(SEGMENT)
    fd, name = tempfile.mkstemp(prefix="disk-floor-", dir=directory)
    try:
        times = []
        for _ in range(2):
            writer = open_direct(fd)
            if writer is None:
                raise RuntimeError(f"{directory} refuses O_DIRECT")
            start = time.monotonic()
            for _ in range(size // SEGMENT):
                writer.write(block)
            writer.close()
            times.append(time.monotonic() - start)
        return times[0], times[1]
    finally:
        os.close(fd)
        os.unlink(name)


def print_disk_floor(gib: int, reps: int) -> None:
    runs = [disk_floor(gib << 30) for _ in range(reps)]
    for what, times in (("into new blocks", sorted(r[0] for r in runs)),
                        ("over written blocks", sorted(r[1] for r in runs))):
        print(f"\nDisk floor, {what}: {gib} GiB of random bytes written from memory with O_DIRECT "
              f"(the storage path's writer) on /var/tmp's file system: median "
              f"{statistics.median(times):.3f} s ({', '.join(f'{t:.3f}' for t in times)}); the "
              f"pipe limit does not store its bytes.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--spool", default=None, metavar="SIZE",
                        help="the daemon's SpoolSize= (the product's default unless given)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="run every handler's --reps trials this many times, the handlers "
                             "taking turns: this VM's speed drifts by 2x over minutes, and the "
                             "ratios compare handlers measured in the same stretches of time")
    parser.add_argument("--only", default=",".join(HANDLERS),
                        help="comma-separated subset of " + ", ".join(HANDLERS))
    parser.add_argument("--programs", default="",
                        help="comma-separated words: run only the programs whose name holds one "
                             "(e.g. random,threads)")
    parser.add_argument("--gib", type=int, default=1,
                        help="size of the random and constant programs, in GiB (memory must "
                             "not grow with it: the RSS goal holds at any core size)")
    parser.add_argument("--trials", action="store_true",
                        help="also print every trial (the first crash of a daemon runs with a "
                             "cold symbol cache)")
    args = parser.parse_args()
    if args.gib != 1:
        sized = {(f"{args.gib} GiB {a[0]}" if n.startswith("1 GiB") else n):
                 ((a[0], str(args.gib << 10), a[2]) if n.startswith("1 GiB") else a)
                 for n, a in PROGRAMS.items()}
        PROGRAMS.clear()
        PROGRAMS.update(sized)
    if args.programs:
        words = args.programs.split(",")
        for name in [n for n in PROGRAMS if not any(w in n for w in words)]:
            del PROGRAMS[name]
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 2
    handlers = [h for h in HANDLERS if h in args.only.split(",")]
    if "limit" not in handlers:
        handlers.insert(0, "limit")  # every ratio needs it
    work_dir = Path(tempfile.mkdtemp(prefix="cdb-", dir="/tmp"))
    started = time.monotonic()
    # userspace lines in the kernel log are rate-limited (10 per 5 s, shared by every writer):
    # the helper's hand-off line must not be dropped while we measure
    devkmsg = DEVKMSG.read_text().strip()
    try:
        DEVKMSG.write_text("on\n")
        work = build(work_dir)
        for round_no in range(args.rounds):
            for handler in handlers:
                t = time.monotonic()
                with crash_sysctls() as sysctls:  # per handler: other users of the lock get turns
                    if handler == "limit":
                        run_limit(work, sysctls, args.reps)
                    elif handler == "file":
                        run_file(work, sysctls, args.reps)
                    elif handler == "systemd":
                        run_systemd(work, sysctls, args.reps)
                    else:
                        run_coredumpd(work, sysctls, args.reps, tag=handler, spool=args.spool)
                print(f"{LABELS[handler]} (round {round_no + 1}): {time.monotonic() - t:.0f} s",
                      file=sys.stderr)
        status = report(work, handlers, args.reps * args.rounds)
        print_disk_floor(args.gib, args.reps)
        if args.trials:
            print("\nEvery trial, in order (reaped s / peak RSS MiB):")
            for (handler, name), trials in work.results.items():
                print(f"  {LABELS[handler]:22} {name:17} " + "  ".join(
                    f"{t.reaped:.3f}/{(t.rss_kib or 0) / 1024:.0f}" for t in trials))
            steps = [(handler, name, t.steps) for (handler, name), trials in work.results.items()
                     for t in trials if t.steps]
            if steps:
                print("\nThe daemon's steps, per trial:")
                for handler, name, line in steps:
                    print(f"  {LABELS[handler]:22} {name:17} {line}")
            if work.spool_lines:
                print("\nThe daemon's spool, in order:")
                for line in work.spool_lines:
                    print("  " + line)
    finally:
        DEVKMSG.write_text(devkmsg + "\n")
        shutil.rmtree(work_dir, ignore_errors=True)
    print(f"\n(whole bench: {time.monotonic() - started:.0f} s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
