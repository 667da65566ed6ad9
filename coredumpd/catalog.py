"""The crash catalog: one SQLite row per crash, in WAL mode, in the state directory.

It is the index the CLI lists from; it survives journal rotation. The schema is versioned
with ``PRAGMA user_version`` and grows through :data:`MIGRATIONS` (never edit a shipped
step: append one). Several processes may write at once (the daemon and fallback pipe
helpers): every write is one short ``BEGIN IMMEDIATE`` transaction and waits up to
``timeout`` for the lock. Every sqlite error leaves as :class:`CatalogError`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from coredumpd.context import CrashContext
from coredumpd.errors import CatalogError
from coredumpd.storage import StoredCore

T = TypeVar("T")

_V2_COLUMNS = ("id, timestamp, boot_id, pid, tid, uid, gid, signal, comm, exe, door, filename, "
               "storage_state, received, stored_bytes, disk_size, signature, notes, created")

#: Each step takes the schema from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the first catalog: one wide table
    (
        """CREATE TABLE crashes (
            id INTEGER PRIMARY KEY,
            timestamp INTEGER NOT NULL,
            boot_id TEXT,
            pid INTEGER,
            uid INTEGER,
            gid INTEGER,
            signal INTEGER,
            comm BLOB,
            exe BLOB,
            context_json TEXT NOT NULL,
            filename TEXT,
            storage_state TEXT NOT NULL,
            received INTEGER,
            disk_size INTEGER,
            backtrace_json TEXT,
            notes TEXT,
            created INTEGER NOT NULL
        )""",
        "CREATE INDEX crashes_timestamp ON crashes (timestamp)",
    ),
    # 2: the big JSON payloads move to crash_details, so that listing never walks their
    # overflow pages (10,000 rows: 100 ms → a few ms); thread, door, kept bytes and the
    # crash signature become columns
    (
        """CREATE TABLE crashes_v2 (
            id INTEGER PRIMARY KEY,
            timestamp INTEGER NOT NULL,       -- µs since the epoch (COREDUMP_TIMESTAMP)
            boot_id TEXT,
            pid INTEGER,
            tid INTEGER,
            uid INTEGER,
            gid INTEGER,
            signal INTEGER,
            comm BLOB,
            exe BLOB,
            door TEXT,
            filename TEXT,                    -- the stored core, absolute
            storage_state TEXT NOT NULL,      -- present | truncated | none | missing
            received INTEGER,
            stored_bytes INTEGER,
            disk_size INTEGER,
            signature TEXT,
            notes TEXT,                       -- JSON array of strings
            created INTEGER NOT NULL          -- µs since the epoch, when the row was written
        )""",
        """CREATE TABLE crash_details (
            id INTEGER PRIMARY KEY,           -- crashes.id
            context_json TEXT NOT NULL,       -- CrashContext.to_json()
            backtrace_json TEXT
        )""",
        f"""INSERT INTO crashes_v2 ({_V2_COLUMNS})
            SELECT id, timestamp, boot_id, pid, json_extract(context_json, '$.tid'), uid, gid,
                   signal, comm, exe, json_extract(context_json, '$.door'), filename,
                   storage_state, received, NULL, disk_size, NULL, notes, created
            FROM crashes""",
        """INSERT INTO crash_details (id, context_json, backtrace_json)
            SELECT id, context_json, backtrace_json FROM crashes""",
        "DROP TABLE crashes",
        "ALTER TABLE crashes_v2 RENAME TO crashes",
        "CREATE INDEX crashes_timestamp ON crashes (timestamp)",
        "CREATE INDEX crashes_signature ON crashes (signature)",
        "CREATE INDEX crashes_filename ON crashes (filename)",
    ),
    # 3: the details (environment, command line, /proc texts, backtraces of every user's
    # crashes) move to a root-only companion database attached as "details"; the catalog
    # itself keeps what `ps` shows anyway and stays listable by users (rows filtered by uid)
    (
        """CREATE TABLE IF NOT EXISTS details.crash_details (
            id INTEGER PRIMARY KEY,
            context_json TEXT NOT NULL,
            backtrace_json TEXT
        )""",
        "INSERT OR REPLACE INTO details.crash_details SELECT * FROM main.crash_details",
        "DROP TABLE main.crash_details",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
STATES = ("present", "truncated", "none", "missing")


@dataclass(frozen=True)
class CatalogRow:
    """One crash as recorded. Times in µs since the epoch; ids in the initial namespaces;
    ``comm``/``exe`` are the kernel's bytes. ``context_json`` and ``backtrace_json`` are
    ``None`` in rows queried with ``details=False``."""

    id: int
    timestamp: int
    boot_id: str | None
    pid: int | None
    tid: int | None
    uid: int | None
    gid: int | None
    signal: int | None
    comm: bytes | None
    exe: bytes | None
    door: str | None
    context_json: str | None
    filename: str | None
    storage_state: str
    received: int | None
    stored_bytes: int | None
    disk_size: int | None
    backtrace_json: str | None
    signature: str | None
    notes: tuple[str, ...]
    created: int

    @property
    def path(self) -> Path | None:
        return Path(self.filename) if self.filename else None

    @cached_property
    def context(self) -> CrashContext:
        """The full :class:`CrashContext` (parsed once)."""
        if self.context_json is None:
            raise CatalogError(f"crash {self.id} was read without its details")
        return CrashContext.from_json(self.context_json)


COLUMNS = tuple(f.name for f in fields(CatalogRow))
_DETAILS = ("context_json", "backtrace_json")
_SELECT = ("SELECT " + ", ".join(f"d.{c}" if c in _DETAILS else f"c.{c}" for c in COLUMNS)
           + " FROM crashes AS c LEFT JOIN details.crash_details AS d ON d.id = c.id")
_MATCHABLE = tuple(c for c in COLUMNS if c not in _DETAILS)
_SELECT_SUMMARY = ("SELECT " + ", ".join("NULL" if c in _DETAILS else f"c.{c}" for c in COLUMNS)
                   + " FROM crashes AS c")


_NOTES = COLUMNS.index("notes")


def _parse_notes(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        notes = json.loads(text)
    except ValueError:
        return (text,)
    return tuple(str(n) for n in notes) if isinstance(notes, list) else (str(notes),)


def _row(values: tuple[Any, ...]) -> CatalogRow:
    # positional, in COLUMNS order: listing 10,000 rows is dominated by this function
    if values[_NOTES] is None:
        return CatalogRow(*values[:_NOTES], (), *values[_NOTES + 1:])
    return CatalogRow(*values[:_NOTES], _parse_notes(values[_NOTES]), *values[_NOTES + 1:])


def details_path(path: Path) -> Path:
    """The root-only companion database holding each crash's context and backtrace."""
    return path.with_name(path.stem + "-details" + path.suffix)


