"""The Telegram bot: python-telegram-bot ``Application`` with thin handlers.

Every handler parses the update, calls ``bot.answers.compose.answer`` (in a worker thread:
encoding the question is CPU-bound), formats with ``bot.answers.render`` /
``bot.telegram.format`` and replies. The model and index are loaded once in ``post_init`` (or
passed in, for tests) and kept, with the storage, in a ``BotState`` in ``application.bot_data``.
``/reload`` swaps the retriever reference in one assignment, so answers in flight keep the one
they started with.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.answers.compose import answer, item_answer
from bot.answers.texts import t
from bot.settings import Settings
from bot.storage.sqlite import Storage, StorageError
from bot.telegram.format import (
    LANGUAGE_NAMES,
    RetrieverLike,
    addressed_text,
    answer_keyboard,
    cut_question,
    example_question,
    examples_keyboard,
    item_label,
    item_title,
    lang_keyboard,
    mark_vote,
    parse_callback,
    render_html,
    resolve_language,
    split_html,
    terms_keyboard,
    toc_keyboard,
)
from bot.types import Answer, Item, Language

if TYPE_CHECKING:
    from telegram import Message

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

#: Commands in the menu (name, texts key of the description); admin commands stay out of it.
MENU = (
    ("start", "tg_cmd_start"),
    ("help", "tg_cmd_help"),
    ("clause", "tg_cmd_clause"),
    ("term", "tg_cmd_term"),
    ("complaint", "tg_cmd_complaint"),
    ("lang", "tg_cmd_lang"),
)
INLINE_RESULTS = 5
RATE_WINDOW = 60.0  # seconds; settings.user_rate_limit is per this window
SEND_RETRIES = 3  # AIORateLimiter retries after a 429 (it waits retry_after each time)
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


# --- state -------------------------------------------------------------------------------


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


def _state(context: Context) -> BotState:
    return cast(BotState, context.bot_data["state"])


def load_retriever(settings: Settings) -> RetrieverLike:
    """Load knowledge, model and index (seconds; call it in a thread from async code)."""
    from bot.search.retrieval import Retriever

    return cast(RetrieverLike, Retriever.load(settings))


def _load_errors() -> tuple[type[Exception], ...]:
    """What loading the retriever raises for a missing/stale/broken index, model or knowledge."""
    from bot.knowledge.loader import KnowledgeError
    from bot.model.cache import ModelFetchError
    from bot.search.index import IndexMismatchError

    # faiss reports unreadable index files as RuntimeError.
    return (IndexMismatchError, KnowledgeError, ModelFetchError, OSError, ValueError, RuntimeError)


# --- small helpers -----------------------------------------------------------------------


def _user_key(update: Update) -> int:
    user = update.effective_user
    if user is not None:
        return user.id
    chat = update.effective_chat
    return chat.id if chat is not None else 0


def _language(state: BotState, user: User | None, text: str = "") -> Language:
    chosen = state.db.get_language(user.id) if user is not None else None
    return resolve_language(chosen, user.language_code if user else None, text)


def _is_group(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type != ChatType.PRIVATE


async def _send_html(
    context: Context,
    chat_id: int,
    text: str,
    keyboard: InlineKeyboardMarkup | None = None,
    reply_to: int | None = None,
) -> Message | None:
    """Send HTML, split into messages of at most 4096 characters; the keyboard goes last."""
    chunks = split_html(text)
    sent = None
    for index, chunk in enumerate(chunks):
        sent = await context.bot.send_message(
            chat_id,
            chunk,
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard if index == len(chunks) - 1 else None,
            reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
            if reply_to is not None and index == 0
            else None,
            link_preview_options=NO_PREVIEW,
        )
    return sent


async def _reply_text(update: Update, context: Context, text: str) -> None:
    """A plain (escaped) notice to the update's chat; in groups as a reply."""
    chat = update.effective_chat
    if chat is None:
        return
    message = update.effective_message
    reply_to = message.message_id if message is not None and _is_group(update) else None
    await _send_html(context, chat.id, html.escape(text), reply_to=reply_to)


