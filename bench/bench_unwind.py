"""End-to-end unwinder benchmark: ``coredumpd backtrace`` against ``eu-stack -i`` and gdb on the
same kernel-written cores, plus in-process unwind+symbolise time, in one table.

Cores (made in this run, core_pattern under ``coredumpd.sysctl.crash_sysctls()``):
- small: tests/programs/unwind/nested.c at -O2 -g (1 thread);
- threads: tests/programs/unwind/threads.c (8 threads in different blocking calls);
- node: ``node -e`` with busy worker_threads, then ``process.abort()``.

Times are medians of ``RUNS`` runs (``ours warm`` and eu-stack: ``PAIRED_RUNS``, taking
turns run by run), wall clock and, in parentheses, CPU (user + system: what other load on the
machine does not inflate). ``ours cold`` gets a fresh, empty
``--cache-dir`` each run; ``ours warm`` a cache filled by an earlier run; ``warm, new addr``
the same cache without its described addresses (``*.desc``): symbol and line tables cached,
every address asked for the first time, as for a new crash of the same builds. In-process:
``backtrace_from_core`` in this process, cold (empty cache) and warm (median of later calls
with the same cache, page cache hot). The OS page cache is hot for every tool (each is run
once before timing). The CLI runs without ``PYTHONDONTWRITEBYTECODE``, so that, as in an
installed coredumpd, it imports compiled bytecode (written by the untimed run) rather than
compiling every module from source on each run.

Run as root: ``.venv/bin/python bench/bench_unwind.py``
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coredumpd.sysctl import crash_sysctls, crash_sysctls_unavailable_reason  # noqa: E402
from tests.support.crash import crash_to_core_file  # noqa: E402
from unwinder.analyze import backtrace_from_core  # noqa: E402
from unwinder.core import CoreReader  # noqa: E402
from unwinder.symbols.cache import SymbolCache  # noqa: E402
from unwinder.symbols.locate import DebugFileLocator  # noqa: E402

RUNS = 5
#: runs of ours warm and eu-stack, taking turns
PAIRED_RUNS = 15
PROGRAMS = ROOT / "tests" / "programs" / "unwind"
COREDUMPD = [str(ROOT / ".venv" / "bin" / "coredumpd"), "backtrace"]
ENV = {k: v for k, v in os.environ.items()
       if k not in ("DEBUGINFOD_URLS", "PYTHONDONTWRITEBYTECODE")}

NODE_SCRIPT = r"""
const { Worker } = require('worker_threads');
const n = 4;
let ready = 0;
const body = 'require("worker_threads").parentPort.postMessage(1);' +
             'let x = 0; for (;;) { x = (x * 31 + 7) % 1000003; }';
for (let i = 0; i < n; i++) {
  new Worker(body, { eval: true }).on('message', () => {
    if (++ready === n) setTimeout(() => process.abort(), 300);
  });
}
"""


@dataclass
class Subject:
    name: str
    exe: Path
    core: Path


def _build(source: str, flags: list[str], out: Path) -> Path:
    compiler = "g++" if source.endswith(".cpp") else "gcc"
    subprocess.run([compiler, *flags, "-o", str(out), str(PROGRAMS / source)], check=True)
    return out


def make_cores(work: Path) -> list[Subject]:
    small = _build("nested.c", ["-g", "-O2"], work / "nested")
    threads = _build("threads.c", ["-g", "-O2", "-pthread"], work / "threads")
    node = Path(shutil.which("node") or "/usr/bin/node").resolve()
    subjects = []
    with crash_sysctls() as sysctls:
        for name, exe, args in (("small (nested -O2)", small, ()),
                                ("threads.c", threads, ()),
                                ("node workers", node, ("-e", NODE_SCRIPT))):
            crash = crash_to_core_file(sysctls, exe, work / "cores" / exe.name, args)
            subjects.append(Subject(name, exe, crash.core))
    return subjects


@dataclass(frozen=True)
class Timing:
    """Medians of wall-clock and CPU (user + system) seconds over ``RUNS`` runs."""

    wall: float
    cpu: float

    def ms(self) -> str:
        return f"{self.wall * 1e3:.0f} ({self.cpu * 1e3:.0f})"

    def ratio(self, other: Timing) -> str:
        return f"{self.wall / other.wall:.2f}x ({self.cpu / other.cpu:.2f}x)"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(make_argv, runs: int = RUNS, warmup: bool = True) -> Timing:  # type: ignore[no-untyped-def]
    """Median wall and CPU time of ``make_argv()`` as a subprocess (one untimed run first)."""
    return run_paired([make_argv], runs, warmup)[0]


def run_paired(makers, runs: int, warmup: bool = True) -> list[Timing]:  # type: ignore[no-untyped-def]
    """Like :func:`run_timed` for several commands, taking turns run by run: a drift of the
    machine's speed during the measurement weighs on each the same."""
    if warmup:
        for make_argv in makers:
            subprocess.run(make_argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=ENV)
    walls: list[list[float]] = [[] for _ in makers]
    cpus: list[list[float]] = [[] for _ in makers]
    for _ in range(runs):
        for i, make_argv in enumerate(makers):
            argv = make_argv()
            cpu, t = _children_cpu(), time.perf_counter()
            proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
            walls[i].append(time.perf_counter() - t)
            cpus[i].append(_children_cpu() - cpu)
            if proc.returncode not in (0, 1):
                raise RuntimeError(f"{argv[0]} failed: {proc.stderr.decode(errors='replace')}")
    return [Timing(statistics.median(w), statistics.median(c)) for w, c in zip(walls, cpus, strict=True)]


