"""Quick checks of the Bot API emulator with a plain python-telegram-bot ``Bot``."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from emulator import BotApiEmulator, make_user, parse_html
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


@pytest.fixture
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: BotApiEmulator) -> AsyncIterator[Bot]:
    async with Bot(emu.token, base_url=emu.base_url) as b:
        yield b


async def test_get_me_and_wrong_token(emu: BotApiEmulator, bot: Bot) -> None:
    assert bot.username == emu.bot_username
    with pytest.raises(InvalidToken):
        async with Bot("999:wrong", base_url=emu.base_url):
            pass


async def test_unknown_method_is_400_not_invalid_token(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)method not found"):
        await bot.do_api_request("noSuchMethod")


async def test_long_poll_wakes_on_update_and_honours_offset(emu: BotApiEmulator, bot: Bot) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    emu.user_message("你好")
    updates = await poll
    assert time.monotonic() - started < 2
    assert [u.message.text for u in updates if u.message] == ["你好"]
    # confirming by offset removes it; an empty poll then waits the timeout
    started = time.monotonic()
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=1) == ()
    assert time.monotonic() - started >= 0.9


async def test_allowed_updates_filter(emu: BotApiEmulator, bot: Bot) -> None:
    emu.user_message("hello")
    emu.inline_query("违约金")
    updates = await bot.get_updates(allowed_updates=[Update.INLINE_QUERY])
    assert len(updates) == 1 and updates[0].inline_query is not None


async def test_shutdown_wakes_waiting_poll() -> None:
    emulator = await BotApiEmulator().start()
    bot = Bot(emulator.token, base_url=emulator.base_url)
    await bot.initialize()
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await emulator.stop()
    with pytest.raises(NetworkError):  # the server is gone; what matters is it did not hang
        await poll
        raise NetworkError("poll returned")
    assert time.monotonic() - started < 3
    await bot.shutdown()


async def test_send_message_records_and_validates(emu: BotApiEmulator, bot: Bot) -> None:
    msg = emu.user_message("hi", user=make_user(42))
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="v:+:1")]])
    reply = await bot.send_message(
        42, "<b>粗体</b> &amp; more", parse_mode="HTML", reply_markup=keyboard
    )
    assert reply.text == "粗体 & more" and reply.chat.id == 42
    (sent,) = await emu.wait_for_sent(42)
    assert sent.raw.startswith("<b>") and sent.button("ok")["callback_data"] == "v:+:1"
    with pytest.raises(BadRequest, match=r"(?i)text is empty"):
        await bot.send_message(42, "   ")
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(42, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)parse entities"):
        await bot.send_message(42, "<b>open", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)unsupported start tag"):
        await bot.send_message(42, "<br>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(7, "nobody here")
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        long_data = InlineKeyboardButton("x", callback_data="x" * 65)
        await bot.send_message(42, "x", reply_markup=InlineKeyboardMarkup([[long_data]]))
    # edits: same content is "not modified"
    await bot.edit_message_text("new", chat_id=42, message_id=reply.message_id)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("new", chat_id=42, message_id=reply.message_id)
    await bot.send_message(42, "reply", reply_to_message_id=msg["message_id"])


def test_parse_html() -> None:
    assert parse_html("<i>a</i> <a href='x'>b</a> &lt;c&gt;") == "a b <c>"
    for bad in ("<b><i>x</b></i>", "</b>", "a < b", "<p>x</p>"):
        with pytest.raises(Exception, match=r"(?i)parse entities"):
            parse_html(bad)


async def test_fault_injection_429_5xx_and_delay(emu: BotApiEmulator, bot: Bot) -> None:
    emu.user_message("hi", user=make_user(5))
    emu.inject("sendMessage", status=429, retry_after=3)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(5, "a")
    assert info.value.retry_after == 3
    emu.inject("sendMessage", status=502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(5, "a")
    emu.inject("sendMessage", status=None, delay=0.5)
    started = time.monotonic()
    await bot.send_message(5, "a")
    assert time.monotonic() - started >= 0.5
    assert [c.status for c in emu.calls_of("sendMessage")] == [429, 502, 200]


async def test_callbacks_inline_and_commands(emu: BotApiEmulator, bot: Bot) -> None:
    emu.user_message("hi", user=make_user(9))
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("👍", callback_data="v:+:1")]])
    message = await bot.send_message(9, "answer", reply_markup=keyboard)
    (sent,) = await emu.wait_for_sent(9)
    with pytest.raises(AssertionError):
        emu.press_button(sent, "nope")
    query_id = emu.press_button(sent, "v:+:1", user=make_user(9))
    updates = await bot.get_updates()
    query = updates[-1].callback_query
    assert query is not None and query.data == "v:+:1" and query.message is not None
    assert query.message.message_id == message.message_id
    await query.answer("thanks")
    assert (await emu.wait_for_callback_answer(query_id))["text"] == "thanks"
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await query.answer("again")

    await bot.set_my_commands([("start", "开始")], language_code="zh")
    assert [c.command for c in await bot.get_my_commands(language_code="zh")] == ["start"]
    assert await bot.get_my_commands() == ()


async def test_webhook_delivery_with_secret(emu: BotApiEmulator, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        with pytest.raises(Exception, match="Conflict"):
            await bot.get_updates()
        emu.user_message("via webhook")
        await emu.wait_until(lambda: received)
        secret, update = received[0]
        assert secret == "s3cret" and update["message"]["text"] == "via webhook"  # type: ignore[index]
        assert (await bot.get_webhook_info()).url.endswith("/hook")
        await bot.delete_webhook()
        emu.user_message("polled again")
        assert (await bot.get_updates())[0].message.text == "polled again"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def test_json_multipart_and_get_bodies(emu: BotApiEmulator) -> None:
    from aiohttp import ClientSession, FormData

    emu.user_message("hi", user=make_user(77))
    base = f"{emu.base_url}{emu.token}"
    async with ClientSession() as session:
        async with session.get(f"{base}/getMe") as resp:
            assert (await resp.json())["result"]["username"] == emu.bot_username
        payload = {"chat_id": 77, "text": "json body", "reply_markup": {"inline_keyboard": []}}
        async with session.post(f"{base}/sendMessage", json=payload) as resp:
            assert (await resp.json())["result"]["text"] == "json body"
        form = FormData()
        form.add_field("chat_id", "77")
        form.add_field("text", "12345")  # stays a string although it looks like JSON
        form.add_field("document", b"%PDF-1.4", filename="a.pdf")
        async with session.post(f"{base}/sendMessage", data=form) as resp:
            assert (await resp.json())["result"]["text"] == "12345"
        async with session.post(f"{emu.base_url}wrong:token/getMe") as resp:
            assert resp.status == 401
