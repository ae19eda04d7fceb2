"""``/privacy`` (what is stored about a user, why, for how long) and ``/forget`` (delete all of
it, and say what went)."""

from __future__ import annotations

import logging

from telegram import Update

from bot.answers.texts import t
from bot.telegram.send import reply_text
from bot.telegram.state import Context, language_of, state_of

log = logging.getLogger(__name__)

#: Rows of these tables are named in /forget's reply; others are "other records".
FORGET_LABELS = ("answers", "votes", "users", "dialogues", "rate_events", "rate_notices")


async def cmd_privacy(update: Update, context: Context) -> None:
    state = state_of(context)
    language = await language_of(state, update.effective_user)
    days = state.settings.retention_days
    kept = t("tg_privacy_days", language, days=days) if days else t("tg_privacy_forever", language)
    minutes = round(state.settings.dialogue_timeout / 60)
    text = t("tg_privacy", language, kept=kept, dialogue_minutes=minutes)
    await reply_text(update, context, text)


async def cmd_forget(update: Update, context: Context) -> None:
    user = update.effective_user
    if user is None:
        return
    state = state_of(context)
    language = await language_of(state, user)  # before the choice itself is deleted
    forgotten = await state.off_loop(state.db.forget, user.id)
    log.info("a user's records were deleted on request (%d rows)", forgotten.total)
    if not forgotten.total:
        await reply_text(update, context, t("tg_forget_nothing", language))
        return
    lines = []
    other = 0
    for table, n in forgotten.deleted.items():
        if table in FORGET_LABELS:
            lines.append(t(f"tg_forget_{table}", language, n=n))
        else:
            other += n
    if other:
        lines.append(t("tg_forget_other", language, n=other))
    await reply_text(update, context, t("tg_forget_done", language, deleted="\n".join(lines)))
