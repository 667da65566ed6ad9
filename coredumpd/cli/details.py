"""What ``coredumpd info`` knows about one crash, as data (text and JSON come from it).

coredumpctl's ``info`` lines (``coredumpctl-info.c``), plus ours: the signal's si_code name
and fault address (from ``COREDUMP_CODE``, else the stored core's ``NT_SIGINFO``), every
thread's backtrace with inline frames, file:line and how each frame was found, the modules
with their build-ids and package notes, the signature, the catalog id and notes.
"""

from __future__ import annotations

import datetime
import grp
import json
import logging
import pwd
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coredumpd.cli.records import Crash
from coredumpd.signals import si_code_name, signal_name
from unwinder.backtrace import Backtrace, backtrace_from_dict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModuleLine:
    path: str
    build_id: str | None
    status: str
    package: str | None  # "deb foo-1.2" from the package note, when there is one


@dataclass(frozen=True)
class CrashInfo:
    """``fields``: (label, value) in display order; values are untrusted text."""

    crash: Crash
    fields: tuple[tuple[str, str | bytes], ...]
    backtrace: Backtrace | None
    modules: tuple[ModuleLine, ...]
    message: bytes | None
    data: dict[str, Any]


@dataclass(frozen=True)
class SignalDetail:
    si_code: int | None
    fault_address: int | None


def _user(uid: int | None) -> str:
    if uid is None:
        return "-"
    try:
        return f"{uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return str(uid)


def _group(gid: int | None) -> str:
    if gid is None:
        return "-"
    try:
        return f"{gid} ({grp.getgrgid(gid).gr_name})"
    except KeyError:
        return str(gid)


