"""Capacity of one and of two webhook replicas behind nginx, sharing one PostgreSQL.

The real set-up of README "Running at scale", on this machine: a throw-away PostgreSQL cluster
and nginx on loopback (Debian's packages, as the tests start them), N ``contract-bot telegram``
processes in webhook mode, and the Bot API emulator posting every update to nginx. Telegram's
send limiter is off (``BOT_SEND_RATE_LIMIT=0``): the point is how many answers the replicas can
produce, not the 30 messages a second Telegram lets out. Each question comes from a new user and
is a different one (the evaluation questions in turn: a batch embeds a repeated question once,
which would flatter the figures).
Prints one line per (replicas, offered load)::

    PYTHONPATH=$PWD .venv/bin/python scripts/benchmark_replicas.py [--rates 50,100,200]
        [--seconds 10] [--burst 500] [--replicas 1,2]

Run from the repository root with the index built (``make index``). Needs postgresql and nginx
(``.ci/run`` installs them; ``apt-get install postgresql nginx-light`` by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from emulator import BotApiEmulator  # noqa: E402
from loadgen import LoadResult, cpu_seconds, evaluation_questions, offer  # noqa: E402
from servers import free_port, nginx_proxy, postgres_server, wait_for_port  # noqa: E402

SECRET = "benchmark-secret-token"


@contextlib.asynccontextmanager
async def replicas(
    emu: BotApiEmulator, count: int, storage_url: str, root: Path
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """``count`` webhook replicas behind nginx; the emulator posts to nginx inside the block."""
    proxy_port = free_port()
    ports = [free_port() for _ in range(count)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | {
        "BOT_TELEGRAM_TOKEN": emu.token,
        "BOT_TELEGRAM_API_URL": emu.base_url,
        "BOT_STORAGE_URL": storage_url,
        "BOT_USER_ID_KEY": "benchmark key shared by every replica",
        "BOT_INDEX_DIR": str(ROOT / "index"),
        "BOT_WEBHOOK_URL": f"http://127.0.0.1:{proxy_port}/telegram/hook",
        "BOT_WEBHOOK_LISTEN": "127.0.0.1",
        "BOT_WEBHOOK_SECRET": SECRET,
        "BOT_WEBHOOK_REGISTER": "false",
        "BOT_SEND_RATE_LIMIT": "0",
        "BOT_LOG_LEVEL": "WARNING",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "telegram",
            cwd=root,
            env=env | {"BOT_WEBHOOK_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=(root / f"replica-{port}.log").open("wb"),
        )
        for port in ports
    ]
    try:
        for port in ports:
            await asyncio.to_thread(wait_for_port, port, 180.0)
        with nginx_proxy(root / "nginx", ports, proxy_port):
            await _set_webhook(emu, f"http://127.0.0.1:{proxy_port}/telegram/hook")
            yield processes
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()


async def _set_webhook(emu: BotApiEmulator, url: str) -> None:
    """What ``contract-bot webhook set`` does: Telegram (the emulator) posts updates to ``url``."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{emu.base_url}{emu.token}/setWebhook", json={"url": url, "secret_token": SECRET}
        ) as resp,
    ):
        resp.raise_for_status()


def _cpu_seconds(processes: Sequence[asyncio.subprocess.Process]) -> float:
    """User + system CPU of the replicas so far."""
    return sum(cpu_seconds(process.pid) for process in processes)


def _line(count: int, label: str, result: LoadResult, cpu: float) -> str:
    per_answer = cpu / result.answered * 1000 if result.answered else float("nan")
    return f"  {count} replica(s), {label:<14} {result.summary()}, CPU {per_answer:.1f} ms/answer"


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,2")
    parser.add_argument("--rates", default="50,100,200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=500)
    args = parser.parse_args(argv)
    print(
        f"replica benchmark {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} at the start"
    )
    questions = evaluation_questions()
    lost = 0
    with tempfile.TemporaryDirectory(prefix="contract-bot-fleet-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the postgres user reaches its own folder inside
        with postgres_server(root / "pg") as server:
            for count in (int(n) for n in args.replicas.split(",")):
                url = server.create_database(f"fleet{count}")
                workdir = root / f"fleet{count}"
                workdir.mkdir()
                async with BotApiEmulator() as emu, replicas(emu, count, url, workdir) as procs:
                    await offer(emu, count=16, wait=60, questions=questions[-16:])  # warm up
                    for rate in (float(r) for r in args.rates.split(",")):
                        before = _cpu_seconds(procs)
                        result = await offer(
                            emu, rate=rate, seconds=args.seconds, wait=60, questions=questions
                        )
                        print(
                            _line(
                                count, f"{rate:.0f}/s offered", result, _cpu_seconds(procs) - before
                            ),
                            flush=True,
                        )
                        lost += result.lost
                    if args.burst:
                        before = _cpu_seconds(procs)
                        result = await offer(emu, count=args.burst, wait=60, questions=questions)
                        print(
                            _line(
                                count, f"burst {args.burst}", result, _cpu_seconds(procs) - before
                            ),
                            flush=True,
                        )
                        lost += result.lost
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    sys.exit(asyncio.run(main()))
