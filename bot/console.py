"""The command-line front ends: ``contract-bot ask`` and ``contract-bot chat``.

Both load the retriever (knowledge, model, index) once, then only answer and print. A missing
model or a stale index is reported on stderr with the command that fixes it (exit status 1).
``chat`` is a conversation: a follow-up ("那乙方呢？") is read after the question before it, as in
Telegram. ``ask`` answers each question on its own, except with ``--dialogue``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from bot.answers.compose import answer
from bot.answers.dialogue import Reply, answer_turn
from bot.answers.language import resolve_language
from bot.answers.render import to_json, to_text
from bot.settings import Settings
from bot.types import DialogueTurn, Language

if TYPE_CHECKING:
    from bot.search.retrieval import Retriever

#: Typed in the chat to leave it (besides end of input and Ctrl-C).
EXIT_WORDS = frozenset({"exit", "quit", ":q", "退出", "再见", "bye"})
PROMPTS: dict[str, str] = {"zh-Hans": "问 › ", "zh-Hant": "問 › ", "en": "Q › "}


def _utf8(stream: TextIO) -> None:
    """Make sure Chinese text can be printed even under a non-UTF-8 locale."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    if encoding != "utf8" and hasattr(stream, "reconfigure"):
        stream.reconfigure(encoding="utf-8", errors="replace")


def _load(settings: Settings) -> Retriever | None:
    """The retriever, or None after printing why it cannot be loaded (and the fix) to stderr."""
    from bot.knowledge.loader import KnowledgeError
    from bot.model.cache import ModelFetchError
    from bot.search.index import IndexMismatchError
    from bot.search.retrieval import Retriever

    try:
        return Retriever.load(settings)
    except (IndexMismatchError, ModelFetchError) as exc:
        print(str(exc), file=sys.stderr)
    except KnowledgeError as exc:
        print(f"invalid knowledge in {settings.knowledge_dir}:\n{exc}", file=sys.stderr)
    return None


def _cut(question: str, settings: Settings) -> str:
    return question[: settings.max_question_chars]


def _questions(stream: TextIO) -> Iterator[str]:
    for line in stream:
        line = line.strip()
        if line:
            yield line


def ask(
    settings: Settings,
    question: str,
    *,
    as_json: bool = False,
    language: Language | None = None,
    dialogue: bool = False,
) -> int:
    """Answer one question, or one per line from stdin when ``question`` is "-".

    ``dialogue``: stdin holds dialogues separated by blank lines, one question a line; each
    question after the first of its dialogue may follow up the one before (as in ``chat``).
    """
    _utf8(sys.stdout)
    retriever = _load(settings)
    if retriever is None:
        return 1
    if dialogue:
        return _ask_dialogues(settings, retriever, sys.stdin, as_json=as_json, language=language)
    questions = _questions(sys.stdin) if question == "-" else iter([question])
    first = True
    for text in questions:
        reply = answer(
            _cut(text, settings), retriever, language=language, parameters=settings.parameters
        )
        if as_json:
            print(json.dumps(to_json(reply), ensure_ascii=False), flush=True)
        else:
            if not first:
                print()
            print(to_text(reply), flush=True)
        first = False
    return 0


def dialogues(stream: TextIO) -> Iterator[list[str]]:
    """Blank-line-separated dialogues of one question a line."""
    current: list[str] = []
    for line in stream:
        text = line.strip()
        if text:
            current.append(text)
        elif current:
            yield current
            current = []
    if current:
        yield current


class Conversation:
    """One console conversation: answers each question after the last one it answered (for
    follow-ups), forgetting it after ``settings.dialogue_timeout`` seconds of silence."""

    def __init__(self, settings: Settings, retriever: Retriever, language: Language | None):
        self.settings = settings
        self.retriever = retriever
        self.language = language
        self.context: DialogueTurn | None = None

    def reply(self, text: str, now: float | None = None) -> Reply:
        now = time.time() if now is None else now
        timeout = self.settings.dialogue_timeout
        if self.context is not None and (timeout <= 0 or now - self.context.asked_at > timeout):
            self.context = None
        previous = self.context.language if self.context is not None else None
        language = resolve_language(self.language, None, text, previous)
        reply = answer_turn(
            _cut(text, self.settings),
            self.retriever,
            self.context,
            language=language,
            now=now,
            parameters=self.settings.parameters,
        )
        if reply.turn is not None:
            self.context = reply.turn
        return reply


def _ask_dialogues(
    settings: Settings,
    retriever: Retriever,
    stream: TextIO,
    *,
    as_json: bool,
    language: Language | None,
) -> int:
    first = True
    for number, questions in enumerate(dialogues(stream), 1):
        conversation = Conversation(settings, retriever, language)
        for turn, text in enumerate(questions, 1):
            reply = conversation.reply(text, now=0.0)  # a dialogue never times out here
            if as_json:
                obj = {
                    **to_json(reply.answer),
                    "dialogue": number,
                    "turn": turn,
                    "follow_up": bool(reply.kind),
                }
                print(json.dumps(obj, ensure_ascii=False), flush=True)
            else:
                if not first:
                    print()
                print(to_text(reply.answer), flush=True)
            first = False
    return 0


def chat(settings: Settings, *, language: Language | None = None) -> int:
    """Interactive console chat: a prompt on a terminal, none when piped; 0 at end of input."""
    _utf8(sys.stdout)
    interactive = sys.stdin.isatty()
    retriever = _load(settings)
    if retriever is None:
        return 1
    prompt = PROMPTS[language or "zh-Hans"] if interactive else ""
    conversation = Conversation(settings, retriever, language)
    if interactive:
        print(to_text(answer("", retriever, language=language, parameters=settings.parameters)))
        print()
    try:
        while True:
            try:
                line = input(prompt)
            except EOFError:
                if interactive:
                    print()
                return 0
            text = line.strip()
            if not text:
                continue
            if text.lower() in EXIT_WORDS:
                return 0
            print(to_text(conversation.reply(text).answer), flush=True)
            print(flush=True)
    except KeyboardInterrupt:
        print()
        return 0
