"""What ``coredumpd catch`` costs a program that does not crash, and what ``coredumpd snapshot``
costs against gdb's ``gcore``.

(a) syscall-heavy: 2,000,000 ``getppid()``; the catcher traces no syscalls, so the goal is
    ≤ 1.05× of the direct run. (b) fork-heavy: 2,000 children forked and reaped one by one; the
    tracer sees every fork, each child's first stop and its exit. Both print their loop's own
    time; the table shows that (the tracer's share) and the whole run's wall time (which also
    holds the catcher's start-up, shown alone as ``catch -- /bin/true``). Medians of 5, direct
    and caught runs alternating.

(c) a 1 GiB process (``malloc`` + ``memset`` 0x5a, then ``pause``): ``coredumpd snapshot PID``
    into a temporary state directory against ``gcore -o DIR/core PID``, each run 3 times,
    alternating: wall time, how long the process was held (snapshot's own report; all of
    gcore's run), the core's size (written, and as stored), and whether the process still
    runs with its memory intact afterwards (it sums every byte on SIGUSR1).

Run as root: ``.venv/bin/python bench/bench_catch.py`` (needs gcc and gdb).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROGRAMS = REPO / "bench" / "programs"
COREDUMPD = [sys.executable, "-m", "coredumpd.cli.main"]

ROUNDS = 5
SYSCALLS = 2_000_000
FORKS = 2_000
BIG_MIB = 1024
BIG_ROUNDS = 3
SYSCALL_GOAL = 1.05


def compile_programs(out: Path) -> dict[str, Path]:
    exes = {}
    for name in ("syscalls", "forks", "bigproc"):
        exe = out / name
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(PROGRAMS / f"{name}.c")],
                       check=True)
        exes[name] = exe
    return exes


def timed(argv: list[str]) -> tuple[float, list[float]]:
    """Wall seconds of ``argv``, and the times (seconds) it printed: loop wall[, loop CPU]."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{argv}: exit {proc.returncode}: {proc.stderr.strip()}")
    words = proc.stdout.split()
    return wall, [int(w) / 1e9 for w in words[:2]]


def compare(direct: list[str], caught: list[str]) -> dict[str, tuple[float, float]]:
    """Medians (direct, caught) of the whole run's wall time and the program's own loop times."""
    timed(direct), timed(caught)  # warm-up: page cache, the catcher's .pyc files
    runs: dict[str, list[list[float]]] = {"wall": [[], []], "loop": [[], []], "cpu": [[], []]}
    for _ in range(ROUNDS):
        for side, argv in enumerate((direct, caught)):
            wall, loop = timed(argv)
            runs["wall"][side].append(wall)
            for key, value in zip(("loop", "cpu"), loop, strict=False):
                runs[key][side].append(value)
    return {k: (statistics.median(d), statistics.median(c)) for k, (d, c) in runs.items() if d}


# -- (c) the 1 GiB process ------------------------------------------------------------------


def state_of(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2]


