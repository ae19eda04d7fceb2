"""Application wiring that needs no Telegram: the token never reaches a log line."""

from __future__ import annotations

import logging

from bot.telegram.app import RedactToken


def test_token_is_redacted_from_messages_arguments_and_tracebacks() -> None:
    token = "123:SECRET-token"
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "url %s", (f"/bot{token}/getMe",), None
    )
    try:
        raise RuntimeError(f"failed https://api.telegram.org/bot{token}/getUpdates")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactToken(token).filter(record)
    formatted = logging.Formatter().format(record)
    assert token not in formatted and "<token>" in formatted
