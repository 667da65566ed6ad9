"""coredump.conf parsing: values, defaults, drop-ins, and every error shape."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from coredumpd.config import (
    INFINITY,
    Config,
    Storage,
    load_config,
    parse_boolean,
    parse_size,
    parse_timespan,
)
from coredumpd.errors import ConfigError

K, M, G = 1 << 10, 1 << 20, 1 << 30


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("512", 512), ("512B", 512), ("4K", 4 * K), ("32G", 32 * G), ("2T", 2 << 40),
    ("1E", 1 << 60), ("1.5G", G + G // 2), ("0.5K", 512), ("1G 512M", G + 512 * M),
    (" 8 M ", 8 * M), ("infinity", INFINITY),
])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "-1", "1X", "1k", "G", "1.G", "1..5G", "abc", "16E",
                                  "1 2 3 Q"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30", 30.0), ("500ms", 0.5), ("5min", 300.0), ("1h 30min", 5400.0), ("2s", 2.0),
    ("1.5h", 5400.0),
])
def test_parse_timespan(text: str, seconds: float) -> None:
    assert parse_timespan(text) == pytest.approx(seconds)
    assert parse_timespan("infinity") == math.inf


@pytest.mark.parametrize("text", ["", "5 parsecs", "-3s", "min"])
def test_parse_timespan_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timespan(text)


@pytest.mark.parametrize(("text", "value"), [("yes", True), ("ON", True), ("1", True), ("t", True),
                                             ("no", False), ("off", False), ("0", False),
                                             ("False", False)])
def test_parse_boolean(text: str, value: bool) -> None:
    assert parse_boolean(text) is value


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_are_systemd_v252(tmp_path: Path) -> None:
    config = load_config(tmp_path / "absent.conf")
    assert config == Config()
    assert config.storage is Storage.EXTERNAL and config.compress is True
    assert config.process_size_max == 32 * G and config.external_size_max == 32 * G
    assert config.journal_size_max == 767 * M
    assert config.max_use is None and config.keep_free is None  # % of the filesystem
    assert config.state_directory == Path("/var/lib/coredumpd")
    assert config.core_directory == Path("/var/lib/coredumpd/coredump")
    assert config.catalog_path == Path("/var/lib/coredumpd/catalog.sqlite")
    assert config.handoff_socket == Path("/run/coredumpd/handoff.sock")
    assert config.kernel_socket == Path("/run/coredumpd/kernel.sock")
    assert config.sources == ()


def test_full_file(tmp_path: Path) -> None:
    main = write(tmp_path / "coredump.conf", """\
# a comment
; another
[Coredump]
Storage=none
Compress = no
ProcessSizeMax=2G
ExternalSizeMax=infinity
JournalSizeMax=10M
MaxUse=1G
KeepFree=\\
    512M

