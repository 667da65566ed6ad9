"""``coredump.conf``-compatible configuration.

The ``[Coredump]`` section takes systemd-coredump's keys with systemd v252's defaults;
``[Coredumpd]`` holds our own. The main file is read first, then ``<main>.d/*.conf`` in
lexical order, later assignments winning; an empty value resets a key to its default (as in
systemd). Unknown keys in ``[Coredump]`` and unknown sections are ignored with a warning
(systemd's newer keys, e.g. ``EnterNamespace=``, must not break us); anything else that does
not parse is a :class:`ConfigError` naming the file, line and key.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coredumpd.errors import ConfigError

#: the catalog's file name in a state directory
CATALOG = "catalog.sqlite"
#: the cores' directory under the state directory
CORE_SUBDIR = "coredump"

if TYPE_CHECKING:  # storage imports zstandard; the pipe helper reads config on its fast path
    from coredumpd.storage import StorageLimits

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/coredumpd/coredump.conf")
ENV_CONFIG = "COREDUMPD_CONFIG"
INFINITY = (1 << 64) - 1
MiB = 1 << 20
GiB = 1 << 30
#: systemd's PROCESS_SIZE_MAX: 32G, or 1G where size_t is 32 bits
PROCESS_SIZE_MAX = 32 * GiB if struct.calcsize("P") == 8 else 1 * GiB
JOURNAL_SIZE_MAX = 767 * MiB
SUN_PATH_MAX = 108


class Storage(StrEnum):
    NONE = "none"
    EXTERNAL = "external"
    JOURNAL = "journal"


@dataclass(frozen=True)
class Config:
    """The effective configuration. Sizes in bytes; ``max_use``/``keep_free`` ``None`` mean
    systemd's defaults (10 % / 15 % of the filesystem, see :mod:`coredumpd.vacuum`)."""

    storage: Storage = Storage.EXTERNAL
    compress: bool = True
    process_size_max: int = PROCESS_SIZE_MAX
    external_size_max: int = PROCESS_SIZE_MAX
    journal_size_max: int = JOURNAL_SIZE_MAX
    max_use: int | None = None
    keep_free: int | None = None
    state_directory: Path = Path("/var/lib/coredumpd")
    handoff_socket: Path = Path("/run/coredumpd/handoff.sock")
    kernel_socket: Path = Path("/run/coredumpd/kernel.sock")
    #: crashes processed at once by the daemon (systemd v262's manager runs 8 workers)
    max_concurrency: int = 8
    #: deadline for one crash, in seconds (systemd: RuntimeMaxSec=5min)
    dump_timeout_sec: float = 300.0
    #: token-bucket rate limits at the kernel door: a bucket of ``burst`` tokens refilled over
    #: ``interval``; 0 turns a limit off (see :mod:`coredumpd.policy`)
    rate_limit_interval_sec: float = 60.0
    rate_limit_burst: int = 10
    unit_rate_limit_burst: int = 30
    #: full cores kept per crash signature; repeats keep metadata and backtrace (None: all)
    full_cores_per_signature: int | None = None
    #: the file the daemon writes ahead for the next big core (:mod:`coredumpd.spool`); at
    #: most a quarter of MaxUse; 0: none
    spool_size: int = 1 << 30
    #: the files that were read, in order
    sources: tuple[Path, ...] = ()

    @property
    def core_directory(self) -> Path:
        """Where cores are stored: ``<StateDirectory>/coredump``."""
        return self.state_directory / CORE_SUBDIR

    @property
    def catalog_path(self) -> Path:
        return self.state_directory / CATALOG

    def storage_limits(self) -> StorageLimits:
        from coredumpd.storage import StorageLimits

        return StorageLimits(process_size_max=self.process_size_max,
                             external_size_max=self.external_size_max, compress=self.compress,
                             keep_free=self.keep_free, max_use=self.max_use)


# -- value parsers (pure; ValueError with a short reason) ----------------------------------

_SIZE_SUFFIXES = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
                  "P": 1 << 50, "E": 1 << 60}
_SIZE_PART = re.compile(r"\s*(\d+)(?:\.(\d+))?\s*([A-Za-z]?)\s*")


