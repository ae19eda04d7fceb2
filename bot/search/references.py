"""Explicit references: a clause number, a section, a glossary term or an item id.

``parse_reference`` recognises a message that *is* a lookup ("第3.2条", "3.2条说了啥", "clause 5.1",
"/clause 5.1", "第五条", "section 5", "五、违约责任", "违约金", "what does 争议解决 mean",
"liquidated damages") and returns the item ids it names. It deliberately says nothing about
ordinary questions that merely contain such words ("乙方违约了怎么办" mentions 违约 but asks what
happens): the whole message, apart from a little lookup phrasing, must be the reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.search.textproc import normalize, parse_number, stem, words
from bot.types import Item

ReferenceKind = Literal["clause", "section", "term", "item"]


class HasItems(Protocol):
    """What this module needs of ``bot.knowledge.loader.Knowledge``."""

    @property
    def items(self) -> tuple[Item, ...]: ...


@dataclass(frozen=True)
class Reference:
    """What an explicit reference resolved to: ``ids`` in document order."""

    kind: ReferenceKind
    ids: tuple[str, ...]


_ZH_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def zh_number(text: str) -> int | None:
    """1..99 written as Arabic digits or Chinese numerals (五, 十二, 二十)."""
    number = parse_number(text, max_digits=2)
    if number is not None:
        return number
    if not text or any(ch not in _ZH_DIGITS and ch != "十" for ch in text):
        return None
    if "十" not in text:
        return _ZH_DIGITS[text] if len(text) == 1 else None
    tens, _, units = text.partition("十")
    if len(tens) > 1 or len(units) > 1:
        return None
    return (_ZH_DIGITS[tens] if tens else 1) * 10 + (_ZH_DIGITS[units] if units else 0)


# Lookup phrasing allowed around a reference (matched on normalized text: simplified, lowercase).
_ASK_PREFIX = (
    r"(?:请|麻烦)?(?:帮我)?(?:看看|看一下|查一下|查查|查看|显示|给我看|告诉我)?(?:一下)?"
    r"(?:协议|合同|本协议|本合同)?(?:的|里|中)?"
)
_ASK_SUFFIX = (
    r"(?:的)?(?:内容|原文|全文|条文)?(?:是)?"
    r"(?:说了?(?:啥|什么)|讲了?(?:啥|什么)|写了?(?:啥|什么)|规定了?(?:啥|什么)|"
    r"是(?:啥|什么)(?:内容)?|有(?:啥|什么)|怎么(?:说|规定)(?:的)?)?"
    r"(?:呢|呀|啊|吗)?"
)
_EN_PREFIX = (
    r"(?:(?:please )?(?:show|give|tell|read|display|open|quote|find|look ?up)(?: me)?"
    r"(?: the)?(?: text of| wording of| content of)? |"
    r"what (?:does|do|is in|'s in|is) |what's in |text of |content of )?(?:the )?"
)
_EN_SUFFIX = r"(?: (?:say|says|state|states|mean|means|cover|covers|about|please|text))*"
_PUNCT = re.compile(r"[\s?!.。？！,，:：;；\"'“”‘’()（）\[\]【】]+$")
_CMD = re.compile(r"^/(clause|section|term|item)(?:@\w+)?\s*", re.IGNORECASE)

_NUM = r"(\d{1,2}|[一二三四五六七八九十]{1,3})"
_CLAUSE_PATTERNS = (
    re.compile(rf"^{_ASK_PREFIX}第?\s*(\d{{1,2}})\.(\d{{1,2}})\s*(?:条|款|项)?{_ASK_SUFFIX}$"),
    re.compile(
        rf"^{_EN_PREFIX}(?:clause|article|art\.?|section|item|§|no\.?|number)?\s*"
        rf"(\d{{1,2}})\.(\d{{1,2}}){_EN_SUFFIX}$"
    ),
)
_SECTION_PATTERNS = (
    re.compile(rf"^{_ASK_PREFIX}第\s*{_NUM}\s*(?:条|章|部分|节|款){_ASK_SUFFIX}$"),
    re.compile(rf"^{_EN_PREFIX}(?:section|article|part|chapter|clause)\s*(\d{{1,2}}){_EN_SUFFIX}$"),
)
_HEADING = re.compile(r"^([一二三四五六七八九十]{1,3})\s*[、.]\s*(\S.*)$")

_TERM_ZH = (
    re.compile(
        rf"^{_ASK_PREFIX}(?:什么是|啥是|何为|何谓|解释一下|解释|定义)\s*(.+?)(?:呢|啊|呀)?$"
    ),
    re.compile(
        r"^(.+?)\s*(?:是什么意思|是啥意思|什么意思|啥意思|的意思是什么|的意思|是什么|是啥|"
        r"指什么|指的是什么|是指什么|的定义是什么|的定义|的解释|怎么定义|如何定义|"
        r"是什么东西)(?:呢|啊|呀)?$"
    ),
)
_TERM_EN = (
    re.compile(
        r"^(?:what(?: is|'s| are| does)|define|definition of|meaning of|explain|"
        r"what is meant by|what do you mean by)\s+(?:the (?:term |word )?|a |an )?"
        r"(.+?)(?:\s+(?:mean|means|stand for|refer to))?$"
    ),
)


def _clause_id(major: str, minor: str) -> str:
    """ "03", "2" -> "3.2"; "" when either is not a number in ASCII digits."""
    first, second = parse_number(major), parse_number(minor)
    return f"{first}.{second}" if first is not None and second is not None else ""


def _strip(text: str) -> str:
    return _PUNCT.sub("", text).strip()


@dataclass(frozen=True)
class _Table:
    """Lookups derived from the items once (parse_reference runs on every message)."""

    by_id: dict[str, Item]
    clauses: frozenset[str]
    sections: dict[int, tuple[str, ...]]  # section number -> clause ids
    headings: dict[str, tuple[str, ...]]  # normalized "五、违约责任" -> item ids
    terms: dict[str, str]  # normalized term name, English name or alias -> term id
    aliases: dict[str, str]  # normalized alias of a non-term item -> its id


_TABLES: dict[int, tuple[tuple[Item, ...], _Table]] = {}


def _table(items: tuple[Item, ...]) -> _Table:
    cached = _TABLES.get(id(items))
    if cached is not None and cached[0] is items:
        return cached[1]
    sections: dict[int, list[str]] = {}
    headings: dict[str, list[str]] = {}
    terms: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for item in items:
        if item.kind == "clause" and item.id.split(".")[0].isdigit():
            sections.setdefault(int(item.id.split(".")[0]), []).append(item.id)
        if item.section:
            headings.setdefault(normalize(item.section), []).append(item.id)
        if item.kind == "term":
            for name in (item.title, item.title_en, *item.aliases):
                if name:
                    terms.setdefault(normalize(name), item.id)
        else:
            for alias in item.aliases:
                aliases.setdefault(normalize(alias), item.id)
    table = _Table(
        by_id={item.id: item for item in items},
        clauses=frozenset(item.id for item in items if item.kind == "clause"),
        sections={n: tuple(ids) for n, ids in sections.items()},
        headings={h: tuple(ids) for h, ids in headings.items()},
        terms=terms,
        aliases=aliases,
    )
    if len(_TABLES) > 8:
        _TABLES.clear()
    _TABLES[id(items)] = (items, table)
    return table


def parse_reference(text: str, knowledge: HasItems) -> Reference | None:
    """The explicit reference ``text`` consists of, or None for an ordinary question."""
    raw = text.strip()
    command = _CMD.match(raw)
    kind_hint = command.group(1).lower() if command else None
    body = _strip(normalize(raw[command.end() :] if command else raw))
    if not body:
        return None
    table = _table(knowledge.items)

    # An item id as such ("breach-2", "term-3", "header") or a clause id after /clause.
    if body in table.by_id:
        item = table.by_id[body]
        if item.kind == "clause":
            return Reference("clause", (item.id,))
        if kind_hint is not None or "-" in body:
            return Reference("item", (item.id,))

    for pattern in _CLAUSE_PATTERNS:
        match = pattern.match(body)
        if match:
            clause_id = _clause_id(match.group(1), match.group(2))
            return Reference("clause", (clause_id,)) if clause_id in table.clauses else None

    for pattern in _SECTION_PATTERNS:
        match = pattern.match(body)
        if match:
            number = zh_number(match.group(1))
            ids = table.sections.get(number, ()) if number is not None else ()
            return Reference("section", ids) if ids else None
    if kind_hint in ("clause", "section") and (number := parse_number(body)) is not None:
        ids = table.sections.get(number, ())
        return Reference("section", ids) if ids else None

    heading = _HEADING.match(body)
    if heading:
        return _heading_reference(table, heading.group(1), heading.group(2))

    return _term_reference(table, body) or embedded_reference(body, table)


#: Words that may surround an embedded clause or section number in a lookup ("条款4.2在讲什么",
#: "第3.3条的内容是什么", "explain section 5"): they ask to see it, not about something else.
#: (Question and function words are already stopwords in ``bot.search.textproc.words``.)
_LOOKUP_TEXT = """规定 规定了 内容 条款 条文 原文 全文 约定 写 写了 说了 讲了 在讲
    意思 解释 具体 看看 看
    查 查看 查查 显示 告诉 告诉我 介绍 说明 主要 关于 部分 条 款 项 章 节 讲述 讲的 说的 写的
    含义 概括 总结 摘要 协议 合同 本 本协议 本合同 这条 那条 该条 此条 一条 细节 详细
    explain explanation say state mean cover describe description summarize summary text content
    wording show read clause section article part chapter detail contain provision stipulate
    specify quote give tell talk about regard regarding breakdown outline look"""
LOOKUP_WORDS = frozenset(_LOOKUP_TEXT.split())
_LOOKUP_STEMS = frozenset(stem(w) for w in LOOKUP_WORDS) | LOOKUP_WORDS

#: A clause or section number with a marker that makes it a reference, anywhere in a message:
#: "第3.2条", "3.2条", "条款4.2", "clause 7.2", "section 5", "第六条". Bare numbers ("3.2万元",
#: "2.1号") carry no marker and are never taken for references.
_EMBEDDED_CLAUSE = re.compile(
    r"(?:第|条款|条|(?<![a-z])(?:clause|article|art\.?|section|§|item)\s*)\s*"
    r"(\d{1,2})\.(\d{1,2})(?![\d.])\s*(?:条款|条|款|项)?"
    r"|(?<![\d.])(\d{1,2})\.(\d{1,2})\s*(?:条款|条|款|项)"
)
_EMBEDDED_SECTION = re.compile(
    rf"第\s*{_NUM}\s*(?:条|章|部分|节)"
    r"|(?<![a-z])(?:section|article|part|chapter|clause)\s*(\d{1,2})(?![\d.])"
)


def embedded_reference(body: str, table: _Table) -> Reference | None:
    """A clause or section number inside a lookup question ("5.2条讲的啥", "第六条争议解决是怎么
    规定的", "what does clause 7.2 say"): everything else in the message must be lookup
    phrasing or words of the referenced items' own titles and heading, so that a question that
    merely mentions a clause ("3.2条里甲方逾期付款怎么办") is still searched."""
    found: list[tuple[re.Match[str], tuple[str, ...], ReferenceKind]] = []
    for match in _EMBEDDED_CLAUSE.finditer(body):
        major, minor = match.group(1) or match.group(3), match.group(2) or match.group(4)
        clause_id = _clause_id(major, minor)
        if clause_id in table.clauses:
            found.append((match, (clause_id,), "clause"))
    if not found:
        for match in _EMBEDDED_SECTION.finditer(body):
            number = zh_number(match.group(1) or match.group(2))
            ids = table.sections.get(number, ()) if number is not None else ()
            if ids:
                found.append((match, ids, "section"))
    if len(found) != 1:
        return None  # none, or several: a comparison is a question for search
    match, ids, kind = found[0]
    rest = body[: match.start()] + " " + body[match.end() :]
    allowed = set(_LOOKUP_STEMS)
    for item_id in ids:
        item = table.by_id[item_id]
        for name in (item.title, item.title_en, item.section, item.section_en):
            allowed.update(words(normalize(name)))
    leftover = [w for w in words(rest) if not w.replace(".", "").isdigit()]
    if all(_composed_of(w, allowed) for w in leftover):
        return Reference(kind, ids)
    return None


def _composed_of(word: str, allowed: set[str]) -> bool:
    """``word`` is an allowed word or a run of them (jieba keeps 具体内容 or 主要规定 whole)."""
    if word in allowed:
        return True
    ends = {0}  # positions reachable by a chain of allowed words
    for end in range(1, len(word) + 1):
        if any(word[start:end] in allowed for start in ends if start < end):
            ends.add(end)
    return len(word) in ends


def _heading_reference(table: _Table, numeral: str, title: str) -> Reference | None:
    """ "五、违约责任": the items under the heading with that title (clauses or an appendix)."""
    ids = table.headings.get(f"{numeral}、{_strip(title)}", ())
    if ids:
        kinds = {table.by_id[i].kind for i in ids}
        return Reference("section" if kinds == {"clause"} else "item", ids)
    number = zh_number(numeral)
    section = table.sections.get(number, ()) if number is not None else ()
    return Reference("section", section) if section else None


def _term_reference(table: _Table, body: str) -> Reference | None:
    """A glossary term named bare ("违约金") or in a what-is question; a bare item alias."""
    candidates = [body]
    for pattern in (*_TERM_ZH, *_TERM_EN):
        match = pattern.match(body)
        if match:
            candidates.append(_strip(match.group(1)))
    for candidate in candidates:
        candidate = candidate.strip("\"'“”‘’「」『』《》 ")
        if candidate in table.terms:
            return Reference("term", (table.terms[candidate],))
    # Any other item's alias, only when it is the whole message ("保密", "续约", "附件").
    if body in table.aliases:
        return Reference("item", (table.aliases[body],))
    return None
