"""Admin commands (``BOT_ADMIN_IDS``): ``/reload``, ``/stats``, ``/unanswered``; others get a polite
refusal and the attempt is logged."""

from __future__ import annotations

import html
import logging
import time

from telegram import Update

from bot.answers.texts import t
from bot.search.textproc import parse_number
from bot.telegram.send import reply_html, reply_text
from bot.telegram.state import (
    RELOAD_POLL,
    Context,
    args_text,
    language_of,
    load_errors,
    state_of,
)
from bot.types import Language

log = logging.getLogger(__name__)


async def _admin(update: Update, context: Context, command: str) -> Language | None:
    """The admin's language, or None after refusing a non-admin (the attempt is logged)."""
    state = state_of(context)
    user = update.effective_user
    language = await language_of(state, user)
    if user is not None and user.id in state.settings.admin_ids:
        return language
    who = state.db.user_hash(user.id)[:12] if user is not None else "anonymous"
    log.warning("refused /%s: user %s is not an admin", command, who)
    await reply_text(update, context, t("tg_admin_only", language))
    return None


async def cmd_reload(update: Update, context: Context) -> None:
    """``/reload``: load a rebuilt index from disk, then swap it in; answering goes on meanwhile.
    ``/reload all``: ask every replica sharing the storage to do the same (each picks the
    request up within ``RELOAD_POLL`` seconds, this one included)."""
    language = await _admin(update, context, "reload")
    if language is None:
        return
    state = state_of(context)
    if args_text(context).lower() in ("all", "全部", "所有"):
        generation = await state.off_loop(state.db.request_reload)
        log.info("reload of every replica requested (generation %d)", generation)
        await reply_text(update, context, t("tg_reload_all", language, seconds=RELOAD_POLL))
        return
    if state.reload_lock.locked():
        await reply_text(update, context, t("tg_reload_busy", language))
        return
    await reply_text(update, context, t("tg_reload_started", language))
    started = time.monotonic()
    try:
        retriever = await state.reload()
    except load_errors() as exc:
        log.error("reload failed, keeping the loaded index: %s", exc)
        await reply_text(update, context, t("tg_reload_failed", language, error=str(exc)))
        return
    seconds = f"{time.monotonic() - started:.1f}"
    items = len(retriever.knowledge.items)
    log.info("reloaded: %d items in %s s", items, seconds)
    await reply_text(update, context, t("tg_reload_done", language, items=items, seconds=seconds))


async def cmd_stats(update: Update, context: Context) -> None:
    language = await _admin(update, context, "stats")
    if language is None:
        return
    state = state_of(context)
    stats = await state.off_loop(state.db.stats)
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
    number = parse_number(arg)
    limit = number if number is not None and 0 < number <= 50 else 10
    state = state_of(context)
    rows = await state.off_loop(state.db.unanswered, limit)
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
