"""``coredumpd backtrace`` starts about as fast as eu-stack only if its import path stays
light: no module on it may define a dataclass (0.4 ms each, plus 6 ms to import
:mod:`dataclasses`; see :mod:`unwinder`)."""

from __future__ import annotations

import subprocess
import sys

#: what a warm ``coredumpd backtrace CORE`` imports: the CLI, the verb, and what the verb loads
BACKTRACE_PATH = ("coredumpd.cli.main", "coredumpd.cli.backtrace", "unwinder.analyze",
                  "unwinder.core", "unwinder.format", "unwinder.symbols.cache",
                  "unwinder.symbols.module", "unwinder.symbols.linetable")


def test_the_backtrace_path_does_not_import_dataclasses() -> None:
    code = ("import sys\n"
            f"for name in {BACKTRACE_PATH!r}: __import__(name)\n"
            "print('dataclasses' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
