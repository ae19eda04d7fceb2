"""End to end: the real Application against the Bot API emulator over real HTTP.

Tests play users (private chats, groups, inline mode, buttons) and check what they would see.
Each test uses its own user ids, so per-user state (rate limit, /lang) does not leak between them.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from emulator import BotApiEmulator, Sent, make_user, parse_html
from pydantic import SecretStr
from telegram import Update
from telegram.ext import Application

from bot.answers.language import detect_language
from bot.settings import Settings
from bot.storage.sqlite import SqliteStorage as Storage
from bot.telegram.app import build_application
from bot.telegram.format import RetrieverLike
from bot.telegram.runtime import running as serving
from bot.telegram.send import RetryPolicy

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

ADMIN = 4242
RATE_LIMIT = 6
_ids = itertools.count(10_000)
#: The sender's retry policy with shorter waits (the same tries and logic).
FAST_RETRY = RetryPolicy(base_delay=0.05, max_delay=0.4)


def new_user(language_code: str | None = "zh-hans", name: str = "User") -> dict[str, Any]:
    return make_user(next(_ids), name, language_code=language_code)


def make_settings(base: Settings, emu: BotApiEmulator, storage: Path) -> Settings:
    """The session's settings (its private index) pointed at ``emu``."""
    return base.model_copy(
        update={
            "telegram_token": SecretStr(emu.token),
            "telegram_api_url": emu.base_url,
            "admin_ids": frozenset({ADMIN}),
            "storage_path": storage,
            "user_rate_limit": RATE_LIMIT,
        }
    )


