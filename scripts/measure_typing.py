"""What the typing indicator costs, and how often an answer takes long enough to need it.

- answer time: ``answer_turn`` (retrieval in context included) over every question of the dev
  dialogues, one at a time, as a bot answers them; how many exceed ``TYPING_AFTER``;
- one ``sendChatAction`` and one ``sendMessage`` through python-telegram-bot and
  ``AIORateLimiter`` against the local Bot API emulator (loopback: this is our side of the
  cost; a real Bot API adds its network round trip to each);
- a group's rate budget: AIORateLimiter counts chat actions against the per-group limit like
  messages. With the limit scaled down (``--group-rate`` messages per ``--group-period``
  seconds instead of 20 a minute), the time to deliver ``--answers`` answers with and without a
  chat action before each.

    scripts/measure_typing.py [--answers 8] [--group-rate 4] [--group-period 2]

Figures taken on a machine shared with other work vary; run it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bot.settings import Settings  # noqa: E402


def percentiles(samples: Sequence[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms"
    )


def answer_times(settings: Settings) -> tuple[list[float], list[float]]:
    """Seconds per answer over the dev dialogues' questions: each on its own (``answer``), and
    in its dialogue (``answer_turn``, a follow-up retrieved in context)."""
    import tomllib

    from bot.answers.compose import answer
    from bot.answers.dialogue import answer_turn
    from bot.answers.language import resolve_language
    from bot.search.retrieval import Retriever

    retriever = Retriever.load(settings)
    with (ROOT / "tests" / "data" / "dialogues_dev.toml").open("rb") as handle:
        dialogues = tomllib.load(handle)["dialogue"]
    answer("合同有效期多久？", retriever)  # warm up
    alone, in_dialogue = [], []
    for dialogue in dialogues:
        context = None
        for turn in dialogue["turn"]:
            language = resolve_language(None, None, turn["text"], None)
            started = time.perf_counter()
            answer(turn["text"], retriever, language=language)
            alone.append(time.perf_counter() - started)
            started = time.perf_counter()
            reply = answer_turn(turn["text"], retriever, context, language=language, now=0.0)
            in_dialogue.append(time.perf_counter() - started)
            context = reply.turn or context
    return alone, in_dialogue


async def api_costs(args: argparse.Namespace) -> None:
    from emulator import BotApiEmulator, make_user
    from telegram import Bot
    from telegram.constants import ChatAction
    from telegram.ext import AIORateLimiter, ExtBot

    from bot.telegram.conversation import TYPING_AFTER

    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    async with BotApiEmulator() as emu:
        user = make_user(1, "User")
        emu.user_message("hi", user=user)  # the emulator knows chats that wrote to the bot
        group_id = -100123
        group = {"id": group_id, "type": "supergroup", "title": "group"}
        emu.user_message("hi", user=user, chat=group)
        bot: Bot = ExtBot(emu.token, base_url=emu.base_url, rate_limiter=AIORateLimiter())
        async with bot:
            for method, call in (
                ("sendChatAction", lambda: bot.send_chat_action(1, ChatAction.TYPING)),
                ("sendMessage", lambda: bot.send_message(1, "合同有效期为__年。")),
            ):
                await call()
                samples = []
                for _ in range(args.calls):
                    started = time.perf_counter()
                    await call()
                    samples.append(time.perf_counter() - started)
                print(f"{method:<15} via AIORateLimiter, loopback: {percentiles(samples)}")
        limiter = AIORateLimiter(
            group_max_rate=args.group_rate, group_time_period=args.group_period
        )
        bot = ExtBot(emu.token, base_url=emu.base_url, rate_limiter=limiter)
        async with bot:
            for typing in (False, True):
                await asyncio.sleep(args.group_period)  # an empty bucket for each run
                started = time.perf_counter()
                for _ in range(args.answers):
                    if typing:
                        await bot.send_chat_action(group_id, ChatAction.TYPING)
                    await bot.send_message(group_id, "answer")
                label = "with typing" if typing else "without typing"
                print(
                    f"{args.answers} answers to a group limited to {args.group_rate} per "
                    f"{args.group_period:g} s, {label}: {time.perf_counter() - started:.1f} s"
                )
    print(f"(typing is sent only when an answer is not ready after {TYPING_AFTER:g} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--answers", type=int, default=8)
    parser.add_argument("--group-rate", type=int, default=4)
    parser.add_argument("--group-period", type=float, default=2.0)
    args = parser.parse_args(argv)

    from bot.telegram.conversation import TYPING_AFTER

    alone, times = answer_times(Settings())
    slow = sum(t > TYPING_AFTER for t in times)
    print(f"answer, each of {len(alone)} dev dialogue questions alone: {percentiles(alone)}")
    print(f"answer_turn, the same in their dialogues:   {percentiles(times)}")
    print(f"  slower than {TYPING_AFTER:g} s (would get the typing indicator): {slow}")
    asyncio.run(api_costs(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
