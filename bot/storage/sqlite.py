"""The embedded storage backend: one SQLite file (the default, ``BOT_STORAGE_PATH``).

What is kept: the question log (question, language, citations, confidence, abstained, time),
which doubles as the record behind the buttons under each answer (so they keep working after a
restart), feedback votes (one per user per answer, changeable) and each user's language choice.

Telegram user ids are never stored: every row carries ``HMAC-SHA256(key, user id)``. The key is
not in the database (whoever holds the file alone cannot confirm a guessed user id): it is
``BOT_USER_ID_KEY``, or a random key generated on first use into a file of its own with mode 0600
(``<database name>.user-id.key`` beside the database unless ``BOT_USER_ID_KEY_FILE`` says
otherwise). A database from before this (its key, then called the salt, in its ``meta`` table) is
migrated on opening: the salt moves to the key file, so every stored user stays linked, or, when
another key is configured, the old rows stay as they are but can no longer be linked to anyone
(their language choices are dropped). The database keeps only a fingerprint of the key, to refuse
a wrong one rather than silently lose every user.

The database file and any folder created for it are owner-only (0600 / 0700).

Question texts and votes older than the retention period are purged (``purge``); ``forget``
deletes everything stored about one user. Both first add what they delete to anonymous counters
(``archived``), so ``stats`` figures survive them.

Calls are synchronous; the Telegram layer runs them in a worker thread. A lock makes the one
connection safe from any thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

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
from bot.types import Answer, Language

log = logging.getLogger(__name__)

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
    # 2: counts of what retention and /forget deleted (stats survive them); lookups by user
    """
    CREATE TABLE archived (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE INDEX answers_user ON answers (user_hash);
    CREATE INDEX votes_user ON votes (user_hash);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

#: HMAC of this text with the key: how the database recognises its key without holding it.
_KEY_CHECK = b"contract-bot user-id key check"


def default_key_file(path: Path) -> Path:
    """Where the generated user-id key of the database ``path`` is kept: beside it, under a
    name a copy of ``bot.sqlite3*`` does not take along."""
    return path.with_name(f"{path.stem}.user-id.key")


def key_bytes(text: str) -> bytes:
    """A key as configured or stored: hex (as generated) or any other text, as UTF-8."""
    text = text.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode("utf-8")


def _owner_only_dirs(folder: Path) -> None:
    """Create ``folder`` (and missing parents) readable by the owner only; existing folders
    are left as they are (the database may live in a shared one like /var/lib)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir(mode=0o700)
        created.chmod(0o700)  # whatever the umask


def _owner_only_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600, or take group and other access away from it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
        return
    os.close(fd)


def _read_or_create_key(path: Path, value: str | None = None) -> tuple[bytes, bool]:
    """The key in ``path``; if there is none, ``value`` (or a new random key) written there
    with mode 0600 first. Returns the key and whether the file was written."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    else:
        if not text.strip():
            raise StorageError(f"the user-id key file {path} is empty; restore it or delete it")
        return key_bytes(text), False
    _owner_only_dirs(path.parent)
    value = value or secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(value + "\n")
    return key_bytes(value), True


class SqliteStorage:
    """SQLite storage; the file and its parent folder are created on first use.

    ``key`` is the user-id key (``BOT_USER_ID_KEY``); without it the key is read from
    ``key_file`` (default ``default_key_file(path)``), generated there on first use. ``clock``
    gives the time rows are stamped with (tests pass a fake one).
    """

    def __init__(
        self,
        path: Path,
        key: bytes | None = None,
        *,
        key_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.key_file = key_file or default_key_file(self.path)
        self._clock = clock
        try:
            _owner_only_dirs(self.path.parent)
            _owner_only_file(self.path)
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
            self._key = self._load_key(key)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StorageError(
                f"{self.path} is not a usable bot database ({exc}); "
                "move it away or set BOT_STORAGE_PATH to another file"
            ) from exc
        except (OSError, StorageError) as exc:
            self._db.close()
            if isinstance(exc, StorageError):
                raise
            raise StorageError(
                f"cannot read or create the user-id key file {self.key_file}: {exc}; "
                "set BOT_USER_ID_KEY, or BOT_USER_ID_KEY_FILE to a writable path"
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

    def _load_key(self, configured: bytes | None) -> bytes:
        """The user-id key (see the module docstring), migrating an old in-database salt."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()
        salt = row[0] if row is not None else None
        if configured is not None:
            key = configured
        else:
            # An old database's salt becomes the key file, so every stored user stays linked.
            key, written = _read_or_create_key(self.key_file, salt)
            if written:
                log.info("user-id key written to %s (mode 0600)", self.key_file)
        check = hmac.new(key, _KEY_CHECK, hashlib.sha256).hexdigest()
        with self._tx() as db:
            if salt is not None:
                db.execute("DELETE FROM meta WHERE key = 'salt'")
                if key != bytes.fromhex(salt):
                    # Another key was chosen: the old hashes can no longer be matched to users.
                    dropped = db.execute("DELETE FROM users").rowcount
                    log.warning(
                        "%s: its user-id salt was moved out of the database and replaced by the "
                        "configured key; rows stored before can no longer be linked to users "
                        "(%d language choices dropped)",
                        self.path,
                        dropped,
                    )
                else:
                    log.info("%s: user-id salt moved out of the database", self.path)
            else:
                known = db.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
                if known is not None and known[0] != check:
                    raise StorageError(
                        f"{self.path} was written with another user-id key: set "
                        f"BOT_USER_ID_KEY (or restore {self.key_file}) to the key it was written "
                        "with, or move the database away to start afresh"
                    )
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('key_check', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (check,),
            )
        return key

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def user_hash(self, user_id: int) -> str:
        """The stored stand-in for a Telegram user id."""
        return hmac.new(self._key, str(user_id).encode(), hashlib.sha256).hexdigest()

    # --- answers -----------------------------------------------------------------------------

    def log_answer(self, user_id: int, answer: Answer, *, source: str = "message") -> str:
        """Record an answer given to ``user_id``; returns its new short id (for callback data)."""
        answer_id = secrets.token_urlsafe(6)  # 8 characters, ~48 random bits
        citations = [c.id for c in answer.citations]
        with self._tx() as db:
            db.execute(
                "INSERT INTO answers (answer_id, created, user_hash, source, question, language,"
                " intent, citations, related, confidence, abstained)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )
        return answer_id

    def get_answer(self, answer_id: str) -> AnswerRecord | None:
        with self._lock:
            row = self._db.execute(
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
                (answer_id, user, value, self._clock()),
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
                (self.user_hash(user_id), language, self._clock()),
            )

    def get_language(self, user_id: int) -> Language | None:
        with self._lock:
            row = self._db.execute(
                "SELECT language FROM users WHERE user_hash = ?", (self.user_hash(user_id),)
            ).fetchone()
        return cast(Language, row[0]) if row and row[0] in LANGUAGES else None

    # --- reports -----------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Counts over every question ever logged: the rows kept plus the ``archived`` counts of
        those purged or forgotten. ``users`` counts a user once while any of their questions is
        kept; one whose questions were all purged counts again on returning."""
        with self._lock:
            questions, abstained, users = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(abstained), 0), COUNT(DISTINCT user_hash)"
                " FROM answers"
            ).fetchone()
            up, down = self._db.execute(
                "SELECT COALESCE(SUM(vote = 1), 0), COALESCE(SUM(vote = -1), 0) FROM votes"
            ).fetchone()
            languages: dict[str, int] = dict(
                self._db.execute("SELECT language, COUNT(*) FROM answers GROUP BY language")
            )
            archived = dict(self._db.execute("SELECT name, value FROM archived"))
        for name, value in archived.items():
            if name.startswith("language:"):
                language = name.removeprefix("language:")
                languages[language] = languages.get(language, 0) + int(value)
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
        )

    def unanswered(self, limit: int = 10) -> list[Unanswered]:
        """The most recent abstentions and answers with more 👎 than 👍, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT a.created, a.question, a.language, a.abstained, a.citations,"
                " COALESCE(SUM(v.vote = -1), 0) AS down, COALESCE(SUM(v.vote = 1), 0) AS up"
                " FROM answers a LEFT JOIN votes v ON v.answer_id = a.answer_id"
                " GROUP BY a.answer_id HAVING a.abstained = 1 OR down > up"
                " ORDER BY a.created DESC, a.rowid DESC LIMIT ?",
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

    # --- retention and /forget ---------------------------------------------------------------

    @staticmethod
    def _archive(
        db: sqlite3.Connection,
        answers: tuple[str, tuple[object, ...]],
        votes: tuple[str, tuple[object, ...]],
    ) -> None:
        """Add the answers and the votes the two (WHERE clause, arguments) select to the
        anonymous counters."""
        counts: dict[str, int] = {}
        where, args = answers
        total, abstained = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(abstained), 0) FROM answers WHERE {where}", args
        ).fetchone()
        counts["questions"], counts["abstained"] = int(total), int(abstained)
        for language, n in db.execute(
            f"SELECT language, COUNT(*) FROM answers WHERE {where} GROUP BY language", args
        ):
            counts[f"language:{language}"] = int(n)
        where, args = votes
        up, down = db.execute(
            "SELECT COALESCE(SUM(vote = 1), 0), COALESCE(SUM(vote = -1), 0) FROM votes"
            f" WHERE {where}",
            args,
        ).fetchone()
        counts["votes_up"], counts["votes_down"] = int(up), int(down)
        for name, value in counts.items():
            if value:
                db.execute(
                    "INSERT INTO archived (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    (name, value),
                )

    def _count_user(self, db: sqlite3.Connection, users: int) -> None:
        if users:
            db.execute(
                "INSERT INTO archived (name, value) VALUES ('users', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (users,),
            )

    def purge(self, before: float) -> Purged:
        """Delete the questions logged before ``before`` (a Unix time) and their votes; their
        counts go to the ``archived`` counters first."""
        old = "created < ?"
        on_old = "answer_id IN (SELECT answer_id FROM answers WHERE created < ?)"
        with self._tx() as db:
            self._archive(db, (old, (before,)), (on_old, (before,)))
            (leaving,) = db.execute(
                "SELECT COUNT(DISTINCT user_hash) FROM answers WHERE created < ? AND user_hash"
                " NOT IN (SELECT user_hash FROM answers WHERE created >= ?)",
                (before, before),
            ).fetchone()
            self._count_user(db, int(leaving))
            votes = db.execute(f"DELETE FROM votes WHERE {on_old}", (before,)).rowcount
            questions = db.execute(f"DELETE FROM answers WHERE {old}", (before,)).rowcount
        return Purged(questions=questions, votes=votes)

    def _user_tables(self, db: sqlite3.Connection) -> list[str]:
        """Every table with a ``user_hash`` column (tables added later are covered too)."""
        names = [
            row[0]
            for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not str(row[0]).startswith("sqlite_")
        ]
        return [
            name
            for name in names
            if any(col[1] == "user_hash" for col in db.execute(f'PRAGMA table_info("{name}")'))
        ]

    def forget(self, user_id: int) -> Forgotten:
        """Delete every row about ``user_id`` (questions, votes, language, any other table keyed
        by the user); the answers' counts (and the votes others gave them) are archived first.
        Returns how many rows of each table went."""
        user = self.user_hash(user_id)
        touching = (
            "user_hash = ? OR answer_id IN (SELECT answer_id FROM answers WHERE user_hash = ?)"
        )
        with self._tx() as db:
            self._archive(db, ("user_hash = ?", (user,)), (touching, (user, user)))
            asked = db.execute("SELECT 1 FROM answers WHERE user_hash = ? LIMIT 1", (user,))
            self._count_user(db, 1 if asked.fetchone() else 0)
            db.execute(
                "DELETE FROM votes WHERE answer_id IN"
                " (SELECT answer_id FROM answers WHERE user_hash = ?) AND user_hash != ?",
                (user, user),
            )
            deleted: dict[str, int] = {}
            order = {"votes": 0, "answers": 1}  # votes reference answers
            for table in sorted(self._user_tables(db), key=lambda t: order.get(t, 2)):
                n = db.execute(f'DELETE FROM "{table}" WHERE user_hash = ?', (user,)).rowcount
                if n:
                    deleted[table] = n
        return Forgotten(deleted)
