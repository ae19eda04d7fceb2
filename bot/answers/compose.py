"""Compose an answer from the agreement: quote, explain by following typed links, offer follow-ups.

``answer()`` is pure apart from ``retriever.search``. There is no generative model: every
paragraph is agreement text (``Item.text``), its unofficial English translation (``text_en``,
always with the note that the Chinese text governs), or a fixed template from ``bot.answers.texts``.

Intents, tried in this order: empty → help; table of contents; what the agreement does not
cover (``/gaps``, "协议没有约定哪些事项"); complaint guide (only for questions about this
agreement: "淘宝退款怎么投诉" is out of scope); clause lookup by number ("3.2", "第五条");
glossary ("什么是违约金"); otherwise a free question, with one of three outcomes
(``Answer.coverage``): answered from retrieval; ``not_stated``, the agreement is silent on it
(a fixed statement from ``knowledge/coverage.toml`` or of the value a clause lacks, then the
nearest provisions, then, apart and marked as such, the Civil Code article that supplies the
default rule); or ``out_of_scope``, an honest abstention offering the nearest topics.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.answers.language import resolve_language, to_script, to_simplified
from bot.answers.texts import t
from bot.knowledge.coverage import Category, Coverage
from bot.knowledge.loader import fill_blanks
from bot.types import Answer, Citation, Hit, Item, Language, Parameter, Part, Retrieval

#: Relations the explanation follows, in the order it presents them.
EXPLAIN_RELS = ("obligation", "breach", "remedy", "procedure", "definition", "document")
#: Relations followed a second hop, from a breach (or the obligation a breach item names).
SECOND_HOP_RELS = ("remedy", "procedure")
#: Score multiplier per link hop, so items the explanation quotes rank below what led to them.
LINK_DISCOUNT = 0.9
#: Follow-ups offered under an answer.
MAX_RELATED = 3
#: Topics offered when abstaining.
MAX_TOPICS = 3
#: The complaint guide: the items it quotes, in step order (ids are fixed by the knowledge issue).
COMPLAINT_STEPS = ("4.3", "attachments", "problem-3", "6.1")
#: The attachment the complaint guide points to (matched in the attachments item's text).
COMPLAINT_ATTACHMENT = "客户投诉处理流程"
#: Below this confidence (the probability that the answer is right: about the agreement,
#: answered by it, the right item first) an answer carries a "check the quote" note. On the dev
#: split 54 of 323 answered in-scope questions fell below it, about 78 % of them right; above it
#: 93 % to 100 % (the reliability table of scripts/evaluate.py).
LOW_CONFIDENCE = 0.7


class KnowledgeLike(Protocol):
    """What answer composition reads from ``bot.knowledge.loader.Knowledge``."""

    @property
    def items(self) -> tuple[Item, ...]: ...

    @property
    def parameters(self) -> Mapping[str, Parameter]: ...

    @property
    def coverage(self) -> Coverage: ...

    def get(self, item_id: str) -> Item | None: ...


class RetrieverLike(Protocol):
    """What answer composition needs from ``bot.search.retrieval.Retriever``."""

    @property
    def knowledge(self) -> KnowledgeLike: ...

    def search(self, question: str, k: int = 5) -> Retrieval: ...


# --- small helpers ------------------------------------------------------------------------


def normalize_question(text: str) -> str:
    """Simplified, half-width, lower-case, single-spaced, without trailing punctuation."""
    text = unicodedata.normalize("NFKC", text)
    text = to_simplified(text).lower()
    text = re.sub(r"\s+", " ", text).strip()
    return text.strip(" ?!.。？！,，:：;；~～…\"'“”‘’「」")


def item_label(item: Item, language: Language) -> str:
    """How a citation names an item: 第3.2条 / Clause 3.2 / 違約行為及認定 第1項 …"""
    if item.kind == "clause":
        return t("label.clause", language, n=item.id)
    if item.kind in ("breach", "term", "problem", "scenario"):
        return t(f"label.{item.kind}", language, n=item.id.rsplit("-", 1)[-1])
    if item.kind in ("header", "signing", "attachments"):
        return t(f"label.{item.kind}", language)
    return t("label.item", language, id=item.id)


def item_title(item: Item, language: Language) -> str:
    return item.title_en if language == "en" else to_script(item.title, language)


def item_section(item: Item, language: Language) -> str:
    return item.section_en if language == "en" else to_script(item.section, language)


def _party_names(item: Item, language: Language) -> str:
    parties = tuple(dict.fromkeys(item.parties))
    if set(parties) >= {"甲方", "乙方"} or parties == ("both",) or parties == ("双方",):
        return t("party.both", language)
    known = [t(f"party.{p}", language) if p in ("甲方", "乙方") else p for p in parties]
    return t("party.join", language).join(known)


# --- composition ------------------------------------------------------------------------


@dataclass
class _Builder:
    """Collects parts, citations and follow-ups for one answer."""

    knowledge: KnowledgeLike
    language: Language
    parameters: Mapping[str, Parameter]
    parts: list[Part] = field(default_factory=list)
    cited: dict[str, float] = field(default_factory=dict)
    shows_translation: bool = False

    def add(self, role: str, text: str, cite: str | None = None, label: str = "") -> None:
        self.parts.append(Part(role=role, text=text, cite=cite, label=label))

    def cite(self, item: Item, score: float) -> None:
        if item.id not in self.cited:
            self.cited[item.id] = score

    def quote(
        self, item: Item, score: float, *, role: str = "quote", one_line: bool = False
    ) -> None:
        """The item's text (blanks filled or flagged); for English also the translation.

        A main quote in English shows the Chinese text and the translation; an explanation
        part shows only the translation (the answer ends with the note that Chinese governs).
        ``one_line`` joins a list's lines (the attachments list inside an explanation).
        """
        label = item_label(item, self.language)
        zh = fill_blanks(item.text, item.blanks, self.parameters)
        en = fill_blanks(item.text_en, item.blanks, self.parameters)
        if one_line:
            zh, en = zh.replace("\n", " "), en.replace("\n", "; ")
        if self.language == "en":
            if role == "quote":
                self.add("quote", zh, item.id, label)
                self.add("translation", en, item.id, label)
            else:
                self.add(role, en, item.id, label)
            self.shows_translation = True
        else:
            self.add(role, to_script(zh, self.language), item.id, label)
        self.blank_notes(item)
        self.cite(item, score)

    def blank_notes(self, item: Item) -> None:
        """Say plainly which blanks this template leaves empty, and show filled ones."""
        empty: list[str] = []
        for name in dict.fromkeys(item.blanks):
            param = self.parameters.get(name)
            label = (param.label_en if self.language == "en" else param.label) if param else name
            value = param.value.strip() if param else ""
            if value:
                self.add("note", t("filled", self.language, label=label, value=value), item.id)
            else:
                empty.append(label)
        if empty:
            sep = ", " if self.language == "en" else "、"
            self.add("note", t("blank", self.language, label=sep.join(empty)), item.id)

    def section(self, item: Item) -> None:
        if item.section:
            self.add(
                "section",
                t("section", self.language, section=item_section(item, self.language)),
                item.id,
            )

    def finish_translation_note(self) -> None:
        if self.shows_translation:
            self.add("note", t("translation_note", self.language))

    def citations(self) -> tuple[Citation, ...]:
        ranked = sorted(self.cited.items(), key=lambda kv: -kv[1])  # stable: ties keep order
        out = []
        for item_id, score in ranked:
            item = self.knowledge.get(item_id)
            out.append(Citation(id=item_id, kind=item.kind if item else "", score=round(score, 3)))
        return tuple(out)


def _explain(b: _Builder, item: Item, score: float) -> None:
    """Who is obliged, what counts as breach, the remedy, the procedure, the terms: by links."""
    k = b.knowledge
    if item.parties and item.kind in ("clause", "breach"):
        # "应" (shall) marks an obligation; other clauses (the term, the copies) only concern.
        key = "obliged" if item.kind == "clause" and "应" in item.text else "concerns"
        b.add("explain", t(key, b.language, parties=_party_names(item, b.language)), item.id)

    groups: dict[str, list[tuple[Item, int]]] = {rel: [] for rel in EXPLAIN_RELS}
    seen = {item.id}

    def add(rel: str, target_id: str, depth: int) -> None:
        target = k.get(target_id)
        if target is None or target_id in seen:
            return
        seen.add(target_id)
        groups[rel].append((target, depth))

    for rel in EXPLAIN_RELS:
        for target_id in item.linked(rel):
            add(rel, target_id, 1)
    # A troubleshooting note links its breach as "related": it still says what counts as breach.
    for target_id in item.linked("related"):
        target = k.get(target_id)
        if target is not None and target.kind == "breach":
            add("breach", target_id, 1)
    # Second hop: from the breach to its remedy and procedure (and, when the answer is not
    # itself a clause, to the obligation it breaches).
    second = SECOND_HOP_RELS if item.kind == "clause" else ("obligation", *SECOND_HOP_RELS)
    for via_rel in ("breach", "obligation"):
        for via, _depth in list(groups[via_rel]):
            for rel in second:
                for target_id in via.linked(rel):
                    add(rel, target_id, 2)

    for rel in EXPLAIN_RELS:
        if not groups[rel]:
            continue
        b.add("heading", t(rel, b.language))
        for target, depth in groups[rel]:
            b.quote(
                target, score * LINK_DISCOUNT**depth, role="explain", one_line=rel == "document"
            )


def _related(b: _Builder, main: Sequence[Item], hits: Iterable[Hit] = ()) -> tuple[str, ...]:
    """2-3 follow-ups: the main items' typed links, then other hits; unquoted items first.

    Items the answer already quotes go last: a follow-up should lead somewhere new.
    """
    main_ids = {item.id for item in main}
    out: list[str] = []
    for rel in ("breach", "remedy", "procedure", "related", "obligation", "definition", "document"):
        for item in main:
            out.extend(item.linked(rel))
    out.extend(hit.item_id for hit in hits)
    candidates = [
        i for i in dict.fromkeys(out) if i not in main_ids and b.knowledge.get(i) is not None
    ]
    fresh = [i for i in candidates if i not in b.cited]
    quoted = [i for i in candidates if i in b.cited]
    return tuple((fresh + quoted)[:MAX_RELATED])


def _related_parts(b: _Builder, ids: Sequence[str]) -> None:
    if not ids:
        return
    b.add("heading", t("related.title", b.language))
    for item_id in ids:
        item = b.knowledge.get(item_id)
        if item is not None:
            label = item_label(item, b.language)
            b.add("related", item_title(item, b.language), item.id, label)


def _finish(
    b: _Builder,
    question: str,
    intent: str,
    confidence: float,
    related: Sequence[str] = (),
    *,
    abstained: bool = False,
    list_related: bool = True,
    coverage: str = "answered",
    category: str = "",
) -> Answer:
    if list_related:
        _related_parts(b, related)
    b.finish_translation_note()
    return Answer(
        question=question,
        language=b.language,
        abstained=abstained,
        confidence=round(max(0.0, min(1.0, confidence)), 3),
        intent=intent,
        citations=() if abstained else b.citations(),
        parts=tuple(b.parts),
        related=tuple(related),
        coverage="out_of_scope" if abstained else coverage,
        category=category,
    )


# --- intents ------------------------------------------------------------------------------

_TOC_PATTERNS = (
    r"^目录$",
    r"^(协议|合同)?(的)?目录",
    r"(有|包括)?(哪些|什么|几)(个)?条款",
    r"^(所有|全部)(的)?条款",
    r"^条款(列表|目录|清单)",
    r"^/?(toc|contents|clauses)$",
    r"table of contents",
    r"^list (all )?(the )?(clauses|sections|items)",
    r"^(show|what are) (me )?(all )?(the )?(clauses|sections)",
)
# The complaint guide answers "how/where do I complain", not every question that mentions a
# complaint ("投诉处理太慢了怎么办" is answered from problem-3 by retrieval).
_COMPLAINT = re.compile(
    r"^/?(?:客户)?(?:投诉|申诉|complaints?|complain)$"
    r"|(?:怎么|怎样|如何|咋|去哪里?|在哪里?|向谁|找谁|到哪里?|我要|我想|想要?|(?<!需)要)(?:去|进行|提出|提交)?"
    r"(?:投诉|申诉)"
    r"|(?:投诉|申诉)(?:的)?(?:流程|步骤|程序|渠道|途径|方式|方法|指引|指南|入口|电话)"
    r"|(?:投诉|申诉)(?:要)?(?:怎么|如何)(?:办|弄|做|操作|进行)?$"
    r"|\bhow (?:do|can|could|should|would) (?:i|we|a customer|customers|users?) "
    r"(?:make |file |lodge |submit |raise )?(?:a )?complain"
    r"|\bhow to (?:make |file |lodge |submit |raise )?(?:a )?complain"
    r"|\bwhere (?:do|can|should) (?:i|we|customers|users?) (?:make |file |send )?(?:a )?complain"
    r"|\b(?:i|we) (?:want|would like|need) to (?:make |file |lodge )?(?:a )?complain"
    r"|\bcomplaints? (?:procedure|process|steps|guide|channel)"
)
_CLAUSE_LIKE = re.compile(
    r"^(?:第\s*)?[0-9一二三四五六七八九十]+(?:\.[0-9]+)?\s*(?:条|章|节|款)?$"
    r"|^/?(?:clause|section|article)\s*[0-9]+(?:\.[0-9]+)?$"
)


# "What does the agreement not cover?": a list of what it leaves open, not one matter
# ("协议没写的事情怎么处理" asks what to do about such matters: 7.2 answers it).
_GAPS = re.compile(
    r"^/?gaps?$"
    r"|(?:协议|合同|本协议|本合同|这份协议|这份合同)(?:里|中|里面|上)?(?:都|还)?"
    r"(?:没有|没|未|不)(?:约定|规定|写|写到|写明|涉及|覆盖|提到|包括|讲)(?:到)?(?:了)?(?:的)?"
    r"(?:哪些|什么|啥|哪几)(?:事项|内容|问题|方面|东西|条款|事情|地方)?(?:呢|啊|吗)?$"
    r"|(?:哪些|什么)(?:事项|内容|问题|方面|事情)(?:是)?(?:协议|合同|本协议)(?:里|中)?"
    r"(?:没有|没|未)(?:约定|规定|写|涉及|覆盖)"
    r"|(?:协议|合同)(?:的)?(?:漏洞|空白|缺口|遗漏|未约定事项|未尽事项清单)(?:有哪些|是什么)?$"
    r"|\bwhat (?:does|doesn't|do) (?:this |the )?(?:agreement|contract) (?:not |fail to )?"
    r"(?:cover|say|address|include)\b.*\b(?:not|n't)\b|\bwhat (?:does|do) (?:this |the )?"
    r"(?:agreement|contract) not (?:cover|say|address|include)"
    r"|\bwhat(?: is|'s| are)? (?:not covered|missing|left out) (?:in|from|by) (?:this |the )?"
    r"(?:agreement|contract)"
    r"|\b(?:gaps|omissions) (?:in|of) (?:this |the )?(?:agreement|contract)"
    r"|\bwhich (?:matters|topics|issues|things) (?:does|are) (?:this |the )?(?:agreement|contract)"
    r" (?:not |leave )"
)
#: A bare request for the complaint guide ("怎么投诉", "I want to complain"): about this bot's
#: agreement by default. Any other complaint question goes to the guide only when it is about
#: this agreement (retrieval does not find it out of scope).
_BARE_COMPLAINT = re.compile(
    r"^/?(?:客户)?(?:投诉|申诉|complaints?|complain)$"
    r"|^(?:我)?(?:要|想|想要)?(?:怎么|怎样|如何|去哪里?|在哪里?|向谁|找谁)?(?:去)?(?:投诉|申诉)"
    r"(?:流程|步骤|渠道|方式|指引)?(?:是什么|有哪些)?$"
    r"|^how (?:do|can) i (?:make |file )?(?:a )?complain(?:t)?$"
)


def _is_toc(q: str) -> bool:
    return any(re.search(p, q) for p in _TOC_PATTERNS)


def _is_gaps(q: str) -> bool:
    return bool(_GAPS.search(q))


def _is_complaint(q: str) -> bool:
    return bool(_COMPLAINT.search(q))


def _reference(question: str, knowledge: KnowledgeLike) -> tuple[str, list[Item]] | None:
    """The explicit reference the question is ("3.2", "第五条", "违约金"): its kind and items."""
    from bot.search.references import parse_reference

    ref = parse_reference(question, knowledge)
    bare = question.strip()
    if ref is None and re.fullmatch(r"\d{1,2}|[一二三四五六七八九十]{1,3}", bare):
        ref = parse_reference(f"第{bare}条", knowledge)  # a bare "5" asks for section 5
    if ref is None:
        return None
    items = [item for i in ref.ids if (item := knowledge.get(i)) is not None]
    return (ref.kind, items) if items else None


# --- the answers --------------------------------------------------------------------------


def _help(b: _Builder, question: str) -> Answer:
    b.add("heading", t("help.title", b.language))
    b.add("help", t("help.body", b.language))
    return _finish(b, question, "empty", 0.0)


def _toc(b: _Builder, question: str) -> Answer:
    b.add("heading", t("toc.title", b.language))
    section = None
    appendix_started = False
    for item in b.knowledge.items:
        if item.kind == "clause":
            if item.section != section:
                section = item.section
                b.add("section", item_section(item, b.language))
            b.add(
                "toc",
                t("toc.clause", b.language, id=item.id, title=item_title(item, b.language)),
                item.id,
                item.id,
            )
        elif item.kind in ("attachments", "breach", "term", "problem", "scenario"):
            if not appendix_started:
                appendix_started = True
                b.add("section", t("toc.appendix", b.language))
            label, title = item_label(item, b.language), item_title(item, b.language)
            text = label if title == label else t("toc.entry", b.language, label=label, title=title)
            b.add("toc", text, item.id, label)
    b.add("note", t("toc.hint", b.language))
    return _finish(b, question, "toc", 1.0)


def _clauses(b: _Builder, question: str, items: Sequence[Item]) -> Answer:
    if len(items) == 1:
        item = items[0]
        b.section(item)
        b.quote(item, 1.0)
        _explain(b, item, 1.0)
    else:
        sections = dict.fromkeys(item_section(item, b.language) for item in items if item.section)
        for section in sections:
            b.add("section", section)
        for item in items:
            b.quote(item, 1.0)
    return _finish(b, question, "clause", 1.0, _related(b, items))


def _clause_not_found(b: _Builder, question: str) -> Answer:
    b.add("abstain", t("clause.not_found", b.language, ref=question.strip()))
    return _finish(b, question, "clause", 0.0, abstained=True)


def _term(b: _Builder, question: str, item: Item) -> Answer:
    b.add("heading", t("term.title", b.language, title=item_title(item, b.language)))
    b.quote(item, 1.0)
    _explain(b, item, 1.0)
    # Where the agreement uses the term: the clauses the glossary entry links to.
    clauses = [
        c for i in item.linked("related") if (c := b.knowledge.get(i)) and c.kind == "clause"
    ]
    if clauses:
        b.add("heading", t("related", b.language))
        for clause in clauses:
            b.quote(clause, LINK_DISCOUNT, role="explain")
    return _finish(b, question, "term", 1.0, _related(b, [item]))


def _complaint(b: _Builder, question: str) -> Answer:
    b.add("heading", t("complaint.title", b.language))
    b.add("explain", t("complaint.intro", b.language))
    shown: list[Item] = []
    for item_id in COMPLAINT_STEPS:
        item = b.knowledge.get(item_id)
        if item is None:
            continue
        shown.append(item)
        b.add(
            "step",
            t(f"complaint.step.{item_id}", b.language),
            item.id,
            item_label(item, b.language),
        )
        if item.kind == "attachments":
            _quote_attachment_entry(b, item)
        else:
            b.quote(item, 1.0, role="quote")
        if item_id == "6.1":
            b.add("note", t("complaint.party_note", b.language), item.id)
    # Follow-ups from the steps' own clauses, not from the attachments list's many links.
    steps = [item for item in shown if item.kind != "attachments"]
    return _finish(b, question, "complaint", 1.0, _related(b, steps))


def _quote_attachment_entry(b: _Builder, item: Item) -> None:
    """Quote only the attachment list's entry for the complaint procedure, verbatim."""
    entry = _list_entry(item.text, COMPLAINT_ATTACHMENT)
    label = item_label(item, b.language)
    if entry is None:
        b.quote(item, 1.0)
        return
    b.add("quote", to_script(entry, b.language), item.id, label)
    if b.language == "en":
        entry_en = _list_entry(item.text_en, "omplaint")
        if entry_en:
            b.add("translation", entry_en, item.id, label)
            b.shows_translation = True
    b.add("note", t("complaint.attachment_note", b.language), item.id)
    b.cite(item, 1.0)


