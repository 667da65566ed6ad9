"""``/proc/<pid>/status``: ``Key:\\tvalue`` lines, split on the first ``:``.

``Name`` is the comm with ``\\n`` and ``\\\\`` escaped by the kernel; values stay bytes. Fields
missing on older kernels or in sandboxes (gVisor has no ``Sig*`` lines) come back as ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

from procfs.errors import ParseError


@dataclass(frozen=True)
class IdSet:
    """Real, effective, saved and filesystem uid (or gid), in the /proc mount's user namespace."""

    real: int
    effective: int
    saved: int
    fs: int


@dataclass(frozen=True)
class Status:
    """Parsed ``status``; ``fields`` keeps every line in order for the raw journal copy.

    Capability sets are bit masks (bit n = capability n). ``ns_pids`` is ``NSpid`` (outermost
    namespace first); ``core_dumping`` is True while the kernel is writing this process's core.
    """

    name: bytes
    state: bytes
    tgid: int
    pid: int
    ppid: int
    tracer_pid: int
    uids: IdSet
    gids: IdSet
    threads: int | None
    ns_pids: tuple[int, ...]
    core_dumping: bool | None
    cap_inh: int | None
    cap_prm: int | None
    cap_eff: int | None
    cap_bnd: int | None
    cap_amb: int | None
    no_new_privs: bool | None
    seccomp: int | None
    fields: tuple[tuple[bytes, bytes], ...]

    def get(self, key: bytes) -> bytes | None:
        """The raw value of line ``key`` (without the ``Key:`` and surrounding blanks)."""
        for name, value in self.fields:
            if name == key:
                return value
        return None


def parse_status(data: bytes) -> Status:
    """Parse ``status``; ``Name``, ``State``, ``Tgid``, ``Pid``, ``PPid``, ``Uid``, ``Gid`` are
    mandatory."""
    fields: list[tuple[bytes, bytes]] = []
    table: dict[bytes, bytes] = {}
    for line in data.split(b"\n"):
        key, sep, value = line.partition(b":")
        if not sep:
            continue
        value = value.strip(b" \t")
        fields.append((key, value))
        table.setdefault(key, value)

    def need(key: bytes) -> bytes:
        try:
            return table[key]
        except KeyError:
            raise ParseError("status", f"no {key.decode()} line") from None

    def number(key: bytes, base: int = 10, *, optional: bool = True) -> int | None:
        raw = table.get(key) if optional else need(key)
        if raw is None:
            return None
        try:
            return int(raw.split()[0], base)
        except (ValueError, IndexError) as err:
            raise ParseError("status", f"bad {key.decode()} value {raw!r}") from err

    def ids(key: bytes) -> IdSet:
        raw = need(key).split()
        try:
            real, effective, saved, fs = (int(v) for v in raw[:4])
        except ValueError as err:
            raise ParseError("status", f"bad {key.decode()} line {raw!r}") from err
        return IdSet(real, effective, saved, fs)

    def flag(key: bytes) -> bool | None:
        value = number(key)
        return None if value is None else value != 0

    try:
        ns_pids = tuple(int(v) for v in table.get(b"NSpid", b"").split())
    except ValueError as err:
        raise ParseError("status", "bad NSpid line") from err
    state = need(b"State").split()
    return Status(
        name=need(b"Name"),
        state=state[0] if state else b"",
        tgid=number(b"Tgid", optional=False) or 0,
        pid=number(b"Pid", optional=False) or 0,
        ppid=number(b"PPid", optional=False) or 0,
        tracer_pid=number(b"TracerPid") or 0,
        uids=ids(b"Uid"),
        gids=ids(b"Gid"),
        threads=number(b"Threads"),
        ns_pids=ns_pids,
        core_dumping=flag(b"CoreDumping"),
        cap_inh=number(b"CapInh", 16),
        cap_prm=number(b"CapPrm", 16),
        cap_eff=number(b"CapEff", 16),
        cap_bnd=number(b"CapBnd", 16),
        cap_amb=number(b"CapAmb", 16),
        no_new_privs=flag(b"NoNewPrivs"),
        seccomp=number(b"Seccomp"),
        fields=tuple(fields),
    )
