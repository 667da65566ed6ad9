"""A snapshot of everything /proc says about one process, read the way each file is consistent.

``single_open`` files (stat, status, limits, cgroup, auxv) are read on one fd in one sequential
pass; multi-record files (maps, mountinfo) and memory-backed ones (cmdline, environ) are read in
full while the process is frozen (:func:`procfs.freeze.frozen`). The handle is verified after
reading, so every byte belongs to the process the pidfd names. ``stat`` and ``status`` are
mandatory; any other part that cannot be read is logged, recorded in ``failures`` and left
``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntFlag
from typing import Any

from procfs.errors import ProcessGone, ProcfsError
from procfs.freeze import FreezeMethod, frozen
from procfs.handle import ProcessHandle
from procfs.parse.auxv import Auxv, parse_auxv
from procfs.parse.cgroup import Cgroups, parse_cgroup
from procfs.parse.cmdline import parse_cmdline
from procfs.parse.environ import Environ, parse_environ
from procfs.parse.fds import OpenFd, parse_fdinfo
from procfs.parse.limits import Limits, parse_limits
from procfs.parse.links import LinkTarget, parse_link
from procfs.parse.maps import Mapping, parse_maps
from procfs.parse.mountinfo import Mount, parse_mountinfo
from procfs.parse.namespaces import Namespaces, parse_ns_link
from procfs.parse.stat import Stat, parse_stat
from procfs.parse.status import Status, parse_status
from procfs.vmas import MapsSource, read_maps

log = logging.getLogger(__name__)


class Part(IntFlag):
    """What to read; ``Part.ALL`` by default. ``STAT``/``STATUS`` are always read."""

    STAT = 1 << 0
    STATUS = 1 << 1
    MAPS = 1 << 2
    LIMITS = 1 << 3
    CGROUP = 1 << 4
    MOUNTINFO = 1 << 5
    ENVIRON = 1 << 6
    CMDLINE = 1 << 7
    AUXV = 1 << 8
    FDS = 1 << 9
    NAMESPACES = 1 << 10
    LINKS = 1 << 11
    THREADS = 1 << 12
    ALL = (1 << 13) - 1


@dataclass(frozen=True)
class Snapshot:
    """What /proc said about process ``pid`` (tgid in our pid namespace).

    ``consistent`` is True when every thread was frozen for the whole read (or the kernel was
    dumping it) *and* the pidfd verified afterwards; ``freeze`` says how. ``raw`` holds the bytes
    of the text files as read (``status``, ``maps`` only when read as text, ``limits``, ``cgroup``,
    ``mountinfo``), for journal fields that copy them verbatim.
    """

    pid: int
    consistent: bool
    freeze: FreezeMethod
    stat: Stat
    status: Status
    maps: tuple[Mapping, ...] | None
    maps_source: MapsSource | None
    limits: Limits | None
    cgroup: Cgroups | None
    mountinfo: tuple[Mount, ...] | None
    environ: Environ | None
    cmdline: tuple[bytes, ...] | None
    auxv: Auxv | None
    fds: tuple[OpenFd, ...] | None
    namespaces: Namespaces | None
    exe: LinkTarget | None
    cwd: LinkTarget | None
    root: LinkTarget | None
    threads: tuple[int, ...] | None
    raw: dict[str, bytes]
    failures: tuple[tuple[str, str], ...]


def read_open_fds(handle: ProcessHandle) -> tuple[OpenFd, ...]:
    """Every open fd with its link target and fdinfo (fds closed meanwhile are skipped)."""
    fds = []
    for name in handle.listdir("fd"):
        try:
            target = handle.readlink(f"fd/{name}")
        except ProcessGone:
            continue
        try:
            info = parse_fdinfo(handle.read_bytes(f"fdinfo/{name}"))
        except ProcessGone:
            info = None
        fds.append(OpenFd(int(name), target, info))
    return tuple(fds)


def read_namespaces(handle: ProcessHandle) -> Namespaces:
    """The ``ns/*`` links of the process, by entry name."""
    refs = []
    for name in sorted(handle.listdir("ns")):
        refs.append((name, parse_ns_link(handle.readlink(f"ns/{name}"))))
    return Namespaces(tuple(refs))


def read_threads(handle: ProcessHandle) -> tuple[int, ...]:
    """Thread ids (in our pid namespace) listed in ``task/``, sorted."""
    return tuple(sorted(int(name) for name in handle.listdir("task")))


def snapshot(
    handle: ProcessHandle,
    parts: Part = Part.ALL,
    *,
    maps_source: MapsSource | None = None,
    freeze: bool | FreezeMethod = True,
) -> Snapshot:
    """Read ``stat`` and ``status`` (as the process is, before we touch it), freeze it (unless
    ``freeze`` is False or it already is), read ``parts``, resume it, verify the handle.

    ``freeze``: True freezes with ``SIGSTOP`` (the default, see :mod:`procfs.freeze` for why),
    :attr:`FreezeMethod.PTRACE` with ``PTRACE_SEIZE``/``PTRACE_INTERRUPT`` (invisible to the
    parent's ``waitpid(WUNTRACED)``), False or :attr:`FreezeMethod.NONE` not at all.

    :raises ProcessGone: the process vanished, or the pidfd no longer verifies.
    :raises AccessDenied: ``stat``/``status`` could not be read.
    """
    raw = {"stat": handle.read_bytes("stat"), "status": handle.read_bytes("status")}
    first = {"stat": parse_stat(raw["stat"]), "status": parse_status(raw["status"])}
    if freeze is True:
        freeze = FreezeMethod.SIGSTOP
    if freeze:
        with frozen(handle, status=first["status"], method=FreezeMethod(freeze)) as how:
            values, failures = _read_parts(handle, parts, maps_source, raw)
        method, consistent = how.method, how.frozen
    else:
        values, failures = _read_parts(handle, parts, maps_source, raw)
        method, consistent = FreezeMethod.NONE, False
    handle.verify()
    return Snapshot(
        pid=handle.pid,
        consistent=consistent,
        freeze=method,
        raw=raw,
        failures=tuple(failures),
        **first,
        **values,
    )


def _read_parts(
    handle: ProcessHandle, parts: Part, maps_source: MapsSource | None, raw: dict[str, bytes]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    failures: list[tuple[str, str]] = []

    def text(name: str) -> bytes:
        raw[name] = handle.read_bytes(name)
        return raw[name]

    def maps() -> tuple[tuple[Mapping, ...], MapsSource]:
        if maps_source is MapsSource.TEXT:
            return parse_maps(text("maps")), MapsSource.TEXT
        return read_maps(handle, maps_source)

    readers: list[tuple[Part, str, Callable[[], Any]]] = [
        (Part.MAPS, "maps", maps),
        (Part.LIMITS, "limits", lambda: parse_limits(text("limits"))),
        (Part.CGROUP, "cgroup", lambda: parse_cgroup(text("cgroup"))),
        (Part.MOUNTINFO, "mountinfo", lambda: parse_mountinfo(text("mountinfo"))),
        (Part.ENVIRON, "environ", lambda: parse_environ(handle.read_bytes("environ"))),
        (Part.CMDLINE, "cmdline", lambda: parse_cmdline(handle.read_bytes("cmdline"))),
        (Part.AUXV, "auxv", lambda: parse_auxv(handle.read_bytes("auxv"))),
        (Part.FDS, "fds", lambda: read_open_fds(handle)),
        (Part.NAMESPACES, "namespaces", lambda: read_namespaces(handle)),
        (Part.LINKS, "exe", lambda: parse_link(handle.readlink("exe"))),
        (Part.LINKS, "cwd", lambda: parse_link(handle.readlink("cwd"))),
        (Part.LINKS, "root", lambda: parse_link(handle.readlink("root"))),
        (Part.THREADS, "threads", lambda: read_threads(handle)),
    ]
    values: dict[str, Any] = {"maps_source": None}
    for part, name, reader in readers:
        values[name] = None
        if not parts & part:
            continue
        try:
            values[name] = reader()
        except ProcfsError as err:  # ParseError included; verify() decides whether it is gone
            log.info("failed to read %s of pid %d, ignoring: %s", name, handle.pid, err)
            failures.append((name, str(err)))
    if values["maps"] is not None:
        values["maps"], values["maps_source"] = values["maps"]
    return values, failures