def _list_entry(text: str, needle: str) -> str | None:
    """The numbered list entry ("5.客户投诉处理流程") of ``text`` that contains ``needle``."""
    for line in re.split(r"\n|(?=(?<!\d)\d+[.．、])", text):
        if needle in line:
            return line.strip(" ；;，,。")
    return None


def _abstain(b: _Builder, question: str, retrieval: Retrieval) -> Answer:
    b.add("abstain", t("abstain", b.language))
    topics = [h.item_id for h in retrieval.hits if b.knowledge.get(h.item_id) is not None]
    topics = list(dict.fromkeys(topics))[:MAX_TOPICS]
    if topics:
        b.add("heading", t("abstain.nearest", b.language))
        for item_id in topics:
            item = b.knowledge.get(item_id)
            assert item is not None
            label = item_label(item, b.language)
            b.add(
                "topic",
                t(
                    "abstain.topic",
                    b.language,
                    label=label,
                    title=item_title(item, b.language),
                    id=item.id,
                ),
                item.id,
                label,
            )
    # The topics are offered as follow-ups (buttons) but not cited: nothing was answered.
    return _finish(
        b, question, "abstain", retrieval.confidence, topics, abstained=True, list_related=False
    )


def _statement(b: _Builder, category: Category | None, aspect: str) -> str:
    if category is not None:
        if b.language == "en":
            return category.not_stated_en
        return to_script(category.not_stated, b.language)
    return t(f"aspect.{aspect or 'amount'}", b.language)