def parse_size(text: str) -> int:
    """systemd's ``parse_size`` (base 1024): ``512``, ``4K``, ``1.5G``, ``1G 512M`` (summed),
    ``infinity`` (2^64-1). Suffixes are upper-case ``B K M G T P E``."""
    text = text.strip()
    if text == "infinity":
        return INFINITY
    total = 0
    for whole, frac, suffix in _parts(text, _SIZE_PART, "size"):
        if suffix not in _SIZE_SUFFIXES:
            raise ValueError(f"invalid size suffix {suffix!r} in {text!r} (use B, K, M, G, T, P, E)")
        factor = _SIZE_SUFFIXES[suffix]
        total += int(whole) * factor
        if frac:
            total += int(frac) * factor // 10 ** len(frac)
    if total > INFINITY:
        raise ValueError(f"size {text!r} is too large")
    return total


_TIME_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
               "ms": 1e-3, "msec": 1e-3, "us": 1e-6, "usec": 1e-6,
               "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
               "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
               "d": 86400.0, "day": 86400.0, "days": 86400.0, "w": 604800.0}
_TIME_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*")


def parse_timespan(text: str) -> float:
    """systemd's time span syntax in seconds: ``30``, ``500ms``, ``5min``, ``1h 30min``,
    ``infinity``."""
    text = text.strip()
    if text == "infinity":
        return math.inf
    total = 0.0
    for number, unit in _parts(text, _TIME_PART, "time span"):
        if unit not in _TIME_UNITS:
            raise ValueError(f"invalid time unit {unit!r} in {text!r}")
        total += float(number) * _TIME_UNITS[unit]
    return total


def _parts(text: str, part: re.Pattern[str], what: str) -> list[tuple[str, ...]]:
    """``text`` (stripped) as consecutive matches of ``part``: their groups, in order."""
    if not text:
        raise ValueError(f"empty {what}")
    out, pos = [], 0
    while pos < len(text):
        m = part.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"invalid {what} {text!r}")
        out.append(m.groups())
        pos = m.end()
    return out


_TRUE = {"1", "yes", "y", "true", "t", "on"}
_FALSE = {"0", "no", "n", "false", "f", "off"}


def parse_boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r} (use yes or no)")


def _parse_storage(text: str) -> Storage:
    try:
        return Storage(text)
    except ValueError:
        raise ValueError(f"invalid storage {text!r} (use none, external or journal)") from None


def _parse_positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{text!r} is not a positive integer")
    return int(text)


def _parse_positive_timespan(text: str) -> float:
    value = parse_timespan(text)
    if value <= 0:
        raise ValueError(f"{text!r} is not a positive time span")
    return value


