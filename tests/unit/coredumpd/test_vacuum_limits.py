"""systemd's vacuum limits and the file-name rule, without a filesystem."""

from __future__ import annotations

import pytest

from coredumpd.vacuum import resolve_keep_free, resolve_max_use, uid_from_file_name

M, G = 1 << 20, 1 << 30


@pytest.mark.parametrize(("name", "uid"), [
    ("core.crash.1000.62ac89afada247dc84e003c0548fd64c.11951.1795433691000000.zst", 1000),
    ("core.a\\x2eout.0.b.1.2", 0),
    ("core.x.0.b.1.2~1.zst", 0),
    (".#core.crash.0.b.1.2.zst1234", None),
    ("core.crash.notanumber.b.1.2", None),
    ("core.crash", None),
    ("catalog.sqlite", None),
    ("core.x.\u0663.b", None),  # a non-ASCII digit is not a uid
])
def test_uid_from_file_name(name: str, uid: int | None) -> None:
    assert uid_from_file_name(name) == uid


@pytest.mark.parametrize(("fs_size", "expected"), [
    (100 * G, 4 * G),        # 10 % capped at 4 GiB
    (10 * G, G),             # 10 %
    (4 * M, M),              # at least 1 MiB
    (0, M),
])
def test_default_max_use(fs_size: int, expected: int) -> None:
    assert resolve_max_use(None, fs_size) == expected


@pytest.mark.parametrize(("fs_size", "expected"), [
    (100 * G, 4 * G),        # 15 % capped at 4 GiB
    (20 * G, 3 * G),
    (0, M),
])
def test_default_keep_free(fs_size: int, expected: int) -> None:
    assert resolve_keep_free(None, fs_size) == expected


def test_explicit_limits_are_page_aligned() -> None:
    assert resolve_max_use(1, G) == 4096
    assert resolve_keep_free(0, G) == 0
    assert resolve_max_use(8192, G) == 8192