def in_process(core: Path, cache_dir: Path) -> tuple[int, int, Timing, Timing]:
    """(threads, frames, cold, warm) of backtrace_from_core in this process; cold is the first
    call with an empty cache, warm the median of the next ``RUNS`` calls with the same cache."""
    locator = DebugFileLocator(debuginfod_urls=[])
    cache = SymbolCache(cache_dir)
    walls, cpus = [], []
    with CoreReader(core, zero_fill=False) as reader:
        for _ in range(RUNS + 1):
            cpu, t = time.process_time(), time.perf_counter()
            backtrace = backtrace_from_core(reader, locator=locator, cache=cache)
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - cpu)
    frames = sum(len(t.frames) for t in backtrace.threads)
    return (len(backtrace.threads), frames, Timing(walls[0], cpus[0]),
            Timing(statistics.median(walls[1:]), statistics.median(cpus[1:])))


def eu_stack_frames(core: Path) -> int:
    text = subprocess.run(["eu-stack", "-i", f"--core={core}"], capture_output=True, text=True,
                          env=ENV, errors="replace").stdout
    return sum(1 for line in text.splitlines() if line.startswith("#"))


def measure(subject: Subject, work: Path) -> list[str]:
    slot = work / "caches" / subject.exe.name  # one subject's caches only: cold means cold
    threads, frames, ip_cold, ip_warm = in_process(subject.core, slot / "inproc-cache")
    fresh = (slot / f"cold-{i}" for i in range(1000))
    ours = [*COREDUMPD, str(subject.core), "--cache-dir"]
    # cold: every run (the untimed one included) gets its own empty cache directory
    cold = run_timed(lambda: [*ours, str(next(fresh))])
    # the comparison that matters, taking turns with eu-stack
    warm, eu = run_paired([lambda: [*ours, str(slot / "warm-cache")],
                           lambda: ["eu-stack", "-i", f"--core={subject.core}"]], PAIRED_RUNS)

    def without_described() -> list[str]:
        for path in (slot / "tables-cache").glob("*.desc"):
            path.unlink()
        return [*ours, str(slot / "tables-cache")]

    warm_new = run_timed(without_described)
    gdb = run_timed(lambda: ["gdb", "-nx", "-batch", "-ex", "set pagination off", "-ex",
                             "thread apply all bt", str(subject.exe), str(subject.core)])
    return [subject.name, str(threads), f"{frames}/{eu_stack_frames(subject.core)}",
            cold.ms(), warm.ms(), warm_new.ms(), eu.ms(), gdb.ms(), cold.ratio(eu), warm.ratio(eu),
            ip_cold.ms(), ip_warm.ms(), f"{ip_warm.wall / frames * 1e6:.0f}"]


HEADER = ["core", "threads", "frames ours/eu", "ours cold ms", "ours warm ms",
          "warm, new addr ms", "eu-stack ms",
          "gdb ms", "cold/eu", "warm/eu", "in-proc cold ms", "in-proc warm ms", "warm µs/frame"]


def startup_floors() -> tuple[Timing, Timing]:
    """What every CLI run pays before any work: the CLI doing nothing (``backtrace --help``:
    interpreter, argument parser, verb modules), and importing the unwinder."""
    return (run_timed(lambda: [*COREDUMPD, "--help"]),
            run_timed(lambda: [sys.executable, "-c", "import unwinder.analyze"]))


def main() -> int:
    reason = crash_sysctls_unavailable_reason()
    if reason:
        print(f"bench_unwind: {reason}", file=sys.stderr)
        return 1
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-unwind-") as tmp:
        work = Path(tmp)
        subjects = make_cores(work)
        rows = [HEADER] + [measure(s, work) for s in subjects]
        cli_floor, import_floor = startup_floors()
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    for row in rows:
        print("  ".join(cell.rjust(w) if i else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
    print(f"times: median of {RUNS} runs (ours warm and eu-stack: {PAIRED_RUNS}, taking turns), wall ms (CPU ms, user+sys); ratios ours/eu-stack, "
          f"wall (CPU); frames include inline frames; before any work the CLI pays "
          f"{cli_floor.ms()} ms (backtrace --help) and python + importing the unwinder "
          f"{import_floor.ms()} ms; load average before/after: {load_before} / "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
