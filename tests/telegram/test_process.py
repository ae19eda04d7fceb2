"""The real `contract-bot telegram` process against the emulator: polling and webhook mode.

Started as a user would (``python -m bot telegram`` with BOT_* variables), talked to through the
emulator, stopped with SIGINT / SIGTERM: it must exit 0 and never print the token.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from emulator import BotApiEmulator, make_user

from bot.settings import ROOT, Settings

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

START_TIMEOUT = 90.0  # importing torch and loading the model on a busy 2-core CI machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start(
    emu: BotApiEmulator, tmp_path: Path, settings: Settings, **env: str
) -> asyncio.subprocess.Process:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("BOT_")
    } | {
        "BOT_TELEGRAM_TOKEN": emu.token,
        "BOT_TELEGRAM_API_URL": emu.base_url,
        "BOT_STORAGE_PATH": str(tmp_path / "bot.sqlite3"),
        "BOT_INDEX_DIR": str(settings.index_dir),  # the session's index (see conftest)
        "BOT_LOG_LEVEL": "INFO",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **env,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "telegram",
        cwd=tmp_path,  # settings anchor relative paths at the repo root, not the cwd
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _stop(process: asyncio.subprocess.Process, sig: signal.Signals) -> tuple[int, str]:
    process.send_signal(sig)
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, output.decode("utf-8", "replace")


async def _ask_until_answered(emu: BotApiEmulator, process: asyncio.subprocess.Process) -> str:
    """Ask once the bot is up; returns the answer text."""
    user = make_user(31337, "Proc", language_code="zh-hans")
    await emu.wait_until(
        lambda: emu.commands or process.returncode is not None, timeout=START_TIMEOUT
    )
    if process.returncode is not None:
        assert process.stdout is not None
        output = (await process.stdout.read()).decode("utf-8", "replace")
        raise AssertionError(f"the bot exited during start-up:\n{output}")
    emu.user_message("合同有效期多久？", user=user)
    (reply,) = await emu.wait_for_sent(user["id"], timeout=30)
    return reply.text


async def test_polling_process_answers_and_stops_on_sigint(
    tmp_path: Path, settings: Settings, built_index: object
) -> None:
    async with BotApiEmulator() as emu:
        process = await _start(emu, tmp_path, settings)
        try:
            text = await _ask_until_answered(emu, process)
        except BaseException:
            if process.returncode is None:
                process.kill()
            raise
        code, output = await _stop(process, signal.SIGINT)
    assert "第2.1条" in text
    assert code == 0, output
    assert emu.token not in output and emu.token.split(":")[1] not in output
    assert emu.calls_of("getUpdates"), "the bot did not long-poll"
    assert (tmp_path / "bot.sqlite3").exists()


async def test_webhook_process_answers_and_stops_on_sigterm(
    tmp_path: Path, settings: Settings, built_index: object
) -> None:
    port = _free_port()
    async with BotApiEmulator() as emu:
        process = await _start(
            emu,
            tmp_path,
            settings,
            BOT_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/hook",
            BOT_WEBHOOK_LISTEN="127.0.0.1",
            BOT_WEBHOOK_PORT=str(port),
            BOT_WEBHOOK_SECRET="s3cret-Token_1",
        )
        try:
            await emu.wait_until(
                lambda: emu.calls_of("setWebhook") or process.returncode is not None,
                timeout=START_TIMEOUT,
            )
            text = await _ask_until_answered(emu, process)
            # the webhook request is answered once the update is handled, after the reply
            await emu.wait_until(lambda: emu.webhook_deliveries, timeout=10)
        except BaseException:
            if process.returncode is None:
                process.kill()
            raise
        hook = emu.calls_of("setWebhook")[-1].params
        deliveries = list(emu.webhook_deliveries)
        code, output = await _stop(process, signal.SIGTERM)
    assert "第2.1条" in text
    assert hook["url"].endswith("/telegram/hook") and hook["secret_token"] == "s3cret-Token_1"
    assert deliveries and deliveries[-1][1] == 200
    assert not emu.calls_of("getUpdates")
    assert code == 0, output
    assert emu.token not in output and "s3cret-Token_1" not in output


@pytest.mark.parametrize("token", [""])
async def test_without_token_it_says_so(tmp_path: Path, token: str) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "telegram",
        cwd=ROOT,
        env=environment | {"BOT_TELEGRAM_TOKEN": token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2 and b"BOT_TELEGRAM_TOKEN" in output


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_stop_signal_during_five_answers_still_gives_five_answers(
    tmp_path: Path, settings: Settings, built_index: object, mode: str
) -> None:
    env: dict[str, str] = {}
    if mode == "webhook":
        port = _free_port()
        env = {
            "BOT_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
            "BOT_WEBHOOK_PORT": str(port),
            "BOT_WEBHOOK_SECRET": "s3cret",
        }
    users = [make_user(32000 + n, f"U{n}", language_code="zh-hans") for n in range(5)]
    async with BotApiEmulator() as emu:
        process = await _start(emu, tmp_path, settings, **env)
        try:
            await emu.wait_until(
                lambda: emu.commands or process.returncode is not None, timeout=START_TIMEOUT
            )
            assert process.returncode is None, "the bot exited during start-up"
            emu.inject("sendMessage", status=None, delay=1.5, times=5)  # answers take a while
            for user in users:
                emu.user_message("合同有效期多久？", user=user)
            await emu.wait_until(lambda: _sending(emu, 5), timeout=60)
            assert not emu.sent  # all five still on their way
        except BaseException:
            if process.returncode is None:
                process.kill()
            raise
        code, output = await _stop(process, signal.SIGTERM)
        answered = sorted(s.chat_id for s in emu.sent)
        pending = emu.pending_updates
    assert code == 0, output
    assert answered == [u["id"] for u in users], output
    assert pending == []  # and acknowledged, so a restart does not answer them again
    assert "finishing 5 updates" in output


def _sending(emu: BotApiEmulator, n: int) -> bool:
    """Whether ``n`` sendMessage requests have reached the emulator (it records a call when it
    answers, so count the requests the bot has made: the delayed ones are in flight)."""
    return emu.requests_in_flight("sendMessage") >= n
