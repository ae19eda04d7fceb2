"""What the SQL backends share: every storage operation, written once in portable SQL.

A backend supplies a connection per transaction (``_tx``, a DB-API cursor with ``execute``,
``fetchone``, ``fetchall``), its placeholder style, and how it keeps the schema version; the
queries here use ``?`` placeholders and SQL that SQLite and PostgreSQL both accept
(``ON CONFLICT … DO UPDATE``, ``COUNT(*) FILTER (WHERE …)``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, cast

from bot.storage.base import LANGUAGES, AnswerRecord, Stats, Unanswered, VoteResult
from bot.storage.schema import MIGRATIONS, Dialect
from bot.types import Answer, Language


class Cursor(Protocol):
    def execute(self, query: Any, params: Sequence[Any] = ()) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SqlStorage(ABC):
    """The storage operations over any DB-API backend; see the module docstring."""

    dialect: Dialect

    # --- what a backend provides -------------------------------------------------------------

    @abstractmethod
    def _tx(self) -> AbstractContextManager[Cursor]:
        """A cursor inside one transaction, committed on success and rolled back on error."""

    @abstractmethod
    def _read_version(self, cur: Cursor) -> int: ...

    @abstractmethod
    def _write_version(self, cur: Cursor, version: int) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    # --- plumbing ------------------------------------------------------------------------------

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s") if self.dialect == "postgres" else query

    def _execute(self, cur: Cursor, query: str, params: Sequence[Any] = ()) -> Cursor:
        cur.execute(self._sql(query), params)
        return cur

    def _pending_migrations(self, cur: Cursor) -> Iterator[int]:
        version = self._read_version(cur)
        if version > len(MIGRATIONS):
            raise self._newer_schema(version)
        yield from range(version, len(MIGRATIONS))

    @abstractmethod
    def _newer_schema(self, version: int) -> Exception:
        """The error for a database made by a newer bot (names the setting to change)."""

    def _migrate(self) -> None:
        """Apply the missing migrations, each in its own transaction with its version bump."""
        with self._tx() as cur:
            pending = list(self._pending_migrations(cur))
        for number in pending:
            with self._tx() as cur:
                if self._read_version(cur) != number:  # another process migrated meanwhile
                    continue
                for statement in MIGRATIONS[number].statements(self.dialect):
                    cur.execute(statement)
                self._write_version(cur, number + 1)

    def _load_salt(self) -> bytes:
        with self._tx() as cur:
            row = self._execute(cur, "SELECT value FROM meta WHERE key = 'salt'").fetchone()
            if row is None:
                salt = secrets.token_hex(32)
                self._execute(
                    cur,
                    "INSERT INTO meta (key, value) VALUES ('salt', ?) ON CONFLICT (key) DO NOTHING",
                    (salt,),
                )
                row = self._execute(cur, "SELECT value FROM meta WHERE key = 'salt'").fetchone()
        return bytes.fromhex(row[0])

    _salt: bytes

    @property
    def schema_version(self) -> int:
        with self._tx() as cur:
            return self._read_version(cur)

    def user_hash(self, user_id: int) -> str:
        """The stored stand-in for a Telegram user id."""
        return hmac.new(self._salt, str(user_id).encode(), hashlib.sha256).hexdigest()

    # --- answers -----------------------------------------------------------------------------

    def log_answer(self, user_id: int, answer: Answer, *, source: str = "message") -> str:
        """Record an answer given to ``user_id``; returns its new short id (for callback data)."""
        answer_id = secrets.token_urlsafe(6)  # 8 characters, ~48 random bits
        citations = [c.id for c in answer.citations]
        with self._tx() as cur:
            self._execute(
                cur,
                "INSERT INTO answers (answer_id, created, user_hash, source, question, language,"
                " intent, citations, related, confidence, abstained)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer_id,
                    time.time(),
                    self.user_hash(user_id),
                    source,
                    answer.question,
                    answer.language,
                    answer.intent,
                    json.dumps(citations),
                    json.dumps(list(answer.related)),
                    float(answer.confidence),
                    int(answer.abstained),
                ),
            )
        return answer_id

    def get_answer(self, answer_id: str) -> AnswerRecord | None:
        with self._tx() as cur:
            row = self._execute(
                cur,
                "SELECT answer_id, created, question, language, intent, citations, related,"
                " confidence, abstained FROM answers WHERE answer_id = ?",
                (answer_id,),
            ).fetchone()
        if row is None:
            return None
        return AnswerRecord(
            answer_id=row[0],
            created=row[1],
            question=row[2],
            language=cast(Language, row[3]),
            intent=row[4],
            citations=tuple(json.loads(row[5])),
            related=tuple(json.loads(row[6])),
            confidence=row[7],
            abstained=bool(row[8]),
        )

    # --- feedback ----------------------------------------------------------------------------

    def vote(self, answer_id: str, user_id: int, value: int) -> VoteResult | None:
        """Record 👍 (+1) or 👎 (-1); a user's later vote replaces the earlier one.

        Returns None when the answer is unknown (e.g. a button from a deleted database).
        """
        if value not in (-1, 1):
            raise ValueError(f"vote must be +1 or -1, not {value!r}")
        user = self.user_hash(user_id)
        with self._tx() as cur:
            known = self._execute(
                cur, "SELECT 1 FROM answers WHERE answer_id = ?", (answer_id,)
            ).fetchone()
            if known is None:
                return None
            row = self._execute(
                cur,
                "SELECT vote FROM votes WHERE answer_id = ? AND user_hash = ?",
                (answer_id, user),
            ).fetchone()
            changed = row is None or row[0] != value
            self._execute(
                cur,
                "INSERT INTO votes (answer_id, user_hash, vote, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (answer_id, user_hash) DO UPDATE SET vote = excluded.vote,"
                " updated = excluded.updated",
                (answer_id, user, value, time.time()),
            )
            up, down = self._execute(
                cur,
                "SELECT COUNT(*) FILTER (WHERE vote = 1), COUNT(*) FILTER (WHERE vote = -1)"
                " FROM votes WHERE answer_id = ?",
                (answer_id,),
            ).fetchone()
        return VoteResult(changed=changed, up=int(up), down=int(down))

    # --- per-user rate limit ------------------------------------------------------------------

    def _lock_user(self, cur: Cursor, user: str) -> None:  # noqa: B027 (optional hook)
        """Serialize this transaction with others about the same user (no-op where the whole
        database is locked by a write transaction, as in SQLite)."""

    def rate_limit(
        self, user_id: int, limit: int, window: float, now: float | None = None
    ) -> tuple[bool, bool]:
        """Count a request of ``user_id`` against ``limit`` per ``window`` seconds (sliding).

        Returns (allowed, notify): whether to serve it and, when not, whether to send the notice
        (once per window). Shared by every process using this database, so running more
        replicas does not multiply a user's limit.
        """
        now = time.time() if now is None else now
        user = self.user_hash(user_id)
        with self._tx() as cur:
            self._lock_user(cur, user)
            self._execute(
                cur, "DELETE FROM rate_events WHERE user_hash = ? AND at <= ?", (user, now - window)
            )
            (count,) = self._execute(
                cur, "SELECT COUNT(*) FROM rate_events WHERE user_hash = ?", (user,)
            ).fetchone()
            if int(count) < limit:
                self._execute(
                    cur, "INSERT INTO rate_events (user_hash, at) VALUES (?, ?)", (user, now)
                )
                return True, False
            row = self._execute(
                cur, "SELECT at FROM rate_notices WHERE user_hash = ?", (user,)
            ).fetchone()
            notify = row is None or now - float(row[0]) >= window
            if notify:
                self._execute(
                    cur,
                    "INSERT INTO rate_notices (user_hash, at) VALUES (?, ?)"
                    " ON CONFLICT (user_hash) DO UPDATE SET at = excluded.at",
                    (user, now),
                )
            return False, notify

    # --- index roll-out ------------------------------------------------------------------------

    def request_reload(self) -> int:
        """Ask every process sharing this storage to reload the index; returns the new
        generation number (each process reloads when the number it last saw is behind)."""
        with self._tx() as cur:
            self._execute(
                cur,
                "INSERT INTO meta (key, value) VALUES ('reload_generation', '1')"
                " ON CONFLICT (key) DO UPDATE SET value ="
                " CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
            )
            return self._generation(cur)

    def reload_generation(self) -> int:
        with self._tx() as cur:
            return self._generation(cur)

    def _generation(self, cur: Cursor) -> int:
        row = self._execute(
            cur, "SELECT value FROM meta WHERE key = 'reload_generation'"
        ).fetchone()
        return int(row[0]) if row else 0

    def ping(self) -> None:
        """Raises when the database cannot be reached (for /healthz)."""
        with self._tx() as cur:
            self._execute(cur, "SELECT 1").fetchone()

    # --- language preference -----------------------------------------------------------------

    def set_language(self, user_id: int, language: Language) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}; expected one of {sorted(LANGUAGES)}")
        with self._tx() as cur:
            self._execute(
                cur,
                "INSERT INTO users (user_hash, language, updated) VALUES (?, ?, ?)"
                " ON CONFLICT (user_hash) DO UPDATE SET language = excluded.language,"
                " updated = excluded.updated",
                (self.user_hash(user_id), language, time.time()),
            )

    def get_language(self, user_id: int) -> Language | None:
        with self._tx() as cur:
            row = self._execute(
                cur, "SELECT language FROM users WHERE user_hash = ?", (self.user_hash(user_id),)
            ).fetchone()
        return cast(Language, row[0]) if row and row[0] in LANGUAGES else None

    # --- reports -----------------------------------------------------------------------------

    def stats(self) -> Stats:
        with self._tx() as cur:
            questions, abstained, users = self._execute(
                cur,
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE abstained = 1),"
                " COUNT(DISTINCT user_hash) FROM answers",
            ).fetchone()
            up, down = self._execute(
                cur,
                "SELECT COUNT(*) FILTER (WHERE vote = 1), COUNT(*) FILTER (WHERE vote = -1)"
                " FROM votes",
            ).fetchone()
            by_language = dict(
                self._execute(
                    cur,
                    "SELECT language, COUNT(*) FROM answers GROUP BY language ORDER BY 2 DESC, 1",
                ).fetchall()
            )
        return Stats(
            questions=int(questions),
            answered=int(questions) - int(abstained),
            abstained=int(abstained),
            users=int(users),
            votes_up=int(up),
            votes_down=int(down),
            by_language={str(k): int(v) for k, v in by_language.items()},
        )

    def unanswered(self, limit: int = 10) -> list[Unanswered]:
        """The most recent abstentions and answers with more 👎 than 👍, newest first."""
        with self._tx() as cur:
            rows = self._execute(
                cur,
                "SELECT a.created, a.question, a.language, a.abstained, a.citations,"
                " COUNT(v.vote) FILTER (WHERE v.vote = -1) AS down,"
                " COUNT(v.vote) FILTER (WHERE v.vote = 1) AS up"
                " FROM answers a LEFT JOIN votes v ON v.answer_id = a.answer_id"
                " GROUP BY a.answer_id, a.created, a.question, a.language, a.abstained,"
                " a.citations"
                " HAVING a.abstained = 1"
                " OR COUNT(v.vote) FILTER (WHERE v.vote = -1)"
                " > COUNT(v.vote) FILTER (WHERE v.vote = 1)"
                " ORDER BY a.created DESC, a.answer_id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            Unanswered(
                created=row[0],
                question=row[1],
                language=row[2],
                reason="abstained" if row[3] else "downvoted",
                citations=tuple(json.loads(row[4])),
                votes_down=int(row[5]),
            )
            for row in rows
        ]
