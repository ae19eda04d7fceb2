"""The Telegram side of a conversation: the dialogue context per user and chat (in storage, so
it outlives a restart and is shared by several bot processes), the typing indicator while an
answer takes more than a moment, albums, and messages from other bots.

The follow-up logic itself is ``bot.answers.dialogue`` (pure, tested on hand-made inputs); this
module only loads and stores its context around it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar, cast

from telegram import Update
from telegram.constants import ChatAction, ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.answers.dialogue import Reply, answer_turn
from bot.storage.base import Storage
from bot.telegram.format import RetrieverLike
from bot.telegram.state import RATE_WINDOW, BotState, Context, user_key
from bot.types import DialogueTurn, Language

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Questions typed by the user are read in context; buttons and commands start afresh (they
#: name what they ask for) but still become the context of what follows.
FOLLOW_UP_SOURCES = frozenset({"message"})
#: An answer not ready after this long gets the typing indicator first (seconds). Nearly every
#: answer is ready well before (p50 15 ms, README "Benchmark"); a chat action is one more
#: request through the rate limiter, which counts it against a group's 20 messages a minute.
TYPING_AFTER = 0.3
#: How long an album's items are collected before it gets its one reply (seconds): Telegram
#: delivers the photos of an album as separate messages within a fraction of a second.
ALBUM_WAIT = 0.8
#: An album already answered is remembered this long, so stragglers stay silent (seconds).
ALBUM_MEMORY = 120.0


# --- dialogue context ----------------------------------------------------------------------


def _chat_id(update: Update) -> int:
    chat = update.effective_chat
    return chat.id if chat is not None else user_key(update)


@dataclass(frozen=True)
class Asking:
    """What storage says before a question is answered: its context, the user's /lang choice,
    and the per-user limit's (allowed, notify), None when the question is not counted."""

    dialogue: DialogueTurn | None
    chosen: Language | None
    limited: tuple[bool, bool] | None


def _ask_reads(
    db: Storage,
    user_id: int | None,
    key: int,
    chat_id: int,
    *,
    dialogue_timeout: float | None,
    limit: tuple[int, float] | None,
) -> Asking:
    with db.together():  # one transaction: on PostgreSQL, a third of the round trips
        dialogue = (
            db.get_dialogue(key, chat_id, max_age=dialogue_timeout)
            if dialogue_timeout is not None and dialogue_timeout > 0
            else None
        )
        chosen = db.get_language(user_id) if user_id is not None else None
        limited = db.rate_limit(key, *limit) if limit is not None else None
    return Asking(dialogue, chosen, limited)


async def before_question(
    state: BotState, update: Update, *, follow_up: bool, counted: bool
) -> Asking:
    """The user's live context in this chat (when ``follow_up``; None when none, expired or
    switched off), their /lang choice and, when ``counted``, ``state.rate_limit``'s verdict,
    in one call to the storage thread (see ``record_reply``)."""
    user = update.effective_user
    return await state.off_loop(
        _ask_reads,
        state.db,
        user.id if user is not None else None,
        user_key(update),
        _chat_id(update),
        dialogue_timeout=state.settings.dialogue_timeout if follow_up else None,
        limit=(state.settings.user_rate_limit, RATE_WINDOW) if counted else None,
    )


async def forget_dialogue(state: BotState, update: Update) -> None:
    """/start and /lang begin afresh."""
    await state.off_loop(state.db.forget_dialogue, user_key(update), _chat_id(update))


async def converse(
    state: BotState,
    retriever: RetrieverLike,
    question: str,
    language: Language,
    context: DialogueTurn | None,
) -> Reply:
    """Answer ``question`` after ``context`` (its search batched with the other questions'
    by ``state.answers``); the reply's turn is what the next question may follow up
    (``record_reply`` stores it)."""
    now = time.time()
    return cast(
        Reply,
        await state.answers.run(
            question,
            retriever,
            lambda view: answer_turn(question, view, context, language=language, now=now),
        ),
    )


