"""/privacy and /forget, as a user sees them (both languages, in the menu)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from emulator import BotApiEmulator
from harness import App, ask, bot_running, make_settings, new_user

from bot.answers.language import detect_language
from bot.settings import Settings
from bot.storage.sqlite import SqliteStorage
from bot.telegram.format import RetrieverLike


@pytest.fixture(scope="module")
def storage_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("privacy") / "bot.sqlite3"


@pytest.fixture(scope="module")
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
async def app(
    emu: BotApiEmulator, storage_path: Path, settings: Settings, retriever: RetrieverLike
) -> AsyncIterator[App]:
    async with bot_running(make_settings(settings, emu, storage_path), retriever) as (bot, _):
        yield bot


@pytest.fixture(autouse=True)
def _fresh(emu: BotApiEmulator) -> Iterator[None]:
    emu.reset()
    yield


async def test_both_commands_are_in_both_menus(app: App, emu: BotApiEmulator) -> None:
    for commands in emu.commands.values():
        assert {"privacy", "forget"} <= {c["command"] for c in commands}


async def test_privacy_says_what_is_kept_why_and_how_long_in_the_users_language(
    app: App, emu: BotApiEmulator
) -> None:
    (zh,) = await ask(emu, "/privacy", new_user("zh-hans"))
    assert "90 天" in zh.text and "/forget" in zh.text and detect_language(zh.text) == "zh-Hans"
    (hant,) = await ask(emu, "/privacy", new_user("zh-hant"))
    assert detect_language(hant.text) == "zh-Hant" and "90 天" in hant.text
    (en,) = await ask(emu, "/privacy", new_user("en"))
    assert "90 days" in en.text and "user id" in en.text and detect_language(en.text) == "en"


async def test_forget_deletes_what_was_stored_and_says_what(
    app: App, emu: BotApiEmulator, storage_path: Path
) -> None:
    user, other = new_user("en"), new_user()
    (prompt,) = await ask(emu, "/lang", user)
    await emu.wait_for_callback_answer(emu.press_button(prompt, "l:en", user=user))
    (reply,) = await ask(emu, "How long is the agreement valid?", user)
    await ask(emu, "What if Party A pays late?", user)
    up = next(b for b in reply.buttons() if b["callback_data"].startswith("v:+"))
    await emu.wait_for_callback_answer(emu.press_button(reply, up["callback_data"], user=user))
    await ask(emu, "合同有效期多久？", other)

    (done,) = await ask(emu, "/forget", user)
    assert "2 questions" in done.text and "1 votes" in done.text and "language" in done.text

    storage = SqliteStorage(storage_path)
    dump = "\n".join(storage._db.iterdump())
    assert "How long is the agreement valid?" not in dump
    assert storage.user_hash(user["id"]) not in dump
    assert "合同有效期多久？" in dump  # other users' records stay
    assert storage.stats().questions >= 3  # the counts stay
    # the old buttons now say so
    answer = await emu.wait_for_callback_answer(
        emu.press_button(reply, up["callback_data"], user=user)
    )
    assert "expired" in answer["text"]
    (again,) = await ask(emu, "/forget", user)
    assert "Nothing was stored" in again.text
