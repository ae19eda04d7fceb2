"""What the SQL backends share: every storage operation, written once in portable SQL.

A backend supplies a connection per transaction (``_tx``, a DB-API cursor with ``execute``,
``fetchone``, ``fetchall``, ``rowcount``), how it keeps the schema version and which tables it
has; the queries here use ``?`` placeholders and SQL that SQLite and PostgreSQL both accept
(``ON CONFLICT … DO UPDATE``, ``COUNT(*) FILTER (WHERE …)``).

Telegram user ids are never stored: every row carries ``HMAC-SHA256(key, user id)`` with the
key of ``bot.storage.keys``. Question texts and votes older than the retention period are purged
(``purge``); ``forget`` deletes everything stored about one user. Both first add what they
delete to anonymous counters (``archived``), so ``stats`` figures survive them.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol, cast

from bot.storage import keys
from bot.storage.base import (
    LANGUAGES,
    AnswerRecord,
    Forgotten,
    Purged,
    Stats,
    StorageError,
    Unanswered,
    VoteResult,
)
from bot.storage.schema import MIGRATIONS, Dialect
from bot.types import Answer, DialogueTurn, Language

log = logging.getLogger(__name__)


class Cursor(Protocol):
    def execute(self, query: Any, params: Sequence[Any] = ()) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    @property
    def rowcount(self) -> int: ...


class SqlStorage(ABC):
    """The storage operations over any DB-API backend; see the module docstring."""

    dialect: Dialect
    #: Orders rows stamped with the same time (insertion order).
    _insertion_order: str
    _clock: Callable[[], float] = time.time
    _key: bytes
    #: Per thread: the cursor of the transaction ``together`` holds open.
    _shared: threading.local

    # --- what a backend provides -------------------------------------------------------------

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor inside a new transaction, committed on success and rolled back on error."""

    @abstractmethod
    def _read_version(self, cur: Cursor) -> int: ...

    @abstractmethod
    def _write_version(self, cur: Cursor, version: int) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _user_tables(self, cur: Cursor) -> list[str]:
        """Every table with a ``user_hash`` column (tables added later are covered too)."""

    def _where(self) -> str:
        """How messages name this database (a path, or a URL with the password masked)."""
        return repr(self)

    # --- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Cursor]:
        """A cursor inside a transaction: the one ``together`` holds open in this thread, else
        a new one."""
        shared = getattr(self._shared, "cursor", None)
        if shared is not None:
            yield shared
            return
        with self._transaction() as cur:
            yield cur

    @contextmanager
    def together(self) -> Iterator[None]:
        """The calls made inside, in this thread, share one transaction: what one question
        reads before its answer, or writes after it, costs one connection checkout and one
        BEGIN / COMMIT instead of one per call (on PostgreSQL, round trips each). An error
        rolls back all of them. Nested: the outer one counts."""
        if getattr(self._shared, "cursor", None) is not None:
            yield
            return
        with self._transaction() as cur:
            self._shared.cursor = cur
            try:
                yield
            finally:
                self._shared.cursor = None

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

    def _load_key(self, configured: bytes | None, key_file: Path | None) -> bytes:
        """The user-id key: ``configured``, else the one in ``key_file`` (generated there on
        first use). An old SQLite database's in-database salt moves to the key file, so every
        stored user stays linked; with another key configured its rows are unlinked instead.
        A database written with another key is refused."""
        with self._tx() as cur:
            row = self._execute(cur, "SELECT value FROM meta WHERE key = 'salt'").fetchone()
        salt = row[0] if row is not None else None
        if configured is not None:
            key = configured
        elif key_file is not None:
            try:
                key, written = keys.read_or_create_key(key_file, salt)
            except OSError as exc:
                raise StorageError(
                    f"cannot read or create the user-id key file {key_file}: {exc}; "
                    "set BOT_USER_ID_KEY, or BOT_USER_ID_KEY_FILE to a writable path"
                ) from exc
            if written:
                log.info("user-id key written to %s (mode 0600)", key_file)
        else:
            raise StorageError(
                f"{self._where()} is shared by several processes, which must all hash user ids "
                "with the same key: set BOT_USER_ID_KEY (or BOT_USER_ID_KEY_FILE) on every one"
            )
        check = keys.key_check(key)
        with self._tx() as cur:
            if salt is not None:
                self._execute(cur, "DELETE FROM meta WHERE key = 'salt'")
                if key != bytes.fromhex(salt):
                    # Another key was chosen: the old hashes can no longer be matched to users.
                    dropped = self._execute(cur, "DELETE FROM users").rowcount
                    log.warning(
                        "%s: its user-id salt was moved out of the database and replaced by the "
                        "configured key; rows stored before can no longer be linked to users "
                        "(%d language choices dropped)",
                        self._where(),
                        dropped,
                    )
                else:
                    log.info("%s: user-id salt moved out of the database", self._where())
            else:
                known = self._execute(
                    cur, "SELECT value FROM meta WHERE key = 'key_check'"
                ).fetchone()
                if known is not None and known[0] != check:
                    where = f"restore {key_file}" if key_file is not None else "fix it"
                    raise StorageError(
                        f"{self._where()} was written with another user-id key: set "
                        f"BOT_USER_ID_KEY (or {where}) to the key it was written with, or move "
                        "the database away to start afresh"
                    )
            self._execute(
                cur,
                "INSERT INTO meta (key, value) VALUES ('key_check', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (check,),
            )
        return key

    @property
    def schema_version(self) -> int:
        with self._tx() as cur:
            return self._read_version(cur)

    def user_hash(self, user_id: int) -> str:
        """The stored stand-in for a Telegram user id."""
        return keys.user_hash(self._key, user_id)

    # --- answers -----------------------------------------------------------------------------

    def log_answer(self, user_id: int, answer: Answer, *, source: str = "message") -> str:
        """Record an answer given to ``user_id``; returns its new short id (for callback data)."""
        answer_id = secrets.token_urlsafe(6)  # 8 characters, ~48 random bits
        citations = [c.id for c in answer.citations]
        with self._tx() as cur:
            self._execute(
                cur,
                "INSERT INTO answers (answer_id, created, user_hash, source, question, language,"
                " intent, citations, related, confidence, abstained, coverage)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer_id,
                    self._clock(),
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
        with self._tx() as cur:
            row = self._execute(
                cur,
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
                (answer_id, user, value, self._clock()),
            )
            up, down = self._execute(
                cur,
                "SELECT COUNT(*) FILTER (WHERE vote = 1), COUNT(*) FILTER (WHERE vote = -1)"
                " FROM votes WHERE answer_id = ?",
                (answer_id,),
            ).fetchone()
        return VoteResult(changed=changed, up=int(up), down=int(down))

    # --- per-user rate limit ------------------------------------------------------------------

    def _only_purger(self, cur: Cursor) -> bool:
        """Whether this transaction may purge: False while another process is purging (the
        whole database is locked by a write transaction in SQLite, so always True there)."""
        return True

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
        now = self._clock() if now is None else now
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
                (self.user_hash(user_id), language, self._clock()),
            )

    def get_language(self, user_id: int) -> Language | None:
        with self._tx() as cur:
            row = self._execute(
                cur, "SELECT language FROM users WHERE user_hash = ?", (self.user_hash(user_id),)
            ).fetchone()
        return cast(Language, row[0]) if row and row[0] in LANGUAGES else None

    # --- dialogue context --------------------------------------------------------------------

    def set_dialogue(
        self, user_id: int, chat_id: int, turn: DialogueTurn, *, max_age: float
    ) -> None:
        """Remember ``turn`` as the user's context in this chat; contexts older than
        ``max_age`` seconds (anyone's) are deleted on the way."""
        with self._tx() as cur:
            self._execute(
                cur, "DELETE FROM dialogues WHERE asked_at < ?", (self._clock() - max_age,)
            )
            self._execute(
                cur,
                "INSERT INTO dialogues (user_hash, chat_hash, question, topic, item_id, language,"
                " asked_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_hash, chat_hash) DO UPDATE SET question = excluded.question,"
                " topic = excluded.topic, item_id = excluded.item_id,"
                " language = excluded.language, asked_at = excluded.asked_at",
                (
                    self.user_hash(user_id),
                    self.user_hash(chat_id),
                    turn.question,
                    turn.topic,
                    turn.item_id,
                    turn.language,
                    turn.asked_at,
                ),
            )

    def get_dialogue(self, user_id: int, chat_id: int, *, max_age: float) -> DialogueTurn | None:
        """The user's context in this chat if it was set less than ``max_age`` seconds ago."""
        with self._tx() as cur:
            row = self._execute(
                cur,
                "SELECT question, topic, item_id, language, asked_at FROM dialogues"
                " WHERE user_hash = ? AND chat_hash = ? AND asked_at >= ?",
                (self.user_hash(user_id), self.user_hash(chat_id), self._clock() - max_age),
            ).fetchone()
        if row is None or row[3] not in LANGUAGES:
            return None
        return DialogueTurn(
            question=row[0],
            topic=row[1],
            item_id=row[2],
            language=cast(Language, row[3]),
            asked_at=float(row[4]),
        )

    def forget_dialogue(self, user_id: int, chat_id: int | None = None) -> None:
        """Forget the user's context in ``chat_id``, or in every chat when it is None."""
        with self._tx() as cur:
            if chat_id is None:
                self._execute(
                    cur, "DELETE FROM dialogues WHERE user_hash = ?", (self.user_hash(user_id),)
                )
            else:
                self._execute(
                    cur,
                    "DELETE FROM dialogues WHERE user_hash = ? AND chat_hash = ?",
                    (self.user_hash(user_id), self.user_hash(chat_id)),
                )

    # --- reports -----------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Counts over every question ever logged: the rows kept plus the ``archived`` counts of
        those purged or forgotten. ``users`` counts a user once while any of their questions is
        kept; one whose questions were all purged counts again on returning."""
        with self._tx() as cur:
            questions, abstained, users, not_stated = self._execute(
                cur,
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE abstained = 1),"
                " COUNT(DISTINCT user_hash), COUNT(*) FILTER (WHERE coverage = 'not_stated')"
                " FROM answers",
            ).fetchone()
            up, down = self._execute(
                cur,
                "SELECT COUNT(*) FILTER (WHERE vote = 1), COUNT(*) FILTER (WHERE vote = -1)"
                " FROM votes",
            ).fetchone()
            languages: dict[str, int] = {
                str(k): int(v)
                for k, v in self._execute(
                    cur, "SELECT language, COUNT(*) FROM answers GROUP BY language"
                ).fetchall()
            }
            archived = {
                str(k): int(v)
                for k, v in self._execute(cur, "SELECT name, value FROM archived").fetchall()
            }
        for name, value in archived.items():
            if name.startswith("language:"):
                language = name.removeprefix("language:")
                languages[language] = languages.get(language, 0) + value
        questions = int(questions) + archived.get("questions", 0)
        abstained = int(abstained) + archived.get("abstained", 0)
        return Stats(
            questions=questions,
            answered=questions - abstained,
            abstained=abstained,
            users=int(users) + archived.get("users", 0),
            votes_up=int(up) + archived.get("votes_up", 0),
            votes_down=int(down) + archived.get("votes_down", 0),
            by_language=dict(sorted(languages.items(), key=lambda kv: (-kv[1], kv[0]))),
            not_stated=int(not_stated) + archived.get("not_stated", 0),
        )

    def unanswered(self, limit: int = 10) -> list[Unanswered]:
        """The most recent abstentions, "the agreement does not say" answers (what users miss in
        the agreement) and answers with more 👎 than 👍, newest first."""
        with self._tx() as cur:
            rows = self._execute(
                cur,
                "SELECT a.created, a.question, a.language, a.abstained, a.citations,"
                " COUNT(v.vote) FILTER (WHERE v.vote = -1) AS down,"
                " COUNT(v.vote) FILTER (WHERE v.vote = 1) AS up, a.coverage"
                " FROM answers a LEFT JOIN votes v ON v.answer_id = a.answer_id"
                f" GROUP BY a.answer_id, a.created, a.question, a.language, a.abstained,"
                f" a.citations, a.coverage, {self._insertion_order}"
                " HAVING a.abstained = 1 OR a.coverage = 'not_stated'"
                " OR COUNT(v.vote) FILTER (WHERE v.vote = -1)"
                " > COUNT(v.vote) FILTER (WHERE v.vote = 1)"
                f" ORDER BY a.created DESC, {self._insertion_order} DESC LIMIT ?",
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

    # --- retention and /forget ---------------------------------------------------------------

    def _archive(
        self,
        cur: Cursor,
        answers: tuple[str, tuple[object, ...]],
        votes: tuple[str, tuple[object, ...]],
    ) -> None:
        """Add the answers and the votes the two (WHERE clause, arguments) select to the
        anonymous counters."""
        counts: dict[str, int] = {}
        where, args = answers
        total, abstained, not_stated = self._execute(
            cur,
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE abstained = 1),"
            f" COUNT(*) FILTER (WHERE coverage = 'not_stated') FROM answers WHERE {where}",
            args,
        ).fetchone()
        counts["questions"], counts["abstained"] = int(total), int(abstained)
        counts["not_stated"] = int(not_stated)
        for language, n in self._execute(
            cur, f"SELECT language, COUNT(*) FROM answers WHERE {where} GROUP BY language", args
        ).fetchall():
            counts[f"language:{language}"] = int(n)
        where, args = votes
        up, down = self._execute(
            cur,
            "SELECT COUNT(*) FILTER (WHERE vote = 1), COUNT(*) FILTER (WHERE vote = -1)"
            f" FROM votes WHERE {where}",
            args,
        ).fetchone()
        counts["votes_up"], counts["votes_down"] = int(up), int(down)
        for name, value in counts.items():
            self._count(cur, name, value)

    def _count(self, cur: Cursor, name: str, value: int) -> None:
        if value:
            self._execute(
                cur,
                "INSERT INTO archived (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = archived.value + excluded.value",
                (name, value),
            )

    def purge(self, before: float) -> Purged:
        """Delete the questions logged before ``before`` (a Unix time) and their votes; their
        counts go to the ``archived`` counters first."""
        old = "created < ?"
        on_old = "answer_id IN (SELECT answer_id FROM answers WHERE created < ?)"
        with self._tx() as cur:
            if not self._only_purger(cur):  # another replica is at it: its purge will do
                return Purged(questions=0, votes=0)
            self._archive(cur, (old, (before,)), (on_old, (before,)))
            (leaving,) = self._execute(
                cur,
                "SELECT COUNT(DISTINCT user_hash) FROM answers WHERE created < ? AND user_hash"
                " NOT IN (SELECT user_hash FROM answers WHERE created >= ?)",
                (before, before),
            ).fetchone()
            self._count(cur, "users", int(leaving))
            votes = self._execute(cur, f"DELETE FROM votes WHERE {on_old}", (before,)).rowcount
            questions = self._execute(cur, f"DELETE FROM answers WHERE {old}", (before,)).rowcount
        return Purged(questions=questions, votes=votes)

    def forget(self, user_id: int) -> Forgotten:
        """Delete every row about ``user_id`` (questions, votes, language, any other table keyed
        by the user); the answers' counts (and the votes others gave them) are archived first.
        Returns how many rows of each table went."""
        user = self.user_hash(user_id)
        touching = (
            "user_hash = ? OR answer_id IN (SELECT answer_id FROM answers WHERE user_hash = ?)"
        )
        with self._tx() as cur:
            self._archive(cur, ("user_hash = ?", (user,)), (touching, (user, user)))
            asked = self._execute(
                cur, "SELECT 1 FROM answers WHERE user_hash = ? LIMIT 1", (user,)
            ).fetchone()
            self._count(cur, "users", 1 if asked else 0)
            self._execute(
                cur,
                "DELETE FROM votes WHERE answer_id IN"
                " (SELECT answer_id FROM answers WHERE user_hash = ?) AND user_hash != ?",
                (user, user),
            )
            deleted: dict[str, int] = {}
            order = {"votes": 0, "answers": 1}  # votes reference answers
            for table in sorted(self._user_tables(cur), key=lambda t: order.get(t, 2)):
                n = self._execute(
                    cur, f'DELETE FROM "{table}" WHERE user_hash = ?', (user,)
                ).rowcount
                if n:
                    deleted[table] = n
        return Forgotten(deleted)
