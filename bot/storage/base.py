"""The storage interface: what the bot keeps and the records it reads back.

Every backend implements ``Storage``; callers (the Telegram layer) know only this module. Telegram
user ids are never stored as such: every row carries ``user_hash(user id)``, an HMAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.types import Answer, Language

LANGUAGES: frozenset[str] = frozenset({"zh-Hans", "zh-Hant", "en"})


class StorageError(Exception):
    """The database cannot be opened or is from a newer version of the bot."""


@dataclass(frozen=True)
class AnswerRecord:
    """What the buttons under an answer need to know about it, long after it was sent."""

    answer_id: str
    created: float
    question: str
    language: Language
    intent: str
    citations: tuple[str, ...]  # item ids, most relevant first
    related: tuple[str, ...]
    confidence: float
    abstained: bool
    coverage: str = "answered"  # answered | not_stated | out_of_scope


@dataclass(frozen=True)
class Stats:
    questions: int
    answered: int
    abstained: int
    users: int
    votes_up: int
    votes_down: int
    by_language: dict[str, int]
    not_stated: int = 0  # answered "the agreement does not say"


@dataclass(frozen=True)
class Unanswered:
    """A question worth a look when improving the knowledge."""

    created: float
    question: str
    language: str
    reason: str  # "abstained" | "not_stated" | "downvoted"
    citations: tuple[str, ...]
    votes_down: int


@dataclass(frozen=True)
class VoteResult:
    changed: bool  # False when the user repeated the same vote
    up: int
    down: int


class Storage(Protocol):
    """The question log (also the record behind the buttons under each answer), feedback votes
    and each user's language choice."""

    @property
    def schema_version(self) -> int: ...

    def close(self) -> None: ...

    def user_hash(self, user_id: int) -> str:
        """The stored stand-in for a Telegram user id."""
        ...

    def log_answer(self, user_id: int, answer: Answer, *, source: str = "message") -> str:
        """Record an answer given to ``user_id``; returns its new short id (for callback data)."""
        ...

    def get_answer(self, answer_id: str) -> AnswerRecord | None: ...

    def vote(self, answer_id: str, user_id: int, value: int) -> VoteResult | None:
        """Record 👍 (+1) or 👎 (-1), replacing the user's earlier vote; None for an unknown
        answer."""
        ...

    def set_language(self, user_id: int, language: Language) -> None: ...

    def get_language(self, user_id: int) -> Language | None: ...

    def stats(self) -> Stats: ...

    def unanswered(self, limit: int = 10) -> list[Unanswered]:
        """The most recent abstentions, not-stated answers (what users miss in the agreement)
        and answers with more 👎 than 👍, newest first."""
        ...
