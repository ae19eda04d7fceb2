"""Offered load against the real bot process through the Bot API emulator, for benchmarks.

The bot runs as users run it (``python -m bot telegram``, its own process, long polling the
emulator over HTTP on 127.0.0.1); this process plays the users: each question comes from a new
user (so the per-user limit never applies), at a steady rate or all at once, and the latency of
a question is from the moment its update is queued at the emulator to the bot's first reply to
that chat (what a user would wait)::

    async with BotApiEmulator() as emu, bot_process(emu, env={"BOT_SEND_RATE_LIMIT": "0"}):
        steady = await offer(emu, rate=100, seconds=15)
        burst = await offer(emu, count=500)  # all at once
    print(steady.summary(), burst.summary())

From a shell (prints one line of figures per run)::

    PYTHONPATH=$PWD .venv/bin/python tests/loadgen.py --rate 50 --seconds 10 [--limiter-off]
    PYTHONPATH=$PWD .venv/bin/python tests/loadgen.py --burst 500

Run from the repository root with the index built (``make index``); ``BOT_*`` variables given
in ``env`` (or in the environment) reach the bot, e.g. ``BOT_SEND_RATE_LIMIT=0`` turns
Telegram's 30 messages/s throttle off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for the emulator when run as a script

from emulator import BotApiEmulator, make_user

#: Questions of every kind the bot answers (model search, lookups, out of scope), in turn.
QUESTIONS = (
    "合同有效期多久？",
    "甲方不按时付款怎么办？",
    "What happens if Party B leaks our documents?",
    "3.2",
    "乙方泄露甲方的技术资料要承担什么责任？",
    "今天上海天气怎么样？",
    "合約有效期多久？乙方違約怎麼辦？",
    "什么是违约金",
)

_users = itertools.count(5_000_000)


@dataclass(frozen=True)
class LoadResult:
    """What one offered load gave: counts, seconds, latencies (seconds) of the answered."""

    offered: int
    answered: int
    seconds: float  # from the first question to the last answer (or the end of waiting)
    latencies: tuple[float, ...]
    polls: int = 0  # getUpdates calls meanwhile

    @property
    def lost(self) -> int:
        return self.offered - self.answered

    @property
    def throughput(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    def summary(self) -> str:
        return (
            f"offered {self.offered}, answered {self.answered}, lost {self.lost}, "
            f"{self.throughput:.1f} answers/s, latency p50 {self.percentile(50) * 1000:.0f} ms, "
            f"p95 {self.percentile(95) * 1000:.0f} ms, p99 {self.percentile(99) * 1000:.0f} ms, "
            f"{self.polls} getUpdates"
        )


def bot_environment(emu: BotApiEmulator, data_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The environment ``python -m bot telegram`` gets: this one's, pointed at ``emu``."""
    return {
        **os.environ,
        "BOT_TELEGRAM_TOKEN": emu.token,
        "BOT_TELEGRAM_API_URL": emu.base_url,
        "BOT_STORAGE_PATH": str(data_dir / "bot.sqlite3"),
        "BOT_LOG_LEVEL": "WARNING",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **env,
    }


@contextlib.asynccontextmanager
async def bot_process(
    emu: BotApiEmulator,
    *,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 180.0,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot telegram`` against ``emu``, ready (its command menu set) inside the block;
    stopped with ``stop_signal`` after it (killed if it does not exit within 60 s)."""
    with tempfile.TemporaryDirectory(prefix="contract-bot-load-") as data:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "telegram",
            env=bot_environment(emu, Path(data), env or {}),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await emu.wait_until(
                lambda: emu.commands or process.returncode is not None, timeout=ready_timeout
            )
            if process.returncode is not None:
                assert process.stderr is not None
                error = (await process.stderr.read()).decode("utf-8", "replace")
                raise RuntimeError(f"the bot exited during start-up:\n{error}")
            yield process
        finally:
            if process.returncode is None:
                process.send_signal(stop_signal)
                try:
                    await asyncio.wait_for(process.communicate(), 60)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def offer(
    emu: BotApiEmulator,
    *,
    rate: float | None = None,
    seconds: float = 10.0,
    count: int | None = None,
    questions: Sequence[str] = QUESTIONS,
    wait: float = 30.0,
) -> LoadResult:
    """Offer questions, each from a new user: ``rate`` per second for ``seconds`` (or ``count``
    of them), or, without ``rate``, ``count`` all at once (a burst). Then wait until all are
    answered or ``wait`` seconds passed since the last one was offered."""
    total = count if count is not None else int((rate or 0) * seconds)
    asked: dict[int, float] = {}  # chat id -> when asked
    polls = len(emu.calls_of("getUpdates"))
    start = time.monotonic()
    for n in range(total):
        if rate:
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        user = make_user(next(_users), "Load", language_code=None)
        asked[user["id"]] = time.monotonic()
        emu.user_message(questions[n % len(questions)], user=user)
    last_asked = time.monotonic()

    def first_replies() -> dict[int, float]:
        replies: dict[int, float] = {}
        for sent in emu.sent:
            if sent.chat_id in asked:
                replies.setdefault(sent.chat_id, sent.at)
        return replies

    with contextlib.suppress(TimeoutError):
        await emu.wait_until(lambda: len(first_replies()) >= total, timeout=wait)
    replies = first_replies()
    end = max(replies.values()) if len(replies) == total else last_asked + wait
    latencies = tuple(replies[chat] - asked[chat] for chat in replies)
    polls = len(emu.calls_of("getUpdates")) - polls
    return LoadResult(total, len(replies), max(end - start, 1e-9), latencies, polls)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process ``pid`` has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def evaluation_questions() -> list[str]:
    """Every evaluation question once (different questions, as users send them)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from evaluate import load_devset

    return [q.text for q in load_devset()]


async def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Offer a load to `contract-bot telegram`.")
    parser.add_argument("--rate", type=float, default=20.0, help="questions per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=0, help="this many questions at once")
    parser.add_argument("--limiter-off", action="store_true", help="BOT_SEND_RATE_LIMIT=0")
    parser.add_argument("--wait", type=float, default=60.0)
    parser.add_argument(
        "--repeated",
        action="store_true",
        help="the eight questions above, repeated (a batch embeds a repeat once: flattering); "
        "default: every evaluation question once, in turn",
    )
    args = parser.parse_args(argv)
    env = {"BOT_SEND_RATE_LIMIT": "0"} if args.limiter_off else {}
    questions: Sequence[str] = QUESTIONS if args.repeated else evaluation_questions()
    async with BotApiEmulator() as emu, bot_process(emu, env=env) as bot:
        await offer(emu, count=len(QUESTIONS), wait=60)  # warm up
        cpu = cpu_seconds(bot.pid)
        if args.burst:
            result = await offer(emu, count=args.burst, wait=args.wait, questions=questions)
        else:
            result = await offer(
                emu, rate=args.rate, seconds=args.seconds, wait=args.wait, questions=questions
            )
        cpu = cpu_seconds(bot.pid) - cpu
    print(f"{result.summary()}, bot CPU {1000 * cpu / max(result.answered, 1):.1f} ms/answer")
    return 0 if result.lost == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    sys.exit(asyncio.run(_main()))
