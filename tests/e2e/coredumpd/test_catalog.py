"""The SQLite catalog: round trips, queries, migrations, concurrent writers, corruption."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coredumpd.catalog import MIGRATIONS, SCHEMA_VERSION, Catalog
from coredumpd.context import CrashContext
from coredumpd.errors import CatalogError
from coredumpd.storage import StoredCore

REPO = Path(__file__).resolve().parents[3]


def context(n: int = 1, **kw: object) -> CrashContext:
    base: dict[str, object] = dict(
        pid=1000 + n, tid=2000 + n, uid=1000, gid=1000, signal=11, timestamp=1_700_000_000_000_000 + n,
        comm=b"crash", exe=b"/usr/bin/crash", boot_id="ab" * 16, door="pipe")
    base.update(kw)
    return CrashContext(**base)  # type: ignore[arg-type]


def stored(path: str = "/var/lib/coredumpd/coredump/core.x.zst", state: str = "present") -> StoredCore:
    return StoredCore(Path(path), state, 1000, 1000, 4096, 1000, None)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    with Catalog.open(tmp_path / "state" / "catalog.sqlite") as cat:
        yield cat


def test_round_trip(catalog: Catalog) -> None:
    ctx = context(comm=b"a/b\n\x1b\xff", exe=b"/tmp/\xff", notes=["over KeepFree"])
    row_id = catalog.add(ctx, stored(), backtrace_json='{"threads": []}', signature="sig1")
    row = catalog.get(row_id)
    assert (row.pid, row.tid, row.uid, row.gid, row.signal, row.door) == (1001, 2001, 1000, 1000, 11, "pipe")
    assert (row.comm, row.exe) == (b"a/b\n\x1b\xff", b"/tmp/\xff")
    assert row.timestamp == ctx.timestamp and row.boot_id == "ab" * 16
    assert row.path == Path("/var/lib/coredumpd/coredump/core.x.zst")
    assert (row.storage_state, row.received, row.stored_bytes, row.disk_size) == ("present", 1000, 1000, 4096)
    assert (row.backtrace_json, row.signature, row.notes) == ('{"threads": []}', "sig1", ("over KeepFree",))
    assert row.context == ctx
    assert row.created > 0
    assert catalog.schema_version == SCHEMA_VERSION


def test_crash_without_core(catalog: Catalog) -> None:
    row = catalog.get(catalog.add(context(timestamp=None), None, backtrace_json=None, signature=None))
    assert (row.storage_state, row.filename, row.path, row.received) == ("none", None, None, None)
    assert row.timestamp == row.created


def test_query_filters_and_order(catalog: Catalog) -> None:
    ids = [catalog.add(context(n, comm=b"even" if n % 2 == 0 else b"odd"), stored(f"/c/{n}"),
                       backtrace_json=None, signature=f"s{n % 3}") for n in range(10)]
    assert [r.id for r in catalog.query()] == ids[::-1]
    assert [r.id for r in catalog.query(newest_first=False, limit=3)] == ids[:3]
    base = 1_700_000_000_000_000
    assert [r.pid for r in catalog.query(since_us=base + 3, until_us=base + 6)] == [1005, 1004, 1003]
    assert {r.comm for r in catalog.query(match={"comm": b"even"})} == {b"even"}
    assert len(catalog.query(match={"signature": "s0", "comm": b"even"})) == 2  # n = 0, 6
    assert len(catalog.query(match={"pid": [1001, 1002, 9999]})) == 2
    assert catalog.query(match={"pid": []}) == []
    assert len(catalog.query(match={"tid": None})) == 0
    with pytest.raises(CatalogError, match="cannot match on 'backtrace_json'"):
        catalog.query(match={"backtrace_json": None})
    lean = catalog.query(details=False, limit=2)
    assert [r.id for r in lean] == ids[:-3:-1]
    assert lean[0].context_json is None and lean[0].pid == 1009 and lean[0].signature == "s0"
    with pytest.raises(CatalogError, match="without its details"):
        lean[0].context  # noqa: B018
    assert catalog.count() == 10
    with pytest.raises(CatalogError, match="cannot match on 'pid; DROP TABLE crashes'"):
        catalog.query(match={"pid; DROP TABLE crashes": 1})


def test_set_backtrace_and_missing(catalog: Catalog, tmp_path: Path) -> None:
    real = tmp_path / "core.real.zst"
    real.write_bytes(b"x")
    a = catalog.add(context(1), stored(str(real)), backtrace_json=None, signature=None)
    b = catalog.add(context(2), stored("/gone/core.b.zst"), backtrace_json=None, signature=None)
    c = catalog.add(context(3), stored("/gone/core.c.zst", "truncated"), backtrace_json=None, signature=None)
    catalog.set_backtrace(a, '{"x": 1}', "sig")
    assert (catalog.get(a).backtrace_json, catalog.get(a).signature) == ('{"x": 1}', "sig")
    with pytest.raises(CatalogError, match="no crash with id 999"):
        catalog.set_backtrace(999, None, None)
    with pytest.raises(CatalogError, match="no crash with id 999"):
        catalog.get(999)
    assert catalog.find(999) is None
    assert catalog.mark_missing([Path("/gone/core.b.zst")]) == 1
    assert catalog.mark_missing([]) == 0
    assert catalog.mark_vanished() == 1  # c; a's file exists, b is already missing
    assert [catalog.get(i).storage_state for i in (a, b, c)] == ["present", "missing", "missing"]


def test_migration_from_version_1(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    old = context(7, tid=77, door="socket")
    conn.execute("INSERT INTO crashes (timestamp, pid, uid, comm, context_json, filename, "
                 "storage_state, received, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (old.timestamp, old.pid, old.uid, old.comm, old.to_json(), "/c/old", "present", 5, 1))
    conn.commit()
    conn.close()
    with Catalog.open(path) as catalog:
        assert catalog.schema_version == SCHEMA_VERSION == 3
        row = catalog.query()[0]
        assert (row.pid, row.tid, row.door, row.signature, row.stored_bytes) == (1007, 77, "socket", None, None)
        assert (row.filename, row.storage_state, row.received) == ("/c/old", "present", 5)
        assert row.context == old
        new_id = catalog.add(context(8), stored(), backtrace_json=None, signature="s")
        assert [r.id for r in catalog.query(match={"signature": "s"})] == [new_id]
    names = {name for (name,) in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {"crashes", "crashes_timestamp", "crashes_signature"} <= names
    # the details moved to the root-only companion database (schema 3)
    assert "crash_details" not in names
    assert "crashes_v2" not in names


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    Catalog.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(CatalogError, match=rf"catalog schema version {SCHEMA_VERSION + 1} is newer "
                                           rf"than this coredumpd knows \({SCHEMA_VERSION}\)"):
        Catalog.open(path)


@pytest.mark.parametrize("content", [b"this is not sqlite at all\n" * 100,
                                     b"SQLite format 3\x00" + os.urandom(8000)])
def test_corrupt_file_gives_catalog_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "catalog.sqlite"
    path.write_bytes(content)
    with pytest.raises(CatalogError) as info:
        Catalog.open(path)
    message = str(info.value)
    assert message.startswith(f"{path}: failed to open the catalog: ")
    assert "\n" not in message


def test_corruption_after_open(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    with Catalog.open(path) as catalog:
        for n in range(50):
            catalog.add(context(n, environ=b"X" * 3000), None, backtrace_json=None, signature=None)
    with open(path, "r+b") as f:  # keep the header, scribble over the pages
        f.seek(4096)
        f.write(os.urandom(64 << 10))
    for wal in ("-wal", "-shm"):
        Path(str(path) + wal).unlink(missing_ok=True)
    with pytest.raises(CatalogError):
        with Catalog.open(path) as catalog:
            catalog.query()
            catalog.add(context(99), None, backtrace_json=None, signature=None)


WRITER = textwrap.dedent("""
    import sys
    from coredumpd.catalog import Catalog
    from coredumpd.context import CrashContext
    path, worker = sys.argv[1], int(sys.argv[2])
    with Catalog.open(path) as catalog:
        for n in range(200):
            catalog.add(CrashContext(pid=worker * 1000 + n, uid=worker, timestamp=n, comm=b"w"),
                        None, backtrace_json=None, signature=f"w{worker}")
