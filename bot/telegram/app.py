"""Wiring of the Telegram bot: the python-telegram-bot ``Application``, its handlers, start-up
and shutdown, and the token kept out of every log line.

The model and index are loaded once in ``post_init`` (or passed in, for tests) and kept, with the
storage, in a ``BotState`` in ``application.bot_data`` (``bot.telegram.state``); the handlers live
in ``bot.telegram.handlers``, ``bot.telegram.admin`` and ``bot.telegram.privacy``. Every request
goes through ``bot.telegram.send.ReliableSender`` (throttling and retries); updates are fetched
and handled by ``bot.telegram.runtime`` (polling or webhook, order per chat, graceful stop).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import sys
import time
from typing import Any, cast
from urllib.parse import urlparse

from telegram import BotCommand, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.answers.texts import t
from bot.settings import Settings
from bot.storage.backends import open_storage
from bot.storage.base import StorageError
from bot.telegram.admin import cmd_reload, cmd_stats, cmd_unanswered
from bot.telegram.conversation import ignore_other_bots
from bot.telegram.format import RetrieverLike
from bot.telegram.handlers import (
    cmd_clause,
    cmd_complaint,
    cmd_gaps,
    cmd_help,
    cmd_lang,
    cmd_start,
    cmd_term,
    on_callback,
    on_error,
    on_inline,
    on_media,
    on_other,
    on_text,
    on_unknown_command,
)
from bot.telegram.privacy import cmd_forget, cmd_privacy
from bot.telegram.request import AiohttpRequest
from bot.telegram.runtime import serve_until_signal
from bot.telegram.send import ReliableSender, RetryPolicy
from bot.telegram.state import BotState, load_errors, load_retriever
from bot.types import Language

log = logging.getLogger(__name__)

#: Storage threads for a PostgreSQL backend (its pool holds up to 8 connections).
STORAGE_WORKERS = 4
#: HTTP connections for the Bot API requests (python-telegram-bot's default is 256). With httpx,
#: httpcore looked at every pooled connection before each request, so with the send limiter off
#: a pool grown to dozens of connections cost 15 % of the event loop's time at 100 questions/s;
#: the requests now go over aiohttp (bot.telegram.request), and 8 still keep well ahead of
#: Telegram's 30 messages/s even at 100 ms a round trip.
SEND_CONNECTIONS = 8
#: Seconds a request may wait for a free connection (then it fails as a timeout, and is retried):
#: waiting is only queueing behind the other sends, so it is generous.
POOL_TIMEOUT = 30.0


MENU = (
    ("start", "tg_cmd_start"),
    ("help", "tg_cmd_help"),
    ("clause", "tg_cmd_clause"),
    ("term", "tg_cmd_term"),
    ("complaint", "tg_cmd_complaint"),
    ("gaps", "tg_cmd_gaps"),
    ("lang", "tg_cmd_lang"),
    ("privacy", "tg_cmd_privacy"),
    ("forget", "tg_cmd_forget"),
)


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
        retriever = await asyncio.to_thread(load_retriever, state.settings)
        log.info("model and index loaded in %.1f s", time.monotonic() - started)
    else:
        retriever = state.retriever
    state.serve(retriever)
    if state.storage is None:
        opened = await asyncio.to_thread(open_storage, state.settings)
        # PostgreSQL's pool serves several threads; SQLite's one connection, one.
        state.use_storage(opened, STORAGE_WORKERS if opened.dialect == "postgres" else 1)
    storage = state.db
    state.reload_seen = await state.off_loop(storage.reload_generation)
    sender = application.bot.rate_limiter
    if isinstance(sender, ReliableSender):  # private chats are named by the user-id hash
        sender.observe = state.metrics.api_failure
        sender.chat_label = lambda chat: (
            f"user {storage.user_hash(chat)[:12]}"
            if isinstance(chat, int) and chat > 0
            else f"chat {chat}"
        )
    await _set_commands(application)
    log.info("bot @%s ready", application.bot.username)


async def _post_shutdown(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    state = cast(BotState, application.bot_data["state"])
    if state.storage is not None:
        state.storage.close()
        state.storage = None
    state.storage_thread.shutdown(wait=False)


def build_application(
    settings: Settings,
    retriever: RetrieverLike | None = None,
    *,
    retry: RetryPolicy | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The configured Application; model/index/storage are loaded in its ``post_init``.

    Run it with ``bot.telegram.runtime.running`` (which calls ``post_init``); ``retry`` is how
    hard the sender tries a request Telegram did not take.
    """
    if settings.telegram_token is None or not settings.telegram_token.get_secret_value():
        raise ValueError("BOT_TELEGRAM_TOKEN is not set; get a token from @BotFather")
    sender = ReliableSender(retry, overall_rate=settings.send_rate_limit)
    application = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_api_url)
        .rate_limiter(sender)
        .request(AiohttpRequest(SEND_CONNECTIONS, pool_timeout=POOL_TIMEOUT))
        .get_updates_request(AiohttpRequest(1))  # unused: bot.telegram.runtime polls
        .updater(None)  # bot.telegram.runtime fetches the updates
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    application.bot_data["state"] = BotState(settings=settings, retriever=retriever)
    messages = filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE
    application.add_handlers(
        [
            CommandHandler("start", cmd_start),
            CommandHandler("help", cmd_help),
            CommandHandler("clause", cmd_clause),
            CommandHandler("term", cmd_term),
            CommandHandler("complaint", cmd_complaint),
            CommandHandler("gaps", cmd_gaps),
            CommandHandler("lang", cmd_lang),
            CommandHandler("privacy", cmd_privacy),
            CommandHandler("forget", cmd_forget),
            # block=False: loading takes seconds and other updates are answered meanwhile
            CommandHandler("reload", cmd_reload, block=False),
            CommandHandler("stats", cmd_stats),
            CommandHandler("unanswered", cmd_unanswered),
            MessageHandler(messages & filters.TEXT & ~filters.COMMAND, on_text),
            MessageHandler(messages & filters.COMMAND, on_unknown_command),
            MessageHandler(
                messages & (filters.PHOTO | filters.VIDEO | filters.Document.ALL), on_media
            ),
            MessageHandler(
                filters.UpdateType.MESSAGE & ~filters.TEXT & ~filters.StatusUpdate.ALL, on_other
            ),
            CallbackQueryHandler(on_callback),
            InlineQueryHandler(on_inline),
        ]
    )
    # Before every handler: other bots' messages in groups are dropped (no bot-to-bot loops).
    application.add_handler(TypeHandler(Update, ignore_other_bots), group=-1)
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
    if settings.webhook_url and not settings.webhook_register and settings.webhook_secret is None:
        print(
            "BOT_WEBHOOK_REGISTER=false (a replica behind a load balancer) needs"
            " BOT_WEBHOOK_SECRET:"
            " the secret token every replica checks and `contract-bot webhook set` registers.",
            file=sys.stderr,
        )
        return 2
    application = build_application(settings)
    secret = None
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
    else:
        log.info("long polling %s", _host(settings))
    try:
        asyncio.run(
            serve_until_signal(
                application,
                settings,
                allowed_updates=Update.ALL_TYPES,
                webhook_secret=secret,
                signals=(signal.SIGINT, signal.SIGTERM),
                reload_signal=signal.SIGHUP,
            )
        )
    except InvalidToken:
        log.error("Telegram rejected the bot token: check BOT_TELEGRAM_TOKEN (from @BotFather)")
        return 1
    except (*load_errors(), StorageError) as exc:  # type: ignore[misc]
        log.error("could not start the bot: %s", exc)
        return 1
    except TelegramError as exc:  # e.g. the Bot API server is unreachable at start-up
        log.error("could not reach the Bot API at %s: %s", _host(settings), exc)
        return 1
    log.info("bot stopped")
    return 0
