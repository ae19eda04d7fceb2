"""The aspect check: a question asks for a value the best clause does not give.

Users often ask for exactly what a clause lacks: "违约金是多少" of a clause that says a 违约金 is
owed but not how much, "投诉几小时内回复" of a clause that says "及时". ``asked_aspect`` finds the
kind of value a question asks for (an amount or formula, a duration, a deadline in hours or
days, a frequency, a count, who bears a cost); ``states_aspect`` says whether an item's text
gives such a value, or leaves a template blank for it (then the answer is the clause and its
blank, not a gap); ``missing_aspect`` combines the two. Pure functions of their inputs, matched on
``bot.search.textproc.normalize`` forms (simplified, half-width, lower-case).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.types import Item, Parameter

#: The aspects, in the order ``asked_aspect`` tries them (the first that matches wins).
ASPECTS = ("cost_bearer", "frequency", "deadline", "duration", "count", "amount")

_NUM = r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千半]+)"

#: What a question asking for each aspect says.
_ASKS: Mapping[str, re.Pattern[str]] = {
    "cost_bearer": re.compile(
        r"(?:钱|费用?|成本|开销|开支)(?:要|应|应该|该|得)?(?:由)?(?:谁|哪一?方|哪边)(?:来)?"
        r"(?:出|付|掏|承担|负担|负责|买单)"
        r"|(?:谁|哪一?方|哪边)(?:来)?(?:出钱|付钱|掏钱|买单|承担(?:费用|成本|开销)|负担(?:费用|成本))"
        r"|(?:由|归)(?:谁|哪一?方)(?:来)?(?:承担|负担|支付|出)"
        r"|\bwho (?:pays|pay|bears|covers|foots|is paying|has to pay|should pay)\b"
        r"|\bat whose (?:cost|expense)\b"
    ),
    "frequency": re.compile(
        r"多久(?:一次|一回)|多长时间(?:一次|一回)|(?:一年|每年|一个月|每月|每季度?|每周|一周)"
        r"(?:要|需要|得)?(?:做|搞|开展|进行|提交|评估|更新)?(?:几|多少)次|频率|频次|每隔多久"
        r"|\bhow often\b|\bhow frequently\b|\bhow many times\b|\bfrequency\b"
    ),
    "deadline": re.compile(
        r"(?:几|多少)(?:个)?(?:小时|钟头|工作日|个工作日|天|日|周|星期)(?:之?内|以内|内)"
        r"|(?:几|多少)(?:个)?(?:小时|钟头|工作日)|多快|多久(?:之?内|以内)?(?:要|得|必须|需要|能|会)?"
        r"(?:响应|回复|答复|回应|处理|解决|修好|完成|到场|上门|付|支付|开始)"
        r"|时限|时效|宽限期|(?:响应|回复|处理|维修|修复|到场)(?:时间|速度)"
        r"|\bwithin how (?:many|long)\b"
        r"|\bhow (?:many|much) (?:hours|days|business days|working days)\b"
        r"|\bhow (?:quickly|fast|soon)\b|\bresponse time\b|\bturnaround\b|\bdeadline\b"
        r"|\bgrace period\b|\bcure period\b"
    ),
    "duration": re.compile(
        r"多久|多长(?:时间)?|几年|多少年|几个月|多少个?月|多少天|(?<!好)几天|期限(?:是|有|为)?(?:多|几)"
        r"|持续(?:多|几)|有效(?:多|几)|\bhow long\b|\bhow many (?:years|months|weeks|days)\b"
        r"|\bhow much (?:advance )?(?:notice|time|lead time)\b|\bduration\b|\bfor what period\b"
    ),
    "count": re.compile(
        r"(?:几|多少)(?:份|个人|名|位|家|台|套)|\bhow many (?:copies|people|staff|engineers|"
        r"technicians|originals|counterparts)\b"
    ),
    "amount": re.compile(
        r"多少钱|多少费用|多少金额|金额(?:是|为|有)?多少|数额|数目|额度|具体(?:是)?多少|(?:付|赔|罚|交|收|缴)"
        r"(?:多少|几)|(?:要|得)?(?:赔|罚)(?:偿)?(?:多少|几)|多少(?:违约金|罚金|赔偿)|(?:违约金|罚金|赔偿金?|费用?)"
        r"(?:是|有|为)?(?:多少|几)(?![号月点天日时])|比例|百分之|百分比|几成|几倍|计算(?:方法|方式|标准|公式)?|怎么算|如何算"
        r"|按(?:什么|啥|何)(?:标准)?算|算法|公式|上限|封顶|最高(?:赔|罚|多少)"
        r"|\bhow much\b|\bwhat amount\b|\bthe amount\b|\bpercentage\b|\bpercent\b|\bformula\b"
        r"|\bcalculat|\bcap(?:ped)?\b|\bmaximum\b|\bhow high\b"
    ),
}

#: A stated value: a number with a unit, or a spelled-out period ("一个月", "一式两份", "每季度").
_VALUE = {
    "duration": re.compile(
        rf"{_NUM}\s*(?:个)?(?:年|月|季度|周|星期|天|日|小时|工作日)|每(?:季度|月|年|周)"
    ),
    "deadline": re.compile(rf"{_NUM}\s*(?:个)?(?:年|月|季度|周|星期|天|日|小时|工作日)"),
    "frequency": re.compile(rf"每\s*(?:{_NUM}\s*(?:个)?)?(?:季度|月|年|周|星期|天|日)|{_NUM}\s*次"),
    "count": re.compile(rf"一式{_NUM}份|{_NUM}\s*(?:份|名|位|个人|家|台|套|次)"),
    "amount": re.compile(rf"{_NUM}\s*(?:元|万元|%|％)|百分之{_NUM}|人民币\s*{_NUM}"),
    # Twenty characters: "甲方应按照本协议约定的付款方式及时支付" names the payer
    # fifteen characters before the verb.
    "cost_bearer": re.compile(
        r"(?:甲方|乙方|双方|违约方|对方)[^，。；]{0,20}(?:支付|承担|负担|赔偿)"
    ),
}

#: Words in a template blank's label that make it the value for an aspect (a blank is answered:
#: "本模板此处留空：有效期（年）", not "the agreement does not say").
_BLANK_LABEL = {
    "duration": ("年", "期", "term", "year"),
    "deadline": ("日期", "date"),
    "amount": ("费", "金额", "元", "fee", "amount"),
    "count": (),
    "frequency": (),
    "cost_bearer": (),
}


def asked_aspect(question: str) -> str | None:
    """The kind of value ``question`` (normalized) asks for, or None."""
    for aspect in ASPECTS:
        if _ASKS[aspect].search(question):
            return aspect
    return None


def states_aspect(
    item: Item, aspect: str, parameters: Mapping[str, Parameter] | None = None
) -> bool:
    """``item``'s text gives a value for ``aspect``, or leaves a template blank for one."""
    if _VALUE[aspect].search(item.text):
        return True
    for name in item.blanks:
        parameter = (parameters or {}).get(name)
        label = f"{name} {parameter.label} {parameter.label_en}" if parameter else name
        if any(word in label.lower() for word in _BLANK_LABEL[aspect]):
            return True
    return False


def missing_aspect(
    question: str, item: Item, parameters: Mapping[str, Parameter] | None = None
) -> str | None:
    """The aspect ``question`` (normalized) asks for that ``item`` does not state, or None
    (the question asks for no value, or the item gives one or a blank for it)."""
    aspect = asked_aspect(question)
    if aspect is None or states_aspect(item, aspect, parameters):
        return None
    return aspect
