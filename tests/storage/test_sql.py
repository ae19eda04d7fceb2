"""Every storage operation, on both backends (SQLite and a real PostgreSQL server): created on
first use, ids hashed, answer records, votes, languages, reports, migrations.

``backend`` opens the test's own database; ``backend.reopen()`` opens it again as a new process
would, ``backend.other()`` a second, unrelated database.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.storage.base import Storage
from bot.storage.schema import SCHEMA_VERSION
from bot.types import Answer, Citation

_databases = itertools.count(1)


@dataclass
class Backend:
    name: str
    reopen: Callable[[], Storage]
    other: Callable[[], Storage]
    dump: Callable[[], str]  # every stored value as text, to look for what must not be there


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[Storage] = []

    def keep(storage: Storage) -> Storage:
        opened.append(storage)
        return storage

    if request.param == "sqlite":
        import sqlite3

        from bot.storage.sqlite import SqliteStorage

        path = tmp_path / "bot.sqlite3"
        yield Backend(
            "sqlite",
            lambda: keep(SqliteStorage(path)),
            lambda: keep(SqliteStorage(tmp_path / "other.sqlite3")),
            lambda: "\n".join(sqlite3.connect(path).iterdump()),
        )
    else:
        import psycopg

        from bot.storage.postgres import PostgresStorage

        server = request.getfixturevalue("postgres")
        url = server.create_database(f"t{next(_databases)}")
        other_url = server.create_database(f"t{next(_databases)}")

        def dump() -> str:
            with psycopg.connect(url) as conn:
                tables = [
                    r[0]
                    for r in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    )
                ]
                return "\n".join(
                    repr(row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"')
                )

        yield Backend(
            "postgres",
            lambda: keep(PostgresStorage(url, pool_max=2)),
            lambda: keep(PostgresStorage(other_url, pool_max=2)),
            dump,
        )
    for storage in opened:
        storage.close()


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


def test_raw_user_ids_are_never_stored(backend: Backend) -> None:
    storage = backend.reopen()
    user_id = 987654321
    answer_id = storage.log_answer(user_id, _answer("合同有效期多久？"))
    storage.set_language(user_id, "en")
    storage.vote(answer_id, user_id, -1)
    dump = backend.dump()
    assert "合同有效期多久" in dump and str(user_id) not in dump
    # a second database hashes the same user differently (per-database salt)
    assert backend.other().user_hash(user_id) != backend.reopen().user_hash(user_id)


def test_answer_records_survive_reopen(backend: Backend) -> None:
    storage = backend.reopen()
    answer_id = storage.log_answer(1, _answer("合同有效期多久？", language="zh-Hant"))
    assert len(answer_id) <= 12
    storage.close()
    record = backend.reopen().get_answer(answer_id)
    assert record is not None
    assert record.question == "合同有效期多久？" and record.language == "zh-Hant"
    assert record.citations == ("2.1", "5.1") and record.related == ("5.1", "6.1")
    assert backend.reopen().get_answer("missing") is None
    assert backend.reopen().schema_version == SCHEMA_VERSION


def test_one_vote_per_user_and_changeable(backend: Backend) -> None:
    storage = backend.reopen()
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


def test_language_preference(backend: Backend) -> None:
    storage = backend.reopen()
    assert storage.get_language(5) is None
    storage.set_language(5, "zh-Hant")
    storage.set_language(5, "en")
    assert storage.get_language(5) == "en" and storage.get_language(6) is None
    with pytest.raises(ValueError, match="unknown language"):
        storage.set_language(5, "fr")  # type: ignore[arg-type]


def test_stats_and_unanswered(backend: Backend) -> None:
    storage = backend.reopen()
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


def test_rate_limit_is_a_sliding_window_with_one_notice(backend: Backend) -> None:
    storage = backend.reopen()
    check = storage.rate_limit
    assert [check(1, 3, 60, now=t)[0] for t in (0, 1, 2)] == [True, True, True]
    assert check(1, 3, 60, now=3) == (False, True)  # the notice once
    assert check(1, 3, 60, now=4) == (False, False)
    assert check(2, 3, 60, now=4) == (True, False)  # other users unaffected
    assert check(1, 3, 60, now=60.5)[0] is True  # the first request left the window
    # another process on the same database sees the same window
    assert backend.reopen().rate_limit(1, 3, 60, now=60.6) == (False, False)


def test_ping(backend: Backend) -> None:
    backend.reopen().ping()


def test_reload_requests_reach_every_process(backend: Backend) -> None:
    a, b = backend.reopen(), backend.reopen()
    assert a.reload_generation() == b.reload_generation() == 0
    assert a.request_reload() == 1
    assert b.reload_generation() == 1
    assert b.request_reload() == 2 and a.reload_generation() == 2
