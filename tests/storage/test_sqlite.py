"""The SQLite storage: created on first use, ids hashed, votes, languages, reports, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.storage.base import StorageError
from bot.storage.sqlite import SCHEMA_VERSION
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
    # a second database hashes the same user differently (per-database salt)
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


def test_not_stated_answers_are_kept_and_listed_for_admins(tmp_path: Path) -> None:
    from dataclasses import replace

    storage = Storage(tmp_path / "bot.sqlite3")
    gap = replace(_answer("乙方能转包吗？"), coverage="not_stated", intent="not_stated")
    gap_id = storage.log_answer(1, gap)
    storage.log_answer(1, _answer("付款时间？"))
    record = storage.get_answer(gap_id)
    assert record is not None and record.coverage == "not_stated" and not record.abstained
    assert storage.vote(gap_id, 2, 1) is not None  # votes work on them like on any answer
    stats = storage.stats()
    assert (stats.questions, stats.answered, stats.not_stated) == (2, 2, 1)
    assert [(u.question, u.reason) for u in storage.unanswered(10)] == [
        ("乙方能转包吗？", "not_stated")
    ]


def test_a_version_1_database_gains_the_coverage_column(tmp_path: Path) -> None:
    from bot.storage.sqlite import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
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