def _create_with_mode(path: Path, mode: int) -> None:
    """Create ``path`` empty with ``mode`` if it does not exist (SQLite gives its -wal/-shm
    files the database file's mode), and correct the mode if it is wider."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, mode)
        os.close(fd)
    except FileExistsError:
        if os.stat(path).st_mode & 0o777 & ~mode:
            os.chmod(path, mode)


def _attach_readonly(conn: sqlite3.Connection, path: Path) -> bool:
    """Attach the details database read-only if this process may read it."""
    if not os.access(path, os.R_OK):
        return False
    try:
        conn.execute("ATTACH DATABASE ? AS details", (f"{path.resolve().as_uri()}?mode=ro",))
        conn.execute("SELECT count(*) FROM details.sqlite_master").fetchone()
        return True
    except sqlite3.Error:
        try:
            conn.execute("DETACH DATABASE details")
        except sqlite3.Error:
            pass
        return False


def _now_us() -> int:
    return time.time_ns() // 1000


class Catalog:
    """An open catalog. Thread-safe (one connection behind a lock); one per process."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, has_details: bool = True) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.Lock()
        #: False when opened by someone who may not read the root-only details database:
        #: rows then come without context and backtrace JSON
        self.has_details = has_details

    @classmethod
    def open(cls, path: Path | str, *, timeout: float = 30.0) -> Catalog:
        """Open (creating and migrating as needed) the catalog at ``path``."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_with_mode(path, 0o644)
            _create_with_mode(details_path(path), 0o600)
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                   check_same_thread=False)
        except (OSError, sqlite3.Error) as err:
            raise CatalogError(f"cannot open the catalog: {err}", path) from err
        catalog = cls(conn, path)
        try:
            catalog._call("open the catalog", lambda: catalog._setup(timeout))
        except BaseException:
            conn.close()
            raise
        return catalog

    @classmethod
    def open_readonly(cls, path: Path | str, *, timeout: float = 5.0) -> Catalog:
        """Open an existing catalog for reading only: never creates, migrates or writes, so
        a user who may read the file but not its directory can list (WAL mode needs the
        ``-shm`` file the writers keep; when no writer has the database open there is no
        ``-wal`` either, and the file alone is the whole database: it is then read as
        ``immutable``)."""
        path = Path(path)
        uri = path.resolve().as_uri()
        conn = None
        try:
            try:
                conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout,
                                       isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA user_version").fetchone()
            except sqlite3.OperationalError:
                if conn is not None:
                    conn.close()
                if os.path.exists(f"{path}-wal") or not os.access(path, os.R_OK):
                    raise
                conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as err:
            if conn is not None:
                conn.close()
            reason = "permission denied" if not os.access(path, os.R_OK) else str(err)
            raise CatalogError(f"cannot open the catalog: {reason}", path) from err
        has_details = _attach_readonly(conn, details_path(path))
        catalog = cls(conn, path, has_details=has_details)
        try:
            version = catalog._call("open the catalog", catalog._version)
            if version != SCHEMA_VERSION:
                raise CatalogError(f"catalog schema version {version} is older than this "
                                   f"coredumpd reads ({SCHEMA_VERSION}); run as root once", path)
        except BaseException:
            conn.close()
            raise
        return catalog

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, what: str, step: Callable[[], T]) -> T:
        """The one place sqlite errors become :class:`CatalogError`."""
        try:
            with self._lock:
                return step()
        except sqlite3.DatabaseError as err:
            text = str(err)
            if "not a database" in text or "malformed" in text:
                text = f"not a usable catalog database ({text}); move it away to start a new one"
            raise CatalogError(f"failed to {what}: {text}", self.path) from err
        except (sqlite3.Error, OverflowError) as err:
            raise CatalogError(f"failed to {what}: {err}", self.path) from err

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _setup(self, timeout: float) -> None:
        conn = self._conn
        conn.execute("ATTACH DATABASE ? AS details", (str(details_path(self.path)),))
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL: a killed writer never corrupts; a power cut may lose the last rows
        conn.execute("PRAGMA synchronous = NORMAL")
        version = self._version()
        if version == SCHEMA_VERSION:
            return
        with self._write():
            self._migrate(self._version())  # re-read under the write lock: another may have won

    def _version(self) -> int:
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise CatalogError(f"catalog schema version {version} is newer than this coredumpd "
                               f"knows ({SCHEMA_VERSION})", self.path)
        return int(version)

    def _migrate(self, version: int) -> None:
        for number in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[number]:
                self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return self._call("read the schema version", self._version)

    # -- writes -----------------------------------------------------------------------------

    def add(self, context: CrashContext, stored: StoredCore | None, *,
            backtrace_json: str | None, signature: str | None) -> int:
        """Record one crash; returns its id."""
        now = _now_us()
        row = {
            "timestamp": context.timestamp if context.timestamp is not None else now,
            "boot_id": context.boot_id, "pid": context.pid, "tid": context.tid,
            "uid": context.uid, "gid": context.gid, "signal": context.signal,
            "comm": context.comm, "exe": context.exe, "door": context.door,
            "filename": str(stored.path) if stored is not None and stored.path else None,
            "storage_state": stored.state if stored is not None else "none",
            "received": stored.received if stored is not None else None,
            "stored_bytes": stored.stored_bytes if stored is not None else None,
            "disk_size": stored.disk_size if stored is not None else None,
            "signature": signature,
            "notes": json.dumps(list(context.notes)) if context.notes else None,
            "created": now,
        }
        sql = (f"INSERT INTO crashes (id, {', '.join(row)}) "
               f"VALUES (:id, {', '.join(':' + k for k in row)})")

        details = (context.to_json(), backtrace_json)

        def insert() -> int:
            # Two transactions, details first: in WAL mode a transaction over attached
            # databases commits one file at a time (main first), so a reader could see the row
            # before its details. The id is reserved over both tables under the write lock
            # (BEGIN IMMEDIATE locks both files); a crash in between leaves only an orphan
            # details row, whose id is never reused.
            with self._write() as conn:
                row_id = conn.execute(
                    "SELECT max(coalesce((SELECT max(id) FROM main.crashes), 0), "
                    "coalesce((SELECT max(id) FROM details.crash_details), 0)) + 1").fetchone()[0]
                conn.execute("INSERT INTO details.crash_details (id, context_json, backtrace_json) "
                             "VALUES (?, ?, ?)", (row_id, *details))
            with self._write() as conn:
                conn.execute(sql, {"id": row_id, **row})
            return int(row_id)

        return self._call("add a crash", insert)

    def full_core_counts(self) -> dict[str, int]:
        """How many full (stored) cores each signature has: seeds the per-signature policy."""
        rows = self._call("count cores by signature", lambda: self._conn.execute(
            "SELECT signature, count(*) FROM crashes WHERE signature IS NOT NULL AND "
            "storage_state IN ('present', 'truncated') GROUP BY signature").fetchall())
        return {signature: n for signature, n in rows}

    def set_backtrace(self, id: int, backtrace_json: str | None, signature: str | None) -> None:
        def update() -> None:
            with self._write() as conn:
                cursor = conn.execute("UPDATE crashes SET signature = ? WHERE id = ?",
                                      (signature, id))
                if cursor.rowcount == 0:
                    raise CatalogError(f"no crash with id {id}", self.path)
                conn.execute("UPDATE details.crash_details SET backtrace_json = ? WHERE id = ?",
                             (backtrace_json, id))

        self._call("set a backtrace", update)

    def mark_missing(self, paths: Iterable[Path | str]) -> int:
        """Mark the crashes whose stored file is one of ``paths`` as ``missing`` (e.g. after
        vacuum). Returns how many rows changed."""
        names = [(str(p),) for p in paths]
        if not names:
            return 0

        def update() -> int:
            with self._write() as conn:
                before = conn.total_changes
                conn.executemany(
                    "UPDATE crashes SET storage_state = 'missing' WHERE filename = ? "
                    "AND storage_state IN ('present', 'truncated')", names)
                return conn.total_changes - before

        return self._call("mark cores missing", update)

    def mark_vanished(self) -> int:
        """Mark rows whose file no longer exists as ``missing``; returns how many."""
        def present() -> list[str]:
            rows = self._conn.execute("SELECT filename FROM crashes WHERE storage_state IN "
                                      "('present', 'truncated') AND filename IS NOT NULL")
            return [name for (name,) in rows]

        gone = [name for name in self._call("list stored cores", present)
                if not os.path.exists(name)]
        return self.mark_missing(gone)

    # -- reads ------------------------------------------------------------------------------

    def get(self, id: int) -> CatalogRow:
        """The crash ``id``; :class:`CatalogError` if there is none."""
        row = self._call("read a crash", lambda: self._conn.execute(
            f"{_SELECT} WHERE c.id = ?", (id,)).fetchone())
        if row is None:
            raise CatalogError(f"no crash with id {id}", self.path)
        return _row(row)

    def find(self, id: int) -> CatalogRow | None:
        try:
            return self.get(id)
        except CatalogError:
            return None

    def query(self, *, since_us: int | None = None, until_us: int | None = None,
              match: Mapping[str, Any] | None = None, limit: int | None = None,
              newest_first: bool = True, details: bool = True) -> list[CatalogRow]:
        """Crashes with ``since_us <= timestamp < until_us`` whose columns equal ``match``
        (a list or tuple value means any of; ``None`` means NULL), newest first by default.
        ``details=False`` leaves out the context and backtrace JSON: what a listing needs,
        at a fraction of the cost."""
        where: list[str] = []
        params: list[Any] = []
        if since_us is not None:
            where.append("c.timestamp >= ?")
            params.append(since_us)
        if until_us is not None:
            where.append("c.timestamp < ?")
            params.append(until_us)
        for key, value in (match or {}).items():
            if key not in _MATCHABLE:
                raise CatalogError(f"cannot match on {key!r} (columns: {', '.join(_MATCHABLE)})",
                                   self.path)
            column = f"c.{key}"
            if value is None:
                where.append(f"{column} IS NULL")
            elif isinstance(value, list | tuple | set | frozenset):
                values = list(value)
                where.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0")
                params += values
            else:
                where.append(f"{column} = ?")
                params.append(value)
        order = "DESC" if newest_first else "ASC"
        sql = _SELECT if details and self.has_details else _SELECT_SUMMARY
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY c.timestamp {order}, c.id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        rows = self._call("query crashes", lambda: self._conn.execute(sql, params).fetchall())
        return [_row(r) for r in rows]

    def count(self) -> int:
        (n,) = self._call("count crashes", lambda: self._conn.execute(
            "SELECT count(*) FROM crashes").fetchone())
        return int(n)