def _not_stated(b: _Builder, question: str, retrieval: Retrieval) -> Answer:
    """What the agreement does not say (a fixed statement), then the nearest provisions, then
    the optional Civil Code pointer, clearly marked as not part of the agreement."""
    category = b.knowledge.coverage.get(retrieval.category) if retrieval.category else None
    b.add("not_stated", _statement(b, category, retrieval.aspect))
    nearest = [
        item
        for i in (retrieval.nearest or (retrieval.hits[0].item_id,))
        if (item := b.knowledge.get(i)) is not None
    ][:3]
    if nearest:
        b.add("heading", t("not_stated.nearest", b.language))
        for rank, item in enumerate(nearest):
            b.quote(item, retrieval.confidence * LINK_DISCOUNT**rank)
    if category is not None and category.law:
        b.add("heading", t("law.title", b.language))
        for law in category.law:
            topic = law.topic_en if b.language == "en" else law.topic
            b.add(
                "law",
                t("law.item", b.language, article=law.article, number=law.number, topic=topic),
            )
    related = _related(b, nearest, retrieval.hits)
    return _finish(
        b,
        question,
        "not_stated",
        retrieval.confidence,
        related,
        coverage="not_stated",
        category=category.id if category is not None else "",
    )


def _gaps(b: _Builder, question: str) -> Answer:
    """The categories of the coverage map the agreement does not cover or covers only partly,
    grouped, each with its statement."""
    gaps = b.knowledge.coverage.gaps
    groups = (("no", "gaps.no"), ("partly", "gaps.partly"))
    counts = {covered: sum(c.covered == covered for c in gaps) for covered, _ in groups}
    b.add("heading", t("gaps.title", b.language))
    b.add("explain", t("gaps.intro", b.language, no=counts["no"], partly=counts["partly"]))
    for covered, key in groups:
        part = [c for c in gaps if c.covered == covered]
        if not part:
            continue
        b.add(
            "section",
            f"{t(key, b.language)}（{len(part)}）"
            if b.language != "en"
            else f"{t(key, b.language)} ({len(part)})",
        )
        for category in part:
            name = category.name_en if b.language == "en" else to_script(category.name, b.language)
            b.add(
                "gap",
                t("gaps.item", b.language, name=name, statement=_statement(b, category, "")),
            )
    b.add("note", t("gaps.hint", b.language))
    return _finish(b, question, "gaps", 1.0)


