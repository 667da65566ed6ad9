"""Everything known about one crash, and the one table that maps each piece to where it comes
from and where it goes: the core_pattern specifier (pipe argv), the journal field
(systemd-coredump's names) and the ``user.coredump.*`` xattr on the stored file.

:class:`CrashContext` is filled step by step by the pipeline (argv or socket peer → /proc
snapshot → storage → analysis); :data:`FIELDS` drives argv parsing, journal entries, xattrs
and the JSON used for the hand-off and the catalog, instead of if-chains.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any


def _seconds_to_usec(raw: bytes) -> int:
    return int(raw) * 1_000_000


def _pidfd_marker(raw: bytes) -> int | None:
    # "%F" expands to the fd number (3) on 6.16+, and to nothing on older kernels
    return 1 if raw.strip() else None


@dataclass(frozen=True)
class Field:
    """One fact about a crash.

    :ivar attr: the :class:`CrashContext` attribute.
    :ivar journal: systemd-coredump's journal field, or None.
    :ivar xattr: the ``user.coredump.*`` attribute set on the stored core, or None.
    :ivar specifier: the core_pattern specifier that delivers it in pipe mode, or None.
    :ivar kind: ``int`` or ``bytes`` (kernel strings stay bytes until they are shown).
    :ivar from_argv: how a pipe argv element becomes the value (default: ``kind(raw)``).
    """

    attr: str
    journal: str | None
    xattr: str | None = None
    specifier: str | None = None
    kind: type = bytes
    from_argv: Callable[[bytes], Any] | None = None


FIELDS: tuple[Field, ...] = (
    # delivered by the kernel, in the order of the pipe argv (see PIPE_SPECIFIERS)
    Field("pid", "COREDUMP_PID", "user.coredump.pid", "%P", int),
    Field("tid", "COREDUMP_TID", "user.coredump.tid", "%I", int),
    Field("uid", "COREDUMP_UID", "user.coredump.uid", "%u", int),
    Field("gid", "COREDUMP_GID", "user.coredump.gid", "%g", int),
    Field("signal", "COREDUMP_SIGNAL", "user.coredump.signal", "%s", int),
    Field("timestamp", "COREDUMP_TIMESTAMP", "user.coredump.timestamp", "%t", int, _seconds_to_usec),
    Field("rlimit", "COREDUMP_RLIMIT", "user.coredump.rlimit", "%c", int),
    Field("dumpable", "COREDUMP_DUMPABLE", None, "%d", int),
    Field("by_pidfd", "COREDUMP_BY_PIDFD", None, "%F", int, _pidfd_marker),
    Field("hostname", "COREDUMP_HOSTNAME", "user.coredump.hostname", "%h"),
    Field("comm", "COREDUMP_COMM", "user.coredump.comm", "%e"),
    # read from /proc/<pid> while the task is held
    Field("signal_name", "COREDUMP_SIGNAL_NAME", None, kind=str),
    Field("si_code", "COREDUMP_CODE", None, kind=int),
    Field("exe", "COREDUMP_EXE", "user.coredump.exe"),
    Field("thread_name", "COREDUMP_THREAD_NAME", "user.coredump.thread_name"),
    Field("cmdline", "COREDUMP_CMDLINE"),
    Field("cgroup", "COREDUMP_CGROUP"),
    Field("unit", "COREDUMP_UNIT"),
    Field("user_unit", "COREDUMP_USER_UNIT"),
    Field("slice", "COREDUMP_SLICE"),
    Field("session", "COREDUMP_SESSION"),
    Field("owner_uid", "COREDUMP_OWNER_UID", kind=int),
    Field("cwd", "COREDUMP_CWD"),
    Field("root", "COREDUMP_ROOT"),
    Field("environ", "COREDUMP_ENVIRON"),
    Field("open_fds", "COREDUMP_OPEN_FDS"),
    Field("proc_status", "COREDUMP_PROC_STATUS"),
    Field("proc_maps", "COREDUMP_PROC_MAPS"),
    Field("proc_limits", "COREDUMP_PROC_LIMITS"),
    Field("proc_cgroup", "COREDUMP_PROC_CGROUP"),
    Field("proc_mountinfo", "COREDUMP_PROC_MOUNTINFO"),
    Field("proc_auxv", "COREDUMP_PROC_AUXV"),
    Field("package_name", "COREDUMP_PACKAGE_NAME"),
    Field("package_version", "COREDUMP_PACKAGE_VERSION"),
    Field("package_json", "COREDUMP_PACKAGE_JSON"),
    # the host
    Field("boot_id", None, kind=str),
    Field("machine_id", None, kind=str),
    # outcome of storage
    Field("filename", "COREDUMP_FILENAME", kind=str),
    Field("truncated", "COREDUMP_TRUNCATED", kind=int),
    # how a core we wrote ourselves (catcher, snapshot) read the memory
    Field("memory_method", "COREDUMPD_MEMORY_METHOD", kind=str),
)

FIELDS_BY_ATTR = {f.attr: f for f in FIELDS}
#: The specifiers of a coredumpd pipe pattern, in argv order.
PIPE_SPECIFIERS: tuple[str, ...] = tuple(f.specifier for f in FIELDS if f.specifier)
#: Fields the pipe helper must get from argv or give up (systemd's mandatory set).
MANDATORY = ("pid", "uid", "gid", "signal", "timestamp", "comm")


class ContextError(Exception):
    """The crash's identity could not be established (bad argv, missing mandatory field)."""


