"""The PostgreSQL storage backend, for several bot processes sharing one database.

psycopg 3 with its connection pool; calls are synchronous and made from worker threads (the
Telegram layer never calls storage on the event loop). The schema version lives in a one-row
table ``schema_version``; migrations run under a transaction-level advisory lock, so replicas
starting together migrate once. The password in the URL is a secret: ``repr`` and every error
message show the URL with it masked.

Every replica must hash user ids with the same key, so the user-id key is never generated here:
it is ``BOT_USER_ID_KEY`` (or a shared ``BOT_USER_ID_KEY_FILE``); without one the storage refuses
to open.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.storage.base import StorageError
from bot.storage.schema import SCHEMA_VERSION
from bot.storage.sql import Cursor, SqlStorage

#: Keys of ``pg_advisory_*lock``: arbitrary constants, the same in every replica.
MIGRATION_LOCK = 7_301_001
PURGE_LOCK = 7_301_002
#: Pool size per process: the handlers' worker threads share these connections.
POOL_MAX = 8


def mask_url(url: str) -> str:
    """``url`` with the password replaced by ``***`` (``postgresql://bot:***@db:5432/bot``)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


class PostgresStorage(SqlStorage):
    """PostgreSQL storage over a connection pool; the tables are created on first use."""

    dialect = "postgres"
    _insertion_order = "a.seq"

    def __init__(
        self,
        url: str,
        key: bytes | None = None,
        *,
        key_file: Path | None = None,
        clock: Callable[[], float] = time.time,
        pool_max: int = POOL_MAX,
    ) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout

        self._masked = mask_url(url)
        self._clock = clock
        self._shared = threading.local()
        self._errors: tuple[type[Exception], ...] = (psycopg.Error, PoolTimeout)
        self._pool: Any = None
        try:
            # One direct connection first: a wrong password or host fails at once with the
            # server's own reason, where the pool would only time out.
            psycopg.connect(url, connect_timeout=5).close()
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=pool_max,
                open=False,
                name="contract-bot",
                kwargs={"connect_timeout": 5, "application_name": "contract-bot"},
            )
            self._pool.open(wait=True, timeout=10)
            self._migrate()
            self._key = self._load_key(key, key_file)
        except StorageError:
            self.close()
            raise
        except self._errors as exc:
            self.close()
            raise StorageError(
                f"cannot use the database {self._masked}: {self._scrub(exc)}; "
                "check BOT_STORAGE_URL (host, port, user, password, database) and that the "
                "server is up"
            ) from None

    def __repr__(self) -> str:
        return f"PostgresStorage({self._masked!r})"

    def _where(self) -> str:
        return self._masked

    def _user_tables(self, cur: Cursor) -> list[str]:
        rows = cur.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'user_hash'"
            " ORDER BY table_name"
        ).fetchall()
        return [str(row[0]) for row in rows]

    def _scrub(self, exc: BaseException) -> str:
        """An error's text without anything that could carry the password."""
        return mask_url(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _only_purger(self, cur: Cursor) -> bool:
        # Replicas purge daily at about the same time: one does, the others skip (counting
        # the same old rows twice into the archived counters would inflate /stats).
        cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (PURGE_LOCK,))
        return bool(cur.fetchone()[0])

    def _lock_user(self, cur: Cursor, user: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (user,))

    def _read_version(self, cur: Cursor) -> int:
        cur.execute("SELECT to_regclass('schema_version') IS NOT NULL")
        if not cur.fetchone()[0]:
            return 0
        row = cur.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _write_version(self, cur: Cursor, version: int) -> None:
        cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        cur.execute("DELETE FROM schema_version")
        cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    def _migrate(self) -> None:
        # Replicas starting at the same moment: the first takes the lock and migrates, the
        # others wait for it and then find nothing left to do.
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            version = self._read_version(cur)
            if version > SCHEMA_VERSION:
                raise self._newer_schema(version)
            from bot.storage.schema import MIGRATIONS

            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].statements(self.dialect):
                    cur.execute(statement)
                self._write_version(cur, number + 1)

    def _newer_schema(self, version: int) -> Exception:
        return StorageError(
            f"the database {self._masked} has schema version {version}, newer than this bot's "
            f"{SCHEMA_VERSION}: upgrade this replica (or point BOT_STORAGE_URL elsewhere)"
        )

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()