async def _answer_and_send(
    update: Update,
    context: Context,
    question: str,
    language: Language,
    *,
    source: str,
    chat_id: int | None = None,
    note: str = "",
) -> Answer:
    """The core: answer ``question`` in a thread, log it, send it with its keyboard."""
    state = _state(context)
    retriever = state.ready_retriever  # one reference for the whole answer, even during /reload
    result = await asyncio.to_thread(answer, question, retriever, language=language)
    answer_id = None
    if result.intent != "empty":
        answer_id = state.db.log_answer(_user_key(update), result, source=source)
    knowledge = retriever.knowledge
    text = render_html(result, knowledge)
    if note:
        text += f"\n\n<i>{html.escape(note)}</i>"
    if result.intent == "toc":
        keyboard: InlineKeyboardMarkup | None = toc_keyboard(result)
    else:
        keyboard = answer_keyboard(result, answer_id, knowledge)
    chat = update.effective_chat
    target = chat_id if chat_id is not None else (chat.id if chat else _user_key(update))
    # In groups (and for edited messages) the answer quotes the question it answers.
    message = update.effective_message if update.callback_query is None else None
    quote = message is not None and (_is_group(update) or source == "edit")
    reply_to = message.message_id if message is not None and quote else None
    await _send_html(context, target, text, keyboard, reply_to)
    return result


async def _rate_limited(update: Update, context: Context, language: Language) -> bool:
    allowed, notify = _state(context).limiter.check(_user_key(update))
    if allowed:
        return False
    log.info("rate limit reached by a user; request dropped")
    if notify:
        if update.callback_query is not None:
            await update.callback_query.answer(t("tg_rate_limited", language), show_alert=True)
        else:
            await _reply_text(update, context, t("tg_rate_limited", language))
    elif update.callback_query is not None:
        await update.callback_query.answer()
    return True


async def _ask(update: Update, context: Context, question: str, *, source: str) -> None:
    """Answer a user's free-text question (cut, rate-limited, in the user's language)."""
    state = _state(context)
    limit = state.settings.max_question_chars
    question, was_cut = cut_question(question, limit)
    language = _language(state, update.effective_user, question)
    if not question:
        await _send_help(update, context, language)
        return
    if await _rate_limited(update, context, language):
        return
    note = t("tg_cut", language, n=limit) if was_cut else ""
    await _answer_and_send(update, context, question, language, source=source, note=note)


async def _send_help(update: Update, context: Context, language: Language) -> None:
    help_answer = answer("", _state(context).ready_retriever, language=language)
    text = render_html(help_answer, _state(context).ready_retriever.knowledge)
    text += "\n\n" + html.escape(t("tg_commands", language))
    if _is_group(update):
        text += "\n\n<i>" + html.escape(t("tg_group_hint", language)) + "</i>"
    chat = update.effective_chat
    if chat is not None:
        await _send_html(context, chat.id, text)


# --- commands ----------------------------------------------------------------------------


def _args_text(context: Context) -> str:
    return " ".join(context.args or []).strip()


async def cmd_start(update: Update, context: Context) -> None:
    state = _state(context)
    language = _language(state, update.effective_user)
    text = f"<b>{html.escape(t('help.title', language))}</b>\n\n"
    if _is_group(update):
        text += f"<i>{html.escape(t('tg_group_hint', language))}</i>\n\n"
    text += html.escape(t("tg_examples_title", language))
    chat = update.effective_chat
    if chat is not None:
        await _send_html(context, chat.id, text, examples_keyboard(language))


async def cmd_help(update: Update, context: Context) -> None:
    await _send_help(update, context, _language(_state(context), update.effective_user))


async def cmd_clause(update: Update, context: Context) -> None:
    state = _state(context)
    arg = _args_text(context)
    language = _language(state, update.effective_user, arg)
    if arg:
        await _ask(update, context, f"/clause {arg}", source="command")
        return
    toc = answer("目录", state.ready_retriever, language=language)
    await _reply_html(update, context, html.escape(t("tg_toc_intro", language)), toc_keyboard(toc))


async def cmd_term(update: Update, context: Context) -> None:
    state = _state(context)
    arg = _args_text(context)
    if arg:
        await _ask(update, context, arg, source="command")
        return
    language = _language(state, update.effective_user)
    keyboard = terms_keyboard(state.ready_retriever.knowledge, language)
    await _reply_html(update, context, html.escape(t("tg_terms_intro", language)), keyboard)


