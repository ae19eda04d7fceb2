"""The storage interface: what the bot keeps and the records it reads back.

Every backend implements ``Storage``; callers (the Telegram layer) know only this module. Telegram
user ids are never stored as such: every row carries ``user_hash(user id)``, an HMAC whose key is
kept outside the database. Old question texts are purged after the retention period; a user can
have everything about them deleted (``forget``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from bot.types import Answer, DialogueTurn, Language

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
class Purged:
    """What a retention purge deleted."""

    questions: int
    votes: int


@dataclass(frozen=True)
class Forgotten:
    """What ``forget`` deleted: rows per table (``answers`` are the user's questions, ``votes``
    their votes, ``users`` their language choice; other tables keyed by user as they come)."""

    deleted: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


@dataclass(frozen=True)
class VoteResult:
    changed: bool  # False when the user repeated the same vote
    up: int
    down: int


class Storage(Protocol):
    """The question log (also the record behind the buttons under each answer), feedback votes,
    each user's language choice and each user's dialogue context per chat."""

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgres"."""
        ...

    @property
    def schema_version(self) -> int: ...

    def close(self) -> None: ...

    def together(self) -> AbstractContextManager[None]:
        """The calls made inside it, in this thread, run in one transaction."""
        ...

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

    def rate_limit(
        self, user_id: int, limit: int, window: float, now: float | None = None
    ) -> tuple[bool, bool]:
        """(allowed, notify) for one more request of ``user_id``: at most ``limit`` per
        ``window`` seconds across every process sharing the storage; notify once per window."""
        ...

    def request_reload(self) -> int:
        """Ask every process sharing the storage to reload the index; the new generation."""
        ...

    def reload_generation(self) -> int:
        """How many reloads have been requested so far (0 when none)."""
        ...

    def ping(self) -> None:
        """Raises when the storage cannot be reached."""
        ...

    def set_dialogue(
        self, user_id: int, chat_id: int, turn: DialogueTurn, *, max_age: float
    ) -> None:
        """Remember ``turn`` as the user's context in this chat; delete contexts older than
        ``max_age`` seconds."""
        ...

    def get_dialogue(self, user_id: int, chat_id: int, *, max_age: float) -> DialogueTurn | None:
        """The user's context in this chat, if set less than ``max_age`` seconds ago."""
        ...

    def forget_dialogue(self, user_id: int, chat_id: int | None = None) -> None:
        """Forget the user's context in ``chat_id`` (every chat when None)."""
        ...

    def stats(self) -> Stats: ...

    def unanswered(self, limit: int = 10) -> list[Unanswered]:
        """The most recent abstentions, not-stated answers (what users miss in the agreement)
        and answers with more 👎 than 👍, newest first."""
        ...

    def purge(self, before: float) -> Purged:
        """Delete question texts (and their votes) logged before ``before``, a Unix time; the
        ``stats`` counts keep them."""
        ...

    def forget(self, user_id: int) -> Forgotten:
        """Delete everything stored about ``user_id``; the ``stats`` counts keep the numbers."""
        ...