def format_time(us: int) -> str:
    """``Mon 2026-11-23 11:34:51 UTC`` (local time), as coredumpctl's TIME column."""
    return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(us // 1_000_000))


def format_size(n: int | None) -> str:
    if not n:
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{n}B" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return str(n)


def _relative(us: int) -> str:
    now = datetime.datetime.now().timestamp() * 1e6
    seconds = int((now - us) / 1e6)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def read_signal_detail(crash: Crash) -> SignalDetail:
    """si_code and fault address: ``COREDUMP_CODE`` when recorded, and the stored core's
    ``NT_SIGINFO`` (read from its head only) for the address."""
    code = crash.context.si_code
    if crash.storage not in ("present", "truncated") or not crash.filename:
        return SignalDetail(code, None)
    try:
        from coredumpd.storage import open_core
        from unwinder.core.stream import read_core_head

        with open_core(Path(crash.filename)) as stream:
            info = read_core_head(stream).core.siginfo
    except Exception as err:  # noqa: BLE001 - optional data: any failure means "unknown"
        log.debug("failed to read the siginfo of %s, ignoring: %s", crash.filename, err)
        return SignalDetail(code, None)
    if info is None:
        return SignalDetail(code, None)
    return SignalDetail(code if code is not None else info.si_code, info.si_addr)


def _packages(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _package_label(note: Any) -> str | None:
    if not isinstance(note, dict):
        return None
    name, version = note.get("name"), note.get("version")
    kind = note.get("type") or "package"
    return f"{kind} {name}-{version}" if name and version else None


def load_backtrace(crash: Crash) -> Backtrace | None:
    if not crash.backtrace_json:
        return None
    try:
        return backtrace_from_dict(json.loads(crash.backtrace_json))
    except (ValueError, KeyError, TypeError) as err:
        log.debug("stored backtrace of crash %s unusable, ignoring: %s", crash.catalog_id, err)
        return None


def build_info(crash: Crash) -> CrashInfo:
    ctx = crash.context
    detail = read_signal_detail(crash)
    signal = "-"
    if crash.signal is not None:
        signal = f"{crash.signal} ({signal_name(crash.signal).removeprefix('SIG')})"
        if detail.si_code is not None:
            signal += f" si_code: {si_code_name(crash.signal, detail.si_code)}"
        if detail.fault_address is not None:
            signal += f" fault address: {detail.fault_address:#x}"
    fields: list[tuple[str, str | bytes]] = [("PID", f"{crash.pid} ({(crash.comm or b'?').decode('utf-8', 'backslashreplace')})")]
    if ctx.tid is not None:
        name = (ctx.thread_name or b"").decode("utf-8", "backslashreplace")
        fields.append(("TID", f"{ctx.tid} ({name})" if name else str(ctx.tid)))
    fields += [("UID", _user(crash.uid)), ("GID", _group(crash.gid)), ("Signal", signal),
               ("Timestamp", f"{format_time(crash.time)} ({_relative(crash.time)})")]
    for label, value in (("Command Line", ctx.cmdline), ("Executable", crash.exe),
                         ("Control Group", ctx.cgroup), ("Unit", ctx.unit),
                         ("User Unit", ctx.user_unit), ("Slice", ctx.slice),
                         ("Session", ctx.session)):
        if value:
            fields.append((label, value))
    if ctx.owner_uid is not None:
        fields.append(("Owner UID", _user(ctx.owner_uid)))
    for label, value2 in (("Boot ID", crash.boot_id), ("Machine ID", ctx.machine_id)):
        if value2:
            fields.append((label, value2))
    if ctx.hostname:
        fields.append(("Hostname", ctx.hostname))
    if ctx.dumpable is not None:
        fields.append(("Dumpable", str(ctx.dumpable)))
    storage = f"{crash.filename} ({crash.storage})" if crash.filename else crash.storage
    fields.append(("Storage", storage))
    if crash.size:
        fields.append(("Size on Disk", format_size(crash.size)))
    if ctx.package_name:
        fields.append(("Package", ctx.package_name + b"/" + (ctx.package_version or b"")))
    if crash.signature:
        fields.append(("Signature", crash.signature))
    fields.append(("Source", f"{' + '.join(crash.sources)} (recorded by {crash.writer})"))
    if crash.catalog_id is not None:
        fields.append(("Catalog ID", str(crash.catalog_id)))
    for note in crash.notes:
        fields.append(("Note", note))

    backtrace = load_backtrace(crash)
    packages = _packages(ctx.package_json)
    modules = tuple(ModuleLine(m.path, m.build_id, m.status, _package_label(packages.get(m.path)))
                    for m in (backtrace.modules if backtrace else ()))
    message = crash.message if backtrace is None else None
    return CrashInfo(crash, tuple(fields), backtrace, modules, message,
                     info_json(crash, detail, backtrace, packages))


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "backslashreplace") if value is not None else None


def info_json(crash: Crash, detail: SignalDetail, backtrace: Backtrace | None,
              packages: dict[str, Any]) -> dict[str, Any]:
    """coredumpctl's ``info --json`` keys (v261+), then ours."""
    ctx = crash.context
    data: dict[str, Any] = {
        "PID": crash.pid, "TID": ctx.tid, "ThreadName": _text(ctx.thread_name),
        "UID": crash.uid, "GID": crash.gid, "Signal": crash.signal,
        "SignalName": signal_name(crash.signal) if crash.signal is not None else None,
        "SignalCode": si_code_name(crash.signal, detail.si_code)
        if crash.signal is not None and detail.si_code is not None else None,
        "Timestamp": crash.time, "Executable": _text(crash.exe), "Command": _text(crash.comm),
        "CommandLine": _text(ctx.cmdline), "ControlGroup": _text(ctx.cgroup),
        "Unit": _text(ctx.unit), "UserUnit": _text(ctx.user_unit), "Slice": _text(ctx.slice),
        "Session": _text(ctx.session), "OwnerUID": ctx.owner_uid, "BootID": crash.boot_id,
        "MachineID": ctx.machine_id, "Hostname": _text(ctx.hostname), "Storage": crash.storage,
        "Filename": crash.filename, "DiskSize": crash.size,
        "PackageName": _text(ctx.package_name), "PackageVersion": _text(ctx.package_version),
        "Package": packages or None, "Message": _text(crash.message),
        # ours
        "FaultAddress": detail.fault_address, "Dumpable": ctx.dumpable,
        "Signature": crash.signature, "CatalogID": crash.catalog_id,
        "Sources": list(crash.sources), "Writer": crash.writer, "Notes": list(crash.notes),
        "Backtrace": backtrace.to_dict() if backtrace else None,
    }
    return {key: value for key, value in data.items() if value is not None}
