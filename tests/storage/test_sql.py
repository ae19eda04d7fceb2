"""Every storage operation, on both backends (SQLite and a real PostgreSQL server): created on
first use, ids hashed, answer records, votes, languages, reports, migrations.

``backend`` opens the test's own database; ``backend.reopen()`` opens it again as a new process
would, ``backend.other()`` a second, unrelated database.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.storage.base import Storage, StorageError
from bot.storage.schema import SCHEMA_VERSION
from bot.types import Answer, Citation, DialogueTurn

_databases = itertools.count(1)


@dataclass
class Backend:
    name: str
    #: opens the test's database; keyword arguments ``key`` and ``clock`` as the backends take
    reopen: Callable[..., Storage]
    other: Callable[..., Storage]
    dump: Callable[[], str]  # every stored value as text, to look for what must not be there
    execute: Callable[[str], None]  # raw SQL on the test's database


class Clock:
    def __init__(self, now: float = 1_000_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


#: PostgreSQL never generates a key (replicas must share one): the tests configure it.
KEY = b"test key shared by every replica"


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

        def execute(sql: str) -> None:
            with sqlite3.connect(path) as db:
                db.execute(sql)

        yield Backend(
            "sqlite",
            lambda **kw: keep(SqliteStorage(path, **kw)),
            lambda **kw: keep(SqliteStorage(tmp_path / "other.sqlite3", **kw)),
            lambda: "\n".join(sqlite3.connect(path).iterdump()),
            execute,
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

        def execute(sql: str) -> None:
            with psycopg.connect(url) as conn:
                conn.execute(sql)

        def opener(target: str) -> Callable[..., Storage]:
            def open_it(**kw: object) -> Storage:
                kw.setdefault("key", KEY)
                return keep(PostgresStorage(target, pool_max=2, **kw))  # type: ignore[arg-type]

            return open_it

        yield Backend("postgres", opener(url), opener(other_url), dump, execute)
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
    # a database with another key hashes the same user differently
    other = backend.other(key=b"another key")
    assert other.user_hash(user_id) != backend.reopen().user_hash(user_id)


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


# --- the user-id key ---------------------------------------------------------------------


def test_the_key_is_not_in_the_database(backend: Backend) -> None:
    storage = backend.reopen(key=b"operator key")
    storage.log_answer(42, _answer("q"))
    storage.set_language(42, "en")
    dump = backend.dump()
    assert "operator key" not in dump and b"operator key".hex() not in dump
    assert "salt" not in dump
    # another database with the same key: the same users (replicas, or a restore)
    assert backend.other(key=b"operator key").user_hash(42) == storage.user_hash(42)


def test_a_wrong_key_is_refused_with_the_fix(backend: Backend) -> None:
    backend.reopen(key=b"the right key").close()
    with pytest.raises(StorageError, match=r"another user-id key.*BOT_USER_ID_KEY"):
        backend.reopen(key=b"another key")
    backend.reopen(key=b"the right key").close()  # still opens with the right one


# --- retention and /forget ---------------------------------------------------------------


def test_retention_purges_old_texts_and_votes_but_stats_keep_counting(backend: Backend) -> None:
    day = 86400.0
    clock = Clock()
    storage = backend.reopen(clock=clock)
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
    dump = backend.dump()
    assert "一百天前的问题" not in dump and "old and unanswered" not in dump


def test_not_stated_answers_are_kept_counted_and_listed_for_admins(backend: Backend) -> None:
    from dataclasses import replace

    clock = Clock()
    storage = backend.reopen(clock=clock)
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
    clock.now += 1.0
    storage.purge(clock.now)  # the count survives the texts
    assert storage.stats().not_stated == 1 and storage.unanswered(10) == []


def test_forget_deletes_everything_about_one_user_and_says_what(backend: Backend) -> None:
    storage = backend.reopen()
    mine = storage.log_answer(1, _answer("我的问题"))
    storage.log_answer(1, _answer("我的第二个问题", abstained=True))
    theirs = storage.log_answer(2, _answer("别人的问题"))
    storage.vote(mine, 1, 1)
    storage.vote(theirs, 1, -1)  # my vote on someone else's answer
    storage.vote(mine, 2, -1)  # someone's vote on my answer
    storage.set_language(1, "en")
    storage.set_language(2, "zh-Hant")
    storage.rate_limit(1, 10, 60)
    # a table added later that is keyed by user is covered as well
    backend.execute("CREATE TABLE later_table (user_hash TEXT, context TEXT)")
    backend.execute(f"INSERT INTO later_table VALUES ('{storage.user_hash(1)}', '上一个问题')")
    before = storage.stats()
    forgotten = storage.forget(1)
    assert forgotten.deleted == {
        "votes": 2,
        "answers": 2,
        "users": 1,
        "rate_events": 1,
        "later_table": 1,
    }
    assert storage.get_language(1) is None and storage.get_language(2) == "zh-Hant"
    assert storage.get_answer(mine) is None and storage.get_answer(theirs) is not None
    user = storage.user_hash(1)
    dump = backend.dump()
    assert user not in dump and "我的问题" not in dump and "上一个问题" not in dump
    assert storage.stats() == before  # counts, not people
    assert storage.forget(1).total == 0


# --- dialogue context --------------------------------------------------------------------


def _turn(question: str = "甲方拖欠服务费怎么办", asked_at: float | None = None) -> DialogueTurn:
    at = time.time() if asked_at is None else asked_at
    return DialogueTurn(question, "problem-1", "zh-Hans", at, topic=question)


def test_dialogue_context_per_user_and_chat(backend: Backend) -> None:
    storage = backend.reopen()
    storage.set_dialogue(1, 1, _turn(), max_age=600)
    storage.set_dialogue(1, -100, _turn("合同一式几份"), max_age=600)  # the same user in a group
    storage.set_dialogue(2, -100, _turn("续约要提前多久"), max_age=600)
    mine = storage.get_dialogue(1, 1, max_age=600)
    assert mine is not None and mine == _turn(asked_at=mine.asked_at)
    got = storage.get_dialogue(1, -100, max_age=600)
    assert got is not None and got.question == "合同一式几份" and got.item_id == "problem-1"
    assert storage.get_dialogue(3, -100, max_age=600) is None
    storage.set_dialogue(1, 1, _turn("那乙方呢"), max_age=600)  # replaces, not adds
    assert storage.get_dialogue(1, 1, max_age=600).question == "那乙方呢"  # type: ignore[union-attr]
    storage.forget_dialogue(1, 1)
    assert storage.get_dialogue(1, 1, max_age=600) is None
    assert storage.get_dialogue(1, -100, max_age=600) is not None
    storage.forget_dialogue(1)  # every chat of that user (for /forget)
    assert storage.get_dialogue(1, -100, max_age=600) is None
    assert storage.get_dialogue(2, -100, max_age=600) is not None


def test_dialogue_context_expires_and_is_deleted(backend: Backend) -> None:
    storage = backend.reopen()
    storage.set_dialogue(1, 1, _turn(asked_at=time.time() - 700), max_age=600)
    assert storage.get_dialogue(1, 1, max_age=600) is None  # older than the timeout
    assert storage.get_dialogue(1, 1, max_age=800) is not None
    storage.set_dialogue(2, 2, _turn(), max_age=600)  # writing prunes what has expired
    assert storage.get_dialogue(1, 1, max_age=800) is None
    assert storage.get_dialogue(2, 2, max_age=600) is not None


def test_dialogue_context_is_shared_by_processes_and_hashed(backend: Backend) -> None:
    user, chat = 424242, -1001234567
    first, second = backend.reopen(), backend.reopen()  # two bot processes on one database
    first.set_dialogue(user, chat, _turn(), max_age=600)
    assert second.get_dialogue(user, chat, max_age=600) is not None
    first.close()
    assert backend.reopen().get_dialogue(user, chat, max_age=600) is not None
    dump = backend.dump()
    assert "甲方拖欠服务费怎么办" in dump
    assert str(user) not in dump and str(chat) not in dump  # hashed, like every user id
    assert second.forget(user).deleted.get("dialogues") == 1  # /forget takes it along


def test_calls_made_together_share_one_transaction(backend: Backend) -> None:
    storage, other = backend.reopen(), backend.reopen()  # another process on the database
    with storage.together():
        storage.set_dialogue(5, 5, _turn(), max_age=600)
        storage.log_answer(5, _answer("合同有效期多久？"))
        assert storage.get_dialogue(5, 5, max_age=600) is not None  # its own writes, at once
        with storage.together():  # nested: the outer one counts
            assert storage.rate_limit(5, 3, 60.0) == (True, False)
    assert other.get_dialogue(5, 5, max_age=600) is not None
    assert other.stats().questions == 1
    # an error inside rolls every call back: nothing half-written
    with pytest.raises(ZeroDivisionError), storage.together():
        storage.set_dialogue(6, 6, _turn(), max_age=600)
        storage.log_answer(6, _answer("续约要提前多久？"))
        _ = 1 / 0
    assert other.get_dialogue(6, 6, max_age=600) is None and other.stats().questions == 1
    storage.set_dialogue(7, 7, _turn(), max_age=600)  # and calls alone work as before
    assert other.get_dialogue(7, 7, max_age=600) is not None
