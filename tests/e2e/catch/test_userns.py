"""``coredumpd catch`` run by an unprivileged user inside its own user namespace
(``unshare --user --map-root-user``): root in name only, ``core_pattern`` out of reach, and the
catcher still captures the crash into a state directory that user owns."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.catch.conftest import Store, core_file, no_core, our_backtraces
from tests.e2e.catch.test_catch import own_frames
from unwinder.core import CoreReader

pytestmark = pytest.mark.e2e

NOBODY = 65534
USERNS = ("unshare", "--user", "--map-root-user")
CORE_PATTERN = "/proc/sys/kernel/core_pattern"

#: run inside the namespace: our uid there, and what opening core_pattern for writing does
#: (opening alone decides; nothing is written even if it were allowed)
PROBE = f"""
import errno, os
try:
    os.close(os.open({CORE_PATTERN!r}, os.O_WRONLY))
    outcome = "writable"
except OSError as err:
    outcome = errno.errorcode.get(err.errno, str(err.errno))
print(os.getuid(), outcome)
"""


def _userns_disabled() -> str | None:
    """Why unprivileged user namespaces cannot be made here, or None."""
    for knob, off in (("kernel/unprivileged_userns_clone", "0"), ("user/max_user_namespaces", "0"),
                      ("kernel/apparmor_restrict_unprivileged_userns", "1")):
        try:
            value = Path("/proc/sys", knob).read_text().strip()
        except OSError:
            continue
        if value == off:
            return f"unprivileged user namespaces are disabled ({knob.replace('/', '.')} = {value})"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    return None


def as_nobody(argv: list[str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, errors="backslashreplace",
                          cwd=cwd, timeout=timeout, user=NOBODY, group=NOBODY, extra_groups=[],
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd)},
                          preexec_fn=no_core)


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A fresh directory under /tmp that user 65534 can write (pytest's tmp_path is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="coredumpd-userns-"))
    try:
        path.chmod(0o777)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def userns(nobody_dir: Path) -> None:
    reason = _userns_disabled()
    if reason is None:
        probe = as_nobody([*USERNS, "true"], nobody_dir)
        if probe.returncode != 0:
            reason = f"unshare --user fails for an unprivileged user: {probe.stderr.strip()}"
    if reason:
        pytest.skip(reason)


def test_unprivileged_userns_capture(catch_sysctls, userns, nobody_dir: Path, crasher: Path,
                                     tmp_path: Path) -> None:
    exe = nobody_dir / "crasher"
    shutil.copy(crasher, exe)
    exe.chmod(0o755)
    state = nobody_dir / "state"

    # the premise: uid 0 inside, yet core_pattern cannot be opened for writing
    probe = as_nobody([*USERNS, sys.executable, "-c", PROBE], nobody_dir)
    assert probe.returncode == 0, probe.stderr
    uid, outcome = probe.stdout.split()
    assert uid == "0" and outcome in ("EACCES", "EPERM"), probe.stdout

    caught = as_nobody([*USERNS, sys.executable, "-m", "coredumpd.cli.main", "catch", "--state-dir",
                        str(state), "--", str(exe), "segv"], nobody_dir)
    assert caught.returncode == -signal.SIGSEGV, caught.stderr
    assert "capture of pid" not in caught.stderr, caught.stderr  # journald may be absent: a note

    (row,) = Store(state).new_rows()
    assert row.door == "catch" and row.signal == signal.SIGSEGV
    assert row.storage_state == "present", row.notes
    assert (state / "coredump").stat().st_uid == NOBODY  # nothing was made as root
    with CoreReader(core_file(row, tmp_path)) as reader:
        threads = reader.core.threads
        assert [t.tid for t in threads] == [row.tid]
        registers = threads[0].prstatus.registers.as_dict()
    assert registers["rip"] and registers["rsp"], registers
    assert own_frames(our_backtraces(row)[row.tid]) == ["crash_now", "main"]


def test_unprivileged_default_state_dir_is_the_users(catch_sysctls, userns, nobody_dir: Path,
                                                     crasher: Path) -> None:
    """Without ``--state-dir`` the configured one (/var/lib/coredumpd) is root's: the crash goes
    to the user's XDG state directory instead of being lost."""
    exe = nobody_dir / "crasher"
    shutil.copy(crasher, exe)
    exe.chmod(0o755)
    caught = as_nobody([*USERNS, sys.executable, "-m", "coredumpd.cli.main", "catch", "--daemon",
                        str(nobody_dir / "no-daemon.sock"), "--", str(exe), "segv"], nobody_dir)
    assert caught.returncode == -signal.SIGSEGV, caught.stderr
    (row,) = Store(nobody_dir / ".local/state/coredumpd").new_rows()
    assert row.door == "catch" and row.storage_state == "present", (row.notes, caught.stderr)