[Coredumpd]
StateDirectory=/srv/cores
HandoffSocket=/run/x/h.sock
KernelSocket=/run/x/k.sock
MaxConcurrency=3
DumpTimeoutSec=2min
SpoolSize=256M
""")
    config = load_config(main)
    assert config.storage is Storage.NONE and config.compress is False
    assert config.process_size_max == 2 * G and config.external_size_max == INFINITY
    assert config.journal_size_max == 10 * M
    assert config.max_use == G and config.keep_free == 512 * M
    assert config.state_directory == Path("/srv/cores")
    assert config.handoff_socket == Path("/run/x/h.sock")
    assert config.kernel_socket == Path("/run/x/k.sock")
    assert config.max_concurrency == 3 and config.dump_timeout_sec == 120.0
    assert config.spool_size == 256 * M
    assert config.sources == (main,)
    limits = config.storage_limits()
    assert (limits.process_size_max, limits.external_size_max, limits.compress,
            limits.keep_free, limits.max_use) == (2 * G, INFINITY, False, 512 * M, G)


def test_dropins_in_lexical_order_and_empty_resets(tmp_path: Path) -> None:
    main = write(tmp_path / "coredump.conf", "[Coredump]\nProcessSizeMax=1G\nCompress=no\n")
    d = tmp_path / "coredump.conf.d"
    write(d / "20-b.conf", "[Coredump]\nProcessSizeMax=3G\nCompress=\n")
    write(d / "10-a.conf", "[Coredump]\nProcessSizeMax=2G\nMaxUse=5M\n")
    write(d / "30-ignored.txt", "[Coredump]\nProcessSizeMax=9G\n")
    (d / "40-dir.conf").mkdir()
    config = load_config(main)
    assert config.process_size_max == 3 * G
    assert config.compress is True  # reset to the default by "Compress="
    assert config.max_use == 5 * M
    assert config.sources == (main, d / "10-a.conf", d / "20-b.conf")


def test_dropins_without_main_file(tmp_path: Path) -> None:
    write(tmp_path / "coredump.conf.d" / "x.conf", "[Coredump]\nStorage=journal\n")
    assert load_config(tmp_path / "coredump.conf").storage is Storage.JOURNAL


def test_environment_overrides_default_path(tmp_path: Path) -> None:
    env_file = write(tmp_path / "env.conf", "[Coredumpd]\nMaxConcurrency=7\n")
    arg_file = write(tmp_path / "arg.conf", "[Coredumpd]\nMaxConcurrency=5\n")
    assert load_config(environ={"COREDUMPD_CONFIG": str(env_file)}).max_concurrency == 7
    assert load_config(arg_file, environ={"COREDUMPD_CONFIG": str(env_file)}).max_concurrency == 5


def test_systemd_only_keys_and_sections_are_ignored_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    main = write(tmp_path / "c.conf", "[Coredump]\nEnterNamespace=yes\n[Journal]\nStorage=auto\n")
    with caplog.at_level(logging.WARNING):
        assert load_config(main) == Config(sources=(main,))
    text = caplog.text
    assert "c.conf:2: unknown key EnterNamespace in [Coredump], ignoring" in text
    assert "c.conf:3: unknown section [Journal], ignoring" in text


@pytest.mark.parametrize(("text", "line", "key", "reason"), [
    ("[Coredump]\nStorage=both\n", 2, "Storage", "invalid storage 'both'"),
    ("[Coredump]\nCompress=maybe\n", 2, "Compress", "invalid boolean"),
    ("[Coredump]\n\nProcessSizeMax=12Q\n", 3, "ProcessSizeMax", "invalid size suffix"),
    ("[Coredump]\nMaxUse=-5\n", 2, "MaxUse", "invalid size"),
    ("[Coredump]\nKeepFree=lots\n", 2, "KeepFree", "invalid size"),
    ("[Coredumpd]\nStateDirectory=relative/dir\n", 2, "StateDirectory", "not an absolute path"),
    ("[Coredumpd]\nHandoffSocket=/" + "x" * 120 + "\n", 2, "HandoffSocket", "the limit is 107"),
    ("[Coredumpd]\nKernelSocket=/run/a b\n", 2, "KernelSocket", "no whitespace"),
    ("[Coredumpd]\nKernelSocket=/run/../x\n", 2, "KernelSocket", "no '..'"),
    ("[Coredumpd]\nMaxConcurrency=0\n", 2, "MaxConcurrency", "not a positive integer"),
    ("[Coredumpd]\nDumpTimeoutSec=0\n", 2, "DumpTimeoutSec", "not a positive time span"),
    ("[Coredumpd]\nDumpTimeoutSec=soon\n", 2, "DumpTimeoutSec", "invalid time span"),
    ("[Coredumpd]\nStateDir=/x\n", 2, "StateDir", "unknown key in [Coredumpd]"),
    ("[Coredumpd]\nSpoolSize=big\n", 2, "SpoolSize", "invalid size"),
    ("Storage=none\n", 1, "Storage", "assignment outside of a section"),
    ("[Coredump]\nStorage\n", 2, None, "expected Key=value"),
    ("[Coredump]\n=none\n", 2, None, "expected Key=value"),
    ("[Coredump\nStorage=none\n", 1, None, "invalid section header"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, line: int, key: str | None,
                                       reason: str) -> None:
    main = write(tmp_path / "bad.conf", text)
    with pytest.raises(ConfigError) as info:
        load_config(main)
    err = info.value
    assert (err.path, err.line, err.key) == (main, line, key)
    message = str(err)
    assert message.startswith(f"{main}:{line}: " + (f"{key}=: " if key else ""))
    assert reason in message
    assert "\n" not in message


def test_error_in_dropin_names_the_dropin(tmp_path: Path) -> None:
    main = write(tmp_path / "coredump.conf", "[Coredump]\nCompress=yes\n")
    bad = write(tmp_path / "coredump.conf.d" / "50-bad.conf", "# x\n[Coredump]\nCompress=sometimes\n")
    with pytest.raises(ConfigError, match=r"50-bad\.conf:3: Compress=: invalid boolean"):
        load_config(main)
    assert bad.exists()


def test_unreadable_and_undecodable_files(tmp_path: Path) -> None:
    (tmp_path / "dir.conf").mkdir()
    with pytest.raises(ConfigError, match=r"dir\.conf: cannot read"):
        load_config(tmp_path / "dir.conf")
    main = tmp_path / "bin.conf"
    main.write_bytes(b"[Coredump]\nStorage=none\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"bin\.conf:3: not valid UTF-8"):
        load_config(main)
