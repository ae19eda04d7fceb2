"""The storage schema, versioned: one list of migrations that every backend applies in order.

Migration ``n`` (0-based) takes a database from schema version n to n+1, with the same version
numbers on every backend; each carries its SQL per dialect (types differ: SQLite's ``REAL`` is
PostgreSQL's ``DOUBLE PRECISION``). Statements are separated by ``;``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["sqlite", "postgres"]


@dataclass(frozen=True)
class Migration:
    description: str
    sqlite: str
    postgres: str

    def statements(self, dialect: Dialect) -> list[str]:
        sql = self.sqlite if dialect == "sqlite" else self.postgres
        return [s.strip() for s in sql.split(";") if s.strip()]


def _both(description: str, sql: str) -> Migration:
    """A migration whose SQL is the same on both backends once ``REAL`` is spelled for each."""
    return Migration(description, sql, sql.replace(" REAL ", " DOUBLE PRECISION "))


#: The first schema (SQLite's ``rowid`` orders rows of equal time; PostgreSQL gets ``seq``).
_V1 = """
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
            abstained  INTEGER NOT NULL{seq}
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
        )
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "answers, votes, users",
        _V1.format(seq=""),
        _V1.format(seq=",\n            seq        BIGSERIAL").replace(
            " REAL ", " DOUBLE PRECISION "
        ),
    ),
    _both(
        "counts of what retention and /forget deleted (stats survive them); lookups by user",
        """
        CREATE TABLE archived (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE INDEX answers_user ON answers (user_hash);
        CREATE INDEX votes_user ON votes (user_hash)
        """,
    ),
    _both(
        "per-user rate limit shared by every bot process",
        """
        CREATE TABLE rate_events (
            user_hash TEXT NOT NULL,
            at        REAL NOT NULL
        );
        CREATE INDEX rate_events_user ON rate_events (user_hash, at);
        CREATE TABLE rate_notices (
            user_hash TEXT PRIMARY KEY,
            at        REAL NOT NULL
        )
        """,
    ),
    _both(
        "the dialogue context behind follow-up questions, one row per user and chat, kept no"
        " longer than BOT_DIALOGUE_TIMEOUT (rows are pruned whenever one is written)",
        """
        CREATE TABLE dialogues (
            user_hash TEXT NOT NULL,
            chat_hash TEXT NOT NULL,
            question  TEXT NOT NULL,
            topic     TEXT NOT NULL,
            item_id   TEXT NOT NULL,
            language  TEXT NOT NULL,
            asked_at  REAL NOT NULL,
            PRIMARY KEY (user_hash, chat_hash)
        );
        CREATE INDEX dialogues_asked_at ON dialogues (asked_at)
        """,
    ),
    _both(
        "what each answer said of the agreement (answered / not_stated / out_of_scope)",
        """
        ALTER TABLE answers ADD COLUMN coverage TEXT NOT NULL DEFAULT 'answered';
        UPDATE answers SET coverage = 'out_of_scope' WHERE abstained = 1
        """,
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)