def _free(b: _Builder, question: str, retrieval: Retrieval) -> Answer:
    top = retrieval.hits[0]
    item = b.knowledge.get(top.item_id)
    if item is None:  # an index from other knowledge; Retriever.load refuses that, but be safe
        return _abstain(b, question, retrieval)
    # The calibrated confidence (0..1) scores the main citation; fused ranks are not comparable.
    score = retrieval.confidence
    b.section(item)
    b.quote(item, score)
    _explain(b, item, score)
    if retrieval.confidence < LOW_CONFIDENCE:
        b.add("note", t("low_confidence", b.language))
    related = _related(b, [item], retrieval.hits[1:])
    return _finish(b, question, "question", retrieval.confidence, related)


def _builder(
    knowledge: KnowledgeLike, language: Language, overrides: Mapping[str, str] | None
) -> _Builder:
    params = dict(knowledge.parameters)
    for name, value in (overrides or {}).items():
        base = params.get(name) or Parameter(name=name, label=name, label_en=name)
        params[name] = replace(base, value=value or "")
    return _Builder(knowledge=knowledge, language=language, parameters=params)


def item_answer(
    item: Item,
    knowledge: KnowledgeLike,
    language: Language,
    parameters: Mapping[str, str] | None = None,
) -> Answer:
    """Just one item in full: its section, its text (blanks filled or flagged), for English the
    unofficial translation. For a "full text" button or an inline result; no retrieval."""
    b = _builder(knowledge, language, parameters)
    b.add("heading", f"{item_label(item, language)} {item_title(item, language)}".strip(), item.id)
    b.section(item)
    b.quote(item, 1.0)
    return _finish(b, item.id, "clause", 1.0)


