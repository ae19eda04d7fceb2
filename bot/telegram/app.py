"""Wiring of the Telegram bot: the python-telegram-bot ``Application``, its handlers, start-up
and shutdown, polling or webhook, and the token kept out of every log line.

The model and index are loaded once in ``post_init`` (or passed in, for tests) and kept, with the
storage, in a ``BotState`` in ``application.bot_data`` (``bot.telegram.state``); the handlers live
in ``bot.telegram.handlers`` and ``bot.telegram.admin``.
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
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.answers.texts import t
from bot.settings import Settings
from bot.storage.backends import open_storage
from bot.storage.base import StorageError
from bot.telegram.admin import cmd_reload, cmd_stats, cmd_unanswered
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
    on_other,
    on_text,
    on_unknown_command,
)
from bot.telegram.state import BotState, UserRateLimiter, load_errors, load_retriever
from bot.types import Language

log = logging.getLogger(__name__)


MENU = (
    ("start", "tg_cmd_start"),
    ("help", "tg_cmd_help"),
    ("clause", "tg_cmd_clause"),
    ("term", "tg_cmd_term"),
    ("complaint", "tg_cmd_complaint"),
    ("gaps", "tg_cmd_gaps"),
    ("lang", "tg_cmd_lang"),
)


SEND_RETRIES = 3  # AIORateLimiter retries after a 429 (it waits retry_after each time)


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
        state.storage = open_storage(state.settings)
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
            CommandHandler("gaps", cmd_gaps),
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
    except (*load_errors(), StorageError) as exc:  # type: ignore[misc]
        log.error("could not start the bot: %s", exc)
        return 1
    except TelegramError as exc:  # e.g. the Bot API server is unreachable at start-up
        log.error("could not reach the Bot API at %s: %s", _host(settings), exc)
        return 1
    log.info("bot stopped")
    return 0