@dataclass
class CrashContext:
    """Everything known about one crash. Ids are in the initial namespaces; ``timestamp`` is
    in µs since the epoch; kernel strings are bytes. ``None`` = not known."""

    pid: int | None = None
    tid: int | None = None
    uid: int | None = None
    gid: int | None = None
    signal: int | None = None
    timestamp: int | None = None
    rlimit: int | None = None
    dumpable: int | None = None
    by_pidfd: int | None = None
    hostname: bytes | None = None
    comm: bytes | None = None
    signal_name: str | None = None
    si_code: int | None = None
    exe: bytes | None = None
    thread_name: bytes | None = None
    cmdline: bytes | None = None
    cgroup: bytes | None = None
    unit: bytes | None = None
    user_unit: bytes | None = None
    slice: bytes | None = None
    session: bytes | None = None
    owner_uid: int | None = None
    cwd: bytes | None = None
    root: bytes | None = None
    environ: bytes | None = None
    open_fds: bytes | None = None
    proc_status: bytes | None = None
    proc_maps: bytes | None = None
    proc_limits: bytes | None = None
    proc_cgroup: bytes | None = None
    proc_mountinfo: bytes | None = None
    proc_auxv: bytes | None = None
    package_name: bytes | None = None
    package_version: bytes | None = None
    package_json: bytes | None = None
    boot_id: str | None = None
    machine_id: str | None = None
    filename: str | None = None
    truncated: int | None = None
    #: the memory method that read the core's bytes and why the ones before it failed, e.g.
    #: ``"process_vm_readv (mem: masked)"``; only for cores written by coredumpd itself
    memory_method: str | None = None
    #: how the core was obtained: "pipe", "socket", "catch", "snapshot"
    door: str | None = None
    #: what happened to it, and why, in a few words (e.g. "over KeepFree")
    notes: list[str] = field(default_factory=list)

    # -- from the kernel ------------------------------------------------------------------

    @classmethod
    def from_argv(cls, argv: Sequence[bytes], specifiers: Sequence[str] = PIPE_SPECIFIERS) -> CrashContext:
        """Parse the pipe helper's arguments (``argv[1:]``), positionally per ``specifiers``.

        Missing trailing arguments are tolerated (older kernels drop unknown specifiers);
        a value that does not parse is a :class:`ContextError` naming the specifier.
        """
        context = cls(door="pipe")
        by_spec = {f.specifier: f for f in FIELDS if f.specifier}
        for spec, raw in zip(specifiers, argv, strict=False):
            f = by_spec.get(spec)
            if f is None:
                raise ContextError(f"unknown specifier {spec} in the pipe pattern")
            try:
                if f.from_argv is not None:
                    value = f.from_argv(raw)
                elif f.kind is int:
                    value = int(raw) if raw else None
                else:
                    value = bytes(raw)
            except ValueError as err:
                raise ContextError(f"{spec} ({f.attr}) is not a number: {raw[:32]!r}") from err
            setattr(context, f.attr, value)
        return context

    def missing_mandatory(self) -> list[str]:
        return [name for name in MANDATORY if getattr(self, name) is None]

    @classmethod
    def from_kernel(cls, argv: Sequence[bytes]) -> CrashContext:
        """The context of the kernel's pipe-helper arguments, the mandatory fields present
        (the helper and the daemon's fast-path hand-off both ask this).

        :raises ContextError: why the core is to be dropped.
        """
        try:
            context = cls.from_argv(argv)
        except ContextError as err:
            raise ContextError(f"bad arguments from the kernel ({err})") from err
        missing = context.missing_mandatory()
        if missing:
            raise ContextError(f"the kernel gave no {', '.join(missing)}")
        return context

    # -- to the world ---------------------------------------------------------------------

    def journal_fields(self) -> dict[str, bytes]:
        """Every known field under its journal name, as bytes."""
        out = {}
        for f in FIELDS:
            value = getattr(self, f.attr)
            if f.journal and value is not None:
                out[f.journal] = _to_bytes(value)
        return out

    def xattrs(self) -> dict[str, bytes]:
        out = {}
        for f in FIELDS:
            value = getattr(self, f.attr)
            if f.xattr and value is not None:
                out[f.xattr] = _to_bytes(value)
        return out

    def to_json(self) -> str:
        """All set fields; bytes as ``{"b64": …}`` so any byte survives."""
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            data[f.name] = {"b64": base64.b64encode(value).decode()} if isinstance(value, bytes) else value
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CrashContext:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            known = {f.name for f in fields(cls)}
            values = {}
            for key, value in data.items():
                if key not in known:
                    continue
                if isinstance(value, dict) and set(value) == {"b64"}:
                    value = base64.b64decode(value["b64"], validate=True)
                values[key] = value
            return cls(**values)
        except (ValueError, TypeError) as err:
            raise ContextError(f"malformed crash context: {err}") from err


def _to_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()
