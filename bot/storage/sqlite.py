"""The embedded storage backend: one SQLite file (the default; ``sqlite:///data/bot.sqlite3``).

What is kept: the question log (question, language, citations, confidence, abstained, time),
which doubles as the record behind the buttons under each answer (so they keep working after a
restart), feedback votes (one per user per answer, changeable) and each user's language choice.

Telegram user ids are never stored: every row carries ``HMAC-SHA256(salt, user id)`` with a random
salt created with the database and kept in its ``meta`` table.

Calls are synchronous, each one small indexed statement on a local file in WAL mode (well under
a millisecond); a lock makes the one connection safe from the worker threads that call it.
The schema version is SQLite's own ``PRAGMA user_version``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.storage.base import StorageError
from bot.storage.schema import MIGRATIONS, SCHEMA_VERSION
from bot.storage.sql import Cursor, SqlStorage

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStorage"]


class SqliteStorage(SqlStorage):
    """SQLite storage; the file and its parent folder are created on first use."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
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
            self._salt = self._load_salt()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StorageError(
                f"{self.path} is not a usable bot database ({exc}); "
                "move it away or set BOT_STORAGE_PATH (or BOT_STORAGE_URL) to another file"
            ) from exc

    def __repr__(self) -> str:
        return f"SqliteStorage({str(self.path)!r})"

    @contextmanager
    def _tx(self) -> Iterator[Cursor]:
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

    def close(self) -> None:
        with self._lock:
            self._db.close()
