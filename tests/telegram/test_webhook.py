"""``contract-bot webhook set | info | delete`` against the Bot API emulator, as an operator runs
it once for a fleet of replicas."""

from __future__ import annotations

import asyncio
import os
import sys

from emulator import BotApiEmulator

from bot.settings import ROOT

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


async def _cli(emu: BotApiEmulator, *args: str, **env: str) -> tuple[int, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | {
        "BOT_TELEGRAM_TOKEN": emu.token,
        "BOT_TELEGRAM_API_URL": emu.base_url,
        "BOT_LOG_LEVEL": "WARNING",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "webhook", *args,
        cwd=ROOT, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_set_info_delete() -> None:
    hook = "https://bot.example.com/telegram/hook"
    async with BotApiEmulator() as emu:
        code, output = await _cli(
            emu, "set", BOT_WEBHOOK_URL=hook, BOT_WEBHOOK_SECRET="fleet-Secret_1"
        )
        assert code == 0, output
        (call,) = emu.calls_of("setWebhook")
        assert call.params["url"] == hook and call.params["secret_token"] == "fleet-Secret_1"
        assert "message" in call.params["allowed_updates"]
        code, output = await _cli(emu, "info")
        assert code == 0 and hook in output and "fleet-Secret_1" not in output
        code, output = await _cli(emu, "delete")
        assert code == 0 and emu.calls_of("deleteWebhook")
        assert emu.token not in output


async def test_set_without_a_shared_secret_says_so() -> None:
    async with BotApiEmulator() as emu:
        code, output = await _cli(emu, "set", BOT_WEBHOOK_URL="https://bot.example.com/hook")
        assert code == 2 and "BOT_WEBHOOK_SECRET" in output
        assert not emu.calls_of("setWebhook")
