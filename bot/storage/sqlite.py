"""The embedded storage backend: one SQLite file (the default, ``BOT_STORAGE_PATH``).

What is kept: the question log (question, language, citations, confidence, abstained, time),
which doubles as the record behind the buttons under each answer (so they keep working after a
restart), feedback votes (one per user per answer, changeable) and each user's language choice
(every operation is in ``bot.storage.sql``, shared with PostgreSQL).

The user-id key is not in the database: it is ``BOT_USER_ID_KEY``, or a random key generated on
first use into its own 0600 file, ``<database name>.user-id.key`` beside the database unless
``BOT_USER_ID_KEY_FILE`` says otherwise (``bot.storage.keys``). A database from before this (its
key, then called the salt, in its ``meta`` table) is migrated on opening: the salt moves to the
key file, so every stored user stays linked, or, when another key is configured, the old rows stay
as they are but can no longer be linked to anyone (their language choices are dropped).

The database file and any folder created for it are owner-only (0600 / 0700; SQLite gives its
``-wal`` and ``-shm`` files the database's mode). Calls are synchronous; the Telegram layer runs
them in a worker thread, and a lock makes the one connection safe from any thread. The schema
version is SQLite's own ``PRAGMA user_version``.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.storage.base import StorageError
from bot.storage.keys import key_bytes, owner_only_dirs
from bot.storage.schema import MIGRATIONS, SCHEMA_VERSION
from bot.storage.sql import Cursor, SqlStorage

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStorage", "default_key_file", "key_bytes"]


def default_key_file(path: Path) -> Path:
    """Where the generated user-id key of the database ``path`` is kept: beside it, under a
    name a copy of ``bot.sqlite3*`` does not take along."""
    return path.with_name(f"{path.stem}.user-id.key")


def _owner_only_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600, or take group and other access away from it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
        return
    os.close(fd)


class SqliteStorage(SqlStorage):
    """SQLite storage; the file and its parent folder are created on first use.

    ``key`` is the user-id key (``BOT_USER_ID_KEY``); without it the key is read from
    ``key_file`` (default ``default_key_file(path)``), generated there on first use. ``clock``
    gives the time rows are stamped with (tests pass a fake one).
    """

    dialect = "sqlite"
    _insertion_order = "a.rowid"

    def __init__(
        self,
        path: Path,
        key: bytes | None = None,
        *,
        key_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.key_file = key_file or default_key_file(self.path)
        self._clock = clock
        self._shared = threading.local()
        try:
            owner_only_dirs(self.path.parent)
            _owner_only_file(self.path)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"cannot open the bot database {self.path}: {exc}; "
                "set BOT_STORAGE_PATH (or BOT_STORAGE_URL) to a writable file path"
            ) from exc
        self._lock = threading.Lock()
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            self._key = self._load_key(key, self.key_file)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StorageError(
                f"{self.path} is not a usable bot database ({exc}); "
                "move it away or set BOT_STORAGE_PATH (or BOT_STORAGE_URL) to another file"
            ) from exc
        except StorageError:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteStorage({str(self.path)!r})"

    def _where(self) -> str:
        return str(self.path)

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db.cursor()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read_version(self, cur: Cursor) -> int:
        return int(cur.execute("PRAGMA user_version").fetchone()[0])

    def _write_version(self, cur: Cursor, version: int) -> None:
        cur.execute(f"PRAGMA user_version = {int(version)}")

    def _newer_schema(self, version: int) -> Exception:
        return StorageError(
            f"{self.path} has schema version {version}, newer than this bot's "
            f"{SCHEMA_VERSION}; upgrade the bot or set BOT_STORAGE_PATH (or BOT_STORAGE_URL) to"
            " another file"
        )

    def _user_tables(self, cur: Cursor) -> list[str]:
        names = [
            str(row[0])
            for row in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            if not str(row[0]).startswith("sqlite_")
        ]
        return [
            name
            for name in names
            if any(
                col[1] == "user_hash"
                for col in cur.execute(f'PRAGMA table_info("{name}")').fetchall()
            )
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
