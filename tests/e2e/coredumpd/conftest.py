"""Fixtures of the storage tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coredumpd import storage


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[tuple[list[str], Path]]:
    """A command prefix that runs in a private mount namespace with a 1 MiB tmpfs at the
    returned directory (gone with the namespace, whatever happens)."""
    directory = tmp_path / "tiny"
    directory.mkdir()
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
              f'mount -t tmpfs -o size=1m tmpfs "{directory}" && exec "$@"', "sh"]
    yield prefix, directory


@pytest.fixture(params=["direct", "page-cache"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each storage test twice: zstd frames written with O_DIRECT (where the file system
    allows it, the default), and through the page cache (splice and write-behind)."""
    monkeypatch.setattr(storage, "USE_O_DIRECT", request.param == "direct")
    return request.param  # type: ignore[no-any-return]
