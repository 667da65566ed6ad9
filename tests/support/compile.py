"""Compile small C programs with gcc for tests, cached by source within one run."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

DEFAULT_FLAGS = ("-g", "-O0", "-fno-omit-frame-pointer", "-pthread")


class Compiler:
    """Builds C sources into executables under ``directory``.

    The same (source, flags, name) compiles once per test session.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def __call__(
        self,
        source: str,
        name: str = "prog",
        flags: tuple[str, ...] | list[str] = DEFAULT_FLAGS,
        extra: tuple[str, ...] | list[str] = (),
    ) -> Path:
        key = hashlib.sha256(repr((source, tuple(flags), tuple(extra))).encode()).hexdigest()[:12]
        out_dir = self.directory / f"{name}-{key}"
        exe = out_dir / name
        if exe.exists():
            return exe
        out_dir.mkdir(parents=True, exist_ok=True)
        src = out_dir / f"{name}.c"
        src.write_text(source)
        cmd = ["gcc", *flags, "-o", str(exe), str(src), *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"gcc failed ({' '.join(cmd)}):\n{proc.stderr}")
        return exe
