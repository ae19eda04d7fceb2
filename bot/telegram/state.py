"""What the handlers share: the application state (retriever, storage, per-user limiter) in
``application.bot_data["state"]``, and small readers of an update (who, which chat, which
language).

``/reload`` swaps ``BotState.retriever`` in one assignment, so answers in flight keep the one
they started with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import cast

from telegram import Update, User
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.settings import Settings
from bot.storage.base import Storage
from bot.telegram.format import RetrieverLike, resolve_language
from bot.types import Language

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE


RATE_WINDOW = 60.0  # seconds; settings.user_rate_limit is per this window


class UserRateLimiter:
    """At most ``limit`` requests per user per ``window`` seconds (a sliding window).

    ``check`` says whether to serve the request and, when not, whether to send the notice
    (once per window, so a flood does not get a flood of notices back).
    """

    def __init__(self, limit: int, window: float = RATE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[int, deque[float]] = {}
        self._noticed: dict[int, float] = {}

    def check(self, key: int, now: float | None = None) -> tuple[bool, bool]:
        now = time.monotonic() if now is None else now
        times = self._seen.setdefault(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            return True, False
        noticed = self._noticed.get(key)
        notify = noticed is None or now - noticed >= self.window
        if notify:
            self._noticed[key] = now
        return False, notify


@dataclass
class BotState:
    """What the handlers share; kept in ``application.bot_data["state"]``."""

    settings: Settings
    retriever: RetrieverLike | None = None
    storage: Storage | None = None
    limiter: UserRateLimiter = field(default_factory=lambda: UserRateLimiter(20))
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaded_at: float = 0.0

    @property
    def ready_retriever(self) -> RetrieverLike:
        if self.retriever is None:
            raise RuntimeError("the retriever is not loaded yet (post_init has not run)")
        return self.retriever

    @property
    def db(self) -> Storage:
        if self.storage is None:
            raise RuntimeError("the storage is not open yet (post_init has not run)")
        return self.storage


def state_of(context: Context) -> BotState:
    return cast(BotState, context.bot_data["state"])


def load_retriever(settings: Settings) -> RetrieverLike:
    """Load knowledge, model and index (seconds; call it in a thread from async code)."""
    from bot.search.retrieval import Retriever

    return cast(RetrieverLike, Retriever.load(settings))


def load_errors() -> tuple[type[Exception], ...]:
    """What loading the retriever raises for a missing/stale/broken index, model or knowledge."""
    from bot.knowledge.loader import KnowledgeError
    from bot.model.cache import ModelFetchError
    from bot.search.index import IndexMismatchError

    # faiss reports unreadable index files as RuntimeError.
    return (IndexMismatchError, KnowledgeError, ModelFetchError, OSError, ValueError, RuntimeError)


def user_key(update: Update) -> int:
    user = update.effective_user
    if user is not None:
        return user.id
    chat = update.effective_chat
    return chat.id if chat is not None else 0


def language_of(
    state: BotState, user: User | None, text: str = "", previous: Language | None = None
) -> Language:
    """``resolve_language`` for this user: their /lang choice, else the text (``previous``: the
    language of the question it follows up), else Telegram's language_code."""
    chosen = state.db.get_language(user.id) if user is not None else None
    return resolve_language(chosen, user.language_code if user else None, text, previous)


def is_group(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type != ChatType.PRIVATE


def args_text(context: Context) -> str:
    return " ".join(context.args or []).strip()
