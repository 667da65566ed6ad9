"""A C target for the memory and ptrace tests, and helpers to drive it.

One program, several modes (``argv[1]``); each prints one ``key=value`` line, then blocks in
``read(0)`` until the test writes a byte (or closes stdin):

- ``layout``: 8 pages at ``base``: pages 0–3 and 6–7 read/write holding :func:`pattern`, page 4
  PROT_NONE (also holding the pattern), page 5 unmapped (a hole between two mappings).
  With ``layout N`` also an N-MiB pattern region at ``big`` (for the benchmark).
- ``threads``: 3 extra threads parked in ``pause()``; on input, exits 0.
- ``segv``: on input, drops dumpable (no core anywhere) and writes to :data:`SEGV_ADDRESS`.
- ``forkexec``: on input, forks; the child execs ``/bin/true``; the parent reaps it, exits 0.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
SEGV_ADDRESS = 0x1234

SOURCE = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void fill(unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)((i * 2654435761u) >> 24);
}
static void *park(void *arg) { (void)arg; for (;;) pause(); return NULL; }
static void wait_input(void) { char c; if (read(0, &c, 1) < 0) exit(3); }

int main(int argc, char **argv) {
    long pg = sysconf(_SC_PAGESIZE);
    const char *mode = argc > 1 ? argv[1] : "layout";
    if (!strcmp(mode, "layout")) {
        unsigned char *base = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) return 2;
        fill(base, 8 * pg);
        if (mprotect(base + 4 * pg, pg, PROT_NONE) || munmap(base + 5 * pg, pg)) return 2;
        unsigned char *big = NULL;
        size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
        if (mib) {
            big = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (big == MAP_FAILED) return 2;
            fill(big, mib << 20);
        }
        printf("base=%#lx big=%#lx\n", (unsigned long)base, (unsigned long)big);
    } else if (!strcmp(mode, "threads")) {
        pthread_t t;
        for (int i = 0; i < 3; i++) pthread_create(&t, NULL, park, NULL);
        printf("threads=3\n");
    } else if (!strcmp(mode, "segv")) {
        printf("segv=%#x\n", SEGV_ADDRESS);
        fflush(stdout);
        wait_input();
        prctl(PR_SET_DUMPABLE, 0);
        *(volatile int *)SEGV_ADDRESS = 1;
        return 4;
    } else if (!strcmp(mode, "forkexec")) {
        printf("forkexec=1\n");
        fflush(stdout);
        wait_input();
        pid_t child = fork();
        if (child == 0) { execl("/bin/true", "true", (char *)NULL); _exit(127); }
        int status;
        waitpid(child, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 5;
    }
    fflush(stdout);
    wait_input();
    return 0;
}
"""


def pattern(offset: int, size: int) -> bytes:
    """The bytes ``fill()`` wrote at ``offset``..``offset + size`` of a region."""
    return bytes(((i * 2654435761) & 0xFFFFFFFF) >> 24 for i in range(offset, offset + size))


def build(compile_c) -> Path:
    """Compile the target with the session's ``compile_c`` fixture."""
    return compile_c(SOURCE.replace("SEGV_ADDRESS", hex(SEGV_ADDRESS)), name="procfs_mem_target")


def read_state(pid: int) -> str:
    """The state letter of ``/proc/<pid>/stat`` ('' when gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return ""
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3].decode()


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def tids(pid: int) -> list[int]:
    """Thread ids of ``pid`` (``/proc/<pid>/task``), leader first."""
    rest = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
    return [pid, *rest]


@dataclass
class Target:
    """A running target: its process and the ``key=value`` pairs it printed."""

    proc: subprocess.Popen
    info: dict[str, int]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def release(self) -> None:
        """Write the byte that lets the target go on."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"x")
        self.proc.stdin.flush()

    def stop(self) -> None:
        """Kill (by pid) and reap the target if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def spawn(exe: Path, *args: str, threads: int = 1) -> Target:
    """Start the target in a mode, read its line, wait until all ``threads`` sleep in read/pause."""
    proc = subprocess.Popen([str(exe), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"target {args} printed nothing (exit {proc.returncode})")
    info = {}
    for item in line.split():
        key, _, value = item.partition("=")
        info[key] = int(value, 0)

    def all_sleeping() -> bool:
        found = tids(proc.pid)
        return len(found) == threads and all(read_state(t) == "S" for t in found)

    wait_until(all_sleeping, what=f"target {proc.pid} to sleep")
    return Target(proc, info)


REPO = Path(__file__).resolve().parents[2]


def run_python(code: str, *args: str, unshare_mount: bool = False, timeout: float = 60) -> dict:
    """Run ``code`` in a fresh interpreter (repo on ``sys.path``); return its last stdout line as
    JSON. ``unshare_mount`` runs it in a private mount namespace (mounts die with it)."""
    import json
    import sys

    cmd = [sys.executable, "-c", code, *args]
    if unshare_mount:
        cmd = ["unshare", "--mount", "--propagation", "private", *cmd]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"reader failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
