"""A conversation with the bot, end to end against the Bot API emulator: the reply language,
follow-up questions, captions and albums, typing, other bots. Plus the small pieces of
``bot.telegram.conversation`` on their own (albums, typing) on fakes.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from emulator import BotApiEmulator, Sent, make_user
from telegram import Update
from telegram.ext import Application
from test_e2e import assert_valid_html, cited, make_settings, running

from bot.answers.dialogue import item_side
from bot.answers.language import detect_language
from bot.settings import Settings
from bot.storage.sqlite import SqliteStorage
from bot.telegram.conversation import ALBUM_MEMORY, Albums, album_reply_to, with_typing
from bot.telegram.format import RetrieverLike
from bot.types import Retrieval

_ids = itertools.count(30_000)

CONTEXT_ZH = "接上一问"


def new_user(language_code: str | None = "zh-hans") -> dict[str, Any]:
    return make_user(next(_ids), "User", language_code=language_code)


def group_chat() -> dict[str, Any]:
    return {"id": -100_000_000 - next(_ids), "type": "supergroup", "title": "合同讨论"}


@pytest.fixture(scope="module")
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def storage_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conversation") / "bot.sqlite3"


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


async def ask(emu: BotApiEmulator, text: str, user: dict[str, Any], **kw: Any) -> Sent:
    emu.user_message(text, user=user, **kw)
    chat = kw.get("chat")
    (reply,) = await emu.wait_for_sent(chat["id"] if chat else user["id"])
    assert_valid_html(reply)
    return reply


# --- the reply language ---------------------------------------------------------------------


async def test_english_ui_user_asking_in_chinese_gets_chinese(
    app: Any, emu: BotApiEmulator
) -> None:
    user = new_user("en")  # most Chinese users run Telegram in English
    reply = await ask(emu, "合同有效期多久？", user)
    assert cited(reply) == "2.1"
    assert detect_language(reply.text) == "zh-Hans" and "第2.1条" in reply.text
    start = await ask(emu, "/start", user)  # no question of its own: the UI's language
    assert "Try these questions" in start.text


async def test_zh_hans_user_writing_traditional_gets_traditional(
    app: Any, emu: BotApiEmulator
) -> None:
    user = new_user("zh-hans")
    reply = await ask(emu, "服務費每季度什麼時候支付", user)
    assert cited(reply) == "3.2"
    assert detect_language(reply.text) == "zh-Hant" and "第3.2條" in reply.text


# --- follow-up questions --------------------------------------------------------------------


async def test_na_yifang_ne_is_answered_about_party_b(
    app: Any, emu: BotApiEmulator, retriever: RetrieverLike
) -> None:
    user = new_user()
    first = await ask(emu, "甲方拖欠服务费怎么办", user)
    assert item_side(retriever.knowledge.get(cited(first))) == "甲方"  # type: ignore[arg-type]
    second = await ask(emu, "那乙方呢？", user)
    item = retriever.knowledge.get(cited(second))
    assert item is not None and item_side(item) == "乙方", cited(second)
    # One short line says what the question was taken to follow.
    assert second.text.startswith("（接上一问：甲方拖欠服务费怎么办）")


async def test_a_standalone_second_question_is_not_merged(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    await ask(emu, "甲方拖欠服务费怎么办", user)
    for question, item in (("那合同一式几份？", "7.1"), ("还有，争议最后去哪里打官司？", "6.1")):
        reply = await ask(emu, question, user)
        assert cited(reply) == item and CONTEXT_ZH not in reply.text


async def test_follow_up_in_english_and_in_a_thread(app: Any, emu: BotApiEmulator) -> None:
    user = new_user("en")
    await ask(emu, "How much notice is needed to renew the agreement?", user)
    reply = await ask(emu, "does it have to be in writing?", user)
    assert cited(reply) == "2.2" and reply.text.startswith("(Following on from: How much")


async def test_start_and_lang_forget_the_context(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    await ask(emu, "甲方拖欠服务费怎么办", user)
    await ask(emu, "/start", user)
    assert CONTEXT_ZH not in (await ask(emu, "那乙方呢？", user)).text
    await ask(emu, "甲方拖欠服务费怎么办", user)
    await ask(emu, "/lang", user)
    assert CONTEXT_ZH not in (await ask(emu, "那乙方呢？", user)).text


async def test_the_context_expires(app: Any, emu: BotApiEmulator) -> None:
    state = app.bot_data["state"]
    kept = state.settings
    state.settings = kept.model_copy(update={"dialogue_timeout": 1.0})
    try:
        user = new_user()
        await ask(emu, "甲方拖欠服务费怎么办", user)
        assert (await ask(emu, "那乙方呢？", user)).text.startswith("（" + CONTEXT_ZH)
        await asyncio.sleep(1.3)  # silence longer than the timeout
        assert CONTEXT_ZH not in (await ask(emu, "那乙方呢？", user)).text
    finally:
        state.settings = kept


async def test_context_is_per_user_in_a_group(app: Any, emu: BotApiEmulator) -> None:
    group = group_chat()
    alice, bob = new_user(), new_user()
    mention = f"@{emu.bot_username} "
    await ask(emu, mention + "甲方拖欠服务费怎么办", alice, chat=group)
    bobs = await ask(emu, mention + "那乙方呢？", bob, chat=group)
    assert CONTEXT_ZH not in bobs.text  # Bob did not ask the first question
    alices = await ask(emu, mention + "那乙方呢？", alice, chat=group)
    assert alices.text.startswith("（" + CONTEXT_ZH)


async def test_the_context_survives_a_restart_and_is_shared_by_processes(
    settings: Settings, retriever: RetrieverLike, tmp_path: Path
) -> None:
    storage = tmp_path / "shared.sqlite3"
    user = new_user()
    async with BotApiEmulator() as one, BotApiEmulator() as two:
        async with running(make_settings(settings, one, storage), retriever):
            await ask(one, "甲方拖欠服务费怎么办", user)
        # A restarted bot, and a second process on the same storage, both know the context.
        async with running(make_settings(settings, two, storage), retriever):
            reply = await ask(two, "那乙方呢？", user)
            assert reply.text.startswith("（" + CONTEXT_ZH)
            async with running(make_settings(settings, one, storage), retriever):
                again = await ask(one, "那还要赔钱吗？", user)
                assert again.text.startswith("（" + CONTEXT_ZH)
    # Stored under hashes only.
    db = SqliteStorage(storage)
    raw = db._db.execute("SELECT user_hash, chat_hash FROM dialogues").fetchall()
    assert raw and all(str(user["id"]) not in value for row in raw for value in row)
    db.close()


# --- captions and albums --------------------------------------------------------------------


async def test_captioned_photo_document_and_video_are_answered(
    app: Any, emu: BotApiEmulator
) -> None:
    user = new_user()
    emu.photo(user=user, caption="这个截图里的情况算违约吗？")
    (photo,) = await emu.wait_for_sent(user["id"])
    assert cited(photo).startswith("breach-") and "文字" not in photo.text
    emu.document(user=user, caption="合同有效期多久？")
    (document,) = await emu.wait_for_sent(user["id"])
    assert cited(document) == "2.1"
    emu.video(user=user, caption="What happens if Party B leaks our documents?")
    (video,) = await emu.wait_for_sent(user["id"])
    assert cited(video) and "Chinese text governs" in video.text
    emu.photo(user=user)  # no caption: the short note, as before
    (note,) = await emu.wait_for_sent(user["id"])
    assert "文字" in note.text


async def test_an_album_gets_one_reply(app: Any, emu: BotApiEmulator) -> None:
    user = new_user()
    for _ in range(3):
        emu.photo(user=user, media_group_id="album-1")
    (note,) = await emu.wait_for_sent(user["id"])
    assert "文字" in note.text
    await emu.expect_silence(user["id"], 1.5)
    # With a caption (on any item), the album's one reply answers it.
    emu.photo(user=user, media_group_id="album-2")
    emu.photo(user=user, media_group_id="album-2", caption="合同有效期多久？")
    emu.photo(user=user, media_group_id="album-2")
    (answer,) = await emu.wait_for_sent(user["id"])
    assert cited(answer) == "2.1"
    await emu.expect_silence(user["id"], 1.5)


async def test_group_captions_only_when_addressed(app: Any, emu: BotApiEmulator) -> None:
    user, group = new_user(), group_chat()
    emu.photo(user=user, chat=group, caption="合同有效期多久？")  # shared among the group
    await emu.expect_silence(group["id"], 1.0)
    caption = f"@{emu.bot_username} 合同有效期多久？"
    mention = [{"type": "mention", "offset": 0, "length": len(emu.bot_username) + 1}]
    emu.photo(user=user, chat=group, caption=caption, caption_entities=mention)
    (reply,) = await emu.wait_for_sent(group["id"])
    assert cited(reply) == "2.1"


# --- other bots -----------------------------------------------------------------------------


async def test_a_bots_message_in_a_group_is_ignored(app: Any, emu: BotApiEmulator) -> None:
    group = group_chat()
    other_bot = {"id": next(_ids), "is_bot": True, "first_name": "Echo", "username": "echo_bot"}
    mention = f"@{emu.bot_username} 合同有效期多久？"
    emu.user_message(mention, user=other_bot, chat=group)
    emu.user_message(f"/start@{emu.bot_username}", user=other_bot, chat=group)
    await emu.expect_silence(group["id"], 1.0)
    assert cited(await ask(emu, mention, new_user(), chat=group)) == "2.1"  # people are answered


# --- typing ---------------------------------------------------------------------------------


class _Slow:
    """The real retriever, a second slower (a busy machine, a reload in progress)."""

    def __init__(self, retriever: Any, delay: float) -> None:
        self._retriever = retriever
        self.delay = delay
        self.knowledge = retriever.knowledge

    def search(self, question: str, k: int = 5) -> Retrieval:
        time.sleep(self.delay)
        return self._retriever.search(question, k)  # type: ignore[no-any-return]

    def search_many(self, questions: list[str], k: int = 5) -> list[Retrieval]:
        time.sleep(self.delay)
        return self._retriever.search_many(questions, k)  # type: ignore[no-any-return]


async def test_typing_is_shown_when_an_answer_takes_a_while(
    app: Any, emu: BotApiEmulator, retriever: RetrieverLike
) -> None:
    user = new_user()
    before = len(emu.chat_actions)
    await ask(emu, "合同有效期多久？", user)
    assert len(emu.chat_actions) == before  # ready at once: no extra request
    state = app.bot_data["state"]
    state.retriever = _Slow(retriever, 1.0)
    mark = len(emu.calls)
    try:
        reply = await ask(emu, "甲方什么时候付款？", user)
    finally:
        state.retriever = retriever
    assert cited(reply) == "3.2"
    actions = emu.chat_actions[before:]
    assert [(a["chat_id"], a["action"]) for a in actions] == [(user["id"], "typing")]
    calls = [c.method.lower() for c in emu.calls[mark:] if c.method.lower() != "getupdates"]
    assert calls == ["sendchataction", "sendmessage"]


class _FakeBot:
    def __init__(self) -> None:
        self.actions: list[tuple[int, str]] = []

    async def send_chat_action(self, chat_id: int, action: str) -> bool:
        self.actions.append((chat_id, action))
        return True


class _FakeContext:
    def __init__(self) -> None:
        self.bot = _FakeBot()


async def test_with_typing_only_after_a_moment() -> None:
    context = _FakeContext()

    async def work(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "answer"

    assert await with_typing(context, 7, work(0.0), after=0.2) == "answer"  # type: ignore[arg-type]
    assert context.bot.actions == []
    assert await with_typing(context, 7, work(0.4), after=0.1) == "answer"  # type: ignore[arg-type]
    assert context.bot.actions == [(7, "typing")]


# --- albums on their own --------------------------------------------------------------------


def _update(update_id: int, caption: str | None = None) -> Update:
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": 0,
        "chat": {"id": 1, "type": "private"},
        "media_group_id": "g",
        "photo": [{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}],
    }
    if caption:
        message["caption"] = caption
    return Update.de_json({"update_id": update_id, "message": message}, None)  # type: ignore[arg-type]


def test_albums_collect_once_and_remember_answered_ones() -> None:
    albums = Albums()
    first, second, third = _update(1), _update(2, "合同有效期多久？"), _update(3)
    assert albums.add("g", first, now=0.0) is True  # the first item schedules the reply
    assert albums.add("g", second, now=0.1) is False
    assert albums.add("g", third, now=0.2) is False
    items = albums.take("g", now=0.8)
    assert items == [first, second, third]
    assert album_reply_to(items) is second  # the captioned item is the question
    assert album_reply_to([first, third]) is first
    assert albums.add("g", _update(4), now=1.0) is False  # a straggler stays silent
    assert albums.add("g", _update(5), now=ALBUM_MEMORY + 1.0) is True  # long forgotten
