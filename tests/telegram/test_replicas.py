"""Two real ``contract-bot telegram`` webhook replicas behind a real nginx, sharing a real
PostgreSQL, with the Bot API emulator posting Telegram's updates to the proxy.

What a user of a scaled-out bot relies on: a ``/lang`` choice made through one replica holds on
the other, a vote cast on one is counted by ``/stats`` on the other, the per-user rate limit
holds across both, ``/reload all`` reaches both, and killing one replica mid-run loses no update
(the proxy passes the update on to the other). Each replica serves ``/healthz`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from emulator import BotApiEmulator, Sent, make_user

from bot.settings import Settings
from tests.servers import Nginx, Postgres, free_port, nginx_missing_reason, nginx_proxy

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

ADMIN = 4242
SECRET = "fleet-Secret_42"
RATE_LIMIT = 4
START_TIMEOUT = 180.0  # two processes loading the model at once on a busy 2-core machine

pytestmark = pytest.mark.skipif(
    nginx_missing_reason() is not None, reason=str(nginx_missing_reason())
)


@dataclass
class Replica:
    name: str
    port: int
    process: asyncio.subprocess.Process
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


async def _get(url: str) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def _start(name: str, emu: BotApiEmulator, env: dict[str, str], tmp_path: Path) -> Replica:
    port = free_port()
    log = tmp_path / f"{name}.log"
    environment = (
        {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
        | env
        | {
            "BOT_WEBHOOK_PORT": str(port),
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "telegram",
        cwd=tmp_path, env=environment,
        stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    return Replica(name, port, process, log)


async def _healthy(replica: Replica) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    while True:
        if replica.process.returncode is not None:
            raise AssertionError(f"{replica.name} exited at start-up:\n{replica.output()}")
        try:
            status, body = await _get(f"{replica.url}/healthz")
            if status == 200:
                report: dict[str, Any] = json.loads(body)
                return report
        except (aiohttp.ClientError, TimeoutError):
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{replica.name} never became healthy:\n{replica.output()}")
        await asyncio.sleep(0.5)


async def _set_webhook(emu: BotApiEmulator, url: str) -> None:
    """What `contract-bot webhook set` does (tested on its own in test_webhook.py)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{emu.base_url}{emu.token}/setWebhook",
            json={"url": url, "secret_token": SECRET},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()


@dataclass
class Fleet:
    emu: BotApiEmulator
    replicas: list[Replica]
    proxy: Nginx

    async def route_to(self, target: Replica | Nginx) -> None:
        """Telegram posts the next updates to one replica directly, or to the proxy."""
        base = target.url
        await _set_webhook(self.emu, f"{base}/telegram/hook")


