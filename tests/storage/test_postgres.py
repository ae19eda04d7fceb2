"""What only the PostgreSQL backend does: the password never shows (repr, errors), replicas
starting together migrate once, every replica must be given the same user-id key, and a
database from a newer bot is refused."""

from __future__ import annotations

import threading

import psycopg
import pytest

from bot.storage.base import StorageError
from bot.storage.postgres import PostgresStorage, mask_url
from bot.storage.schema import SCHEMA_VERSION
from tests.servers import Postgres

KEY = b"the key every replica shares"


def test_mask_url() -> None:
    assert mask_url("postgresql://bot:s3cr%40t@db:5432/bot") == "postgresql://bot:***@db:5432/bot"
    assert mask_url("postgresql://db:5432/bot") == "postgresql://db:5432/bot"


def test_password_is_never_shown(postgres: Postgres) -> None:
    url = postgres.create_database("masked")
    storage = PostgresStorage(url, KEY, pool_max=1)
    try:
        assert postgres.password not in repr(storage)
    finally:
        storage.close()
    wrong = url.replace(postgres.password, postgres.password + "x")
    with pytest.raises(StorageError) as info:
        PostgresStorage(wrong, KEY, pool_max=1)
    message = str(info.value)
    assert "BOT_STORAGE_URL" in message and postgres.password not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_concurrent_replicas_migrate_once(postgres: Postgres) -> None:
    url = postgres.create_database("racing")
    errors: list[BaseException] = []
    opened: list[PostgresStorage] = []

    def start() -> None:
        try:
            opened.append(PostgresStorage(url, KEY, pool_max=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert not errors, errors
        assert {s.schema_version for s in opened} == {SCHEMA_VERSION}
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)
            # one salt, so every replica hashes a user the same way
            assert len({s.user_hash(42) for s in opened}) == 1
    finally:
        for storage in opened:
            storage.close()


def test_newer_schema_is_refused(postgres: Postgres) -> None:
    url = postgres.create_database("newer")
    PostgresStorage(url, KEY, pool_max=1).close()
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StorageError, match="newer than this bot"):
        PostgresStorage(url, KEY, pool_max=1)


def test_a_shared_key_is_required(postgres: Postgres) -> None:
    """A key file generated per process would hash each user differently on each replica."""
    url = postgres.create_database("keyless")
    with pytest.raises(StorageError, match="BOT_USER_ID_KEY"):
        PostgresStorage(url, pool_max=1)


def test_one_replica_purges_at_a_time(postgres: Postgres) -> None:
    from bot.storage.postgres import PURGE_LOCK
    from bot.types import Answer

    url = postgres.create_database("purging")
    storage = PostgresStorage(url, KEY, pool_max=1, clock=lambda: 100.0)
    storage.log_answer(1, Answer("旧问题", "zh-Hans", False, 0.9, "question"))
    with psycopg.connect(url) as other:  # another replica in the middle of its purge
        other.execute("SELECT pg_advisory_lock(%s)", (PURGE_LOCK,))
        assert storage.purge(200.0).questions == 0  # skipped, not counted twice
        other.execute("SELECT pg_advisory_unlock(%s)", (PURGE_LOCK,))
    assert storage.purge(200.0).questions == 1
    assert storage.stats().questions == 1  # counted once
    storage.close()
