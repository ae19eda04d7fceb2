"""The SQLite storage: created on first use, ids hashed, votes, languages, reports, migrations."""

from __future__ import annotations

import logging
import sqlite3
import stat
from pathlib import Path

import pytest

from bot.storage.base import StorageError
from bot.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, default_key_file
from bot.storage.sqlite import SqliteStorage as Storage
from bot.types import Answer, Citation


def _answer(question: str, *, abstained: bool = False, language: str = "zh-Hans") -> Answer:
    citations = (
        () if abstained else (Citation("2.1", "clause", 0.8), Citation("5.1", "clause", 0.4))
    )
    return Answer(
        question=question,
        language=language,  # type: ignore[arg-type]
        abstained=abstained,
        confidence=0.1 if abstained else 0.8,
        intent="abstain" if abstained else "question",
        citations=citations,
        related=() if abstained else ("5.1", "6.1"),
    )


def test_created_on_first_use_with_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "bot.sqlite3"
    storage = Storage(path)
    assert path.exists() and storage.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    storage.close()


def test_raw_user_ids_are_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    storage = Storage(path)
    user_id = 987654321
    answer_id = storage.log_answer(user_id, _answer("合同有效期多久？"))
    storage.set_language(user_id, "en")
    storage.vote(answer_id, user_id, -1)
    storage.close()
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert "合同有效期多久" in dump and str(user_id) not in dump
    # a second database hashes the same user differently (its own key)
    other = Storage(tmp_path / "other.sqlite3")
    assert other.user_hash(user_id) != Storage(path).user_hash(user_id)


def test_answer_records_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    storage = Storage(path)
    answer_id = storage.log_answer(1, _answer("合同有效期多久？", language="zh-Hant"))
    assert len(answer_id) <= 12
    storage.close()
    record = Storage(path).get_answer(answer_id)
    assert record is not None
    assert record.question == "合同有效期多久？" and record.language == "zh-Hant"
    assert record.citations == ("2.1", "5.1") and record.related == ("5.1", "6.1")
    assert Storage(path).get_answer("missing") is None


def test_one_vote_per_user_and_changeable(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "bot.sqlite3")
    answer_id = storage.log_answer(1, _answer("q"))
    first = storage.vote(answer_id, 1, 1)
    assert first is not None and first.changed and (first.up, first.down) == (1, 0)
    again = storage.vote(answer_id, 1, 1)
    assert again is not None and not again.changed and (again.up, again.down) == (1, 0)
    flipped = storage.vote(answer_id, 1, -1)
    assert flipped is not None and flipped.changed and (flipped.up, flipped.down) == (0, 1)
    other = storage.vote(answer_id, 2, -1)
    assert other is not None and (other.up, other.down) == (0, 2)
    assert storage.vote("unknown", 1, 1) is None
    with pytest.raises(ValueError, match="vote must be"):
        storage.vote(answer_id, 1, 0)


def test_language_preference(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "bot.sqlite3")
    assert storage.get_language(5) is None
    storage.set_language(5, "zh-Hant")
    storage.set_language(5, "en")
    assert storage.get_language(5) == "en" and storage.get_language(6) is None
    with pytest.raises(ValueError, match="unknown language"):
        storage.set_language(5, "fr")  # type: ignore[arg-type]


def test_stats_and_unanswered(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "bot.sqlite3")
    good = storage.log_answer(1, _answer("付款时间？"))
    storage.log_answer(2, _answer("今天天气如何？", abstained=True))
    bad = storage.log_answer(2, _answer("what about refunds?", language="en"))
    storage.vote(good, 1, 1)
    storage.vote(bad, 1, -1)
    stats = storage.stats()
    assert (stats.questions, stats.answered, stats.abstained, stats.users) == (3, 2, 1, 2)
    assert (stats.votes_up, stats.votes_down) == (1, 1)
    assert stats.by_language == {"zh-Hans": 2, "en": 1}
    items = storage.unanswered(10)
    assert [(u.question, u.reason) for u in items] == [
        ("what about refunds?", "downvoted"),
        ("今天天气如何？", "abstained"),
    ]
    assert storage.unanswered(1)[0].question == "what about refunds?"


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


def test_a_wrong_key_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    Storage(path, b"the right key").close()
    with pytest.raises(StorageError, match=r"another user-id key.*BOT_USER_ID_KEY"):
        Storage(path, b"another key")
    Storage(path, b"the right key").close()  # still opens with the right one


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
    db.executescript(MIGRATIONS[0])
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


# --- retention and /forget ---------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_000_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_retention_purges_old_texts_and_votes_but_stats_keep_counting(tmp_path: Path) -> None:
    day = 86400.0
    clock = Clock()
    storage = Storage(tmp_path / "bot.sqlite3", clock=clock)
    old = storage.log_answer(1, _answer("一百天前的问题"))
    storage.vote(old, 1, 1)
    storage.log_answer(2, _answer("old and unanswered", abstained=True, language="en"))
    clock.now += 100 * day
    new = storage.log_answer(2, _answer("今天的问题"))
    storage.vote(new, 3, -1)
    before = storage.stats()
    purged = storage.purge(clock.now - 90 * day)
    assert (purged.questions, purged.votes) == (2, 1)
    assert storage.get_answer(old) is None and storage.get_answer(new) is not None
    assert storage.vote(old, 1, -1) is None  # its buttons now say "expired"
    assert [u.question for u in storage.unanswered()] == ["今天的问题"]
    assert storage.stats() == before  # the figures survive as counts
    assert storage.purge(clock.now - 90 * day).questions == 0  # nothing more to purge
    dump = "\n".join(storage._db.iterdump())
    assert "一百天前的问题" not in dump and "old and unanswered" not in dump


def test_forget_deletes_everything_about_one_user_and_says_what(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "bot.sqlite3")
    mine = storage.log_answer(1, _answer("我的问题"))
    storage.log_answer(1, _answer("我的第二个问题", abstained=True))
    theirs = storage.log_answer(2, _answer("别人的问题"))
    storage.vote(mine, 1, 1)
    storage.vote(theirs, 1, -1)  # my vote on someone else's answer
    storage.vote(mine, 2, -1)  # someone's vote on my answer
    storage.set_language(1, "en")
    storage.set_language(2, "zh-Hant")
    # a table added later (e.g. dialogue context) that is keyed by user is covered as well
    storage._db.execute("CREATE TABLE dialogue (user_hash TEXT, context TEXT)")
    storage._db.execute("INSERT INTO dialogue VALUES (?, '上一个问题')", (storage.user_hash(1),))
    before = storage.stats()
    forgotten = storage.forget(1)
    assert forgotten.deleted == {"votes": 2, "answers": 2, "users": 1, "dialogue": 1}
    assert storage.get_language(1) is None and storage.get_language(2) == "zh-Hant"
    assert storage.get_answer(mine) is None and storage.get_answer(theirs) is not None
    user = storage.user_hash(1)
    dump = "\n".join(storage._db.iterdump())
    assert user not in dump and "我的问题" not in dump and "上一个问题" not in dump
    assert storage.stats() == before  # counts, not people
    assert storage.forget(1).total == 0
