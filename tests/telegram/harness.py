"""Helpers for end-to-end tests of the Telegram runtime: the real Application, run as
``contract-bot telegram`` runs it (``bot.telegram.runtime.running``), against the emulator."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from emulator import BotApiEmulator, Sent, make_user
from pydantic import SecretStr
from telegram import Update
from telegram.ext import Application

from bot.settings import Settings
from bot.telegram.app import build_application
from bot.telegram.format import RetrieverLike
from bot.telegram.runtime import Poller, WebhookServer
from bot.telegram.runtime import running as serving
from bot.telegram.send import RetryPolicy

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

ADMIN = 4242
#: The sender's retry policy with shorter waits (the same tries, deadline and logic).
FAST_RETRY = RetryPolicy(base_delay=0.05, max_delay=0.4)

_ids = itertools.count(700_000)

App = Application[Any, Any, Any, Any, Any, Any]


def new_user(language_code: str | None = "zh-hans", name: str = "User") -> dict[str, Any]:
    return make_user(next(_ids), name, language_code=language_code)


def make_settings(base: Settings, emu: BotApiEmulator, storage: Path, **changes: Any) -> Settings:
    """The session's settings (its private index) pointed at ``emu``, with ``changes``."""
    return base.model_copy(
        update={
            "telegram_token": SecretStr(emu.token),
            "telegram_api_url": emu.base_url,
            "admin_ids": frozenset({ADMIN}),
            "storage_path": storage,
            **changes,
        }
    )


@asynccontextmanager
async def bot_running(
    settings: Settings,
    retriever: RetrieverLike,
    *,
    retry: RetryPolicy = FAST_RETRY,
    **options: Any,
) -> AsyncIterator[tuple[App, Poller | WebhookServer]]:
    """The application running (short long polls, so that stopping is quick)."""
    app = build_application(settings, retriever=retriever, retry=retry)
    options.setdefault("long_poll", 1)
    async with serving(app, settings, allowed_updates=Update.ALL_TYPES, **options) as source:
        yield app, source


async def ask(
    emu: BotApiEmulator, text: str, user: dict[str, Any], n: int = 1, timeout: float = 20.0
) -> list[Sent]:
    emu.user_message(text, user=user)
    return await emu.wait_for_sent(user["id"], n=n, timeout=timeout)


def cited(sent: Sent) -> str:
    """The item id of the 📄 full-text button (the answer's top citation)."""
    for button in sent.buttons():
        data = button.get("callback_data", "")
        if data.startswith("i:"):
            return str(data.split(":")[1])
    return ""


def tracebacks(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """The log records that carry a traceback."""
    return [r for r in records if r.exc_info or r.exc_text]
