"""Every fixed user-facing string, per language.

zh-Hant is not written out: it is the zh-Hans string, formatted, then converted with OpenCC
(``bot.answers.language.to_script``), so the two can never drift apart.
``ZH_HANT_OVERRIDES`` holds the few strings where a converted one would be wrong (e.g. the
name of the script itself).

Other modules add their own strings with :func:`extend` at import time and read every string
through :func:`t`.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.answers.language import to_script
from bot.types import Language

ZH_HANS: dict[str, str] = {
    # --- labels of items --------------------------------------------------------------------
    "label.clause": "第{n}条",
    "label.section": "第{n}条（{title}）",
    "label.header": "协议首部",
    "label.signing": "签署部分",
    "label.attachments": "附件列表",
    "label.breach": "违约行为及认定 第{n}项",
    "label.term": "法律名词及解释 第{n}项",
    "label.problem": "执行中遇到的问题 第{n}项",
    "label.scenario": "应用场景 第{n}项",
    "label.item": "{id}",
    "cite": "【{label}】",
    "translation": "{text}",
    # --- parties ----------------------------------------------------------------------------
    "party.甲方": "甲方",
    "party.乙方": "乙方",
    "party.both": "甲乙双方",
    "party.join": "、",
    # --- answer sections --------------------------------------------------------------------
    "section": "所在章节：{section}",
    "obliged": "义务方：{parties}",
    "concerns": "涉及：{parties}",
    "breach": "何为违约",
    "obligation": "所违反的义务",
    "remedy": "违约后果",
    "procedure": "怎么办",
    "definition": "相关名词",
    "document": "相关附件",
    "related": "相关条款",
    "blank": "本模板此处留空：{label}",
    "filled": "{label}：{value}（由运营方填写）",
    "translation_note": "",
    "low_confidence": "（匹配把握不高，请核对所引条文是否回答了您的问题。）",
    # --- abstention -------------------------------------------------------------------------
    "abstain": "这个问题不在本协议范围内，协议里没有相关约定，我无法回答。",
    "abstain.nearest": "协议中最接近的内容：",
    "abstain.topic": "{label} {title}（{id}）",
    # --- not stated (the agreement is silent) ----------------------------------------------
    "not_stated.nearest": "与此最相关的条款：",
    "aspect.amount": "本协议没有约定具体的数额或计算方法。",
    "aspect.duration": "本协议没有约定具体的期限或时长。",
    "aspect.deadline": "本协议没有约定具体的时限（例如几小时或几天之内）。",
    "aspect.frequency": "本协议没有约定具体的频次。",
    "aspect.count": "本协议没有约定具体的数量。",
    "aspect.cost_bearer": "本协议没有约定这项费用由哪一方承担。",
    "law.title": "法律的一般规定（非本协议内容，仅供参考）：",
    "law.item": "《中华人民共和国民法典》{article}：{topic}",
    # --- what the agreement does not cover (/gaps) -----------------------------------------
    "gaps.title": "本协议没有约定或只部分约定的事项",
    "gaps.intro": (
        "对照服务类合同的常见条款清单，本协议没有约定的有{no}项，只部分约定的有{partly}项。"
        "重新谈判或另行签订补充协议（第7.2条）前可逐项核对。"
    ),
    "gaps.no": "没有约定",
    "gaps.partly": "只部分约定",
    "gaps.item": "{name}：{statement}",
    "gaps.hint": "就其中一项提问（例如「乙方能不能转包」），可查看与之最相关的条款。",
    # --- help -------------------------------------------------------------------------------
    "help.title": "我可以回答关于《互联网产品售后支持协议》的问题，所有回答都引用协议原文。",
    "help.body": (
        "您可以：\n"
        "• 直接提问，例如「甲方什么时候付款？」「乙方泄露资料怎么办？」\n"
        "• 按编号查条款，例如「3.2」「第五条」\n"
        "• 查名词，例如「什么是违约金」\n"
        "• 查投诉流程：「怎么投诉」\n"
        "• 查协议没有约定的事项：「协议没有约定哪些事项」\n"
        "• 查看目录：「目录」"
    ),
    # --- table of contents ------------------------------------------------------------------
    "toc.title": "《互联网产品售后支持协议》目录",
    "toc.clause": "{id} {title}",
    "toc.appendix": "附录",
    "toc.entry": "{label}：{title}",
    "toc.hint": "发送条款编号（如「3.2」）查看原文。",
    # --- clause lookup ----------------------------------------------------------------------
    "clause.section": "{section}",
    "clause.not_found": "协议中没有「{ref}」这一条。发送「目录」查看全部条款。",
    # --- glossary ---------------------------------------------------------------------------
    "term.title": "名词解释：{title}",
    # --- complaint guide --------------------------------------------------------------------
    "complaint.title": "客户投诉指引（依据协议条文整理）",
    "complaint.intro": (
        "本协议由甲方（互联网产品提供商）与乙方（售后服务提供商）签订；以下各步均引自协议原文。"
    ),
    "complaint.step.4.3": "第一步：向乙方投诉——乙方须设立客户投诉处理机制，及时响应和处理",
    "complaint.step.attachments": "第二步：投诉按附件《客户投诉处理流程》处理",
    "complaint.attachment_note": "本协议只列出该附件的名称，未包含附件的具体内容。",
    "complaint.step.problem-3": "第三步：投诉处理不及时时",
    "complaint.step.6.1": "第四步：仍未解决——争议的解决",
    "complaint.party_note": "此条约束的是甲乙双方之间因履行本协议产生的争议。",
    # --- misc -------------------------------------------------------------------------------
    "related.title": "您可能还想了解：",
    "dialogue.topic": "（接上一问：{topic}）",
    "confidence": "匹配度：{value}",
    "error": "出错了，请稍后再试。",
}

EN: dict[str, str] = {
    "label.clause": "Clause {n}",
    "label.section": "Section {n} ({title})",
    "label.header": "Header",
    "label.signing": "Signature block",
    "label.attachments": "List of attachments",
    "label.breach": "Breach item {n}",
    "label.term": "Glossary term {n}",
    "label.problem": "Problem {n}",
    "label.scenario": "Scenario {n}",
    "label.item": "{id}",
    "cite": "[{label}] ",
    "translation": "Unofficial translation: {text}",
    "party.甲方": "Party A (甲方)",
    "party.乙方": "Party B (乙方)",
    "party.both": "both parties",
    "party.join": ", ",
    "section": "Section: {section}",
    "obliged": "Obliged party: {parties}",
    "concerns": "Concerns: {parties}",
    "breach": "What counts as breach",
    "obligation": "The obligation breached",
    "remedy": "Consequences of breach",
    "procedure": "What to do",
    "definition": "Terms used",
    "document": "Attachments referred to",
    "related": "Related clauses",
    "blank": "This template leaves the {label} blank.",
    "filled": "{label}: {value} (filled in by the operator)",
    "translation_note": "Unofficial translation; the Chinese text governs.",
    "low_confidence": "(Low-confidence match: check that the quoted text answers your question.)",
    "abstain": (
        "This question is not covered by this agreement: it says nothing about it, "
        "so I cannot answer."
    ),
    "abstain.nearest": "The nearest topics in the agreement:",
    "abstain.topic": "{label} {title} ({id})",
    "not_stated.nearest": "The provisions nearest to it:",
    "aspect.amount": "The agreement states no specific amount or formula for this.",
    "aspect.duration": "The agreement sets no specific period or duration for this.",
    "aspect.deadline": (
        "The agreement sets no specific time limit for this (such as a number of hours or days)."
    ),
    "aspect.frequency": "The agreement sets no specific frequency for this.",
    "aspect.count": "The agreement states no specific number for this.",
    "aspect.cost_bearer": "The agreement does not say which party bears this cost.",
    "law.title": "General rules of law (not part of this agreement; for reference only):",
    "law.item": "PRC Civil Code (《中华人民共和国民法典》), Article {number} ({article}): {topic}",
    "gaps.title": "What this agreement does not cover, or covers only in part",
    "gaps.intro": (
        "Checked against the usual checklist of a service agreement, the agreement does not "
        "cover {no} matters and covers {partly} only in part. Go through them before "
        "renegotiating or signing a supplementary agreement (clause 7.2)."
    ),
    "gaps.no": "Not covered",
    "gaps.partly": "Covered only in part",
    "gaps.item": "{name}: {statement}",
    "gaps.hint": (
        "Ask about one of them (e.g. “can Party B subcontract?”) to see the nearest provisions."
    ),
    "help.title": (
        "I answer questions about the After-Sales Support Agreement for Internet Products "
        "(互联网产品售后支持协议), always quoting its text."
    ),
    "help.body": (
        "You can:\n"
        "• ask a question, e.g. “When must Party A pay?” or “What if Party B leaks our data?”\n"
        "• look up a clause by number, e.g. “3.2” or “section 5”\n"
        "• look up a term, e.g. “what does 违约金 mean”\n"
        "• get the complaint procedure: “how do I complain”\n"
        "• see what the agreement does not cover: “what does the agreement not cover?”\n"
        "• see the contents: “table of contents”"
    ),
    "toc.title": "Contents of the After-Sales Support Agreement",
    "toc.clause": "{id} {title}",
    "toc.appendix": "Appendices",
    "toc.entry": "{label}: {title}",
    "toc.hint": "Send a clause number (e.g. “3.2”) to read it.",
    "clause.section": "{section}",
    "clause.not_found": (
        "The agreement has no “{ref}”. Send “table of contents” to see all clauses."
    ),
    "term.title": "Term: {title}",
    "complaint.title": "How to complain (assembled from the agreement's text)",
    "complaint.intro": (
        "The agreement is between Party A (the product provider) and Party B (the after-sales "
        "service provider); every step below quotes it."
    ),
    "complaint.step.4.3": (
        "Step 1: complain to Party B, which must have a complaint-handling mechanism and respond "
        "to and handle complaints promptly"
    ),
    "complaint.step.attachments": (
        "Step 2: complaints follow the attachment “Customer complaint handling procedure”"
    ),
    "complaint.attachment_note": (
        "The agreement only lists this attachment by name; its content is not part of the text."
    ),
    "complaint.step.problem-3": "Step 3: if complaints are not handled in time",
    "complaint.step.6.1": "Step 4: if it is still not resolved — dispute resolution",
    "complaint.party_note": (
        "This clause governs disputes between Party A and Party B arising from the agreement."
    ),
    "related.title": "You may also want to read:",
    "dialogue.topic": "(Following on from: {topic})",
    "confidence": "Match: {value}",
    "error": "Something went wrong, please try again later.",
}

#: zh-Hant strings whose OpenCC conversion of the zh-Hans one would be wrong.
ZH_HANT_OVERRIDES: dict[str, str] = {}


def extend(
    zh_hans: Mapping[str, str], en: Mapping[str, str], zh_hant: Mapping[str, str] | None = None
) -> None:
    """Add strings (e.g. the Telegram layer's); every key needs a zh-Hans and an English text."""
    missing = set(zh_hans) ^ set(en)
    if missing:
        raise ValueError(f"texts.extend: keys missing in one language: {sorted(missing)}")
    ZH_HANS.update(zh_hans)
    EN.update(en)
    ZH_HANT_OVERRIDES.update(zh_hant or {})


def t(key: str, language: Language, /, **kw: object) -> str:
    """The string ``key`` in ``language``, formatted with ``kw``.

    For zh-Hant the formatted zh-Hans string is converted as a whole, so values passed in
    (titles, quoted text) come out in traditional characters too.
    """
    if language == "en":
        return EN[key].format(**kw)
    if language == "zh-Hant" and key in ZH_HANT_OVERRIDES:
        return ZH_HANT_OVERRIDES[key].format(**kw)
    text = ZH_HANS[key].format(**kw)
    return to_script(text, language)


def keys() -> frozenset[str]:
    """All known keys (for tests that check the tables stay in step)."""
    return frozenset(ZH_HANS)
