"""Why would the kernel refuse ptrace-mode access (mem, maps, environ, ptrace, pidfd_getfd)?

:func:`explain_ptrace_access` replays ``__ptrace_may_access()`` (``kernel/ptrace.c``) and
commoncap's ``cap_ptrace_access_check()`` on credentials taken from ``status`` files:

1. same thread group: always allowed;
2. the caller's uid (fsuid with ``FSCREDS``, real uid with ``REALCREDS``) must equal the target's
   real, effective *and* saved uid, and the same for gids, or the caller needs
   ``CAP_SYS_PTRACE`` in the target's user namespace;
3. a target whose mm is not dumpable (``dumpable != 1``: setuid, ``PR_SET_DUMPABLE 0``) also
   needs ``CAP_SYS_PTRACE``;
4. commoncap: unless the caller has ``CAP_SYS_PTRACE`` there, the target's permitted
   capabilities must be a subset of the caller's (effective with ``FSCREDS``, else permitted);
5. then the LSMs (Yama ``ptrace_scope``, AppArmor, SELinux): named when nothing above explains a
   refusal.

``status`` has no ``dumpable`` line; :func:`read_ptrace_subject` infers it from the owner of
``/proc/<pid>``, which the kernel sets to root for a non-dumpable process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import IntFlag

from procfs.errors import ProcfsError
from procfs.handle import ProcessHandle
from procfs.parse.namespaces import parse_ns_link
from procfs.parse.status import IdSet, parse_status

CAP_SYS_PTRACE = 19


class PtraceMode(IntFlag):
    """``PTRACE_MODE_*`` (``include/linux/ptrace.h``)."""

    READ = 0x01
    ATTACH = 0x02
    NOAUDIT = 0x04
    FSCREDS = 0x08
    REALCREDS = 0x10


READ_FSCREDS = PtraceMode.READ | PtraceMode.FSCREDS
"""maps, environ, auxv, ``PROCMAP_QUERY``."""
ATTACH_FSCREDS = PtraceMode.ATTACH | PtraceMode.FSCREDS
"""``/proc/<pid>/mem``."""
ATTACH_REALCREDS = PtraceMode.ATTACH | PtraceMode.REALCREDS
"""``ptrace(2)``, ``process_vm_readv``, ``pidfd_getfd``."""


@dataclass(frozen=True)
class PtraceSubject:
    """The credentials that matter for a ptrace access check, from ``status`` (ids in the
    reader's user namespace). ``user_ns`` is the nsfs inode of ``ns/user`` (``None`` when it
    could not be read); ``dumpable`` is ``None`` when unknown."""

    tgid: int
    uids: IdSet
    gids: IdSet
    cap_eff: int
    cap_prm: int
    user_ns: int | None = None
    dumpable: int | None = None


@dataclass(frozen=True)
class AccessVerdict:
    """``allowed`` as far as the credentials tell; ``reasons`` explain a refusal (or, when
    ``allowed``, what would still refuse it: LSMs)."""

    allowed: bool
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return "; ".join(self.reasons)


def _has_ptrace_cap(caller: PtraceSubject, target: PtraceSubject) -> bool | None:
    """Caller has CAP_SYS_PTRACE in the target's user namespace (``None``: cannot tell)."""
    if not caller.cap_eff >> CAP_SYS_PTRACE & 1:
        return False
    if caller.user_ns is None or target.user_ns is None:
        return None
    # Same namespace: the effective cap counts. A different one: only if ours is an ancestor,
    # which /proc alone cannot show; report it as unknown.
    return True if caller.user_ns == target.user_ns else None


def explain_ptrace_access(
    caller: PtraceSubject, target: PtraceSubject, mode: PtraceMode = ATTACH_REALCREDS
) -> AccessVerdict:
    """Replay the kernel's ptrace access rules for ``caller`` on ``target`` (pure)."""
    if caller.tgid == target.tgid:
        return AccessVerdict(True, ("same thread group",))
    cap = _has_ptrace_cap(caller, target)
    cap_text = {True: "we have CAP_SYS_PTRACE in its user namespace",
                False: "we lack CAP_SYS_PTRACE",
                None: "whether we hold CAP_SYS_PTRACE in its user namespace is unknown"}[cap]  # fmt: skip
    reasons: list[str] = []
    fs = bool(mode & PtraceMode.FSCREDS)
    uid = caller.uids.fs if fs else caller.uids.real
    gid = caller.gids.fs if fs else caller.gids.real
    kind = "fsuid" if fs else "real uid"
    target_uids = (target.uids.real, target.uids.effective, target.uids.saved)
    target_gids = (target.gids.real, target.gids.effective, target.gids.saved)
    if any(u != uid for u in target_uids) or any(g != gid for g in target_gids):
        if not cap:
            reasons.append(
                f"our {kind} {uid}/gid {gid} does not match its real/effective/saved uids "
                f"{'/'.join(map(str, target_uids))} and gids {'/'.join(map(str, target_gids))}, "
                f"and {cap_text}"
            )
    if target.dumpable is not None and target.dumpable != 1 and not cap:
        reasons.append(f"it is not dumpable (dumpable={target.dumpable}) and {cap_text}")
    our_caps = caller.cap_eff if fs else caller.cap_prm
    same_ns = caller.user_ns is not None and caller.user_ns == target.user_ns
    if target.cap_prm & ~our_caps and not cap and (same_ns or caller.user_ns is None):
        reasons.append(
            f"its permitted capabilities {target.cap_prm:#x} are not a subset of ours "
            f"{our_caps:#x}"
        )
    if reasons:
        return AccessVerdict(False, tuple(reasons))
    return AccessVerdict(
        True,
        ("credentials allow it; a refusal would come from an LSM (Yama ptrace_scope, "
         "AppArmor, SELinux) or a sandbox",),
    )  # fmt: skip


def read_ptrace_subject(handle: ProcessHandle) -> PtraceSubject:
    """Credentials of ``handle``'s process for :func:`explain_ptrace_access`."""
    status = parse_status(handle.read_bytes("status"))
    try:
        user_ns: int | None = parse_ns_link(handle.readlink("ns/user")).inode
    except ProcfsError:
        user_ns = None  # needs ptrace read access itself
    try:
        owner = handle.stat().st_uid
        dumpable: int | None = 1 if owner == status.uids.effective else None
        if owner == 0 and status.uids.effective != 0:
            dumpable = 0
    except ProcfsError:
        dumpable = None
    return PtraceSubject(
        status.tgid, status.uids, status.gids, status.cap_eff or 0, status.cap_prm or 0,
        user_ns, dumpable,
    )  # fmt: skip


def explain_access_denied(pid: int, mode: PtraceMode = ATTACH_REALCREDS) -> AccessVerdict:
    """Why we (this process) may or may not ptrace-access ``pid``: for error messages."""
    with ProcessHandle.from_pid(os.getpid()) as me, ProcessHandle.from_pid(pid) as target:
        return explain_ptrace_access(read_ptrace_subject(me), read_ptrace_subject(target), mode)
