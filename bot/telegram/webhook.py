"""``contract-bot webhook set | delete | info``: register the webhook once for all replicas.

Replicas behind a load balancer run with ``BOT_WEBHOOK_REGISTER=false`` and never call
``setWebhook`` themselves (N replicas would each register, racing); this command does it once,
with the same URL and secret token every replica checks.
"""

from __future__ import annotations

import asyncio
import sys

from telegram import Bot, Update
from telegram.error import TelegramError

from bot.settings import Settings


def webhook_secret(settings: Settings) -> str | None:
    return settings.webhook_secret.get_secret_value() if settings.webhook_secret else None


async def _webhook(settings: Settings, action: str) -> str:
    assert settings.telegram_token is not None
    bot = Bot(settings.telegram_token.get_secret_value(), base_url=settings.telegram_api_url)
    async with bot:
        if action == "set":
            await bot.set_webhook(
                url=settings.webhook_url or "",
                secret_token=webhook_secret(settings),
                allowed_updates=Update.ALL_TYPES,
            )
            return f"webhook set: {settings.webhook_url}"
        if action == "delete":
            await bot.delete_webhook()
            return "webhook deleted: the bot can be run with long polling again"
        info = await bot.get_webhook_info()
        error = f"; last error: {info.last_error_message}" if info.last_error_message else ""
        return (
            f"webhook: {info.url or '(none: long polling)'}; "
            f"pending updates: {info.pending_update_count}{error}"
        )


def webhook_command(settings: Settings, action: str) -> int:
    """Exit status 0 on success; 2 when a setting is missing; 1 when Telegram refuses."""
    if settings.telegram_token is None or not settings.telegram_token.get_secret_value():
        print("BOT_TELEGRAM_TOKEN is not set; get a token from @BotFather.", file=sys.stderr)
        return 2
    if action == "set" and not settings.webhook_url:
        print("BOT_WEBHOOK_URL is not set: the public HTTPS URL of the webhook.", file=sys.stderr)
        return 2
    if action == "set" and webhook_secret(settings) is None:
        print(
            "BOT_WEBHOOK_SECRET is not set: every replica must check the same secret token.",
            file=sys.stderr,
        )
        return 2
    try:
        print(asyncio.run(_webhook(settings, action)))
    except TelegramError as exc:
        print(f"Telegram refused: {exc}", file=sys.stderr)
        return 1
    return 0
