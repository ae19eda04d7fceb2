"""Odd input the handlers must take in their stride: digits of other scripts wherever a number
is read (commands, callback data, admin arguments) get a normal reply, never the apology or a
traceback."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import AsyncIterator, Iterator

import pytest
from emulator import BotApiEmulator, make_user
from harness import ADMIN, App, ask, bot_running, make_settings, new_user, tracebacks

from bot.settings import Settings
from bot.telegram.format import RetrieverLike

#: Digits str.isdigit() accepts but int() refuses (Ethiopic, Kharoshthi, superscript, circled).
ODD_DIGITS = ["፩", "𐩀", "²", "①", "٣", "१२"]
APOLOGY = ("出错", "went wrong")


@pytest.fixture(scope="module")
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
async def app(
    emu: BotApiEmulator,
    tmp_path_factory: pytest.TempPathFactory,
    settings: Settings,
    retriever: RetrieverLike,
) -> AsyncIterator[App]:
    path = tmp_path_factory.mktemp("handlers") / "bot.sqlite3"
    bot_settings = make_settings(settings, emu, path, user_rate_limit=100)
    async with bot_running(bot_settings, retriever) as (application, _):
        yield application


@pytest.fixture(autouse=True)
def _fresh(emu: BotApiEmulator, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    emu.reset()
    caplog.set_level(logging.INFO)
    yield


def _no_error(caplog: pytest.LogCaptureFixture) -> None:
    assert not tracebacks(caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("digit", ODD_DIGITS)
async def test_clause_and_term_with_odd_digits(
    app: App, emu: BotApiEmulator, caplog: pytest.LogCaptureFixture, digit: str
) -> None:
    user = new_user()
    for command in (f"/clause {digit}", f"/clause {digit}.{digit}", f"第{digit}条", digit):
        (reply,) = await ask(emu, command, user)
        assert not any(a in reply.text for a in APOLOGY), (command, reply.text)
    _no_error(caplog)


async def test_full_width_and_superscript_digits_read_as_numbers(
    app: App, emu: BotApiEmulator
) -> None:
    user = new_user()
    (reply,) = await ask(emu, "/clause ３.２", user)
    assert "第3.2条" in reply.text


@pytest.mark.parametrize("digit", ODD_DIGITS)
async def test_example_buttons_with_odd_digits(
    app: App, emu: BotApiEmulator, caplog: pytest.LogCaptureFixture, digit: str
) -> None:
    user = new_user("en")
    (welcome,) = await ask(emu, "/start", user)
    query = emu.press_button(welcome, f"q:{digit}:en", user=user, check=False)
    answer = await emu.wait_for_callback_answer(query)
    text = answer.get("text") or ""
    assert not any(a in text for a in APOLOGY)
    if unicodedata.normalize("NFKC", digit).isascii():  # ² and ① read as 2 and 1: answered
        (reply,) = await emu.wait_for_sent(user["id"])
        assert not any(a in reply.text for a in APOLOGY)
    else:
        assert "expired" in text
    _no_error(caplog)


@pytest.mark.parametrize("digit", [*ODD_DIGITS, "9" * 5000])
async def test_admin_unanswered_with_odd_digits(
    app: App, emu: BotApiEmulator, caplog: pytest.LogCaptureFixture, digit: str
) -> None:
    admin = make_user(ADMIN, "Admin", language_code="en")
    (reply,) = await ask(emu, f"/unanswered {digit}", admin)
    assert not any(a in reply.text for a in APOLOGY)
    _no_error(caplog)