@asynccontextmanager
async def running(
    settings: Settings, retriever: RetrieverLike
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """The application as ``contract-bot telegram`` runs it (post_init, polling, the graceful
    stop), with short polls so that stopping is quick."""
    app = build_application(settings, retriever=retriever, retry=FAST_RETRY)
    async with serving(app, settings, allowed_updates=Update.ALL_TYPES, long_poll=1):
        yield app


@pytest.fixture(scope="module")
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def storage_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("telegram") / "data" / "bot.sqlite3"


@pytest.fixture(scope="module")
async def app(
    emu: BotApiEmulator, storage_path: Path, settings: Settings, retriever: RetrieverLike
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    async with running(make_settings(settings, emu, storage_path), retriever) as application:
        yield application


@pytest.fixture(autouse=True)
def _fresh(emu: BotApiEmulator) -> Iterator[None]:
    emu.reset()
    yield


async def ask(
    emu: BotApiEmulator, text: str, user: dict[str, Any], n: int = 1, timeout: float = 10.0
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


def assert_valid_html(sent: Sent) -> None:
    if sent.parse_mode == "HTML":
        parse_html(sent.raw)


# --- start, help, menu -------------------------------------------------------------------


async def test_menu_registered_in_english_and_chinese(
    app: Application[Any, Any, Any, Any, Any, Any], emu: BotApiEmulator
) -> None:
    menus = {lang: [c["command"] for c in cmds] for (_, lang), cmds in emu.commands.items()}
    assert set(menus) == {"", "zh"}
    assert menus[""] == menus["zh"] and {
        "start",
        "help",
        "clause",
        "term",
        "complaint",
        "gaps",
        "lang",
    } <= set(menus[""])
    descriptions = {lang: cmds[0]["description"] for (_, lang), cmds in emu.commands.items()}
    assert (
        detect_language(descriptions["zh"]) == "zh-Hans"
        and detect_language(descriptions[""]) == "en"
    )


async def test_start_offers_example_questions_that_answer(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    (welcome,) = await ask(emu, "/start", user)
    examples = [b for b in welcome.buttons() if b["callback_data"].startswith("q:")]
    assert len(examples) >= 3
    query_id = emu.press_button(welcome, examples[0]["callback_data"], user=user)
    await emu.wait_for_callback_answer(query_id)
    (reply,) = await emu.wait_for_sent(user["id"])
    assert examples[0]["text"].rstrip("？?") and cited(reply)
    assert "👍" in [b["text"] for b in reply.buttons()]
    assert_valid_html(reply)


async def test_help_and_unknown_command(app: Any, emu: BotApiEmulator) -> None:
    user = new_user("en")
    (help_msg,) = await ask(emu, "/help", user)
    assert "/clause" in help_msg.text and "/complaint" in help_msg.text
    (unknown,) = await ask(emu, "/frobnicate", user)
    assert "/clause" in unknown.text


# --- questions ---------------------------------------------------------------------------


async def test_questions_in_three_languages(app: Any, emu: BotApiEmulator) -> None:
    simplified = new_user(language_code=None)
    (zh,) = await ask(emu, "合同有效期多久？", simplified)
    assert cited(zh) == "2.1" and "第2.1条" in zh.text and detect_language(zh.text) == "zh-Hans"

    traditional = new_user(language_code=None)
    (hant,) = await ask(emu, "合同有效期多久？乙方違約怎麼辦？", traditional)
    assert detect_language(hant.text) == "zh-Hant" and "條" in hant.text

    english = new_user(language_code="en")
    (en,) = await ask(emu, "What happens if Party A pays the fee late?", english)
    assert cited(en) and "Chinese text governs" in en.text
    assert any("👍" in b["text"] for b in en.buttons())
    for sent in (zh, hant, en):
        assert_valid_html(sent)


async def test_language_code_decides_over_the_script(app: Any, emu: BotApiEmulator) -> None:
    hk = new_user(language_code="zh-hk")
    (reply,) = await ask(emu, "合同有效期多久？", hk)
    assert detect_language(reply.text) == "zh-Hant"


async def test_out_of_scope_abstains_with_topics_and_no_fulltext(
    app: Any, emu: BotApiEmulator
) -> None:
    user = new_user()
    (reply,) = await ask(emu, "今天上海天气怎么样？", user)
    assert "无法回答" in reply.text or "不在本协议范围" in reply.text
    assert cited(reply) == ""
    assert any(b["callback_data"].startswith("v:") for b in reply.buttons())


async def test_full_text_follow_up_and_votes(
    app: Any, emu: BotApiEmulator, storage_path: Path
) -> None:
    user = new_user()
    (reply,) = await ask(emu, "乙方泄露甲方的技术资料怎么办？", user)
    item_id = cited(reply)
    assert item_id

    # 📄 full text of the cited item
    full = next(b for b in reply.buttons() if b["callback_data"].startswith("i:"))
    query = emu.press_button(reply, full["callback_data"], user=user)
    await emu.wait_for_callback_answer(query)
    (text,) = await emu.wait_for_sent(user["id"])
    assert_valid_html(text)
    assert not any(b.get("callback_data", "").startswith("v:") for b in text.buttons())

    # a follow-up is a full answer about the linked item, with its own keyboard
    follow = [b for b in reply.buttons() if b["callback_data"].startswith("f:")]
    assert 2 <= len(follow) <= 3
    target = follow[0]["callback_data"].split(":")[1]
    emu.press_button(reply, follow[0]["callback_data"], user=user)
    (answer_msg,) = await emu.wait_for_sent(user["id"])
    assert cited(answer_msg) == target and any("👍" in b["text"] for b in answer_msg.buttons())

    # votes: thanks, repeat is "already", change is recorded; the chosen button is marked
    up = next(b for b in reply.buttons() if b["callback_data"].startswith("v:+"))
    down = next(b for b in reply.buttons() if b["callback_data"].startswith("v:-"))
    first = await emu.wait_for_callback_answer(
        emu.press_button(reply, up["callback_data"], user=user)
    )
    assert "谢谢" in first["text"]
    await emu.wait_until(lambda: any("✓" in b["text"] for b in reply.buttons()))
    again = await emu.wait_for_callback_answer(
        emu.press_button(reply, up["callback_data"], user=user)
    )
    assert "已经" in again["text"]
    await emu.wait_for_callback_answer(emu.press_button(reply, down["callback_data"], user=user))
    await emu.wait_until(
        lambda: (
            "✓"
            in next(
                b["text"] for b in reply.buttons() if b["callback_data"] == down["callback_data"]
            )
        )
    )
    stats = Storage(storage_path).stats()
    assert stats.votes_down >= 1


async def test_expired_and_foreign_buttons_are_answered(app: Any, emu: BotApiEmulator) -> None:
    user = new_user("en")
    emu.user_message("hi", user=user)
    await emu.wait_for_sent(user["id"])
    (msg,) = await ask(emu, "/lang", user)
    # forge an old message with buttons the bot no longer knows about
    old = dict(
        msg.message,
        reply_markup={
            "inline_keyboard": [
                [{"text": "👍", "callback_data": "v:+:gone1234"}],
                [{"text": "?", "callback_data": "zz:unknown"}],
                [{"text": "x", "callback_data": "f:9.9:en"}],
            ]
        },
    )
    for data in ("v:+:gone1234", "zz:unknown", "f:9.9:en"):
        reply = await emu.wait_for_callback_answer(
            emu.press_button(old, data, user=user, check=False)
        )
        assert "expired" in reply["text"] and reply.get("show_alert")


async def test_edited_message_is_answered_again(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    message = emu.user_message("合同有效期多久？", user=user)
    (first,) = await emu.wait_for_sent(user["id"])
    emu.edit_message(message, "甲方什么时候付款？")
    (second,) = await emu.wait_for_sent(user["id"])
    assert cited(first) != cited(second) and second.reply_to == message["message_id"]


async def test_non_text_messages_get_a_polite_note(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    for send in (emu.sticker, emu.photo, emu.voice, emu.location):
        send(user=user)
        (note,) = await emu.wait_for_sent(user["id"])
        assert "文字" in note.text


async def test_long_question_is_cut_and_said_so(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    (reply,) = await ask(emu, "合同有效期多久？" + "请详细说明。" * 200, user)
    assert "500" in reply.text


async def test_clause_term_complaint_commands(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    (toc,) = await ask(emu, "/clause", user)
    clause_buttons = [b["callback_data"] for b in toc.buttons()]
    assert "f:3.2:zh-Hans" in clause_buttons and len(clause_buttons) >= 17
    emu.press_button(toc, "f:3.2:zh-Hans", user=user)
    (clause,) = await emu.wait_for_sent(user["id"])
    assert cited(clause) == "3.2"
    (direct,) = await ask(emu, "/clause 5.1", user)
    assert cited(direct) == "5.1"
    (missing,) = await ask(emu, "/clause 9.9", user)
    assert "9.9" in missing.text and cited(missing) == ""
    (terms,) = await ask(emu, "/term", user)
    assert len(terms.buttons()) == 4
    (term,) = await ask(emu, "/term 违约金", user)
    assert cited(term).startswith("term-")
    replies = await ask(emu, "/complaint", user)
    assert "第4.3条" in replies[0].text and "第6.1条" in replies[0].text


async def test_not_stated_shows_the_statement_then_the_nearest_clause_with_buttons(
    app: Any, emu: BotApiEmulator, storage_path: Path
) -> None:
    user = new_user()
    (reply,) = await ask(emu, "售后能不能外包给第三方公司做？", user)
    assert_valid_html(reply)
    assert reply.text.startswith("本协议没有约定")
    assert "与此最相关的条款" in reply.text and "【第1.3条】" in reply.text
    assert reply.text.index("本协议没有约定") < reply.text.index("【第1.3条】")
    assert cited(reply) == "1.3"  # the full text of the nearest clause
    assert any(b["callback_data"].startswith("f:") for b in reply.buttons())
    up = next(b for b in reply.buttons() if b["callback_data"].startswith("v:+"))
    thanks = await emu.wait_for_callback_answer(
        emu.press_button(reply, up["callback_data"], user=user)
    )
    assert "谢谢" in thanks["text"]
    (amount,) = await ask(emu, "要赔的违约金有没有写明数额", user)
    assert "法律的一般规定（非本协议内容，仅供参考）" in amount.text
    assert amount.text.index("【第5.1条】") < amount.text.index("法律的一般规定")
    admin = make_user(ADMIN, "Admin", language_code="en")
    (unanswered,) = await ask(emu, "/unanswered", admin)
    assert "售后能不能外包给第三方公司做" in unanswered.text
    assert "not stated in the agreement" in unanswered.text


async def test_gaps_command_lists_what_the_agreement_does_not_cover(
    app: Any, emu: BotApiEmulator
) -> None:
    user = new_user()
    replies = await ask(emu, "/gaps", user)
    text = "\n".join(r.text for r in replies)
    assert "本协议没有约定或只部分约定的事项" in text
    assert "转包和分包：本协议没有约定乙方能否将售后工作转包或分包给第三方。" in text
    for reply in replies:
        assert_valid_html(reply)
    english = new_user(language_code="en")
    replies = await ask(emu, "what does this agreement not cover?", english)
    assert "What this agreement does not cover" in "\n".join(r.text for r in replies)


async def test_lang_choice_is_remembered(app: Any, emu: BotApiEmulator, storage_path: Path) -> None:
    user = new_user("en")
    (prompt,) = await ask(emu, "/lang", user)
    answer = await emu.wait_for_callback_answer(emu.press_button(prompt, "l:zh-Hant", user=user))
    assert "繁體" in answer["text"]
    await emu.wait_until(lambda: prompt.edits > 0)
    (reply,) = await ask(emu, "How long is the agreement valid?", user)
    assert detect_language(reply.text) == "zh-Hant"
    assert Storage(storage_path).get_language(user["id"]) == "zh-Hant"


# --- inline mode -------------------------------------------------------------------------


async def test_inline_query_offers_matching_items(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    answer = await emu.wait_for_inline_answer(emu.inline_query("违约金", user=user))
    results = answer["results"]
    assert 1 <= len(results) <= 5 and results[0]["id"] == "term-3"
    for result in results:
        parse_html(result["input_message_content"]["message_text"])
    empty = await emu.wait_for_inline_answer(emu.inline_query("   ", user=user))
    assert empty["results"] == []


# --- groups ------------------------------------------------------------------------------


async def test_group_answers_only_when_addressed(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    group = {"id": -100777, "type": "supergroup", "title": "合同讨论"}
    emu.user_message("合同有效期多久？大家怎么看", user=user, chat=group)
    emu.sticker(user=user, chat=group)
    await emu.expect_silence(group["id"], 0.8)

    mention = emu.user_message(f"@{emu.bot_username} 合同有效期多久？", user=user, chat=group)
    (reply,) = await emu.wait_for_sent(group["id"])
    assert cited(reply) == "2.1" and reply.reply_to == mention["message_id"]

    followup = emu.user_message("那甲方什么时候付款？", user=user, chat=group, reply_to=reply)
    (second,) = await emu.wait_for_sent(group["id"])
    assert second.reply_to == followup["message_id"] and cited(second)

    text_mention = "机器人 合同有效期多久？"
    entities = [{"type": "text_mention", "offset": 0, "length": 3, "user": emu.bot_user}]
    emu.user_message(text_mention, user=user, chat=group, entities=entities)
    (third,) = await emu.wait_for_sent(group["id"])
    assert cited(third) == "2.1"

    emu.user_message(f"/start@{emu.bot_username}", user=user, chat=group)
    (start,) = await emu.wait_for_sent(group["id"])
    assert any(b["callback_data"].startswith("q:") for b in start.buttons())

    emu.user_message(f"@{emu.bot_username}", user=user, chat=group)
    (help_msg,) = await emu.wait_for_sent(group["id"])
    assert "/clause" in help_msg.text


# --- limits and faults -------------------------------------------------------------------


async def test_per_user_rate_limit_with_one_notice(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    for _ in range(RATE_LIMIT + 3):
        emu.user_message("合同有效期多久？", user=user)
    replies = await emu.wait_for_sent(user["id"], n=RATE_LIMIT + 1, timeout=20)
    notices = [r for r in replies if "频繁" in r.text]
    assert len(notices) == 1
    await emu.expect_silence(user["id"], 0.5)
    other = new_user()
    assert cited((await ask(emu, "合同有效期多久？", other))[0]) == "2.1"


async def test_429_is_retried_after_retry_after(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    emu.inject("sendMessage", status=429, retry_after=1)
    started = time.monotonic()
    (reply,) = await ask(emu, "合同有效期多久？", user)
    assert cited(reply) == "2.1" and time.monotonic() - started >= 1.0
    assert [c.status for c in emu.calls_of("sendMessage")][:2] == [429, 200]


async def test_5xx_on_get_updates_does_not_stop_the_bot(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    emu.inject("getUpdates", status=502, times=1)
    await emu.wait_until(lambda: [c for c in emu.calls_of("getUpdates") if c.status == 502], 10)
    (reply,) = await ask(emu, "合同有效期多久？", user)
    assert cited(reply) == "2.1"


async def test_send_failure_tells_the_user_something_went_wrong(
    app: Any, emu: BotApiEmulator
) -> None:
    user = new_user()
    emu.inject("sendMessage", status=400, description="Bad Request: can't parse entities")
    (reply,) = await ask(emu, "合同有效期多久？", user)
    assert "出错" in reply.text and emu.token not in reply.text


# --- admins ------------------------------------------------------------------------------


async def test_admin_commands_refused_for_others(
    app: Any, emu: BotApiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    user = new_user()
    for command in ("/reload", "/stats", "/unanswered"):
        (reply,) = await ask(emu, command, user)
        assert "管理员" in reply.text
    assert "not an admin" in caplog.text and str(user["id"]) not in caplog.text


async def test_admin_stats_and_unanswered(app: Any, emu: BotApiEmulator) -> None:
    asker = new_user()
    await ask(emu, "明天北京会下雨吗？", asker)
    admin = make_user(ADMIN, "Admin", language_code="en")
    (stats,) = await ask(emu, "/stats", admin)
    assert "Questions:" in stats.text and "Abstained:" in stats.text
    (unanswered,) = await ask(emu, "/unanswered", admin)
    assert "明天北京会下雨吗" in unanswered.text


async def test_admin_reload_swaps_the_index_while_answering(
    app: Any, emu: BotApiEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import bot.telegram.state as bot_state

    admin = make_user(ADMIN, "Admin", language_code="en")
    user = new_user()
    state = app.bot_data["state"]
    before = state.retriever
    real_load = bot_state.load_retriever

    def slow_load(*args: Any) -> Any:  # a reload that loads a model too takes seconds
        time.sleep(2.0)
        return real_load(*args)

    monkeypatch.setattr(bot_state, "load_retriever", slow_load)
    emu.user_message("/reload", user=admin)
    (started,) = await emu.wait_for_sent(ADMIN)
    assert "Reloading" in started.text
    (reply,) = await ask(emu, "合同有效期多久？", user)
    assert cited(reply) == "2.1"
    (done,) = await emu.wait_for_sent(ADMIN, timeout=60)
    assert "Reloaded" in done.text and state.retriever is not before
    assert emu.sent.index(reply) < emu.sent.index(done)  # answered while the index was loading
    assert cited((await ask(emu, "合同有效期多久？", user))[0]) == "2.1"

    # a broken index on disk: the error is reported and the loaded index stays in use
    good_settings = state.settings
    state.settings = good_settings.model_copy(update={"index_dir": tmp_path / "no-index"})
    try:
        (_, failed) = await ask(emu, "/reload", admin, n=2, timeout=60)
    finally:
        state.settings = good_settings
    assert "Reload failed" in failed.text and "no-index" in failed.text
    assert cited((await ask(emu, "合同有效期多久？", user))[0]) == "2.1"


# --- restart -----------------------------------------------------------------------------


async def test_buttons_and_language_survive_a_restart(
    settings: Settings, retriever: RetrieverLike, tmp_path: Path
) -> None:
    async with BotApiEmulator() as emulator:
        bot_settings = make_settings(settings, emulator, tmp_path / "bot.sqlite3")
        user = new_user("en")
        async with running(bot_settings, retriever):
            (prompt,) = await ask(emulator, "/lang", user)
            await emulator.wait_for_callback_answer(
                emulator.press_button(prompt, "l:zh-Hans", user=user)
            )
            (reply,) = await ask(emulator, "合同有效期多久？", user)
        up = next(b for b in reply.buttons() if b["callback_data"].startswith("v:+"))
        async with running(bot_settings, retriever):  # a new process would see the same
            answer = await emulator.wait_for_callback_answer(
                emulator.press_button(reply, up["callback_data"], user=user)
            )
            assert "谢谢" in answer["text"]
            (again,) = await ask(emulator, "How long is the agreement valid?", user)
            assert detect_language(again.text) == "zh-Hans"
