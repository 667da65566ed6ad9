"""Installing coredumpd as the kernel's core handler, and putting things back.

Three doors: ``@@<KernelSocket>`` (6.17+: request/ack, REJECT at the door), ``@<KernelSocket>``
(6.16), and the pipe helper. The socket door needs the daemon listening first, and install
checks it: a pattern pointing at nobody loses every crash. The pipe wrapper is written in every
mode (the daemon falls back to it when it stops while the socket door is installed).

``install`` writes a small wrapper (so the kernel's pattern stays under 127 bytes whatever the
paths and carries our options, since the helper gets an empty environment), then
``core_pattern`` (read back: the kernel truncates silently), ``core_pipe_limit`` and
``suid_dumpable``, live and in ``/etc/sysctl.d``. The values found before are saved in the
state directory and restored by ``uninstall``.

``core_pipe_limit`` stays 0: a limit makes the kernel *skip* crashes beyond it, and the helper
unwinds the task before draining the stream, which keeps it alive without the limit.
``suid_dumpable`` 2 lets setuid programs dump; their cores are readable by root only.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from coredumpd import spool
from coredumpd.config import CORE_SUBDIR, load_config
from coredumpd.context import PIPE_SPECIFIERS
from coredumpd.errors import CoredumpError
from coredumpd.sysctl import CORE_PATTERN, SysctlError, read_sysctl, write_sysctl

DEFAULT_HELPER_DIR = Path("/usr/local/lib/coredumpd")
SYSCTL_D = Path("/etc/sysctl.d/50-coredumpd.conf")
SAVED = "install.json"
SETTINGS = ("core_pattern", "core_pipe_limit", "suid_dumpable")
MAX_PATTERN = 127


class InstallError(Exception):
    """coredumpd could not be installed or uninstalled; the message says why."""


@dataclass(frozen=True)
class Installed:
    mode: str
    pattern: str
    wrapper: Path
    previous: dict[str, str]
    persisted: Path | None
    #: why ``auto`` did not pick the socket (None when it did, or for ``pipe``)
    reason: str | None = None


def helper_command() -> Path:
    """The ``coredumpd-helper`` console script of this installation."""
    candidate = Path(sys.executable).parent / "coredumpd-helper"
    if not candidate.exists():
        raise InstallError(f"{candidate} not found: is coredumpd installed in this environment?")
    return candidate


def write_wrapper(helper_dir: Path, *, state_dir: Path, config: Path | None) -> Path:
    helper_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    args = [str(helper_command()), "--state-dir", str(state_dir)]
    if config is not None:
        args += ["--config", str(config)]
    handoff = _handoff_socket(config)
    if handoff is not None:  # the helper's fast path: no configuration to read per crash
        args += ["--handoff-socket", str(handoff)]
    wrapper = helper_dir / "helper"
    tmp = helper_dir / ".helper.tmp"
    tmp.write_text("#!/bin/sh\n# written by coredumpd install\nexec "
                   + " ".join(shlex.quote(a) for a in args) + ' "$@"\n')
    tmp.chmod(0o755)
    os.replace(tmp, wrapper)
    return wrapper


def _handoff_socket(config: Path | None) -> Path | None:
    """The daemon's hand-off socket as the helper would find it (the kernel gives it an empty
    environment); None when the configuration does not load (the helper reads it itself)."""
    try:
        return load_config(config, environ={}).handoff_socket
    except CoredumpError:
        return None


def pipe_pattern(wrapper: Path) -> str:
    pattern = f"|{wrapper} " + " ".join(PIPE_SPECIFIERS)
    if len(pattern) > MAX_PATTERN:
        raise InstallError(f"core_pattern would be {len(pattern)} bytes (the kernel keeps "
                           f"{MAX_PATTERN}): choose a shorter --helper-dir")
    return pattern


MODES = ("auto", "pipe", "socket")
CORE_MODES = Path("/proc/sys/kernel/core_modes")
#: ``@`` mode waits for the server's close only when core_pipe_limit != 0 (it is not a limit
#: there); ``@@`` ignores it and asks with COREDUMP_WAIT instead
SOCKET_PIPE_LIMIT = "64"


def install(*, state_dir: Path, mode: str = "auto", helper_dir: Path = DEFAULT_HELPER_DIR,
            config: Path | None = None, persist: bool = True, lock: bool = True,
            kernel_socket: Path | None = None) -> Installed:
    """Install a door: ``pipe``, ``socket`` (``@@`` where the kernel speaks it, else ``@``), or
    ``auto`` (the socket when the kernel has it and a daemon listens on ``kernel_socket``,
    the pipe otherwise). The pattern never points at a socket nobody listens on.

    ``lock=False`` is for a caller that already holds the core_pattern flock (flock is per
    open file: taking it again would wait forever)."""
    if os.geteuid() != 0:
        raise InstallError("installing changes kernel settings: run as root")
    if mode not in MODES:
        raise InstallError(f"unknown mode {mode!r} (use {', '.join(MODES)})")
    state_dir.mkdir(parents=True, exist_ok=True)
    wrapper = write_wrapper(helper_dir, state_dir=state_dir, config=config)
    fallback = pipe_pattern(wrapper)
    reason = None
    if mode != "pipe":
        reason = socket_unavailable(kernel_socket)
        if reason is not None and mode == "socket":
            raise InstallError(f"cannot install the socket door: {reason}")
    use_socket = mode != "pipe" and reason is None
    with _locked(lock):
        saved_path = state_dir / SAVED
        previous = _load_saved(saved_path)
        if previous is None or read_sysctl("core_pattern") != previous.get("installed_pattern"):
            previous = {name: read_sysctl(name) for name in SETTINGS}
        try:
            if use_socket:
                assert kernel_socket is not None
                _write_all({"suid_dumpable": "2", "core_pipe_limit": "0"})
                pattern = write_socket_pattern(kernel_socket)
                if pattern is None:
                    reason = "the kernel refuses @@ and @ patterns (before 6.16)"
                    if mode == "socket":
                        raise InstallError(f"cannot install the socket door: {reason}")
                    use_socket = False
                elif pattern.startswith("@") and not pattern.startswith("@@"):
                    write_sysctl("core_pipe_limit", SOCKET_PIPE_LIMIT)
            if not use_socket:
                pattern = fallback
                _write_all({"core_pattern": pattern, "core_pipe_limit": "0", "suid_dumpable": "2"})
        except (OSError, SysctlError) as err:
            for name, value in previous.items():
                if name in SETTINGS:
                    _quiet_write(name, value)
            raise InstallError(f"cannot set the crash sysctls: {err}") from err
        except InstallError:
            for name, value in previous.items():
                if name in SETTINGS:
                    _quiet_write(name, value)
            raise
        values = {name: read_sysctl(name) for name in SETTINGS}
        saved = {**{k: v for k, v in previous.items() if k in SETTINGS}, "installed_pattern": pattern,
                 "wrapper": str(wrapper), "fallback_pattern": fallback}
        _atomic_write(saved_path, json.dumps(saved, indent=1))
    persisted = None
    if persist:
        _atomic_write(SYSCTL_D, "# written by coredumpd install; removed by coredumpd uninstall\n"
                      + "".join(f"kernel.{k} = {v}\n" if k != "suid_dumpable" else f"fs.{k} = {v}\n"
                                for k, v in values.items()))
        persisted = SYSCTL_D
    kind = "pipe" if not use_socket else "@@" if pattern.startswith("@@") else "@"
    return Installed(kind, pattern, wrapper, {k: previous[k] for k in SETTINGS}, persisted, reason)


def socket_unavailable(kernel_socket: Path | None) -> str | None:
    """Why the socket door cannot be installed now, or None. Checks what can be checked
    without touching core_pattern: the kernel's advertised modes and a listening daemon."""
    if kernel_socket is None:
        return "no kernel socket path given"
    try:
        modes = CORE_MODES.read_text().split()
    except OSError:
        modes = None  # older than core_modes: trying the pattern will tell
    if modes is not None and "socket" not in modes:
        return f"this kernel has no coredump socket (core_modes: {', '.join(modes)})"
    from socket_server.listening import is_listening

    if not is_listening(kernel_socket):
        return (f"no daemon listens on {kernel_socket}: start `coredumpd serve` first "
                "(a pattern pointing at nobody loses every crash)")
    return None