def tracer_of(pid: int) -> int:
    match = re.search(r"^TracerPid:\s*(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(match.group(1)) if match else -1


def wait_sleeping(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while state_of(pid) != "S":
        if time.monotonic() > deadline:
            sys.exit(f"pid {pid} never went to sleep")
        time.sleep(0.005)


def still_runs(proc: subprocess.Popen[str], expected_sum: int) -> bool:
    """Sleeping, untraced, answering SIGUSR1 with the sum of its untouched memory."""
    wait_sleeping(proc.pid)
    if proc.poll() is not None or tracer_of(proc.pid) != 0:
        return False
    proc.send_signal(signal.SIGUSR1)
    assert proc.stdout is not None
    return proc.stdout.readline().strip() == f"sum {expected_sum}"


def snapshot_once(pid: int, work: Path) -> tuple[float, float, int, int]:
    """Wall seconds, seconds the process was held, core bytes written, bytes stored
    (compressed) for one snapshot. One state directory for all: its symbol cache is warm after
    the first, as a long-lived store's is."""
    state = work / "state"
    start = time.perf_counter()
    proc = subprocess.run([*COREDUMPD, "snapshot", str(pid), "--state-dir", str(state)],
                          capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    match = re.search(r"core of (\d+) bytes \(\d+ threads held (\d+) ms", proc.stdout)
    if proc.returncode != 0 or not match:
        sys.exit(f"snapshot failed: {proc.stdout}{proc.stderr}")
    stored = 0
    for core in (state / "coredump").iterdir():
        stored = core.stat().st_size
        core.unlink()
    return wall, int(match.group(2)) / 1e3, int(match.group(1)), stored


def gcore_once(pid: int, work: Path) -> tuple[float, float, int, int]:
    """Wall seconds, seconds held (the whole run: gdb stops it from attach to detach), core
    size, bytes on disk for one ``gcore``."""
    prefix = work / "gcore"
    start = time.perf_counter()
    proc = subprocess.run(["gcore", "-o", str(prefix), str(pid)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    core = Path(f"{prefix}.{pid}")
    if proc.returncode != 0 or not core.exists():
        sys.exit(f"gcore failed: {proc.stdout}{proc.stderr}")
    st = core.stat()
    core.unlink()
    return wall, wall, st.st_size, st.st_blocks * 512


def capture_big(exe: Path, work: Path) -> dict[str, tuple[float, float, int, int, bool]]:
    proc = subprocess.Popen([str(exe), str(BIG_MIB)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            sys.exit("bigproc did not start")
        expected = (BIG_MIB << 20) * 0x5A
        results: dict[str, list[tuple[float, float, int, int]]] = {"snapshot": [], "gcore": []}
        alive = {"snapshot": True, "gcore": True}
        for _ in range(BIG_ROUNDS):
            for name, once in (("snapshot", snapshot_once), ("gcore", gcore_once)):
                wait_sleeping(proc.pid)
                results[name].append(once(proc.pid, work))
                alive[name] &= still_runs(proc, expected)
        return {name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
                       runs[-1][2], runs[-1][3], alive[name]) for name, runs in results.items()}
    finally:
        proc.terminate()
        proc.wait()


# -- report ---------------------------------------------------------------------------------


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("run as root (the snapshot and gcore attach to a process of another session)")
    for tool in ("gcc", "gcore"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed")
    with tempfile.TemporaryDirectory(prefix="bench-catch-") as tmp:
        work = Path(tmp)
        exes = compile_programs(work)
        catch = [*COREDUMPD, "catch", "--state-dir", str(work / "catch-state"), "--"]
        startup = compare(["/bin/true"], [*catch, "/bin/true"])["wall"]
        syscalls = compare([str(exes["syscalls"]), str(SYSCALLS)],
                           [*catch, str(exes["syscalls"]), str(SYSCALLS)])
        forks = compare([str(exes["forks"]), str(FORKS)], [*catch, str(exes["forks"]), str(FORKS)])
        big = capture_big(exes["bigproc"], work)

    print(f"coredumpd catch overhead (medians of {ROUNDS}; 'loop' is the program's own timing "
          "of its work, 'wall' the whole run)")
    print(f"{'workload':<34}{'measure':>8}{'direct ms':>12}{'catch ms':>12}{'ratio':>8}")

    def row(name: str, measure: str, pair: tuple[float, float], ratio: bool = True) -> None:
        direct, caught = pair
        shown = f"{caught / direct:.3f}x" if ratio else "-"
        print(f"{name:<34}{measure:>8}{direct * 1e3:>12.1f}{caught * 1e3:>12.1f}{shown:>8}")

    row(f"(a) {SYSCALLS:,} getppid()", "loop", syscalls["loop"])
    row("", "cpu", syscalls["cpu"])
    row("", "wall", syscalls["wall"])
    row(f"(b) {FORKS:,} fork+exit+wait", "loop", forks["loop"])
    row("", "wall", forks["wall"])
    row("catcher start-up (/bin/true)", "wall", startup, ratio=False)

    print(f"\n(c) capture of a {BIG_MIB} MiB process (median wall of {BIG_ROUNDS}, alternating)")
    print(f"{'tool':<26}{'wall s':>8}{'held s':>8}{'core MiB':>10}{'stored MiB':>12}"
          f"{'keeps running':>15}")
    for name, label in (("snapshot", "coredumpd snapshot PID"), ("gcore", "gcore -o DIR PID")):
        wall, held, size, stored, alive = big[name]
        print(f"{label:<26}{wall:>8.2f}{held:>8.2f}{size / 2**20:>10.0f}{stored / 2**20:>12.1f}"
              f"{'yes' if alive else 'NO':>15}")

    ratio = syscalls["loop"][1] / syscalls["loop"][0]
    cpu_ratio = syscalls["cpu"][1] / syscalls["cpu"][0]
    print("\ngoals:")
    print(f"  syscall-heavy under catch <= {SYSCALL_GOAL}x (program's own wall time): "
          f"{ratio:.3f}x -> {'met' if ratio <= SYSCALL_GOAL else 'NOT met'} "
          f"(its CPU time: {cpu_ratio:.3f}x)")
    wall_ratio = syscalls["wall"][1] / syscalls["wall"][0]
    print(f"  (whole run incl. catcher start-up: {wall_ratio:.3f}x -> "
          f"{'met' if wall_ratio <= SYSCALL_GOAL else 'NOT met'})")
    print(f"  fork-heavy: reported, no goal ({forks['loop'][1] / forks['loop'][0]:.2f}x loop)")
    both_alive = big["snapshot"][3] and big["gcore"][3]
    print(f"  1 GiB capture: process keeps running after both: {'met' if both_alive else 'NOT met'}; "
          f"snapshot/gcore: wall {big['snapshot'][0] / big['gcore'][0]:.2f}x, "
          f"held {big['snapshot'][1] / big['gcore'][1]:.2f}x (no goal set)")


if __name__ == "__main__":
    main()
