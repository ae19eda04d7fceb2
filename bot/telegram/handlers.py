"""The handlers users reach: commands, free text, buttons, inline mode, and the error handler.

Each parses the update, calls ``bot.answers.compose.answer`` through the application's
``AnswerBatcher`` (in a worker thread, batched with questions that arrive meanwhile: encoding is
CPU-bound), formats with ``bot.telegram.format`` and replies through ``bot.telegram.send``.
Storage calls run in the storage thread (``BotState.off_loop``).
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from typing import TYPE_CHECKING, cast

from telegram import InlineKeyboardMarkup, InlineQueryResultArticle, InputTextMessageContent, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError

from bot.answers.compose import answer, item_answer
from bot.answers.texts import t
from bot.telegram.batching import Precomputed
from bot.telegram.conversation import (
    FOLLOW_UP_SOURCES,
    after_album,
    albums_of,
    before_question,
    converse,
    forget_dialogue,
    record_reply,
    with_typing,
)
from bot.telegram.format import (
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
from bot.telegram.metrics import outcome
from bot.telegram.send import NO_PREVIEW, Undelivered, reply_html, reply_text, send_html
from bot.telegram.state import (
    BotState,
    Context,
    args_text,
    is_group,
    language_of,
    state_of,
    user_key,
)
from bot.types import Answer, DialogueTurn, Item, Language

if TYPE_CHECKING:
    from telegram import Message

log = logging.getLogger(__name__)


INLINE_RESULTS = 5


async def _answer_and_send(
    update: Update,
    context: Context,
    question: str,
    language: Language,
    *,
    source: str,
    chat_id: int | None = None,
    note: str = "",
    dialogue: DialogueTurn | None = None,
) -> Answer:
    """The core: answer ``question`` in a thread (after ``dialogue``, the context it may follow
    up; typing shown if it takes a while), log it, send it with its keyboard."""
    state = state_of(context)
    started = time.monotonic()
    retriever = state.ready_retriever  # one reference for the whole answer, even during /reload
    chat = update.effective_chat
    target = chat_id if chat_id is not None else (chat.id if chat else user_key(update))
    work = converse(state, retriever, question, language, dialogue)
    reply = await with_typing(context, target, work)
    result = reply.answer
    answer_id = await record_reply(state, update, reply, source=source)
    knowledge = retriever.knowledge
    text = render_html(result, knowledge)
    if note:
        text += f"\n\n<i>{html.escape(note)}</i>"
    if result.intent == "toc":
        keyboard: InlineKeyboardMarkup | None = toc_keyboard(result)
    else:
        keyboard = answer_keyboard(result, answer_id, knowledge)
    # In groups (and for edited messages) the answer quotes the question it answers.
    message = update.effective_message if update.callback_query is None else None
    quote = message is not None and (is_group(update) or source == "edit")
    reply_to = message.message_id if message is not None and quote else None
    await send_html(context, target, text, keyboard, reply_to, answer_id=answer_id)
    state.metrics.answered(outcome(result), result.language, time.monotonic() - started)
    return result


async def _rate_limited(update: Update, context: Context, language: Language) -> bool:
    allowed, notify = await state_of(context).rate_limit(user_key(update))
    return await _refused(update, context, language, allowed, notify)


async def _refused(
    update: Update, context: Context, language: Language, allowed: bool, notify: bool
) -> bool:
    """Whether the per-user limit refuses the request; if so, the notice (once a window)."""
    if allowed:
        return False
    log.info("rate limit reached by a user; request dropped")
    if notify:
        if update.callback_query is not None:
            await update.callback_query.answer(t("tg_rate_limited", language), show_alert=True)
        else:
            await reply_text(update, context, t("tg_rate_limited", language))
    elif update.callback_query is not None:
        await update.callback_query.answer()
    return True


async def _ask(update: Update, context: Context, question: str, *, source: str) -> None:
    """Answer a user's free-text question (cut, rate-limited, in the user's language)."""
    state = state_of(context)
    limit = state.settings.max_question_chars
    question, was_cut = cut_question(question, limit)
    asking = await before_question(
        state, update, follow_up=source in FOLLOW_UP_SOURCES, counted=bool(question)
    )
    dialogue = asking.dialogue
    previous = dialogue.language if dialogue is not None else None
    user = update.effective_user
    language = resolve_language(
        asking.chosen, user.language_code if user is not None else None, question, previous
    )
    if not question or asking.limited is None:
        await _send_help(update, context, language)
        return
    if await _refused(update, context, language, *asking.limited):
        return
    note = t("tg_cut", language, n=limit) if was_cut else ""
    await _answer_and_send(
        update, context, question, language, source=source, note=note, dialogue=dialogue
    )


async def _send_help(update: Update, context: Context, language: Language) -> None:
    help_answer = answer("", state_of(context).ready_retriever, language=language)
    text = render_html(help_answer, state_of(context).ready_retriever.knowledge)
    text += "\n\n" + html.escape(t("tg_commands", language))
    if is_group(update):
        text += "\n\n<i>" + html.escape(t("tg_group_hint", language)) + "</i>"
    chat = update.effective_chat
    if chat is not None:
        await send_html(context, chat.id, text)


async def cmd_start(update: Update, context: Context) -> None:
    state = state_of(context)
    await forget_dialogue(state, update)
    language = await language_of(state, update.effective_user)
    text = f"<b>{html.escape(t('help.title', language))}</b>\n\n"
    if is_group(update):
        text += f"<i>{html.escape(t('tg_group_hint', language))}</i>\n\n"
    text += html.escape(t("tg_examples_title", language))
    chat = update.effective_chat
    if chat is not None:
        await send_html(context, chat.id, text, examples_keyboard(language))


async def cmd_help(update: Update, context: Context) -> None:
    await _send_help(update, context, await language_of(state_of(context), update.effective_user))


async def cmd_clause(update: Update, context: Context) -> None:
    state = state_of(context)
    arg = args_text(context)
    language = await language_of(state, update.effective_user, arg)
    if arg:
        await _ask(update, context, f"/clause {arg}", source="command")
        return
    toc = answer("目录", state.ready_retriever, language=language)
    await reply_html(update, context, html.escape(t("tg_toc_intro", language)), toc_keyboard(toc))


async def cmd_term(update: Update, context: Context) -> None:
    state = state_of(context)
    arg = args_text(context)
    if arg:
        await _ask(update, context, arg, source="command")
        return
    language = await language_of(state, update.effective_user)
    keyboard = terms_keyboard(state.ready_retriever.knowledge, language)
    await reply_html(update, context, html.escape(t("tg_terms_intro", language)), keyboard)


async def _answer_command(update: Update, context: Context, command: str) -> None:
    """A command the answer layer answers by itself, in the user's language (rate-limited)."""
    language = await language_of(state_of(context), update.effective_user)
    if await _rate_limited(update, context, language):
        return
    await _answer_and_send(update, context, command, language, source="command")


