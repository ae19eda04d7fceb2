"""What only the SQLite backend does: a file in WAL mode, owner-only, created with its folders; the
generated key file beside it; old databases (the salt in their meta table) migrated; a newer
schema or a file that is no database refused with the setting to change."""

from __future__ import annotations

import logging
import sqlite3
import stat
from pathlib import Path

import pytest
from test_sql import _answer

from bot.storage.base import StorageError
from bot.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, default_key_file
from bot.storage.sqlite import SqliteStorage as Storage


def test_created_on_first_use_with_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "bot.sqlite3"
    storage = Storage(path)
    assert path.exists() and storage.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    storage.close()


def test_newer_schema_and_garbage_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    Storage(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StorageError, match="newer than this bot"):
        Storage(path)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StorageError, match="BOT_STORAGE_PATH"):
        Storage(garbage)
    with pytest.raises(StorageError, match="BOT_STORAGE_PATH"):
        Storage(tmp_path)  # a directory


# --- the user-id key ---------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_is_not_in_the_database_but_in_an_owner_only_file(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    storage = Storage(path)
    storage.log_answer(42, _answer("q"))
    storage.close()
    key_file = default_key_file(path)
    key = key_file.read_text().strip()
    assert len(key) == 64 and _mode(key_file) == 0o600
    assert not key_file.name.startswith(path.name)  # a copy of bot.sqlite3* leaves it behind
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert key not in dump and "salt" not in dump
    # the same key next time: users stay who they were
    assert Storage(path).user_hash(42) == Storage(path).user_hash(42)


def test_a_configured_key_is_used_and_no_file_written(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    one = Storage(path, b"operator key")
    assert not default_key_file(path).exists()
    assert Storage(tmp_path / "other.sqlite3", b"operator key").user_hash(7) == one.user_hash(7)


def test_database_file_and_folder_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "data" / "bot.sqlite3"
    storage = Storage(path)
    storage.log_answer(1, _answer("q"))  # the WAL and shared-memory files exist now
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700
    for extra in ("-wal", "-shm"):
        assert _mode(path.with_name(path.name + extra)) == 0o600
    storage.close()
    # an existing world-readable database is tightened; an existing shared folder is left alone
    loose = tmp_path / "loose.sqlite3"
    Storage(loose).close()
    loose.chmod(0o644)
    tmp_path.chmod(0o755)
    Storage(loose).close()
    assert _mode(loose) == 0o600 and _mode(tmp_path) == 0o755


def _old_database(path: Path, salt: str) -> None:
    """A database as the bot wrote it before the key left it: schema 1, the salt in meta."""
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0].sqlite)
    db.execute("INSERT INTO meta (key, value) VALUES ('salt', ?)", (salt,))
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def test_an_old_database_keeps_its_users_and_loses_its_salt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import hashlib
    import hmac

    path = tmp_path / "bot.sqlite3"
    salt = "ab" * 32
    _old_database(path, salt)
    old_hash = hmac.new(bytes.fromhex(salt), b"55", hashlib.sha256).hexdigest()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO users VALUES (?, 'en', 0)", (old_hash,))
    db.commit()
    db.close()
    caplog.set_level(logging.INFO)
    storage = Storage(path)
    assert storage.schema_version == SCHEMA_VERSION
    assert storage.get_language(55) == "en"  # still linked to the user
    assert default_key_file(path).read_text().strip() == salt
    assert "moved out of the database" in caplog.text
    storage.close()
    assert salt not in "\n".join(sqlite3.connect(path).iterdump())


def test_an_old_database_with_a_new_configured_key_unlinks_its_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bot.sqlite3"
    _old_database(path, "cd" * 32)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO users VALUES ('somebody', 'en', 0)")
    db.commit()
    db.close()
    storage = Storage(path, b"a new key")
    assert "can no longer be linked" in caplog.text and "1 language choices dropped" in caplog.text
    assert storage.stats().questions == 0 and not default_key_file(path).exists()


def test_a_version_1_database_gains_the_coverage_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0].sqlite)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO meta (key, value) VALUES ('salt', ?)", ("ab" * 32,))
    for answer_id, abstained in (("a1", 1), ("a2", 0)):
        db.execute(
            "INSERT INTO answers VALUES (?, 1.0, 'h', 'message', 'q', 'zh-Hans', 'question',"
            " '[]', '[]', 0.5, ?)",
            (answer_id, abstained),
        )
    db.commit()
    db.close()
    storage = Storage(path)
    assert storage.schema_version == SCHEMA_VERSION
    out, answered = storage.get_answer("a1"), storage.get_answer("a2")
    assert out is not None and out.coverage == "out_of_scope"
    assert answered is not None and answered.coverage == "answered"
