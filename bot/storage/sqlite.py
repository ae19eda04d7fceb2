"""The embedded storage backend: one SQLite file (the default, ``BOT_STORAGE_PATH``).

What is kept: the question log (question, language, citations, confidence, abstained, time),
which doubles as the record behind the buttons under each answer (so they keep working after a
restart), feedback votes (one per user per answer, changeable) and each user's language choice.

Telegram user ids are never stored: every row carries ``HMAC-SHA256(salt, user id)`` with a random
salt created with the database and kept in its ``meta`` table.

Calls are synchronous. The Telegram handlers call them directly on the event loop: each is one
small indexed statement on a local file in WAL mode (well under a millisecond), cheaper than a
thread hop. A lock makes the one connection safe should a caller use a thread anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from bot.storage.base import (
    LANGUAGES,
    AnswerRecord,
    Stats,
    StorageError,
    Unanswered,
    VoteResult,
)
from bot.types import Answer, Language

#: Schema migrations; migration ``n`` (0-based) takes ``PRAGMA user_version`` from n to n+1.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE answers (
        answer_id  TEXT PRIMARY KEY,
        created    REAL NOT NULL,
        user_hash  TEXT NOT NULL,
        source     TEXT NOT NULL,
        question   TEXT NOT NULL,
        language   TEXT NOT NULL,
        intent     TEXT NOT NULL,
        citations  TEXT NOT NULL,
        related    TEXT NOT NULL,
        confidence REAL NOT NULL,
        abstained  INTEGER NOT NULL
    );
    CREATE INDEX answers_created ON answers (created);
    CREATE TABLE votes (
        answer_id TEXT NOT NULL REFERENCES answers (answer_id) ON DELETE CASCADE,
        user_hash TEXT NOT NULL,
        vote      INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        updated   REAL NOT NULL,
        PRIMARY KEY (answer_id, user_hash)
    );
    CREATE TABLE users (
        user_hash TEXT PRIMARY KEY,
        language  TEXT NOT NULL,
        updated   REAL NOT NULL
    );
    """,
    # 2: what each answer said of the agreement (answered / not_stated / out_of_scope).
    """
    ALTER TABLE answers ADD COLUMN coverage TEXT NOT NULL DEFAULT 'answered';
    UPDATE answers SET coverage = 'out_of_scope' WHERE abstained = 1;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class SqliteStorage:
    """SQLite storage; the file and its parent folder are created on first use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"cannot open the bot database {self.path}: {exc}; "
                "set BOT_STORAGE_PATH to a writable file path"
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
                "move it away or set BOT_STORAGE_PATH to another file"
            ) from exc

    # --- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path} has schema version {version}, newer than this bot's "
                f"{SCHEMA_VERSION}; upgrade the bot or set BOT_STORAGE_PATH to another file"
            )
        for number in range(version, SCHEMA_VERSION):
            with self._tx() as db:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    def _load_salt(self) -> bytes:
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
            if row is None:
                salt = secrets.token_hex(32)
                db.execute("INSERT INTO meta (key, value) VALUES ('salt', ?)", (salt,))
                return bytes.fromhex(salt)
        return bytes.fromhex(row[0])

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def user_hash(self, user_id: int) -> str:
        """The stored stand-in for a Telegram user id."""
        return hmac.new(self._salt, str(user_id).encode(), hashlib.sha256).hexdigest()

    # --- answers -----------------------------------------------------------------------------

    def log_answer(self, user_id: int, answer: Answer, *, source: str = "message") -> str:
        """Record an answer given to ``user_id``; returns its new short id (for callback data)."""
        answer_id = secrets.token_urlsafe(6)  # 8 characters, ~48 random bits
        citations = [c.id for c in answer.citations]
        with self._tx() as db:
            db.execute(
                "INSERT INTO answers (answer_id, created, user_hash, source, question, language,"
                " intent, citations, related, confidence, abstained, coverage)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    answer.coverage,
                ),
            )
        return answer_id

    def get_answer(self, answer_id: str) -> AnswerRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT answer_id, created, question, language, intent, citations, related,"
                " confidence, abstained, coverage FROM answers WHERE answer_id = ?",
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
            coverage=row[9],
        )

    # --- feedback ----------------------------------------------------------------------------

    def vote(self, answer_id: str, user_id: int, value: int) -> VoteResult | None:
        """Record 👍 (+1) or 👎 (-1); a user's later vote replaces the earlier one.

        Returns None when the answer is unknown (e.g. a button from a deleted database).
        """
        if value not in (-1, 1):
            raise ValueError(f"vote must be +1 or -1, not {value!r}")
        user = self.user_hash(user_id)
        with self._tx() as db:
            if (
                db.execute("SELECT 1 FROM answers WHERE answer_id = ?", (answer_id,)).fetchone()
                is None
            ):
                return None
            row = db.execute(
                "SELECT vote FROM votes WHERE answer_id = ? AND user_hash = ?", (answer_id, user)
            ).fetchone()
            changed = row is None or row[0] != value
            db.execute(
                "INSERT INTO votes (answer_id, user_hash, vote, updated) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (answer_id, user_hash) DO UPDATE SET vote = excluded.vote,"
                " updated = excluded.updated",
                (answer_id, user, value, time.time()),
            )
            up, down = db.execute(
                "SELECT COALESCE(SUM(vote = 1), 0), COALESCE(SUM(vote = -1), 0) FROM votes"
                " WHERE answer_id = ?",
                (answer_id,),
            ).fetchone()
        return VoteResult(changed=changed, up=int(up), down=int(down))

    # --- language preference -----------------------------------------------------------------

    def set_language(self, user_id: int, language: Language) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}; expected one of {sorted(LANGUAGES)}")
        with self._tx() as db:
            db.execute(
                "INSERT INTO users (user_hash, language, updated) VALUES (?, ?, ?)"
                " ON CONFLICT (user_hash) DO UPDATE SET language = excluded.language,"
                " updated = excluded.updated",
                (self.user_hash(user_id), language, time.time()),
            )

    def get_language(self, user_id: int) -> Language | None:
        with self._lock:
            row = self._db.execute(
                "SELECT language FROM users WHERE user_hash = ?", (self.user_hash(user_id),)
            ).fetchone()
        return cast(Language, row[0]) if row and row[0] in LANGUAGES else None

    # --- reports -----------------------------------------------------------------------------

    def stats(self) -> Stats:
        with self._lock:
            questions, abstained, users, not_stated = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(abstained), 0), COUNT(DISTINCT user_hash),"
                " COALESCE(SUM(coverage = 'not_stated'), 0) FROM answers"
            ).fetchone()
            up, down = self._db.execute(
                "SELECT COALESCE(SUM(vote = 1), 0), COALESCE(SUM(vote = -1), 0) FROM votes"
            ).fetchone()
            by_language = dict(
                self._db.execute(
                    "SELECT language, COUNT(*) FROM answers GROUP BY language ORDER BY 2 DESC"
                ).fetchall()
            )
        return Stats(
            questions=int(questions),
            answered=int(questions) - int(abstained),
            abstained=int(abstained),
            users=int(users),
            votes_up=int(up),
            votes_down=int(down),
            by_language=by_language,
            not_stated=int(not_stated),
        )

    def unanswered(self, limit: int = 10) -> list[Unanswered]:
        """The most recent abstentions, "the agreement does not say" answers and answers with
        more 👎 than 👍, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT a.created, a.question, a.language, a.abstained, a.citations,"
                " COALESCE(SUM(v.vote = -1), 0) AS down, COALESCE(SUM(v.vote = 1), 0) AS up,"
                " a.coverage"
                " FROM answers a LEFT JOIN votes v ON v.answer_id = a.answer_id"
                " GROUP BY a.answer_id"
                " HAVING a.abstained = 1 OR a.coverage = 'not_stated' OR down > up"
                " ORDER BY a.created DESC, a.rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            Unanswered(
                created=row[0],
                question=row[1],
                language=row[2],
                reason="abstained"
                if row[3]
                else ("not_stated" if row[7] == "not_stated" else "downvoted"),
                citations=tuple(json.loads(row[4])),
                votes_down=int(row[5]),
            )
            for row in rows
        ]