async def cmd_complaint(update: Update, context: Context) -> None:
    await _answer_command(update, context, "/complaint")


async def cmd_gaps(update: Update, context: Context) -> None:
    """What the agreement does not cover, or covers only in part (the coverage map)."""
    await _answer_command(update, context, "/gaps")


async def cmd_lang(update: Update, context: Context) -> None:
    await forget_dialogue(state_of(context), update)
    language = await language_of(state_of(context), update.effective_user)
    await reply_html(update, context, html.escape(t("tg_lang_prompt", language)), lang_keyboard())


async def on_text(update: Update, context: Context) -> None:
    """Free text (new or edited). In groups only when the bot is mentioned or replied to."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    question: str | None = message.text
    if is_group(update):
        bot = context.bot
        question = addressed_text(message.text, message.entities, bot.username, bot.id)
        if question is None and replies_to_bot(message, bot.id):
            question = message.text
        if question is None:
            return  # other chatter in the group
    source = "edit" if update.edited_message is not None else "message"
    await _ask(update, context, question or "", source=source)


def replies_to_bot(message: Message, bot_id: int) -> bool:
    replied = message.reply_to_message
    return replied is not None and replied.from_user is not None and replied.from_user.id == bot_id


async def on_unknown_command(update: Update, context: Context) -> None:
    """An unknown /command: help in private chats; silence in groups (it may be another bot's)."""
    if not is_group(update):
        await cmd_help(update, context)


async def on_other(update: Update, context: Context) -> None:
    """Stickers, photos, voice, locations, ...: a short note (in groups only when replied to)."""
    message = update.effective_message
    if message is None:
        return
    if is_group(update) and not replies_to_bot(message, context.bot.id):
        return
    language = await language_of(state_of(context), update.effective_user)
    await reply_text(update, context, t("tg_non_text", language))


async def on_media(update: Update, context: Context) -> None:
    """A photo, document or video: its caption is answered as a text would be (in groups only
    when it mentions the bot or replies to it); without one, the short note. An album
    (``media_group_id``) gets one reply, for its first caption or else the note."""
    message = update.effective_message
    if message is None:
        return
    group = message.media_group_id
    if group and update.edited_message is None:
        if albums_of(context).add(group, update):
            context.application.create_task(
                after_album(context, group, lambda item: _media_reply(item, context)),
                update=update,
            )
        return
    await _media_reply(update, context)


async def _media_reply(update: Update, context: Context) -> None:
    message = update.effective_message
    if message is None:
        return
    caption = (message.caption or "").strip()
    if not caption:
        await on_other(update, context)
        return
    question: str | None = caption
    if is_group(update):
        bot = context.bot
        question = addressed_text(caption, message.caption_entities, bot.username, bot.id)
        if question is None and replies_to_bot(message, bot.id):
            question = caption
        if question is None:
            return  # a picture shared among the group, not a question to the bot
    source = "edit" if update.edited_message is not None else "message"
    await _ask(update, context, question or "", source=source)


async def on_callback(update: Update, context: Context) -> None:
    """Every button press is answered (the spinner stops), also for expired buttons."""
    query = update.callback_query
    if query is None:
        return
    state = state_of(context)
    user = query.from_user
    chosen = await state.off_loop(state.db.get_language, user.id)
    fallback = resolve_language(chosen, user.language_code)
    data = parse_callback(query.data if isinstance(query.data, str) else None)
    knowledge = state.ready_retriever.knowledge
    if data is None:
        await query.answer(t("tg_expired", fallback), show_alert=True)
        return
    chat_id = query.message.chat.id if query.message is not None else user.id

    if data.kind == "vote":
        record = await state.off_loop(state.db.get_answer, data.arg)
        result = (
            await state.off_loop(state.db.vote, data.arg, user.id, data.vote)
            if record is not None
            else None
        )
        if record is None or result is None:
            await query.answer(t("tg_expired", fallback), show_alert=True)
            return
        language = chosen or record.language
        key = "tg_vote_same" if not result.changed else "tg_vote_thanks"
        await query.answer(t(key, language))
        message = query.message
        if result.changed and message is not None and not is_group(update):
            markup = getattr(message, "reply_markup", None)
            try:
                await query.edit_message_reply_markup(mark_vote(markup, data.vote))
            except BadRequest as exc:  # e.g. "message is not modified", message too old
                log.info("could not mark the vote on the message: %s", exc)
        return

    if data.kind == "lang":
        language = cast(Language, data.language)
        await state.off_loop(state.db.set_language, user.id, language)
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
        await send_html(context, chat_id, text)
        return

    question = example_question(data.arg, language) if data.kind == "example" else data.arg
    if question is None or (data.kind == "follow" and knowledge.get(data.arg) is None):
        await query.answer(t("tg_expired", language), show_alert=True)
        return
    if await _rate_limited(update, context, language):
        return
    await query.answer()
    await _answer_and_send(update, context, question, language, source="button", chat_id=chat_id)


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
    state = state_of(context)
    text, _ = cut_question(query.query, state.settings.max_question_chars)
    if not text or not (await state.rate_limit(query.from_user.id))[0]:
        await query.answer([], cache_time=5, is_personal=True)
        return
    language = await language_of(state, query.from_user, text)
    retriever = state.ready_retriever
    # the search is batched with the questions being answered; the rest needs no model
    retrieval = await state.answers.search(text, retriever, k=INLINE_RESULTS)
    view = Precomputed(retriever, {(text, INLINE_RESULTS): retrieval})
    items = await asyncio.to_thread(_inline_items, view, text)
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


async def on_error(update: object, context: Context) -> None:
    """The one error handler: log (with traceback), tell the user, keep running."""
    error = context.error
    if isinstance(error, Undelivered):  # already logged by the sender, with chat and answer id
        return
    if isinstance(error, Forbidden):  # the user blocked the bot, or it left the group
        log.info("Telegram refused a message: %s", error)
        return
    if isinstance(error, NetworkError) and not isinstance(error, BadRequest):
        # Includes TimedOut and Telegram 5xx outside the sender (which retries its own).
        log.warning("network problem talking to Telegram: %s", error)
        return
    log.error("error while handling an update", exc_info=error)
    if not isinstance(update, Update):
        return
    state = context.bot_data.get("state")
    language: Language = "zh-Hans"
    if isinstance(state, BotState) and state.storage is not None:
        language = await language_of(state, update.effective_user)
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
