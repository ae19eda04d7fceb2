"""What only the SQLite backend does: a file in WAL mode, created with its folders; a newer schema
or a file that is no database is refused with the setting to change."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.storage.base import StorageError
from bot.storage.schema import SCHEMA_VERSION
from bot.storage.sqlite import SqliteStorage


def test_created_on_first_use_with_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "bot.sqlite3"
    storage = SqliteStorage(path)
    assert path.exists() and storage.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    storage.close()


def test_newer_schema_and_garbage_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    SqliteStorage(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StorageError, match="newer than this bot"):
        SqliteStorage(path)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StorageError, match="BOT_STORAGE_PATH"):
        SqliteStorage(garbage)
    with pytest.raises(StorageError, match="BOT_STORAGE_PATH"):
        SqliteStorage(tmp_path)  # a directory
