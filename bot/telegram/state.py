"""What the handlers share: the application state (retriever, storage, answer batcher) in
``application.bot_data["state"]``, and small readers of an update (who, which chat, which
language).

``/reload`` swaps ``BotState.retriever`` in one assignment, so answers in flight keep the one
they started with.

Storage calls run off the event loop, in worker threads of their own
(``await state.off_loop(state.db.vote, ...)``): one for SQLite, whose one connection is
serialised anyway, a few for PostgreSQL's connection pool; the loop never waits for a disk or
the network.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar, cast

from telegram import Update, User
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.settings import Settings
from bot.storage.base import Storage
from bot.telegram.batching import AnswerBatcher
from bot.telegram.format import RetrieverLike, resolve_language
from bot.telegram.metrics import Metrics
from bot.types import Language

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

Context = ContextTypes.DEFAULT_TYPE


RATE_WINDOW = 60.0  # seconds; settings.user_rate_limit is per this window
#: Seconds between looks at the storage's reload generation (``/reload all`` reaches every
#: replica within this).
RELOAD_POLL = 5.0


@dataclass
class BotState:
    """What the handlers share; kept in ``application.bot_data["state"]``."""

    settings: Settings
    retriever: RetrieverLike | None = None
    storage: Storage | None = None
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaded_at: float = 0.0
    metrics: Metrics = field(default_factory=Metrics)
    #: the reload generation in storage this process has caught up with
    reload_seen: int = 0
    answers: AnswerBatcher = field(default_factory=AnswerBatcher)
    storage_thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="storage")
    )

    def use_storage(self, storage: Storage, workers: int = 1) -> None:
        """Serve from ``storage`` with ``workers`` storage threads."""
        self.storage = storage
        if workers != self.storage_thread._max_workers:
            self.storage_thread.shutdown(wait=False)
            self.storage_thread = ThreadPoolExecutor(workers, thread_name_prefix="storage")

    async def off_loop(self, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``call(*args, **kwargs)`` (a storage method) in the storage thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.storage_thread, functools.partial(call, *args, **kwargs)
        )

    async def rate_limit(self, key: int) -> tuple[bool, bool]:
        """(allowed, notify) for one more request of the user (or chat) ``key``: at most
        ``BOT_USER_RATE_LIMIT`` a minute. The window is in storage, so every replica sharing
        it counts against the same limit."""
        limit = self.settings.user_rate_limit
        return await self.off_loop(self.db.rate_limit, key, limit, RATE_WINDOW)

    def serve(self, retriever: RetrieverLike) -> None:
        """Answer from ``retriever`` from now on (one assignment: in-flight answers keep theirs)."""
        self.retriever = retriever
        self.loaded_at = time.time()
        build, built_at = index_build(retriever)
        self.metrics.set_index(build, built_at)

    async def reload(self) -> RetrieverLike:
        """Load the index on disk again and serve it; the loaded one is kept when that fails
        (the error, one of ``load_errors()``, is raised). One reload at a time."""
        async with self.reload_lock:
            retriever = await asyncio.to_thread(load_retriever, self.settings, self.retriever)
            self.serve(retriever)
            return retriever

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


def load_retriever(settings: Settings, reuse: RetrieverLike | None = None) -> RetrieverLike:
    """Load knowledge, model and index (seconds; call it in a thread from async code).

    ``reuse`` is the retriever being replaced (a reload): when the index on disk was built with
    the same model as its index, its loaded model is kept rather than loaded a second time."""
    from bot.search.index import read_manifest
    from bot.search.retrieval import Retriever

    model = getattr(reuse, "model", None)
    old = getattr(getattr(reuse, "index", None), "manifest", None)
    if model is not None and old is not None:
        try:
            _, manifest = read_manifest(settings.index_dir)
        except load_errors():
            manifest = {}
        if manifest.get("model") == old.get("model"):
            return cast(RetrieverLike, Retriever.load(settings, model=model))
    return cast(RetrieverLike, Retriever.load(settings))


def index_build(retriever: RetrieverLike) -> tuple[str, str]:
    """(build folder name, build time) of the retriever's index, or ("-", "-") for a retriever
    without one (a test double)."""
    index = getattr(retriever, "index", None)
    path = getattr(index, "path", None)
    manifest = getattr(index, "manifest", None) or {}
    return (path.name if path is not None else "-", str(manifest.get("built_at", "-")))


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


async def language_of(
    state: BotState, user: User | None, text: str = "", previous: Language | None = None
) -> Language:
    """``resolve_language`` for this user: their /lang choice, else the text (``previous``: the
    language of the question it follows up), else Telegram's language_code."""
    chosen = await state.off_loop(state.db.get_language, user.id) if user is not None else None
    return resolve_language(chosen, user.language_code if user else None, text, previous)


def is_group(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type != ChatType.PRIVATE


def args_text(context: Context) -> str:
    return " ".join(context.args or []).strip()
