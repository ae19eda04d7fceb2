"""Which party a question is about, and how items' parties agree with it (hand-made text)."""

from __future__ import annotations

import pytest

from bot.search.parties import names_agreement, party_prior, question_party
from bot.search.textproc import normalize


@pytest.mark.parametrize(
    ("question", "party"),
    [
        ("甲方哪些行为会被认定为违约", "甲方"),
        ("乙方泄露资料怎么办", "乙方"),
        ("we paid the provider a few weeks late — is that a breach?", "甲方"),
        ("We paid our after-sales vendor three weeks late. Is that a breach on our side?", "甲方"),
        ("我们是服务商，如果客户公司违约，我们也能要违约金吗？", "甲方"),  # the one in breach
        ("我们是乙方，能不能把资料发给别人", "乙方"),
        ("As the vendor, can we outsource repairs?", "乙方"),
        ("If the support we deliver misses Party A's requirements, are we in breach?", "乙方"),
        ("我是乙方这边的财务，什么时候能收到甲方的服务费？", "甲方"),  # 甲方 pays
        ("合同有效期多久", None),
        ("甲方和乙方谁负责维修", None),
        ("Who is the internet product provider?", "甲方"),
    ],
)
def test_question_party(question: str, party: str | None) -> None:
    assert question_party(normalize(question)) == party


def test_party_prior() -> None:
    assert party_prior(("甲方",), "甲方") == 1.0
    assert party_prior(("乙方",), "甲方") == -1.0
    assert party_prior(("甲方", "乙方"), "甲方") == 0.0
    assert party_prior(("乙方",), None) == 0.0


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("本协议有效期多久", True),
        ("乙方泄露资料怎么办", True),
        ("服务商要提前多久通知", True),
        ("第五條怎麼說", True),  # (第3.2条 is an explicit reference: never searched)
        ("Can the vendor subcontract the work?", True),
        ("What does section 5 say?", True),
        ("服务费什么时候付", False),
        ("明天北京会下雨吗", False),
        ("How long does a bank transfer take?", False),
        ("clauses", True),
        ("santa clause", True),  # a word is a word: the model weighs it with the others
    ],
)
def test_names_agreement(question: str, expected: bool) -> None:
    assert names_agreement(normalize(question)) is expected
