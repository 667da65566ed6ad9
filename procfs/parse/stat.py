"""``/proc/<pid>/stat`` (and ``task/<tid>/stat``): one line of space-separated fields.

``comm`` (field 2) is attacker-chosen: up to 15 bytes that may contain spaces, ``)`` and even
newlines, so everything after the *last* ``)`` is split, never the whole line.
"""

from __future__ import annotations

from dataclasses import dataclass

from procfs.errors import ParseError

# Fields after comm, in proc(5) order (field 3 = index 0). Names are the kernel's/proc(5)'s.
_FIELDS = (
    "state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime "
    "cutime cstime priority nice num_threads itrealvalue starttime vsize rss rsslim startcode "
    "endcode startstack kstkesp kstkeip signal blocked sigignore sigcatch wchan nswap cnswap "
    "exit_signal processor rt_priority policy delayacct_blkio_ticks guest_time cguest_time "
    "start_data end_data start_brk arg_start arg_end env_start env_end exit_code"
).split()
_MIN_FIELDS = _FIELDS.index("starttime") + 1

STOPPED_STATES = frozenset(b"Tt")
"""``T`` stopped by a signal (group stop), ``t`` stopped by a tracer."""


@dataclass(frozen=True)
class Stat:
    """The fields of ``stat`` most callers need; ``values`` holds all numeric ones after ``state``.

    Times are in clock ticks (``os.sysconf("SC_CLK_TCK")``); ``starttime`` counts from boot;
    ``vsize`` is bytes, ``rss`` pages. Pids are in the pid namespace of the /proc mount.
    ``kstkeip``/``kstkesp`` are only non-zero for a task that is exiting or dumping core.
    """

    pid: int
    comm: bytes
    state: bytes
    ppid: int
    pgrp: int
    session: int
    tty_nr: int
    flags: int
    utime: int
    stime: int
    num_threads: int
    starttime: int
    vsize: int
    rss: int
    kstkesp: int | None
    kstkeip: int | None
    processor: int | None
    exit_code: int | None
    values: tuple[int, ...]

    @property
    def stopped(self) -> bool:
        """In a group stop (``T``) or a ptrace stop (``t``)."""
        return len(self.state) == 1 and self.state[0] in STOPPED_STATES

    @property
    def zombie(self) -> bool:
        """Exited but not reaped (``Z``), or being torn down (``X``)."""
        return self.state in (b"Z", b"X")

    def get(self, name: str) -> int | None:
        """A numeric field by its proc(5) name (``"rsslim"``), ``None`` if the line is shorter."""
        index = _FIELDS.index(name) - 1
        return self.values[index] if 0 <= index < len(self.values) else None


def parse_stat(data: bytes) -> Stat:
    """Parse one ``stat`` line; tolerates a missing newline and extra trailing fields."""
    open_paren = data.find(b" (")
    close_paren = data.rfind(b")")
    if open_paren < 0 or close_paren < open_paren:
        raise ParseError("stat", "no '(comm)'")
    try:
        pid = int(data[:open_paren])
    except ValueError as err:
        raise ParseError("stat", f"bad pid {data[:open_paren]!r}") from err
    comm = data[open_paren + 2 : close_paren]
    rest = data[close_paren + 1 :].split()
    if len(rest) < _MIN_FIELDS:
        raise ParseError("stat", f"{len(rest)} fields after comm, need {_MIN_FIELDS}")
    try:
        values = tuple(int(v) for v in rest[1:])
    except ValueError as err:
        raise ParseError("stat", "non-numeric field") from err

    def at(name: str) -> int | None:
        index = _FIELDS.index(name) - 1
        return values[index] if index < len(values) else None

    def need(name: str) -> int:
        return values[_FIELDS.index(name) - 1]

    return Stat(
        pid=pid,
        comm=comm,
        state=rest[0],
        ppid=need("ppid"),
        pgrp=need("pgrp"),
        session=need("session"),
        tty_nr=need("tty_nr"),
        flags=need("flags"),
        utime=need("utime"),
        stime=need("stime"),
        num_threads=need("num_threads"),
        starttime=need("starttime"),
        vsize=at("vsize") or 0,
        rss=at("rss") or 0,
        kstkesp=at("kstkesp"),
        kstkeip=at("kstkeip"),
        processor=at("processor"),
        exit_code=at("exit_code"),
        values=values,
    )
