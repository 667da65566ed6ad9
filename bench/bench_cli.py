"""Wall time of ``coredumpd list`` over a catalog of 10,000 crashes.

Rows as bench_catalog.py writes them (about 10 KB of context each, a backtrace, 50 distinct
signatures), all ``present`` with their core file path checked by ``list`` as coredumpctl
does. Measured: the whole command as a user runs it (a new process: interpreter start,
imports, query, rendering to a pipe), and the verb alone in this process. The journal is
left out (``--source catalog``) so that the figure is the catalog's. New processes run
without ``PYTHONDONTWRITEBYTECODE``, importing compiled bytecode as an installed coredumpd
does. Run:

    .venv/bin/python bench/bench_cli.py [--rows 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_catalog import backtrace, make_context  # noqa: E402

from coredumpd.catalog import Catalog  # noqa: E402
from coredumpd.cli.main import main as cli_main  # noqa: E402
from coredumpd.storage import StoredCore  # noqa: E402

COREDUMPD = Path(sys.executable).parent / "coredumpd"
#: as an installed coredumpd runs: compiled bytecode is written once and imported after
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def fill(state: Path, rows: int) -> None:
    stored = StoredCore(state / "coredump" / "core.x.zst", "present", 8 << 20, 8 << 20,
                        18 << 10, 8 << 20, None)
    (state / "coredump").mkdir(parents=True)
    (state / "coredump" / "core.x.zst").write_bytes(b"x")
    with Catalog.open(state / "catalog.sqlite") as catalog:
        for n in range(rows):
            catalog.add(make_context(n), stored, backtrace_json=backtrace(n), signature=f"sig{n % 50}")


def median_time(step, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        state = Path(tmp) / "state"
        fill(state, args.rows)
        argv = ["list", "--source", "catalog", "--state-dir", str(state),
                "--config", str(Path(tmp) / "none.conf")]

        def process() -> None:
            out = subprocess.run([str(COREDUMPD), *argv], capture_output=True, check=True,
                                 env=ENV)
            assert out.stdout.count(b"\n") == args.rows + 1, out.stdout[-300:]

        def in_process() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli_main(argv) == 0

        variants = [
            ("list (new process)", process),
            ("list (verb only)", in_process),
            ("list --json=short (new process)",
             lambda: subprocess.run([str(COREDUMPD), *argv, "--json=short"], capture_output=True,
                                    check=True, env=ENV)),
            ("list --group (new process)",
             lambda: subprocess.run([str(COREDUMPD), *argv, "--group"], capture_output=True,
                                    check=True, env=ENV)),
            ("python -c pass (interpreter floor)",
             lambda: subprocess.run([sys.executable, "-c", "pass"], check=True, env=ENV)),
        ]
        print(f"coredumpd list over {args.rows:,} catalog rows, median of {args.repeat}:")
        for name, step in variants:
            print(f"  {name:<36} {median_time(step, args.repeat) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
