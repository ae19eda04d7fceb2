"""The Bot API over aiohttp: real requests to the emulator, files as multipart, and failures as
python-telegram-bot's errors (which the sender retries) with the token never in them."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from emulator import DEFAULT_TOKEN, BotApiEmulator
from telegram import Bot, InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.telegram.request import AiohttpRequest


@pytest.fixture(scope="module")
async def emu() -> AsyncIterator[BotApiEmulator]:
    async with BotApiEmulator() as emulator:
        yield emulator


async def test_a_bot_talks_to_the_api_through_it(emu: BotApiEmulator) -> None:
    chat = emu.user_message("hello")["chat"]["id"]
    bot = Bot(DEFAULT_TOKEN, base_url=emu.base_url, request=AiohttpRequest(2))
    async with bot:
        me = await bot.get_me()
        sent = await bot.send_message(chat, "你好 <b>世界</b>", parse_mode="HTML")
    assert me.is_bot
    assert sent.text == "你好 世界"
    assert emu.calls_of("sendMessage")[-1].params["chat_id"] == chat


async def test_files_go_as_multipart(emu: BotApiEmulator) -> None:
    chat = emu.user_message("hello")["chat"]["id"]
    request = AiohttpRequest()
    await request.initialize()
    try:
        data = RequestData(
            [
                RequestParameter.from_input("chat_id", chat),
                RequestParameter.from_input("text", "with a file"),
                RequestParameter.from_input(
                    "document", InputFile(b"%PDF-1.4 ...", filename="a.pdf")
                ),
            ]
        )
        assert data.contains_files
        status, body = await request.do_request(
            f"{emu.base_url}{DEFAULT_TOKEN}/sendMessage", "POST", data
        )
    finally:
        await request.shutdown()
    assert status == 200, body
    assert emu.calls_of("sendMessage")[-1].params["text"] == "with a file"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_api_is_a_network_error_without_the_token() -> None:
    request = AiohttpRequest(connect_timeout=2.0)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{_free_port()}/bot{DEFAULT_TOKEN}/getMe")
    finally:
        await request.shutdown()
    assert DEFAULT_TOKEN not in str(caught.value)
    assert DEFAULT_TOKEN.split(":")[1] not in repr(caught.value)


async def test_a_silent_api_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1000)
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = AiohttpRequest(read_timeout=0.2, write_timeout=0.1)
    await request.initialize()
    try:
        with pytest.raises(TimedOut) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot{DEFAULT_TOKEN}/getMe")
    finally:
        await request.shutdown()
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
    assert DEFAULT_TOKEN not in str(caught.value)


async def test_it_is_refused_before_initialize() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest().do_request("http://127.0.0.1:1/botX/getMe", "POST")