@pytest.fixture(scope="module")
def replica_env(
    postgres: Postgres, settings: Settings, built_index: object
) -> Iterator[dict[str, str]]:
    url = postgres.create_database("replicas")
    yield {
        "BOT_STORAGE_URL": url,
        "BOT_USER_ID_KEY": "the key every replica shares",
        "BOT_INDEX_DIR": str(settings.index_dir),  # the session's index (see conftest)
        "BOT_WEBHOOK_LISTEN": "127.0.0.1",
        "BOT_WEBHOOK_SECRET": SECRET,
        "BOT_WEBHOOK_REGISTER": "false",
        "BOT_USER_RATE_LIMIT": str(RATE_LIMIT),
        "BOT_ADMIN_IDS": str(ADMIN),
        "BOT_LOG_LEVEL": "INFO",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


@asynccontextmanager
async def fleet(env: dict[str, str], tmp_path: Path) -> AsyncIterator[Fleet]:
    async with BotApiEmulator() as emu:
        replicas: list[Replica] = []
        proxy_port = free_port()
        common = env | {
            "BOT_TELEGRAM_TOKEN": emu.token,
            "BOT_TELEGRAM_API_URL": emu.base_url,
            "BOT_WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}/telegram/hook",
        }
        try:
            for name in ("a", "b"):
                replicas.append(await _start(name, emu, common, tmp_path))
            await asyncio.gather(*(_healthy(r) for r in replicas))
            with nginx_proxy(tmp_path / "nginx", [r.port for r in replicas], proxy_port) as proxy:
                yield Fleet(emu, replicas, proxy)
        finally:
            for replica in replicas:
                if replica.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        replica.process.send_signal(signal.SIGTERM)
            for replica in replicas:
                try:
                    await asyncio.wait_for(replica.process.wait(), 30)
                except TimeoutError:
                    replica.process.kill()


async def _reply(emu: BotApiEmulator, user: dict[str, Any], n: int = 1) -> list[Sent]:
    return await emu.wait_for_sent(user["id"], n=n, timeout=60)


async def test_two_replicas_behind_nginx_share_everything_and_lose_nothing(
    replica_env: dict[str, str], tmp_path: Path
) -> None:
    async with fleet(replica_env, tmp_path) as f:
        emu, (a, b) = f.emu, f.replicas
        assert a.process.returncode is None and b.process.returncode is None
        assert not emu.calls_of("setWebhook"), "replicas must not register the webhook"

        # --- /healthz and /metrics on each replica
        status, body = await _get(f"{a.url}/healthz")
        report = json.loads(body)
        assert status == 200 and report["storage"] == "ok" and report["index"]["build"]
        assert SECRET not in body and replica_env["BOT_STORAGE_URL"] not in body

        # --- a /lang choice made through one replica holds on the other
        user = make_user(900_001, "Lin", language_code="zh-hans")
        await f.route_to(a)
        emu.user_message("/lang", user=user)
        (prompt,) = await _reply(emu, user)
        emu.press_button(prompt, "l:en", user=user)
        await emu.wait_until(lambda: emu.callback_answers, timeout=30)
        await f.route_to(b)
        emu.user_message("合同有效期多久？", user=user)
        (answer,) = await _reply(emu, user)
        assert "Clause 2.1" in answer.text  # English, as chosen through the other replica

        # --- a vote cast on one is counted by /stats on the other
        vote = next(
            b["callback_data"] for b in answer.buttons() if b["callback_data"].startswith("v:+")
        )
        emu.press_button(answer, vote, user=user)
        await emu.wait_until(lambda: len(emu.callback_answers) >= 2, timeout=30)
        await f.route_to(a)
        admin = make_user(ADMIN, "Admin", language_code="en")
        emu.user_message("/stats", user=admin)
        (stats,) = await _reply(emu, admin)
        assert "👍 1" in stats.text, stats.text

        # --- /reload all reaches both replicas
        emu.user_message("/reload all", user=admin)
        await _reply(emu, admin)
        await emu.wait_until(
            lambda: all("reloaded (requested through storage" in r.output() for r in (a, b)),
            timeout=60,
        )

        # --- the per-user rate limit holds across both (the proxy alternates between them)
        await f.route_to(f.proxy)
        hasty = make_user(900_002, "Hasty", language_code="en")
        for n in range(2 * RATE_LIMIT):
            emu.user_message(("2.1", "2.2", "7.1", "7.2")[n % 4], user=hasty)  # short answers
        await emu.wait_until(lambda: len(emu.sent_to(hasty["id"])) >= RATE_LIMIT + 1, timeout=90)
        await emu.expect_silence(hasty["id"], 2.0)
        replies = emu.sent_to(hasty["id"])
        notices = [s for s in replies if "very fast" in s.text]
        assert len(replies) == RATE_LIMIT + 1 and len(notices) == 1, [s.text[:40] for s in replies]

        # --- killing one replica mid-run loses no update
        users = [make_user(910_000 + n, f"U{n}", language_code="zh-hans") for n in range(10)]
        for n, someone in enumerate(users):
            emu.user_message("甲方什么时候付款？", user=someone)
            if n == 3:
                a.process.kill()
            await asyncio.sleep(0.2)
        await emu.wait_until(lambda: all(emu.sent_to(u["id"]) for u in users), timeout=120)
        assert all("第3.2条" in emu.sent_to(u["id"])[0].text for u in users)
        assert b.process.returncode is None
        status, metrics = await _get(f"{b.url}/metrics")
        assert status == 200 and "contract_bot_questions_total{" in metrics
        assert 'contract_bot_index_info{build="' in metrics
