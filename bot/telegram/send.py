"""Outgoing messages: every send of the Telegram layer goes through here (HTML split into parts
of at most 4096 characters, the keyboard on the last part, replies in groups)."""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters, Update
from telegram.constants import ParseMode

from bot.telegram.format import split_html
from bot.telegram.state import Context, is_group

if TYPE_CHECKING:
    from telegram import Message

log = logging.getLogger(__name__)


NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


async def send_html(
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


async def reply_text(update: Update, context: Context, text: str) -> None:
    """A plain (escaped) notice to the update's chat; in groups as a reply."""
    chat = update.effective_chat
    if chat is None:
        return
    message = update.effective_message
    reply_to = message.message_id if message is not None and is_group(update) else None
    await send_html(context, chat.id, html.escape(text), reply_to=reply_to)


async def reply_html(
    update: Update, context: Context, text: str, keyboard: InlineKeyboardMarkup | None = None
) -> None:
    chat = update.effective_chat
    message = update.effective_message
    if chat is None:
        return
    reply_to = message.message_id if message is not None and is_group(update) else None
    await send_html(context, chat.id, text, keyboard, reply_to)