def _record(
    db: Storage,
    user_id: int,
    chat_id: int,
    reply: Reply,
    *,
    source: str,
    dialogue_timeout: float,
) -> str | None:
    """What one answered question leaves in storage: its context for a follow-up, and its log
    row (the answer id the buttons carry; None for an empty answer, which is not logged)."""
    with db.together():
        if reply.turn is not None and dialogue_timeout > 0:
            db.set_dialogue(user_id, chat_id, reply.turn, max_age=dialogue_timeout)
        if reply.answer.intent == "empty":
            return None
        return db.log_answer(user_id, reply.answer, source=source)


async def record_reply(state: BotState, update: Update, reply: Reply, *, source: str) -> str | None:
    """``_record`` in one call to the storage thread: each hop to it costs the event loop a
    thread wake-up and a loop wake-up back, more than the SQLite writes themselves (README
    "Where a question's CPU goes")."""
    return await state.off_loop(
        _record,
        state.db,
        user_key(update),
        _chat_id(update),
        reply,
        source=source,
        dialogue_timeout=state.settings.dialogue_timeout,
    )


# --- typing ----------------------------------------------------------------------------------


async def with_typing(
    context: Context, chat_id: int, work: Awaitable[T], *, after: float = TYPING_AFTER
) -> T:
    """Await ``work``; if it is not done after ``after`` seconds, show "typing…" meanwhile.

    The chat action is awaited before the answer is sent: one still in flight when the answer
    arrives would show "typing…" again under it.
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=after)
    if not done:
        try:
            await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError as exc:  # a missing indicator is no reason to lose the answer
            log.info("could not send the typing action: %s", exc)
    return await task


# --- other bots ----------------------------------------------------------------------------


async def ignore_other_bots(update: Update, context: Context) -> None:
    """Drop group messages sent by other bots before any handler sees them (no bot-to-bot
    loops). Anonymous group admins post as @GroupAnonymousBot with the group as sender_chat:
    those are people and stay."""
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None or chat.type == ChatType.PRIVATE:
        return
    sender = message.from_user
    if (
        sender is not None
        and sender.is_bot
        and sender.id != context.bot.id
        and message.sender_chat is None
    ):
        raise ApplicationHandlerStop


# --- albums ----------------------------------------------------------------------------------


@dataclass
class Albums:
    """Albums (``media_group_id``) being collected, and those already answered."""

    pending: dict[str, list[Update]] = field(default_factory=dict)
    answered: dict[str, float] = field(default_factory=dict)

    def add(self, group: str, update: Update, now: float | None = None) -> bool:
        """Collect an album item; True for the album's first (the caller schedules its one
        reply), False for later items and for albums already answered."""
        now = time.monotonic() if now is None else now
        for key, at in list(self.answered.items()):
            if now - at > ALBUM_MEMORY:
                del self.answered[key]
        if group in self.answered:
            return False
        if group not in self.pending:
            self.pending[group] = [update]
            return True
        self.pending[group].append(update)
        return False

    def take(self, group: str, now: float | None = None) -> list[Update]:
        """The album's items in the order they came; from now on it counts as answered."""
        self.answered[group] = time.monotonic() if now is None else now
        return self.pending.pop(group, [])


def albums_of(context: Context) -> Albums:
    albums = context.bot_data.get("albums")
    if not isinstance(albums, Albums):
        albums = context.bot_data["albums"] = Albums()
    return albums


def album_reply_to(updates: list[Update]) -> Update | None:
    """The album item to answer: the first with a caption, else the first."""
    with_caption = [
        u for u in updates if u.effective_message and (u.effective_message.caption or "").strip()
    ]
    candidates = with_caption or updates
    return candidates[0] if candidates else None


async def after_album(
    context: Context, group: str, reply: Callable[[Update], Awaitable[None]]
) -> None:
    """Wait for the rest of the album, then give it its one reply."""
    await asyncio.sleep(ALBUM_WAIT)
    update = album_reply_to(albums_of(context).take(group))
    if update is not None:
        await reply(update)
