"""Which party of the agreement a question is about: 甲方 (the product provider, the client) or
乙方 (the after-sales provider, the vendor).

A question may name a party ("甲方哪些行为算违约"), a role ("服务商", "the vendor", "客户公司"),
or speak as one ("我们是乙方", "as the provider, we ..."): then "we" is that party. When it names
only the other side as the one paid or served ("we paid the provider late", "付给服务商的钱"),
the one asking is the other party. ``question_party`` returns the party the question is about
(the one that acts, owes or breaches), or None when it names none or both. ``party_prior`` is
how an item's ``parties`` agree with it: +1 the item concerns that party only, -1 only the
other one, 0 both or none. Pure functions of normalized text (``bot.search.textproc.normalize``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PARTIES = ("甲方", "乙方")

#: Role words, by party (normalized: simplified Chinese, lower case).
_ROLE_WORDS = {
    "甲方": (
        r"甲方|party a\b|客户公司|委托方|产品方|产品提供商|产品公司|品牌方|发包方|\bclients?\b|"
        r"customer company|product provider|product company"
    ),
    "乙方": (
        r"乙方|party b\b|服务商|售后商|售后公司|售后方|服务提供商|服务方|外包商|外包方|"
        r"外包公司|承包方|供应商|厂商|\bvendors?\b|(?<!product )\bproviders?\b|\bsuppliers?\b|"
        r"\bcontractors?\b|support company|after-sales company"
    ),
}
_ROLE = {party: re.compile(words) for party, words in _ROLE_WORDS.items()}
#: "we are / as 乙方": the one asking speaks as that party.
_SPEAKER = {
    party: re.compile(
        rf"(?:我们|我方|我司|本公司|我)(?:公司)?(?:是|作为|身为|属于|这边是|就是)(?:做售后的)?(?:{words})"
        rf"|(?:作为|身为)(?:{words})"
        rf"|\b(?:we are|we're|i am|i'm|as) (?:the |a |an )?(?:{words})"
        rf"|(?:{words})(?:这边|一方|那边)的?(?:我们|我|人|员工|同事|财务|客服)"
        rf"|\bon (?:the )?(?:{words})(?:'s)? side\b"
    )
    for party, words in _ROLE_WORDS.items()
}
#: The other party named as the one paid or served: "pay the provider", "付给乙方", "向服务商付款".
_PAID = {
    party: re.compile(
        rf"(?:付|支付|付款|打款|转账|汇款|给钱)(?:给)(?:{words})|向(?:{words})(?:付|支付|付款)"
        rf"|\bpa(?:y|id|ying|ys) (?:[\w-]+ ){{0,3}}?(?:{words})"
    )
    for party, words in _ROLE_WORDS.items()
}
#: The party named as the one that acts: breaches, pays, leaks, fails ("客户公司违约",
#: "甲方拖欠服务费", "收到甲方的服务费", "Party A pays late", "the vendor leaks").
_ACTS = {
    party: re.compile(
        rf"(?:{words})(?:一直|已经|如果|要是|总是|老是|又)?(?:违约|违反|拖欠|欠款|欠费|不付|没付|未付|"
        rf"迟付|晚付|延迟支付|逾期|付款|支付|付钱|泄露|泄密|外泄|不提供|没有提供|未提供|不履行)"
        rf"|(?:{words})(?:把|将)[^，。？?]{{0,12}}(?:泄露|外泄|透露|给了|卖给|发给)"
        rf"|(?:收到|拿到|收)(?:{words})的?(?:服务费|费用|钱|款)"
        rf"|(?:{words})(?:'s)? (?:breach|breaches|breached|default|defaults|defaulted|fails|failed|"
        rf"pays|paid|is late|leaks|leaked|stops|does not pay|doesn't pay|didn't pay)\b"
        rf"|\bpayment from (?:the |our )?(?:{words})"
    )
    for party, words in _ROLE_WORDS.items()
}


#: Speaking as a party by what one does: "the support we deliver" (乙方), "we pay the fee" (甲方).
_SPEAKER_ACTS = {
    "甲方": re.compile(
        r"我们(?:付|支付|交|缴)(?:的)?(?:服务费|费用|钱|款)|\bwe (?:pay|paid|owe)\b"
    ),
    "乙方": re.compile(
        r"我们(?:提供|做|给的)(?:的)?(?:售后|服务|支持|维修)|我们(?:负责)?(?:做售后|提供售后)"
        r"|\bwe (?:deliver|provide|supply|offer|do|give)\b[^.?]*\b(?:support|service|repairs?)\b"
        r"|\b(?:support|service|repairs?|work) we (?:deliver|provide|supply|offer|do|give)\b"
    ),
}


#: A question that speaks of a contract, its clauses or one of its parties (any role word):
#: most questions about this agreement do, few about something else do not name another one.
_AGREEMENT = re.compile(
    r"协议|合同|合约|契约|条款|第\s*[\d一二三四五六七]+\s*[条章]|"
    + "|".join(_ROLE_WORDS.values())
    + r"|\bagreements?\b|\bcontracts?\b|\bclauses?\b|\bsections?\b|\bparty [ab]\b"
)


def names_agreement(question: str) -> bool:
    """``question`` (normalized) speaks of a contract, a clause or a party or role of one."""
    return _AGREEMENT.search(question) is not None


def _other(party: str) -> str:
    return "乙方" if party == "甲方" else "甲方"


def question_party(question: str) -> str | None:
    """The party ``question`` (normalized) is about, or None: the one named as acting
    (breaching, paying, leaking), else the other side of the one named as paid, else the party
    the asker speaks as, else the one party it names (or, when it also says "we", the other)."""
    acting = [p for p in PARTIES if _ACTS[p].search(question)]
    if len(acting) == 1:
        return acting[0]
    paid = [p for p in PARTIES if _PAID[p].search(question)]
    if len(paid) == 1:
        return _other(paid[0])  # "we paid the provider late": the payer, 甲方
    speaker = [
        p for p in PARTIES if _SPEAKER[p].search(question) or _SPEAKER_ACTS[p].search(question)
    ]
    if len(speaker) == 1:
        return speaker[0]
    named = [p for p in PARTIES if _ROLE[p].search(question)]
    return named[0] if len(named) == 1 else None


def party_prior(item_parties: Sequence[str], party: str | None) -> float:
    """+1 when ``item_parties`` is ``party`` alone, -1 when it is only the other party, else 0."""
    if party is None:
        return 0.0
    parties = set(item_parties)
    if parties == {party}:
        return 1.0
    if parties == {_other(party)}:
        return -1.0
    return 0.0
