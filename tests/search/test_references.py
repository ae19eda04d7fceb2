"""Explicit references on a hand-made toy knowledge (no model, no files)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.search.references import Reference, parse_reference, zh_number
from bot.types import Item


def _item(item_id: str, kind: str, section: str, title: str, title_en: str, *aliases: str) -> Item:
    return Item(
        id=item_id,
        kind=kind,
        section=section,
        section_en="",
        title=title,
        title_en=title_en,
        text=f"{title}的条文",
        text_en=f"text of {title_en}",
        parties=("甲方",),
        questions=(),
        aliases=aliases,
    )


@dataclass(frozen=True)
class Toy:
    items: tuple[Item, ...]


TOY = Toy(
    (
        _item("header", "header", "", "测试协议", "Test agreement"),
        _item("1.1", "clause", "一、服务内容", "服务范围", "Scope"),
        _item("1.3", "clause", "一、服务内容", "保密义务", "Confidentiality", "保密", "NDA"),
        _item("3.2", "clause", "三、服务费用", "付款时间", "Payment schedule"),
        _item("5.1", "clause", "五、违约责任", "违约责任", "Liability for breach"),
        _item("5.2", "clause", "五、违约责任", "解除权", "Termination"),
        _item("breach-1", "breach", "二、违约行为及认定", "甲方未付款", "Party A does not pay"),
        _item(
            "term-3",
            "term",
            "三、法律名词及解释",
            "违约金",
            "Liquidated damages",
            "违约金",
            "liquidated damages",
            "penalty",
        ),
        _item("term-4", "term", "三、法律名词及解释", "争议解决", "Dispute resolution"),
    )
)


@pytest.mark.parametrize(
    ("text", "kind", "ids"),
    [
        ("第3.2条", "clause", ("3.2",)),
        ("3.2条", "clause", ("3.2",)),
        ("3.2", "clause", ("3.2",)),
        ("第3.2条说了啥", "clause", ("3.2",)),
        ("第3.2條是什麼內容？", "clause", ("3.2",)),  # traditional
        ("第３．２条", "clause", ("3.2",)),  # full-width digits
        ("clause 5.1", "clause", ("5.1",)),
        ("Clause 5.1", "clause", ("5.1",)),
        ("/clause 5.1", "clause", ("5.1",)),
        ("/clause@contract_bot 5.1", "clause", ("5.1",)),
        ("What does clause 5.2 say?", "clause", ("5.2",)),
        ("show me clause 1.3", "clause", ("1.3",)),
        ("第五条", "section", ("5.1", "5.2")),
        ("第5条", "section", ("5.1", "5.2")),
        ("第五條講什麼", "section", ("5.1", "5.2")),
        ("section 5", "section", ("5.1", "5.2")),
        ("/clause 5", "section", ("5.1", "5.2")),
        ("五、违约责任", "section", ("5.1", "5.2")),
        ("三、法律名词及解释", "item", ("term-3", "term-4")),  # an appendix heading
        ("违约金", "term", ("term-3",)),
        ("違約金", "term", ("term-3",)),
        ("违约金是什么意思？", "term", ("term-3",)),
        ("什么是违约金", "term", ("term-3",)),
        ("what does 争议解决 mean", "term", ("term-4",)),
        ("liquidated damages", "term", ("term-3",)),
        ("What are liquidated damages?", "term", ("term-3",)),
        ("define penalty", "term", ("term-3",)),
        ("/term 违约金", "term", ("term-3",)),
        ("dispute resolution", "term", ("term-4",)),
        ("breach-1", "item", ("breach-1",)),
        ("保密", "item", ("1.3",)),  # a bare alias of an item
    ],
)
def test_references_resolve(text: str, kind: str, ids: tuple[str, ...]) -> None:
    assert parse_reference(text, TOY) == Reference(kind, ids)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "乙方违约了怎么办",  # mentions 违约 but asks what happens: a question, not a lookup
        "违约金要付给谁",  # a question about the term, not "what is it"
        "保密义务什么时候结束",
        "根据3.2条，甲方什么时候付款",  # cites a clause inside a real question
        "3.2万元",  # an amount, not a clause
        "第9.9条",  # no such clause
        "第九条",  # no such section
        "section 9",
        "what is the weather",
        "合同有效期是什么",  # "X 是什么" where X is no term
        "",
        "   ",
        "header",  # a bare id of a non-clause item is too ambiguous without /item or a dash
    ],
)
def test_ordinary_text_is_no_reference(text: str) -> None:
    assert parse_reference(text, TOY) is None


@pytest.mark.parametrize(
    ("text", "kind", "ids"),
    [
        ("3.2条讲的啥", "clause", ("3.2",)),
        ("条款3.2在讲什么", "clause", ("3.2",)),
        ("條款3.2在講什麼", "clause", ("3.2",)),  # traditional
        ("第3.2条是什么", "clause", ("3.2",)),
        ("合同第3.2条的具体内容", "clause", ("3.2",)),  # jieba keeps 具体内容 whole
        ("第3.2条付款时间是怎么规定的", "clause", ("3.2",)),  # with the clause's own title
        ("what does clause 5.2 say", "clause", ("5.2",)),
        ("Article 5.1?", "clause", ("5.1",)),
        ("Can you explain clause 1.3 to me?", "clause", ("1.3",)),
        ("explain section 5", "section", ("5.1", "5.2")),
        ("第五條違約責任是怎麼規定的", "section", ("5.1", "5.2")),  # with the section heading
        ("section 3 payment", "section", ("3.2",)),  # 服务费用's English title words
    ],
)
def test_references_inside_lookup_questions(text: str, kind: str, ids: tuple[str, ...]) -> None:
    assert parse_reference(text, TOY) == Reference(kind, ids)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "3.2条里甲方逾期付款怎么办",  # a clause cited in a question about something else
        "What does section 3 say about late payment?",
        "clause 5.1 vs clause 5.2",  # two references: a comparison, for search
        "第五条和违约金有什么关系",
        "合同金额3.2万元是什么",  # an amount: no 条 or clause marker
        "2024年3.2号签的合同条款",  # a date
        "乙方违约了怎么办",
        "第9.9条讲的啥",  # no such clause
    ],
)
def test_a_number_inside_an_ordinary_question_is_no_reference(text: str) -> None:
    assert parse_reference(text, TOY) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("五", 5), ("十", 10), ("十二", 12), ("二十", 20), ("二十三", 23), ("7", 7), ("五五", None)],
)
def test_zh_number(text: str, value: int | None) -> None:
    assert zh_number(text) == value


@pytest.mark.parametrize("digit", ["፩", "𐩀", "²", "①", "٣", "१"])
def test_digits_of_other_scripts_never_break_a_lookup(digit: str) -> None:
    for text in (
        f"/clause {digit}",
        f"/section {digit}",
        f"/clause {digit}.{digit}",
        f"第{digit}条",
        f"第{digit}.{digit}条",
        f"clause {digit}.2",
        f"{digit}.{digit}条讲的啥",
        f"section {digit}",
    ):
        parse_reference(text, TOY)  # no exception
        assert zh_number(digit) in (None, 1, 2)


def test_full_width_digits_are_digits() -> None:
    assert parse_reference("/clause ３.２", TOY) == Reference("clause", ("3.2",))
    assert parse_reference("第５条", TOY) == parse_reference("第5条", TOY) is not None