async def cmd_complaint(update: Update, context: Context) -> None:
    language = _language(_state(context), update.effective_user)
    if await _rate_limited(update, context, language):
        return
    await _answer_and_send(update, context, "/complaint", language, source="command")


async def cmd_lang(update: Update, context: Context) -> None:
    language = _language(_state(context), update.effective_user)
    await _reply_html(update, context, html.escape(t("tg_lang_prompt", language)), lang_keyboard())


async def _reply_html(
    update: Update, context: Context, text: str, keyboard: InlineKeyboardMarkup | None = None
) -> None:
    chat = update.effective_chat
    message = update.effective_message
    if chat is None:
        return
    reply_to = message.message_id if message is not None and _is_group(update) else None
    await _send_html(context, chat.id, text, keyboard, reply_to)


# --- admin commands ----------------------------------------------------------------------


async def _admin(update: Update, context: Context, command: str) -> Language | None:
    """The admin's language, or None after refusing a non-admin (the attempt is logged)."""
    state = _state(context)
    user = update.effective_user
    language = _language(state, user)
    if user is not None and user.id in state.settings.admin_ids:
        return language
    who = state.db.user_hash(user.id)[:12] if user is not None else "anonymous"
    log.warning("refused /%s: user %s is not an admin", command, who)
    await _reply_text(update, context, t("tg_admin_only", language))
    return None


async def cmd_reload(update: Update, context: Context) -> None:
    """Load a rebuilt index from disk, then swap it in; answering goes on meanwhile."""
    language = await _admin(update, context, "reload")
    if language is None:
        return
    state = _state(context)
    if state.reload_lock.locked():
        await _reply_text(update, context, t("tg_reload_busy", language))
        return
    async with state.reload_lock:
        await _reply_text(update, context, t("tg_reload_started", language))
        started = time.monotonic()
        try:
            retriever = await asyncio.to_thread(load_retriever, state.settings)
        except _load_errors() as exc:
            log.error("reload failed, keeping the loaded index: %s", exc)
            await _reply_text(update, context, t("tg_reload_failed", language, error=str(exc)))
            return
        state.retriever = retriever  # one assignment: the swap is atomic for the handlers
        state.loaded_at = time.time()
        seconds = f"{time.monotonic() - started:.1f}"
        items = len(retriever.knowledge.items)
        log.info("reloaded: %d items in %s s", items, seconds)
        await _reply_text(
            update, context, t("tg_reload_done", language, items=items, seconds=seconds)
        )


async def cmd_stats(update: Update, context: Context) -> None:
    language = await _admin(update, context, "stats")
    if language is None:
        return
    stats = _state(context).db.stats()
    languages = ", ".join(f"{k} {v}" for k, v in stats.by_language.items()) or "-"
    text = t(
        "tg_stats",
        language,
        questions=stats.questions,
        answered=stats.answered,
        abstained=stats.abstained,
        users=stats.users,
        up=stats.votes_up,
        down=stats.votes_down,
        languages=languages,
    )
    await _reply_text(update, context, text)


async def cmd_unanswered(update: Update, context: Context) -> None:
    language = await _admin(update, context, "unanswered")
    if language is None:
        return
    arg = _args_text(context)
    limit = int(arg) if arg.isdigit() and 0 < int(arg) <= 50 else 10
    rows = _state(context).db.unanswered(limit)
    if not rows:
        await _reply_text(update, context, t("tg_unanswered_empty", language))
        return
    lines = [f"<b>{html.escape(t('tg_unanswered_title', language))}</b>"]
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.created))
        reason = (
            t("tg_unanswered_abstained", language)
            if row.reason == "abstained"
            else t("tg_unanswered_downvoted", language, n=row.votes_down)
        )
        cited = f" → {', '.join(row.citations[:3])}" if row.citations else ""
        lines.append(
            f"• {html.escape(row.question)} <i>({html.escape(reason)}, {row.language}, "
            f"{when}{html.escape(cited)})</i>"
        )
    await _reply_html(update, context, "\n".join(lines))