""")


def test_four_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"  # created by the racing writers themselves
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w)], cwd=REPO,
                              stderr=subprocess.PIPE) for w in range(4)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    with Catalog.open(path) as catalog:
        rows = catalog.query()
        assert len(rows) == catalog.count() == 800
        assert len({r.id for r in rows}) == 800
        assert sorted(r.pid for r in rows) == sorted(w * 1000 + n for w in range(4) for n in range(200))
        for w in range(4):
            assert len(catalog.query(match={"signature": f"w{w}"})) == 200
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_context_json_is_the_contexts(catalog: Catalog) -> None:
    ctx = context(environ=b"A=1\x00B=2\x00")
    row = catalog.get(catalog.add(ctx, None, backtrace_json=None, signature=None))
    assert json.loads(row.context_json) == json.loads(ctx.to_json())


def test_details_are_root_only_and_summaries_listable(tmp_path: Path) -> None:
    """Other users may list (what ps shows anyway) but never read environments, command lines
    or backtraces of crashes: those live in the 0600 companion database."""
    import shutil
    import tempfile

    from coredumpd.catalog import details_path

    public = Path(tempfile.mkdtemp(prefix="cdt-cat-", dir="/tmp"))  # reachable by uid 65534
    os.chmod(public, 0o755)
    path = public / "catalog.sqlite"
    with Catalog.open(path) as catalog:
        secret = context(1, environ=b"TOKEN=hunter2")
        catalog.add(secret, stored(), backtrace_json='{"threads": []}', signature="ab")
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.stat(details_path(path)).st_mode & 0o777 == 0o600
    assert b"hunter2" not in path.read_bytes()
    script = textwrap.dedent(f"""
        from coredumpd.catalog import Catalog
        with Catalog.open_readonly({str(path)!r}) as c:
            rows = c.query()
            print(c.has_details, len(rows), rows[0].context_json, rows[0].signature)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         user=65534, group=65534, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "1", "None", "ab"]
    with Catalog.open_readonly(path) as catalog:  # root reads everything
        assert catalog.has_details and b"hunter2" in catalog.query()[0].context.environ
    shutil.rmtree(public)
