"""Command line: ``contract-bot`` / ``python -m bot``.

``main()`` only wires: it parses arguments, builds the settings once and hands them to the
subcommand. Heavy imports (torch, faiss, telegram) happen inside the subcommands.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from bot.settings import Settings


def _cmd_knowledge(args: argparse.Namespace, settings: Settings) -> int:
    from bot.knowledge.loader import KnowledgeError, load_knowledge

    try:
        knowledge = load_knowledge(settings.knowledge_dir, overrides=settings.parameters)
    except KnowledgeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if args.json:
        json.dump(knowledge.to_json(), sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        gaps = len(knowledge.coverage.gaps)
        categories = len(knowledge.coverage.categories)
        print(
            f"knowledge OK: {len(knowledge.items)} items in {settings.knowledge_dir}; "
            f"coverage map: {categories} categories, {gaps} not or only partly covered"
        )
    return 0


def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from bot.search.build import IndexBuildError, build_index
    from bot.search.index import index_status

    if args.action == "status" or (args.if_stale and not args.force):
        started = time.perf_counter()
        ok, message = index_status(settings)
        if args.action == "status":
            print(message)
            return 0 if ok else 1
        if ok:
            print(f"{message} [checked in {time.perf_counter() - started:.2f} s]")
            return 0
        print(f"index needs a build: {message}", file=sys.stderr)
    try:
        report = build_index(settings, force=args.force, progress=not args.quiet)
    except IndexBuildError as exc:
        print(f"index build failed, previous index left in place:\n{exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def _cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    from bot.model.cache import ModelFetchError
    from bot.model.fetch import fetch_model

    try:
        path = fetch_model(settings, force=args.force)
    except ModelFetchError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"model ready: {path}")
    return 0


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.console import ask

    if args.dialogue and args.question != "-":
        print("--dialogue reads dialogues from stdin: use `ask --dialogue -`", file=sys.stderr)
        return 2
    return ask(
        settings, args.question, as_json=args.json, language=args.lang, dialogue=args.dialogue
    )


def _cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.console import chat

    return chat(settings, language=args.lang)


def _cmd_telegram(args: argparse.Namespace, settings: Settings) -> int:
    from bot.telegram.app import run

    return run(settings)


def _cmd_webhook(args: argparse.Namespace, settings: Settings) -> int:
    from bot.telegram.webhook import webhook_command

    return webhook_command(settings, args.action)


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """What `make run` starts: Telegram when a token is set, else the console chat."""
    if settings.telegram_token is not None and settings.telegram_token.get_secret_value():
        return _cmd_telegram(args, settings)
    print("BOT_TELEGRAM_TOKEN is not set: console chat (Ctrl-D quits).", file=sys.stderr)
    args.lang = None
    return _cmd_chat(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contract-bot", description="Answers questions about the 互联网产品售后支持协议."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ask", help="answer one question (or one per line from stdin with '-')")
    p.add_argument("question", help="the question, or '-' to read one per line from stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object per question")
    p.add_argument("--lang", choices=["zh-Hans", "zh-Hant", "en"], help="reply language")
    p.add_argument(
        "--dialogue",
        action="store_true",
        help="with '-': blank-line-separated dialogues, later questions may follow up earlier ones",
    )
    p.set_defaults(func=_cmd_ask)

    p = sub.add_parser("chat", help="interactive console chat; exits at end of input")
    p.add_argument("--lang", choices=["zh-Hans", "zh-Hant", "en"], help="reply language")
    p.set_defaults(func=_cmd_chat)

    p = sub.add_parser("telegram", help="run the Telegram bot (polling, or webhook if configured)")
    p.set_defaults(func=_cmd_telegram)

    p = sub.add_parser("webhook", help="register the webhook once for all replicas, or inspect it")
    p.add_argument("action", choices=["set", "delete", "info"])
    p.set_defaults(func=_cmd_webhook)

    p = sub.add_parser("run", help="Telegram bot when BOT_TELEGRAM_TOKEN is set, else console chat")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("knowledge", help="validate or export the knowledge files")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="print all items as one JSON array")
    g.add_argument("--check", action="store_true", help="validate; non-zero exit on any error")
    p.set_defaults(func=_cmd_knowledge)

    p = sub.add_parser("index", help="build the index or check it against model and knowledge")
    p.add_argument("action", nargs="?", choices=["build", "status"], default="build")
    p.add_argument("--force", action="store_true", help="re-embed everything")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--if-stale",
        action="store_true",
        help="build only when the index does not match the knowledge and model (fast check)",
    )
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("model", help="fetch or convert the embedding model into the model cache")
    p.add_argument("action", nargs="?", choices=["fetch"], default="fetch")
    p.add_argument("--force", action="store_true", help="rebuild even if present")
    p.set_defaults(func=_cmd_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        # pydantic never echoes SecretStr values, so this is safe to print.
        print(f"invalid settings (check BOT_* variables and .env):\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if logging.getLogger().level > logging.DEBUG:
        # Library start-up chatter (which faiss build loaded, weight-loading bars) would drown
        # the console chat; DEBUG shows it again.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        for name in ("faiss", "sentence_transformers", "transformers", "jieba"):
            logging.getLogger(name).setLevel(logging.WARNING)
    func: Callable[[argparse.Namespace, Settings], int] = args.func
    return func(args, settings)