def answer(
    question: str,
    retriever: RetrieverLike,
    *,
    language: Language | None = None,
    parameters: Mapping[str, str] | None = None,
) -> Answer:
    """Answer ``question`` from the agreement in ``language`` (detected when None).

    ``parameters`` overrides template-blank values by name (else knowledge/parameters.toml).
    """
    knowledge = retriever.knowledge
    # An item id on its own ("breach-1", from a follow-up button) is no language at all.
    by_id = knowledge.get(question.strip())
    lang: Language = language or ("zh-Hans" if by_id else resolve_language(None, None, question))
    b = _builder(knowledge, lang, parameters)

    q = normalize_question(question)
    if not q:
        return _help(b, question)
    if by_id is not None:
        return _clauses(b, question, [by_id])
    if _is_toc(q):
        return _toc(b, question)
    if _is_gaps(q):
        return _gaps(b, question)
    if _is_complaint(q):
        if _BARE_COMPLAINT.match(q):
            return _complaint(b, question)
        retrieval = retriever.search(question)
        if retrieval.abstain:  # another shop's, platform's or contract's complaint
            return _abstain(b, question, retrieval)
        return _complaint(b, question)
    ref = _reference(question, knowledge)
    if ref is not None:
        kind, items = ref
        if kind == "term":
            return _term(b, question, items[0])
        return _clauses(b, question, items)
    if _CLAUSE_LIKE.match(q):
        return _clause_not_found(b, question)
    retrieval = retriever.search(question)
    if retrieval.abstain or not retrieval.hits:
        return _abstain(b, question, retrieval)
    if retrieval.coverage == "not_stated":
        return _not_stated(b, question, retrieval)
    return _free(b, question, retrieval)