def write_socket_pattern(kernel_socket: Path) -> str | None:
    """Set ``@@<path>``, else ``@<path>``, detected by trying: a kernel without the mode refuses
    the write with EINVAL (``@@`` is 6.17+, ``@`` 6.16+). Returns the pattern set, or None."""
    import errno

    for prefix in ("@@", "@"):
        pattern = f"{prefix}{kernel_socket}"
        if len(pattern) > MAX_PATTERN:
            raise InstallError(f"core_pattern would be {len(pattern)} bytes (the kernel keeps "
                               f"{MAX_PATTERN}): choose a shorter KernelSocket=")
        try:
            write_sysctl("core_pattern", pattern)
            return pattern
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
    return None


def fall_back_to_pipe(state_dir: Path, kernel_socket: Path, *, wait: float = 2.0) -> str | None:
    """Called by a daemon that stops: if core_pattern points at its socket, point it at the
    pipe helper instead (which handles crashes itself when no daemon answers). Returns the
    pattern written, or None when nothing had to change. The flock is tried for ``wait``
    seconds; a dangling socket pattern is worse than a write without it."""
    import time

    ours = {f"@@{kernel_socket}", f"@{kernel_socket}"}
    if read_sysctl("core_pattern") not in ours:
        return None
    saved = _load_saved(state_dir / SAVED) or {}
    fallback = saved.get("fallback_pattern")
    if not fallback:
        return None
    fd = os.open(CORE_PATTERN, os.O_RDONLY | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        if read_sysctl("core_pattern") not in ours:
            return None
        write_sysctl("core_pipe_limit", "0")
        write_sysctl("core_pattern", fallback)
        saved["installed_pattern"] = fallback
        _atomic_write(state_dir / SAVED, json.dumps(saved, indent=1))
        return fallback
    finally:
        os.close(fd)


def _write_all(values: dict[str, str]) -> None:
    for name, value in values.items():
        write_sysctl(name, value)


def uninstall(*, state_dir: Path, lock: bool = True) -> dict[str, str]:
    """Restore the values saved by :func:`install`; returns them."""
    if os.geteuid() != 0:
        raise InstallError("uninstalling changes kernel settings: run as root")
    saved_path = state_dir / SAVED
    with _locked(lock):
        saved = _load_saved(saved_path)
        if saved is None:
            raise InstallError(f"no saved settings in {saved_path}: coredumpd is not installed there")
        restored = {}
        # suid_dumpable before the pattern: the kernel warns about an unsafe pattern otherwise
        for name in reversed(SETTINGS):
            if name in saved:
                write_sysctl(name, saved[name])
                restored[name] = saved[name]
        saved_path.unlink()
    if SYSCTL_D.exists():
        SYSCTL_D.unlink()
    wrapper = Path(saved.get("wrapper", ""))
    if wrapper.name == "helper" and wrapper.exists():
        wrapper.unlink()
    spool.remove(state_dir / CORE_SUBDIR)  # written ahead for crashes that no longer come here
    return restored


class _locked:
    """The flock every coredumpd tool takes before touching core_pattern."""

    def __init__(self, take: bool = True) -> None:
        self.take = take
        self.fd: int | None = None

    def __enter__(self) -> None:
        if self.take:
            self.fd = os.open(CORE_PATTERN, os.O_RDONLY | os.O_CLOEXEC)
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _load_saved(path: Path) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise InstallError(f"{path} is unreadable ({err}); remove it after checking core_pattern") from err
    return data if isinstance(data, dict) else None


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _quiet_write(name: str, value: str) -> None:
    try:
        write_sysctl(name, value)
    except (OSError, SysctlError):
        pass
