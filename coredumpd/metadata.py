"""Filling a :class:`CrashContext` from ``/proc/<pid>`` while the kernel holds the task.

The dumping task is frozen by the kernel (``CoreDumping: 1``), so plain sequential reads are
consistent. Everything goes through the pidfd-verified :class:`procfs.handle.ProcessHandle` and
the handle is verified at the end: what was read belongs to the process that crashed. Optional
fields that cannot be read are noted ("failed to read X, ignoring: …") and stay ``None``.

Imports only the stdlib, :mod:`procfs` and :mod:`coredumpd.context`: it runs on the pipe
helper's fast path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from coredumpd.context import CrashContext
from procfs.errors import ProcessGone, ProcfsError
from procfs.handle import ProcessHandle
from procfs.parse.cgroup import parse_cgroup
from procfs.parse.cmdline import cmdline_to_posix, parse_cmdline
from procfs.parse.fds import open_fds_to_text
from procfs.parse.stat import parse_stat
from procfs.snapshot import read_open_fds

log = logging.getLogger(__name__)

#: file under /proc/<pid> -> CrashContext attribute holding its raw bytes
RAW_FILES = {
    "status": "proc_status",
    "maps": "proc_maps",
    "limits": "proc_limits",
    "cgroup": "proc_cgroup",
    "mountinfo": "proc_mountinfo",
    "auxv": "proc_auxv",
}


def collect_metadata(context: CrashContext, handle: ProcessHandle) -> None:
    """Fill the /proc-derived fields of ``context`` from ``handle``.

    :raises ProcessGone: the process is not the one the handle was opened on any more.
    """
    steps: list[tuple[str, Callable[[], None]]] = [
        ("comm", lambda: _comm(context, handle)),
        ("raw files", lambda: _raw_files(context, handle)),
        ("exe", lambda: setattr(context, "exe", handle.readlink("exe"))),
        ("cwd", lambda: setattr(context, "cwd", handle.readlink("cwd"))),
        ("root", lambda: setattr(context, "root", handle.readlink("root"))),
        ("cmdline", lambda: setattr(context, "cmdline",
                                    cmdline_to_posix(parse_cmdline(handle.read_bytes("cmdline"))))),
        ("environ", lambda: setattr(context, "environ",
                                    handle.read_bytes("environ").rstrip(b"\0").replace(b"\0", b"\n"))),
        ("open fds", lambda: setattr(context, "open_fds", open_fds_to_text(read_open_fds(handle)))),
        ("cgroup units", lambda: _units(context)),
        ("thread name", lambda: _thread_name(context, handle)),
    ]
    for what, step in steps:
        try:
            step()
        except ProcessGone as err:
            _still_there(handle, what, err, context)
        except (ProcfsError, OSError, ValueError) as err:
            log.info("failed to read %s of pid %s, ignoring: %s", what, context.pid, err)
            context.notes.append(f"failed to read {what}: {err}")
    handle.verify()


def _comm(context: CrashContext, handle: ProcessHandle) -> None:
    # %e delivers comm in pipe mode; the socket door has only /proc
    if context.comm is None:
        context.comm = parse_stat(handle.read_bytes("stat")).comm


def _raw_files(context: CrashContext, handle: ProcessHandle) -> None:
    for name, attr in RAW_FILES.items():
        try:
            setattr(context, attr, handle.read_bytes(name))
        except ProcessGone as err:
            _still_there(handle, name, err, context)
        except ProcfsError as err:
            log.info("failed to read %s of pid %s, ignoring: %s", name, context.pid, err)
            context.notes.append(f"failed to read {name}: {err}")


def _still_there(handle: ProcessHandle, what: str, err: ProcessGone, context: CrashContext) -> None:
    """ENOENT on one /proc file means "gone" only if the process is: sandboxes (gVisor) lack
    some files (``limits``). Raise if the pidfd no longer verifies, else note and go on."""
    handle.verify()
    log.info("%s of pid %s is not available, ignoring: %s", what, context.pid, err)
    context.notes.append(f"{what} not available")


def _units(context: CrashContext) -> None:
    if context.proc_cgroup is None:
        return
    path = parse_cgroup(context.proc_cgroup).unified
    if path is None:
        return
    context.cgroup = path
    unit, user_unit, slice_ = units_from_cgroup(path)
    context.unit, context.user_unit, context.slice = unit, user_unit, slice_


def units_from_cgroup(path: bytes) -> tuple[bytes | None, bytes | None, bytes | None]:
    """``(unit, user unit, slice)`` of a cgroup path, the way systemd reads its own layout:
    ``/system.slice/foo.service`` → foo.service in system.slice; inside ``user@UID.service``
    the next unit is the user unit."""
    unit = user_unit = slice_ = None
    for part in (p for p in path.split(b"/") if p):
        if part.endswith(b".slice"):
            if unit is None:
                slice_ = part
            continue
        if b"." not in part:
            break
        if unit is None:
            unit = part
        elif unit.startswith(b"user@") and unit.endswith(b".service") and user_unit is None:
            user_unit = part
            break
        else:
            break
    return unit, user_unit, slice_


def _thread_name(context: CrashContext, handle: ProcessHandle) -> None:
    if context.tid is None:
        return
    context.thread_name = handle.read_bytes(f"task/{context.tid}/comm").rstrip(b"\n")