def _parse_count(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a non-negative integer")
    return int(text)


def _parse_count_or_infinity(text: str) -> int | None:
    return None if text == "infinity" else _parse_count(text)


def _parse_directory(text: str) -> Path:
    if not text.startswith("/"):
        raise ValueError(f"{text!r} is not an absolute path")
    return Path(text)


def _parse_socket(text: str) -> Path:
    path = _parse_directory(text)
    if len(os.fsencode(text)) >= SUN_PATH_MAX:
        raise ValueError(f"socket path is {len(os.fsencode(text))} bytes, the limit is {SUN_PATH_MAX - 1}")
    return path


def _parse_kernel_socket(text: str) -> Path:
    # the kernel rejects relative paths, "..", and core_pattern splits on whitespace
    path = _parse_socket(text)
    if ".." in path.parts or any(c.isspace() for c in text):
        raise ValueError(f"{text!r}: the kernel accepts no '..' and no whitespace here")
    return path


@dataclass(frozen=True)
class Setting:
    """One key: its section, :class:`Config` attribute and value parser."""

    section: str
    key: str
    attr: str
    parse: Callable[[str], Any]


SETTINGS: tuple[Setting, ...] = (
    Setting("Coredump", "Storage", "storage", _parse_storage),
    Setting("Coredump", "Compress", "compress", parse_boolean),
    Setting("Coredump", "ProcessSizeMax", "process_size_max", parse_size),
    Setting("Coredump", "ExternalSizeMax", "external_size_max", parse_size),
    Setting("Coredump", "JournalSizeMax", "journal_size_max", parse_size),
    Setting("Coredump", "MaxUse", "max_use", parse_size),
    Setting("Coredump", "KeepFree", "keep_free", parse_size),
    Setting("Coredumpd", "StateDirectory", "state_directory", _parse_directory),
    Setting("Coredumpd", "HandoffSocket", "handoff_socket", _parse_socket),
    Setting("Coredumpd", "KernelSocket", "kernel_socket", _parse_kernel_socket),
    Setting("Coredumpd", "MaxConcurrency", "max_concurrency", _parse_positive_int),
    Setting("Coredumpd", "DumpTimeoutSec", "dump_timeout_sec", _parse_positive_timespan),
    Setting("Coredumpd", "RateLimitIntervalSec", "rate_limit_interval_sec", _parse_positive_timespan),
    Setting("Coredumpd", "RateLimitBurst", "rate_limit_burst", _parse_count),
    Setting("Coredumpd", "UnitRateLimitBurst", "unit_rate_limit_burst", _parse_count),
    Setting("Coredumpd", "FullCoresPerSignature", "full_cores_per_signature",
            _parse_count_or_infinity),
    Setting("Coredumpd", "SpoolSize", "spool_size", parse_size),
)
_BY_KEY = {(s.section, s.key): s for s in SETTINGS}
#: sections whose unknown keys are errors (ours); in others they are ignored with a warning
_STRICT_SECTIONS = {"Coredumpd"}
_SECTIONS = {s.section for s in SETTINGS}


# -- files ----------------------------------------------------------------------------------


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with backslash continuations joined and comments dropped."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        out.append((start, " ".join(pending)))
        pending = []
    if pending:
        out.append((start, " ".join(pending)))
    return out


def parse_config_text(text: str, path: Path, values: dict[str, Any]) -> None:
    """Apply the assignments of one file to ``values`` (attr → value)."""
    defaults = Config()
    section: str | None = None
    for number, line in _logical_lines(text):
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ConfigError(f"invalid section header {line!r}", path=path, line=number)
            section = line[1:-1].strip()
            if section not in _SECTIONS:
                log.warning("%s:%d: unknown section [%s], ignoring", path, number, section)
            continue
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key:
            raise ConfigError(f"expected Key=value, got {line!r}", path=path, line=number)
        if section is None:
            raise ConfigError("assignment outside of a section", path=path, line=number, key=key)
        setting = _BY_KEY.get((section, key))
        if setting is None:
            if section in _STRICT_SECTIONS:
                known = ", ".join(s.key for s in SETTINGS if s.section == section)
                raise ConfigError(f"unknown key in [{section}] (known: {known})",
                                  path=path, line=number, key=key)
            if section in _SECTIONS:
                log.warning("%s:%d: unknown key %s in [%s], ignoring", path, number, key, section)
            continue
        if not value:
            values[setting.attr] = getattr(defaults, setting.attr)
            continue
        try:
            values[setting.attr] = setting.parse(value)
        except ValueError as err:
            raise ConfigError(str(err), path=path, line=number, key=key) from err


def config_files(main: Path) -> list[Path]:
    """The main file (if present), then ``<main>.d/*.conf`` in lexical order."""
    files = [main] if main.exists() else []
    dropins = main.with_name(main.name + ".d")
    try:
        names = sorted(entry.name for entry in os.scandir(dropins)
                       if entry.name.endswith(".conf") and not entry.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        names = []
    except OSError as err:
        raise ConfigError(f"cannot list drop-ins: {err.strerror}", path=dropins) from err
    return files + [dropins / name for name in names]


def load_config(path: Path | str | None = None, *,
                environ: Mapping[str, str] = os.environ) -> Config:
    """Read the configuration: ``path``, else ``$COREDUMPD_CONFIG``, else
    ``/etc/coredumpd/coredump.conf``; plus its drop-ins. Missing files mean defaults."""
    main = Path(path if path is not None else environ.get(ENV_CONFIG) or DEFAULT_CONFIG)
    values: dict[str, Any] = {}
    sources = config_files(main)
    for source in sources:
        try:
            data = source.read_bytes()
        except OSError as err:
            raise ConfigError(f"cannot read: {err.strerror}", path=source) from err
        try:
            text = data.decode()
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise ConfigError("not valid UTF-8", path=source, line=line) from err
        parse_config_text(text, source, values)
    known = {f.name for f in fields(Config)}
    assert set(values) <= known
    return replace(Config(), sources=tuple(sources), **values)


def load_config_for(config_path: Path | str | None = None,
                    state_dir: Path | str | None = None) -> Config:
    """:func:`load_config`, with the state directory overridden when ``state_dir`` is given
    (the ``--state-dir`` of the command line)."""
    config = load_config(config_path)
    if state_dir is not None:
        import dataclasses

        config = dataclasses.replace(config, state_directory=Path(state_dir))
    return config
