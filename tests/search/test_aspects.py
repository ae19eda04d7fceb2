"""The aspect check on hand-made items: a question asks for a value the best clause lacks."""

from __future__ import annotations

import pytest

from bot.search.aspects import asked_aspect, missing_aspect, states_aspect
from bot.search.textproc import normalize
from bot.types import Item, Parameter


def _item(text: str, blanks: tuple[str, ...] = ()) -> Item:
    return Item(
        id="x",
        kind="clause",
        section="s",
        section_en="s",
        title="t",
        title_en="t",
        text=text,
        text_en=text,
        parties=("甲方",),
        questions=(),
        blanks=blanks,
    )


PENALTY = _item("任何一方违约的，应向对方支付违约金。")
RENEWAL = _item("如双方同意续约，应提前一个月书面通知对方。")
FEE = _item("服务费用为人民币____元。", ("fee",))
TERM = _item("本协议有效期为____年。", ("term_years",))
COMPLAINTS = _item("乙方应对客户的投诉及时进行响应和处理。")
COPIES = _item("本协议一式两份，甲乙双方各执一份。")
QUARTERLY = _item("甲方应于每季度第一个月内支付上一季度的服务费用。")
PARAMETERS = {
    "fee": Parameter("fee", "服务费用（人民币元）", "service fee (RMB)"),
    "term_years": Parameter("term_years", "有效期（年）", "term (years)"),
}


@pytest.mark.parametrize(
    ("question", "aspect"),
    [
        ("违约金是多少钱", "amount"),
        ("违约金按什么比例计算？", "amount"),
        ("How much are the liquidated damages?", "amount"),
        ("Is there a cap on liability?", "amount"),
        ("续约要提前多久通知", "duration"),
        ("How much notice do we need to give?", "duration"),
        ("投诉几小时内必须回复？", "deadline"),
        ("How quickly must Party B respond?", "deadline"),
        ("培训一年要做几次", "frequency"),
        ("how often is quality reviewed?", "frequency"),
        ("合同一式几份", "count"),
        ("维修零件的钱谁出？", "cost_bearer"),
        ("who pays for spare parts?", "cost_bearer"),
        ("甲方什么时候付款", None),
        ("乙方泄露资料怎么办", None),
        ("服务费几号之前要交", None),  # a date, not an amount
        ("投诉了好几天都没人理，怎么办", None),  # a story, not a question about a period
    ],
)
def test_asked_aspect(question: str, aspect: str | None) -> None:
    assert asked_aspect(normalize(question)) == aspect


def test_a_clause_without_the_value_is_missing_it() -> None:
    assert missing_aspect(normalize("违约金有没有写明数额"), PENALTY) == "amount"
    assert missing_aspect(normalize("投诉多少小时内要回复"), COMPLAINTS) == "deadline"
    assert missing_aspect(normalize("违约金怎么算"), PENALTY) == "amount"


def test_a_stated_value_answers_the_question() -> None:
    assert missing_aspect(normalize("续约要提前多久通知"), RENEWAL) is None
    assert missing_aspect(normalize("协议一式几份"), COPIES) is None
    assert missing_aspect(normalize("服务费多久付一次"), QUARTERLY) is None
    assert states_aspect(PENALTY, "cost_bearer")  # 应向对方支付: who pays is stated
    # The payer may come well before the verb (clause 3.1's wording): "who pays" is answered.
    paying = _item("服务费用为人民币____元，甲方应按照本协议约定的付款方式及时支付。", ("fee",))
    assert missing_aspect(normalize("Who pays the service fee?"), paying, PARAMETERS) is None
    assert missing_aspect(normalize("服务费由谁承担"), paying, PARAMETERS) is None


def test_a_template_blank_is_an_answer_not_a_gap() -> None:
    assert missing_aspect(normalize("服务费是多少"), FEE, PARAMETERS) is None
    assert missing_aspect(normalize("合同有效期多久"), TERM, PARAMETERS) is None
    # ... but only for the value the blank holds.
    assert missing_aspect(normalize("几小时内要响应"), TERM, PARAMETERS) == "deadline"


def test_no_aspect_no_verdict() -> None:
    assert missing_aspect(normalize("乙方要保密吗"), PENALTY) is None
