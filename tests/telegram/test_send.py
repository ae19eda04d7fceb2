"""Outgoing requests: the retry policy on hand-made inputs, then every fault Telegram can throw
at a reply, played by the emulator against the real Application (answers are retried, a
migrated group is found again, a blocked user costs one quiet log line)."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Iterator

import pytest
from emulator import BotApiEmulator
from harness import App, ask, bot_running, cited, make_settings, new_user, tracebacks
from telegram.error import BadRequest, Forbidden, NetworkError

from bot.settings import Settings
from bot.telegram.format import RetrieverLike
from bot.telegram.send import RetryPolicy, is_unreachable

# --- the policy ------------------------------------------------------------------------------


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(7)
    for failures, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)):
        delays = {round(policy.backoff(failures, rng), 6) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (failures, delays)
        assert len(delays) > 1  # jitter: retries of many requests do not fall in step


def test_default_policy_fits_in_about_a_minute() -> None:
    policy = RetryPolicy()
    worst = sum(policy.backoff(n, random.Random(0)) for n in range(1, policy.tries))
    assert policy.tries == 5 and worst <= policy.deadline


def test_unreachable_chats_are_told_apart_from_our_own_bad_requests() -> None:
    assert is_unreachable(Forbidden("Forbidden: bot was blocked by the user"))
    assert is_unreachable(BadRequest("Bad Request: chat not found"))
    assert not is_unreachable(BadRequest("Bad Request: can't parse entities"))
    assert not is_unreachable(NetworkError("Bad Gateway"))


# --- faults, end to end ----------------------------------------------------------------------


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
    path = tmp_path_factory.mktemp("send") / "bot.sqlite3"
    bot_settings = make_settings(settings, emu, path, user_rate_limit=100)
    async with bot_running(bot_settings, retriever) as (application, _):
        yield application


@pytest.fixture(autouse=True)
def _fresh(emu: BotApiEmulator, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    emu.reset()
    caplog.set_level(logging.INFO)
    yield


def _sends(emu: BotApiEmulator, chat_id: int) -> list[int]:
    return [c.status for c in emu.calls_of("sendMessage") if c.params.get("chat_id") == chat_id]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_one_5xx_is_retried(
    app: App, emu: BotApiEmulator, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    user = new_user()
    emu.inject("sendMessage", status=status)
    (reply,) = await ask(emu, "合同有效期多久？", user)
    assert cited(reply) == "2.1"
    assert _sends(emu, user["id"]) == [status, 200]
    assert "will retry" in caplog.text and "gave up" not in caplog.text
    assert not tracebacks(caplog.records)


async def test_three_5xx_in_a_row_are_retried(
    app: App, emu: BotApiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    user = new_user()
    emu.inject("sendMessage", status=500, times=3)
    (reply,) = await ask(emu, "甲方什么时候付款？", user)
    assert cited(reply)
    assert _sends(emu, user["id"]) == [500, 500, 500, 200]
    assert caplog.text.count("will retry") == 3


async def test_four_429s_in_a_row_are_waited_out(
    app: App, emu: BotApiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    user = new_user()
    emu.inject("sendMessage", status=429, retry_after=1, times=4)
    (reply,) = await ask(emu, "合同有效期多久？", user, timeout=30)
    assert cited(reply) == "2.1"
    assert _sends(emu, user["id"]) == [429, 429, 429, 429, 200]
    assert not tracebacks(caplog.records)


async def test_a_reply_that_never_goes_through_is_logged_as_given_up(
    app: App, emu: BotApiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    user = new_user()
    emu.inject("sendMessage", status=503, times=5)
    emu.user_message("合同有效期多久？", user=user)
    await emu.wait_until(lambda: len(_sends(emu, user["id"])) == 5, timeout=30)
    await emu.wait_until(lambda: "gave up" in caplog.text, timeout=5)
    given_up = next(r for r in caplog.records if "gave up" in r.getMessage())
    message = given_up.getMessage()
    assert given_up.levelno == logging.ERROR and "after 5 tries" in message
    assert "(answer " in message and "user " in message  # which answer, to whom (hashed)
    assert str(user["id"]) not in caplog.text
    assert not tracebacks(caplog.records)
    # the bot keeps answering
    (reply,) = await ask(emu, "合同有效期多久？", user)
    assert cited(reply) == "2.1"


async def test_a_group_that_became_a_supergroup_gets_its_answer(
    app: App, emu: BotApiEmulator
) -> None:
    user = new_user()
    group = {"id": -4_001, "type": "group", "title": "合同讨论"}
    emu.user_message("hello", user=user, chat=group)  # the group is known to Telegram
    supergroup = emu.migrate_chat(group, -100_4_001)
    mention = f"@{emu.bot_username} 合同有效期多久？"
    emu.user_message(mention, user=user, chat=group)  # received just before the upgrade
    (reply,) = await emu.wait_for_sent(supergroup["id"])
    assert cited(reply) == "2.1"
    # the next reply goes to the new id at once
    emu.user_message(mention, user=user, chat=group)
    await emu.wait_for_sent(supergroup["id"])
    old = [c for c in emu.calls_of("sendMessage") if c.params.get("chat_id") == group["id"]]
    assert [c.status for c in old] == [400]


async def test_a_user_who_blocked_the_bot_costs_one_quiet_log_line(
    app: App, emu: BotApiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    user = new_user()
    emu.user_message("你好", user=user)
    await emu.wait_for_sent(user["id"])
    emu.block(user["id"])
    emu.user_message("合同有效期多久？", user=user)
    await emu.wait_until(lambda: 403 in _sends(emu, user["id"]))
    await emu.wait_until(lambda: "not retried" in caplog.text, timeout=5)
    assert _sends(emu, user["id"]) == [200, 403]  # no retry, no apology
    assert not tracebacks(caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_chat_not_found_is_not_retried(
    app: App, emu: BotApiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    user = new_user()
    emu.inject("sendMessage", status=400, description="Bad Request: chat not found")
    emu.user_message("合同有效期多久？", user=user)
    await emu.wait_until(lambda: "not retried" in caplog.text, timeout=10)
    assert _sends(emu, user["id"]) == [400]
    assert not tracebacks(caplog.records)


async def test_edits_are_retried_too(app: App, emu: BotApiEmulator) -> None:
    user = new_user("en")
    (prompt,) = await ask(emu, "/lang", user)
    emu.inject("editMessageText", status=502)
    query = emu.press_button(prompt, "l:zh-Hant", user=user)
    await emu.wait_for_callback_answer(query)
    await emu.wait_until(lambda: prompt.edits > 0)
    assert [c.status for c in emu.calls_of("editMessageText")] == [502, 200]