# --- messages ----------------------------------------------------------------------------


async def on_text(update: Update, context: Context) -> None:
    """Free text (new or edited). In groups only when the bot is mentioned or replied to."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    question: str | None = message.text
    if _is_group(update):
        bot = context.bot
        question = addressed_text(message.text, message.entities, bot.username, bot.id)
        if question is None and _replies_to_bot(message, bot.id):
            question = message.text
        if question is None:
            return  # other chatter in the group
    source = "edit" if update.edited_message is not None else "message"
    await _ask(update, context, question or "", source=source)


def _replies_to_bot(message: Message, bot_id: int) -> bool:
    replied = message.reply_to_message
    return replied is not None and replied.from_user is not None and replied.from_user.id == bot_id


async def on_unknown_command(update: Update, context: Context) -> None:
    """An unknown /command: help in private chats; silence in groups (it may be another bot's)."""
    if not _is_group(update):
        await cmd_help(update, context)


async def on_other(update: Update, context: Context) -> None:
    """Stickers, photos, voice, locations, ...: a short note (in groups only when replied to)."""
    message = update.effective_message
    if message is None:
        return
    if _is_group(update) and not _replies_to_bot(message, context.bot.id):
        return
    language = _language(_state(context), update.effective_user)
    await _reply_text(update, context, t("tg_non_text", language))


# --- buttons -----------------------------------------------------------------------------


async def on_callback(update: Update, context: Context) -> None:
    """Every button press is answered (the spinner stops), also for expired buttons."""
    query = update.callback_query
    if query is None:
        return
    state = _state(context)
    user = query.from_user
    chosen = state.db.get_language(user.id)
    fallback = resolve_language(chosen, user.language_code)
    data = parse_callback(query.data if isinstance(query.data, str) else None)
    knowledge = state.ready_retriever.knowledge
    if data is None:
        await query.answer(t("tg_expired", fallback), show_alert=True)
        return
    chat_id = query.message.chat.id if query.message is not None else user.id

    if data.kind == "vote":
        record = state.db.get_answer(data.arg)
        result = state.db.vote(data.arg, user.id, data.vote) if record is not None else None
        if record is None or result is None:
            await query.answer(t("tg_expired", fallback), show_alert=True)
            return
        language = chosen or record.language
        key = "tg_vote_same" if not result.changed else "tg_vote_thanks"
        await query.answer(t(key, language))
        message = query.message
        if result.changed and message is not None and not _is_group(update):
            markup = getattr(message, "reply_markup", None)
            try:
                await query.edit_message_reply_markup(mark_vote(markup, data.vote))
            except BadRequest as exc:  # e.g. "message is not modified", message too old
                log.info("could not mark the vote on the message: %s", exc)
        return

    if data.kind == "lang":
        language = cast(Language, data.language)
        state.db.set_language(user.id, language)
        await query.answer(t("tg_lang_set", language))
        if query.message is not None:
            try:
                await query.edit_message_text(html.escape(t("tg_lang_set", language)))
            except BadRequest as exc:
                log.info("could not edit the /lang message: %s", exc)
        return

    language = chosen or data.language or fallback
    if data.kind == "item":
        item = knowledge.get(data.arg)
        if item is None:
            await query.answer(t("tg_expired", language), show_alert=True)
            return
        await query.answer()
        text = render_html(item_answer(item, knowledge, language), knowledge)
        await _send_html(context, chat_id, text)
        return

    question = example_question(data.arg, language) if data.kind == "example" else data.arg
    if question is None or (data.kind == "follow" and knowledge.get(data.arg) is None):
        await query.answer(t("tg_expired", language), show_alert=True)
        return
    if await _rate_limited(update, context, language):
        return
    await query.answer()
    await _answer_and_send(update, context, question, language, source="button", chat_id=chat_id)


# --- inline mode -------------------------------------------------------------------------


def _inline_items(retriever: RetrieverLike, query: str) -> list[Item]:
    """Items for ``@bot <query>``: an explicit reference first, then search hits."""
    from bot.search.references import parse_reference

    knowledge = retriever.knowledge
    ids: list[str] = []
    reference = parse_reference(query, knowledge)
    if reference is not None:
        ids.extend(reference.ids)
        for item_id in reference.ids:  # then what the referenced items link to
            linked = knowledge.get(item_id)
            if linked is not None:
                ids.extend(link.to for link in linked.links)
    retrieval = retriever.search(query, k=INLINE_RESULTS)
    if not retrieval.abstain:
        ids.extend(hit.item_id for hit in retrieval.hits)
    items = [item for i in dict.fromkeys(ids) if (item := knowledge.get(i)) is not None]
    return items[:INLINE_RESULTS]


async def on_inline(update: Update, context: Context) -> None:
    query = update.inline_query
    if query is None:
        return
    state = _state(context)
    text, _ = cut_question(query.query, state.settings.max_question_chars)
    if not text or not state.limiter.check(query.from_user.id)[0]:
        await query.answer([], cache_time=5, is_personal=True)
        return
    language = _language(state, query.from_user, text)
    retriever = state.ready_retriever
    items = await asyncio.to_thread(_inline_items, retriever, text)
    knowledge = retriever.knowledge
    results = []
    for item in items:
        body = render_html(item_answer(item, knowledge, language), knowledge)
        label = item_label(item, language)
        snippet = knowledge.fill(item.id, "en") if language == "en" else item.text
        results.append(
            InlineQueryResultArticle(
                id=item.id,
                title=f"{label} {item_title(item, language)}"[:200],
                description=" ".join(snippet.split())[:120],
                input_message_content=InputTextMessageContent(
                    split_html(body)[0], parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
                ),
            )
        )
    await query.answer(results, cache_time=30, is_personal=True)


# --- errors ------------------------------------------------------------------------------


async def on_error(update: object, context: Context) -> None:
    """The one error handler: log (with traceback), tell the user, keep running."""
    error = context.error
    if isinstance(error, Forbidden):  # the user blocked the bot, or it left the group
        log.info("Telegram refused a message: %s", error)
        return
    if isinstance(error, NetworkError) and not isinstance(error, BadRequest):
        # Includes TimedOut and Telegram 5xx: transient, PTB retries polling by itself.
        log.warning("network problem talking to Telegram (will retry): %s", error)
        return
    log.error("error while handling an update", exc_info=error)
    if not isinstance(update, Update):
        return
    state = context.bot_data.get("state")
    language: Language = "zh-Hans"
    if isinstance(state, BotState) and state.storage is not None:
        language = _language(state, update.effective_user)
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(t("tg_error", language), show_alert=True)
            return
        except TelegramError:  # already answered before the error: say it in the chat
            pass
    if update.effective_chat is not None:
        try:
            await context.bot.send_message(update.effective_chat.id, t("tg_error", language))
        except TelegramError as exc:
            log.warning("could not tell the user about the error: %s", exc)


# --- the application ---------------------------------------------------------------------


async def _set_commands(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """The command menu: English by default, Chinese for users whose Telegram is in Chinese."""
    bot = application.bot
    for language, code in (("en", None), ("zh-Hans", "zh")):
        commands = [BotCommand(name, t(key, cast(Language, language))) for name, key in MENU]
        try:
            await bot.set_my_commands(commands, language_code=code)
        except TelegramError as exc:  # the menu is a convenience; the bot works without it
            log.warning("could not set the command menu (%s): %s", code or "default", exc)


async def _post_init(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    state = cast(BotState, application.bot_data["state"])
    if state.retriever is None:
        started = time.monotonic()
        state.retriever = await asyncio.to_thread(load_retriever, state.settings)
        log.info("model and index loaded in %.1f s", time.monotonic() - started)
    state.loaded_at = time.time()
    if state.storage is None:
        state.storage = Storage(state.settings.storage_path)
    await _set_commands(application)
    log.info("bot @%s ready", application.bot.username)


async def _post_shutdown(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    state = cast(BotState, application.bot_data["state"])
    if state.storage is not None:
        state.storage.close()
        state.storage = None


def build_application(
    settings: Settings, retriever: RetrieverLike | None = None
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The configured Application; model/index/storage are loaded in its ``post_init``.

    Started by ``run_polling``/``run_webhook`` that happens by itself; when starting it by hand
    (tests), call ``await app.post_init(app)`` after ``initialize()``.
    """
    if settings.telegram_token is None or not settings.telegram_token.get_secret_value():
        raise ValueError("BOT_TELEGRAM_TOKEN is not set; get a token from @BotFather")
    application = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_api_url)
        .rate_limiter(AIORateLimiter(max_retries=SEND_RETRIES))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    application.bot_data["state"] = BotState(
        settings=settings, retriever=retriever, limiter=UserRateLimiter(settings.user_rate_limit)
    )
    messages = filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE
    application.add_handlers(
        [
            CommandHandler("start", cmd_start),
            CommandHandler("help", cmd_help),
            CommandHandler("clause", cmd_clause),
            CommandHandler("term", cmd_term),
            CommandHandler("complaint", cmd_complaint),
            CommandHandler("lang", cmd_lang),
            # block=False: loading takes seconds and other updates are answered meanwhile
            CommandHandler("reload", cmd_reload, block=False),
            CommandHandler("stats", cmd_stats),
            CommandHandler("unanswered", cmd_unanswered),
            MessageHandler(messages & filters.TEXT & ~filters.COMMAND, on_text),
            MessageHandler(messages & filters.COMMAND, on_unknown_command),
            MessageHandler(
                filters.UpdateType.MESSAGE & ~filters.TEXT & ~filters.StatusUpdate.ALL, on_other
            ),
            CallbackQueryHandler(on_callback),
            InlineQueryHandler(on_inline),
        ]
    )
    application.add_error_handler(on_error)
    return application


class RedactToken(logging.Filter):
    """Replaces the bot token in every log line (messages, arguments and tracebacks)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<token>"), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.token in record.exc_text:
            record.exc_text = record.exc_text.replace(self.token, "<token>")
        return True


def install_token_redaction(token: str) -> None:
    """Add ``RedactToken`` to every handler of the root logger (handlers see all records)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    for handler in root.handlers:
        if not any(isinstance(f, RedactToken) for f in handler.filters):
            handler.addFilter(RedactToken(token))


def _host(settings: Settings) -> str:
    return urlparse(settings.telegram_api_url).netloc


def run(settings: Settings) -> int:
    """``contract-bot telegram``: long polling, or a webhook server when BOT_WEBHOOK_URL is set.

    Returns 0 after SIGINT/SIGTERM, 1 when start-up fails (bad token, missing index, ...),
    2 without a token.
    """
    if settings.telegram_token is None or not settings.telegram_token.get_secret_value():
        print("BOT_TELEGRAM_TOKEN is not set; get a token from @BotFather.", file=sys.stderr)
        return 2
    install_token_redaction(settings.telegram_token.get_secret_value())
    # httpx logs every request URL at INFO, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    application = build_application(settings)
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    try:
        if settings.webhook_url:
            secret = (
                settings.webhook_secret.get_secret_value()
                if settings.webhook_secret is not None
                else secrets.token_urlsafe(32)  # unguessable even if the operator set none
            )
            path = urlparse(settings.webhook_url).path.lstrip("/")
            log.info(
                "webhook mode: listening on %s:%d/%s",
                settings.webhook_listen,
                settings.webhook_port,
                path,
            )
            application.run_webhook(
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                url_path=path,
                webhook_url=settings.webhook_url,
                secret_token=secret,
                allowed_updates=Update.ALL_TYPES,
                stop_signals=stop_signals,
            )
        else:
            log.info("long polling %s", _host(settings))
            application.run_polling(allowed_updates=Update.ALL_TYPES, stop_signals=stop_signals)
    except InvalidToken:
        log.error("Telegram rejected the bot token: check BOT_TELEGRAM_TOKEN (from @BotFather)")
        return 1
    except (*_load_errors(), StorageError) as exc:  # type: ignore[misc]
        log.error("could not start the bot: %s", exc)
        return 1
    except TelegramError as exc:  # e.g. the Bot API server is unreachable at start-up
        log.error("could not reach the Bot API at %s: %s", _host(settings), exc)
        return 1
    log.info("bot stopped")
    return 0


__all__ = ["LANGUAGE_NAMES", "BotState", "build_application", "run"]
