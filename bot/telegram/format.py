"""Pure helpers of the Telegram layer: HTML splitting, keyboards, callback data, language choice.

Nothing here talks to Telegram; everything is a function of its arguments, so it is tested on
hand-made inputs (tests/test_telegram_format.py).

Callback data (at most 64 bytes; item ids are at most ~12 characters):
``v:+:<answer_id>`` / ``v:-:<answer_id>`` vote on an answer (the record lives in storage);
``i:<item_id>:<lang>`` the full text of an item; ``f:<item_id>:<lang>`` an answer about an item
(follow-ups, table of contents, glossary); ``q:<n>:<lang>`` example question n; ``l:<lang>`` the
/lang choice. Item buttons carry no server state, so they work after any restart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity

from bot.answers.compose import KnowledgeLike as AnswerKnowledge
from bot.answers.language import LANGUAGES
from bot.answers.language import resolve_language as resolve_language  # re-exported
from bot.answers.texts import t
from bot.search.textproc import parse_number
from bot.telegram import texts as _registered  # noqa: F401  (registers the tg_ strings)
from bot.types import Answer, Item, Language, Retrieval

MAX_MESSAGE = 4096
MAX_CALLBACK_DATA = 64
MAX_BUTTON_TEXT = 40
EXAMPLES = 4  # tg_example_0 .. tg_example_3
RELATED_BUTTONS = 3

LANGUAGE_NAMES: Mapping[Language, str] = {
    "zh-Hans": "简体中文",
    "zh-Hant": "繁體中文",
    "en": "English",
}


class KnowledgeLike(AnswerKnowledge, Protocol):
    """What answers read of the knowledge, plus filled-in texts for inline results."""

    def fill(self, item_id: str, language: Language = "zh-Hans") -> str: ...


class RetrieverLike(Protocol):
    """What the Telegram layer needs of ``bot.search.retrieval.Retriever``."""

    @property
    def knowledge(self) -> KnowledgeLike: ...

    def search(self, question: str, k: int = 5) -> Retrieval: ...


# --- language ----------------------------------------------------------------------------
# The reply language is decided by ``bot.answers.language.resolve_language`` (re-exported here).


def cut_question(text: str, limit: int) -> tuple[str, bool]:
    """``text`` stripped and cut to ``limit`` characters; whether it was cut."""
    text = text.strip()
    if len(text) <= limit:
        return text, False
    return text[:limit].rstrip(), True


# --- groups ------------------------------------------------------------------------------


def _utf16_slice(text: str, offset: int, length: int) -> tuple[int, int]:
    """Python indices for a UTF-16 (offset, length) entity span of ``text``."""
    encoded = text.encode("utf-16-le")
    start = len(encoded[: offset * 2].decode("utf-16-le", errors="ignore"))
    end = len(encoded[: (offset + length) * 2].decode("utf-16-le", errors="ignore"))
    return start, end


def addressed_text(
    text: str,
    entities: Iterable[MessageEntity],
    bot_username: str,
    bot_id: int,
) -> str | None:
    """The text with mentions of the bot removed, or None if the bot is not mentioned."""
    spans: list[tuple[int, int]] = []
    for entity in entities:
        start, end = _utf16_slice(text, entity.offset, entity.length)
        mentions_bot = (
            entity.type == MessageEntity.MENTION
            and text[start:end].lstrip("@").lower() == bot_username.lower()
        ) or (
            entity.type == MessageEntity.TEXT_MENTION
            and entity.user is not None
            and entity.user.id == bot_id
        )
        if mentions_bot:
            spans.append((start, end))
    if not spans:
        return None
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + re.sub(r"^[\s,，:：、]+", "", text[end:])
    return re.sub(r"\s+", " ", text).strip(" ,，:：")


# --- HTML splitting ----------------------------------------------------------------------

_TOKEN = re.compile(r"<[^<>]+>|[^<]+")
_PIECE = re.compile(r"[^\n。！？；!?]*(?:\n+|[。！？；!?]+\s*|$)")
_TAG_NAME = re.compile(r"</?\s*([A-Za-z][A-Za-z0-9-]*)")


@dataclass(frozen=True)
class _Atom:
    text: str
    kind: str  # "open" | "close" | "text"
    name: str = ""
    priority: int = 0  # how good a cut right after this atom is


def _atoms(html: str, hard: int) -> list[_Atom]:
    atoms: list[_Atom] = []
    for token in _TOKEN.findall(html):
        if token.startswith("<"):
            match = _TAG_NAME.match(token)
            name = match.group(1).lower() if match else ""
            kind = "close" if token.startswith("</") else "open"
            atoms.append(_Atom(token, kind, name, 1 if kind == "close" else 0))
            continue
        for piece in _PIECE.findall(token):
            if not piece:
                continue
            if piece.endswith("\n\n"):
                priority = 4  # a blank line: between blocks
            elif piece.endswith("\n"):
                priority = 3
            else:
                priority = 2 if piece.rstrip()[-1:] in "。！？；!?" else 1
            while len(piece) > hard:  # no natural break: cut, but never inside an &entity;
                cut = hard
                amp = piece.rfind("&", max(0, cut - 10), cut)
                if amp > 0 and ";" not in piece[amp:cut]:
                    cut = amp
                atoms.append(_Atom(piece[:cut], "text", priority=1))
                piece = piece[cut:]
            atoms.append(_Atom(piece, "text", priority=priority))
    return atoms


def split_html(html: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split Telegram HTML into messages of at most ``limit`` characters.

    Cuts at paragraph ends (a newline) where possible, else at sentence ends, else anywhere
    outside a tag or an ``&entity;``. Tags open at a cut are closed at the end of one part and
    reopened at the start of the next, so every part parses on its own.
    """
    html = html.strip()
    if len(html) <= limit:
        return [html] if html else []
    atoms = _atoms(html, max(limit // 4, 16))
    parts: list[str] = []
    stack: list[_Atom] = []  # open tags at the current position
    current: list[tuple[_Atom, tuple[_Atom, ...]]] = []  # atom, stack after it
    prefix: tuple[_Atom, ...] = ()  # tags reopened at the start of the current part

    def length(items: Sequence[tuple[_Atom, tuple[_Atom, ...]]], closing: Sequence[_Atom]) -> int:
        return (
            sum(len(a.text) for a in prefix)
            + sum(len(a.text) for a, _ in items)
            + sum(len(a.name) + 3 for a in closing)
        )

    def flush(upto: int) -> None:
        nonlocal current, prefix
        chosen, rest = current[:upto], current[upto:]
        open_after = chosen[-1][1] if chosen else prefix
        body = "".join(a.text for a in prefix) + "".join(a.text for a, _ in chosen)
        body += "".join(f"</{a.name}>" for a in reversed(open_after))
        parts.append(body)
        prefix = open_after
        current = rest

    for atom in atoms:
        if atom.kind == "open":
            stack.append(atom)
        elif atom.kind == "close" and stack and stack[-1].name == atom.name:
            stack.pop()
        current.append((atom, tuple(stack)))
        while length(current, stack) > limit:
            # Too long: cut at the best earlier point (never right after an opening tag),
            # preferring paragraph ends, then sentence ends, and cuts where no tag is open.
            candidates = [
                (
                    2 * a.priority + (0 if after else 1),
                    index + 1,
                    length(current[: index + 1], after),
                )
                for index, (a, after) in enumerate(current[:-1])
                if a.kind != "open"
            ]
            fitting = [c for c in candidates if c[2] <= limit]
            substantial = [c for c in fitting if c[2] * 4 >= limit] or fitting
            if not substantial:
                raise ValueError("split_html: a single piece does not fit; limit too small")
            flush(max(substantial)[1])
    if current:
        flush(len(current))
    return [p.strip() for p in parts if _visible(p).strip()]


def _visible(html: str) -> str:
    return re.sub(r"<[^<>]+>", "", html)


# --- callback data -----------------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    kind: str  # "vote" | "item" | "follow" | "example" | "lang"
    arg: str = ""
    language: Language | None = None
    vote: int = 0


def _lang(value: str) -> Language | None:
    return next((lang for lang in LANGUAGES if lang == value), None)


def parse_callback(data: str | None) -> Callback | None:
    """Decode callback data; None for anything not made by this bot (or by an older version)."""
    if not data:
        return None
    fields = data.split(":")
    head = fields[0]
    if head == "v" and len(fields) == 3 and fields[1] in ("+", "-") and fields[2]:
        return Callback("vote", fields[2], vote=1 if fields[1] == "+" else -1)
    if head in ("i", "f", "q") and len(fields) == 3 and fields[1]:
        language = _lang(fields[2])
        kind = {"i": "item", "f": "follow", "q": "example"}[head]
        return Callback(kind, fields[1], language) if language else None
    if head == "l" and len(fields) == 2 and _lang(fields[1]):
        return Callback("lang", language=_lang(fields[1]))
    return None


def _data(*fields: str) -> str:
    data = ":".join(fields)
    if len(data.encode()) > MAX_CALLBACK_DATA:
        raise ValueError(f"callback data over {MAX_CALLBACK_DATA} bytes: {data!r}")
    return data


def _short(text: str, limit: int = MAX_BUTTON_TEXT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- keyboards ---------------------------------------------------------------------------


def item_label(item: Item, language: Language) -> str:
    from bot.answers.compose import item_label as label

    return label(item, language)


def item_title(item: Item, language: Language) -> str:
    from bot.answers.compose import item_title as title

    return title(item, language)


def answer_keyboard(
    answer: Answer, answer_id: str | None, knowledge: KnowledgeLike
) -> InlineKeyboardMarkup | None:
    """Under an answer: full text of the top cited item, 2-3 follow-ups, 👍/👎."""
    lang = answer.language
    rows: list[list[InlineKeyboardButton]] = []
    top = knowledge.get(answer.citations[0].id) if answer.citations else None
    if top is not None and not answer.abstained and answer.intent not in ("toc", "complaint"):
        label = t("tg_btn_fulltext", lang, label=item_label(top, lang))
        rows.append([InlineKeyboardButton(_short(label), callback_data=_data("i", top.id, lang))])
    rels = {link.to: link.rel for link in top.links} if top is not None else {}
    for item_id in answer.related[:RELATED_BUTTONS]:
        item = knowledge.get(item_id)
        if item is None:
            continue
        rel = "topic" if answer.abstained else rels.get(item_id, "related")
        text = f"{t(f'tg_rel_{rel}', lang)}：{item_title(item, lang)}"
        if lang == "en":
            text = f"{t(f'tg_rel_{rel}', lang)}: {item_title(item, lang)}"
        rows.append([InlineKeyboardButton(_short(text), callback_data=_data("f", item.id, lang))])
    if answer_id is not None:
        rows.append(
            [
                InlineKeyboardButton(
                    t("tg_btn_up", lang), callback_data=_data("v", "+", answer_id)
                ),
                InlineKeyboardButton(
                    t("tg_btn_down", lang), callback_data=_data("v", "-", answer_id)
                ),
            ]
        )
    return InlineKeyboardMarkup(rows) if rows else None


def mark_vote(markup: InlineKeyboardMarkup | None, vote: int) -> InlineKeyboardMarkup | None:
    """The same keyboard with the chosen vote button marked ✓ (and the other unmarked)."""
    if markup is None:
        return None
    chosen = "v:+:" if vote > 0 else "v:-:"
    rows = []
    for row in markup.inline_keyboard:
        new_row = []
        for button in row:
            data = button.callback_data if isinstance(button.callback_data, str) else None
            if data and data.startswith("v:"):
                base = button.text.replace(" ✓", "")
                text = f"{base} ✓" if data.startswith(chosen) else base
                button = InlineKeyboardButton(text, callback_data=data)
            new_row.append(button)
        rows.append(new_row)
    return InlineKeyboardMarkup(rows)


def examples_keyboard(language: Language) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _short(t(f"tg_example_{n}", language)),
                    callback_data=_data("q", str(n), language),
                )
            ]
            for n in range(EXAMPLES)
        ]
    )


