"""Admin commands (``BOT_ADMIN_IDS``): ``/reload``, ``/stats``, ``/unanswered``; others get a polite
refusal and the attempt is logged."""

from __future__ import annotations

import asyncio
import html
import logging
import time

from telegram import Update

from bot.answers.texts import t
from bot.telegram.send import reply_html, reply_text
from bot.telegram.state import (
    Context,
    args_text,
    language_of,
    load_errors,
    load_retriever,
    state_of,
)
from bot.types import Language

log = logging.getLogger(__name__)


async def _admin(update: Update, context: Context, command: str) -> Language | None:
    """The admin's language, or None after refusing a non-admin (the attempt is logged)."""
    state = state_of(context)
    user = update.effective_user
    language = language_of(state, user)
    if user is not None and user.id in state.settings.admin_ids:
        return language
    who = state.db.user_hash(user.id)[:12] if user is not None else "anonymous"
    log.warning("refused /%s: user %s is not an admin", command, who)
    await reply_text(update, context, t("tg_admin_only", language))
    return None


async def cmd_reload(update: Update, context: Context) -> None:
    """Load a rebuilt index from disk, then swap it in; answering goes on meanwhile."""
    language = await _admin(update, context, "reload")
    if language is None:
        return
    state = state_of(context)
    if state.reload_lock.locked():
        await reply_text(update, context, t("tg_reload_busy", language))
        return
    async with state.reload_lock:
        await reply_text(update, context, t("tg_reload_started", language))
        started = time.monotonic()
        try:
            retriever = await asyncio.to_thread(load_retriever, state.settings)
        except load_errors() as exc:
            log.error("reload failed, keeping the loaded index: %s", exc)
            await reply_text(update, context, t("tg_reload_failed", language, error=str(exc)))
            return
        state.retriever = retriever  # one assignment: the swap is atomic for the handlers
        state.loaded_at = time.time()
        seconds = f"{time.monotonic() - started:.1f}"
        items = len(retriever.knowledge.items)
        log.info("reloaded: %d items in %s s", items, seconds)
        await reply_text(
            update, context, t("tg_reload_done", language, items=items, seconds=seconds)
        )


async def cmd_stats(update: Update, context: Context) -> None:
    language = await _admin(update, context, "stats")
    if language is None:
        return
    stats = state_of(context).db.stats()
    languages = ", ".join(f"{k} {v}" for k, v in stats.by_language.items()) or "-"
    text = t(
        "tg_stats",
        language,
        questions=stats.questions,
        answered=stats.answered,
        abstained=stats.abstained,
        not_stated=stats.not_stated,
        users=stats.users,
        up=stats.votes_up,
        down=stats.votes_down,
        languages=languages,
    )
    await reply_text(update, context, text)


async def cmd_unanswered(update: Update, context: Context) -> None:
    language = await _admin(update, context, "unanswered")
    if language is None:
        return
    arg = args_text(context)
    limit = int(arg) if arg.isdigit() and 0 < int(arg) <= 50 else 10
    rows = state_of(context).db.unanswered(limit)
    if not rows:
        await reply_text(update, context, t("tg_unanswered_empty", language))
        return
    lines = [f"<b>{html.escape(t('tg_unanswered_title', language))}</b>"]
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.created))
        if row.reason == "abstained":
            reason = t("tg_unanswered_abstained", language)
        elif row.reason == "not_stated":
            reason = t("tg_unanswered_not_stated", language)
        else:
            reason = t("tg_unanswered_downvoted", language, n=row.votes_down)
        cited = f" → {', '.join(row.citations[:3])}" if row.citations else ""
        lines.append(
            f"• {html.escape(row.question)} <i>({html.escape(reason)}, {row.language}, "
            f"{when}{html.escape(cited)})</i>"
        )
    await reply_html(update, context, "\n".join(lines))