def example_question(n: str, language: Language) -> str | None:
    number = parse_number(n)
    return t(f"tg_example_{number}", language) if number is not None and number < EXAMPLES else None


def lang_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(name, callback_data=_data("l", lang))
                for lang, name in LANGUAGE_NAMES.items()
            ]
        ]
    )


def _two_columns(buttons: list[InlineKeyboardButton]) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def toc_keyboard(toc: Answer) -> InlineKeyboardMarkup:
    """One button per table-of-contents entry of a ``toc`` answer."""
    lang = toc.language
    buttons = [
        InlineKeyboardButton(_short(part.text, 30), callback_data=_data("f", part.cite, lang))
        for part in toc.parts
        if part.role == "toc" and part.cite
    ]
    return InlineKeyboardMarkup(_two_columns(buttons))


def terms_keyboard(knowledge: KnowledgeLike, language: Language) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            _short(item_title(item, language), 30), callback_data=_data("f", item.id, language)
        )
        for item in knowledge.items
        if item.kind == "term"
    ]
    return InlineKeyboardMarkup(_two_columns(buttons))


# --- rendering -------------------------------------------------------------------------


def render_html(answer: Answer, knowledge: KnowledgeLike) -> str:
    """The answer as Telegram HTML without the follow-up list (those are buttons)."""
    from bot.answers.render import to_html

    return to_html(answer, knowledge, related=False)
