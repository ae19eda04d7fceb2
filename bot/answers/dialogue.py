"""Follow-up questions: "甲方拖欠服务费怎么办" → "那乙方呢？" is read as continuing the first.

A chat keeps its last answered question for a while (``DialogueTurn``, in storage). The next
question is a *follow-up* when it cannot stand on its own; then it is retrieved with the previous
question as context and its answer says, in one line, what it was taken to mean
("（接上一问：甲方拖欠服务费怎么办）"), so that a wrong reading is visible.

Detection (``follow_up_kind``) is linguistic and cheap, with one retrieval signal. A question is
a follow-up when it

- *refers back*: a pronoun or demonstrative (他们, 这个, 那边, it, that, they — not "this
  agreement"), an elliptical 呢 with no question word of its own ("那乙方呢", "协商不成呢"), an
  additive or contrastive word (也, 还要, 除了, too, also, else), "what about" / "and if";
- asks *which clause* that was ("这是哪一条规定的", "what's the clause number?") without naming
  a topic;
- is a *fragment* (English without a verb: "in what currency?", "only after what?");
- names *no topic of its own*: nothing but parties, question words and generic verbs
  ("那乙方可以怎么处理", "要先做什么") — unless it asks who a party is;
- is Chinese *without a subject*: a modal or auxiliary verb first ("要双方都签吗",
  "可以直接停服务吗"), the subject left to the question before;
- is *too short to stand alone* (at most ``SHORT_HAN`` Chinese characters or ``SHORT_WORDS``
  English words, or at most one topic word) and its own best match is not strong;
- or is not about the agreement at all on its own, but is in context ("then what's the remedy?").

Anything else stands on its own and is never merged, whatever it starts with: "那合同一式几份？",
"还有，争议去哪里打官司？" and "Then what's the payment method?" are new questions. So is one
with a topic of its own that an opener announces as another question (另外, 此外, "还有，",
"Also,"), and a *self-sufficient* one (enough topic words, answered confidently by itself),
unless a pronoun in it points back: "What about the confidentiality clause, who does it bind?",
"另外，这个要书面吗？" follow up. A short or elliptical
question that abstains alone is a follow-up unless most of its words are the off-topic examples'
("那北京天气呢？").

Retrieval in context (``contextual_retrieval``) depends on what kind of follow-up it is:

- ``clause``: the clause behind the previous answer (its main item if a clause, else the linked
  clause that the question in context matches best);
- ``party`` ("那乙方呢", "and Party A?"): the previous question with 甲方 and 乙方 swapped, the
  question added, and the previous answer's one-sided items set back (the embedding model can
  hardly tell 甲方 from 乙方, so the swap alone would find the same items);
- otherwise: the question alone and the two questions together, scored and mixed
  (``MERGE``), with a prior for the previous main item and the items it links to (and the
  clauses of its article); for the relation the question asks about (a standard, a voucher or
  "is there one…?" asks for the item's documents); for what follows a failure (the obligations
  it breaks set back); after a term, for the clauses that use it.

The choices and their figures on the dev dialogues are in ``scripts/evaluate.py --dialogues``
and the README.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Literal

from bot.answers.compose import KnowledgeLike, RetrieverLike, answer
from bot.answers.texts import t
from bot.search.textproc import normalize, pieces, words
from bot.types import Answer, DialogueTurn, Hit, Item, Language, Part, Retrieval

FollowUpKind = Literal[
    "",
    "refers",
    "clause",
    "fragment",
    "no-topic",
    "short",
    "weak",
    "party",
    "conditional",
    "continues",
    "elided",
]

#: At most this many Chinese characters (openers and particles aside) is too short to stand
#: alone unless its own match is strong or on another topic; likewise for English words.
SHORT_HAN = 6
SHORT_WORDS = 3
#: A short question whose best item matches this well (cosine) stands on its own ("付款方式").
STRONG_MATCH = 0.95
#: A question whose own best item beats the previous answer's item by at most this much
#: (fused score: a cosine plus a little BM25) continues that topic.
CONTINUITY_GAP = 0.06
#: ... and one whose best item beats it by more than this is on a topic of its own: a short
#: question so far from the previous topic ("那合同一式几份？" after a question about late
#: payment) is a new question, however short.
NEW_TOPIC = 0.1
#: A question with at least this many topic words of its own whose own retrieval is this
#: confident is *self-sufficient*: an opener, "what about", 又 / also or a condition does not
#: make it a follow-up ("What about the confidentiality clause, who does it bind?",
#: "那如果双方对解约意见不一致，算违约吗？"); only a pronoun that points back still does.
#: 0.2 since #12's refit (lower confidences): flat from 0 to 0.25 on the three dev writers.
SELF_TOPIC_WORDS = 3
SELF_CONFIDENCE = 0.2
#: The topic line quotes at most this many characters of the previous question.
TOPIC_CHARS = 28


@dataclass(frozen=True)
class Merge:
    """How a follow-up is retrieved in context (the kept values are ``MERGE``).

    Scores are mixed: ``own_weight`` x the question's own scores + the rest x the scores of the
    question in context (the previous question and this one together). A question that is
    mostly its context — no topic words of its own ("is that only for Party A?"), a fragment,
    nothing the agreement answers by itself, or a subject left to the context ("要双方都签吗")
    — uses ``bare_own_weight`` (the last without the bare item prior). Then priors, in
    fused-score units (a cosine plus a little BM25): ``item_prior`` (``bare_item_prior``) for
    the previous main item, unless the question asks for something it links to;
    ``link_prior`` for the items it links to or that link to it; ``relation_prior`` for those
    linked by the relation the question asks about (remedy: "要赔吗", breach: "违反了会怎样",
    procedure, document, definition, obligation). After a party switch the previous side's
    one-sided items lose ``party_penalty`` and the other side's gain half of it.
    ``context`` is what the next turn's context is after a follow-up: ``"thread"`` keeps the
    last ``thread_turns`` questions together (a third turn still knows the topic), ``"last"``
    only this one.
    """

    own_weight: float = 0.8
    bare_own_weight: float = 0.3
    item_prior: float = 0.02
    bare_item_prior: float = 0.1
    link_prior: float = 0.02
    relation_prior: float = 0.1
    #: Own weight of a question that stays on the previous topic by its own retrieval.
    continue_own_weight: float = 0.8
    party_penalty: float = 0.1
    #: A follow-up with words of its own whose own retrieval is this confident and finds an
    #: item next to the previous one is answered by its own ranking (None: off). 0.5 since
    #: #12's refit: 0.45-0.55 on all three writers (0.4 loses dev2 and dev3 a turn each); 0.7
    #: since the refit with the long alternate questions (2026-12-03), whose confidences run
    #: higher: on the eight sets 0.5 / 0.6 / 0.7 / 0.8 / off give 533 / 534 / 537 / 535 / 532.
    own_confidence: float | None = 0.7
    #: Own weight of a bare party switch ("换成乙方呢"): its own words name only the party.
    party_own_weight: float = 0.0
    #: A follow-up asking what follows a failure ("晚了呢？"): the previous item's breaches,
    #: remedies and procedures gain this, the previous item loses ``consequence_penalty``.
    consequence_prior: float = 0.1
    consequence_penalty: float = 0.1
    #: After a party switch, the previous item if it is about both sides gains this.
    both_sides_prior: float = 0.05
    #: ... and the other side's items of the previous (non-clause) item's kind gain this.
    counterpart_prior: float = 0.05
    #: After a term, a follow-up not asking what it means: the clauses using it gain this.
    term_prior: float = 0.1
    #: Clauses and party switches resolved by the knowledge's structure (off: mixing only).
    structure: bool = True
    context: Literal["thread", "last"] = "thread"
    thread_turns: int = 3
    depth: int = 50


#: The configuration kept after comparing on the dev dialogues (README, evaluate.py).
MERGE = Merge()

# --- cues ---------------------------------------------------------------------------------

#: The knowledge's own English calls 乙方 "the vendor" or "the service provider".
_PARTY = re.compile(
    r"甲方|乙方|\bparty [ab]\b|(?<![a-z])[ab]方|\b(?:the )?(?:vendor|service provider|supplier)s?\b"
)
#: The other side, without naming it ("反过来呢", "对方是什么样的公司", "and the other side?").
_OTHER_SIDE = re.compile(
    r"反过来|倒过来|对方|另一方|\bthe other (?:side|party)\b|\bvice versa\b|\bother way round\b"
)
_BOTH = re.compile(r"甲乙双方|双方|任何一方|各方|\bboth parties\b|\beither party\b|\beach party\b")
#: Openers that say nothing by themselves: many new questions start with them too.
#: Openers may come in a row ("ok and on top of losses?", "那么还有…"): all are taken off. So are
#: interjections (嗯, 哦, 蛤, like "hmm", "oh"): "蛤，所以…" is no clause that a pronoun could
#: point back into.
_ZH_OPENER = re.compile(
    r"^(?:(?:那么|那|然后|所以|但是|可是|不过|还有|另外|此外|而且|并且|咁样|咁|噉|蛤|嗯|哦|噢|喔|欸|诶|呃|哎)[，,、\s]*)+"
)
_EN_OPENER = re.compile(r"^(?:(?:and|then|so|but|also|or|ok|okay|well|hmm|oh)\b[,\s]*)+")
#: Openers that announce another question ("另外，…", "还有，…", "此外…", "Also, …"): a question
#: that opens with one and names a topic of its own is new unless a pronoun in it points back
#: (not 还有 without a comma: "还有别的办法吗" asks for more of the same; nor 另外的, "the other").
_NEW_QUESTION = re.compile(r"^(?:另外(?!的|一|那|这)|此外|还有[，,]|also,)")
#: A Chinese question whose first word (openers and 我们 aside) is a modal or auxiliary verb has
#: no subject: Chinese drops the subject it shares with the question before ("可以直接停服务吗"
#: after a question about late payment, "要双方都签吗" after the supplementary agreements).
#: Not 要是 (a condition, its own cue).
_ZH_ELIDED = re.compile(
    r"^(?:我们|我方|咱们)?(?:要(?!是)|得(?!到)|需要|需|须|必须|可以|可不可以|能|能不能|能否|可否"
    r"|应该|应当|该|会不会|是否|是不是|用不用|要不要|需不需要|使唔使|要唔要|可唔可以|会唔会"
    r"|洗唔洗|得唔得|驶唔驶)"
)
_THE_AGREEMENT = r"(?:这|此|本|该)(?:个|份)?(?:协议|合同|合约)"
#: Pronouns and demonstratives that point back (not at the agreement: "这个合同").
_ZH_REFERS = re.compile(
    r"他们|她们|它们|[他她它](?!人)|这(?!个?(?:协议|合同|合约)|份)|那(?:个|些|种|条|项|样|边|里|时)"
    r"|(?:该|此)(?:条|项|款|规定|情况)|上述|上面|前面|刚才|刚刚|对应|同样|相关|其他|其它|其余|其中"
    # Cantonese (written in traditional characters, normalized): 佢(哋) he/they, 嗰 that,
    # 呢 + classifier this (呢个; at the end 呢 is the particle).
    r"|佢|[嗰𠮶](?:个|啲|度|条|时|阵|种|样)|呢(?:个|啲|条|度|种|样)"
)
#: Additive and contrastive words: "也算吗", "还要做什么", "除了赔偿" (not "还有，…", "还是",
#: "还有一个问题", "我也想问").
_ZH_ADDS = re.compile(
    r"也(?!想问|想了解|想知道)|还(?!有[，,、\s]|是|有一?个问题|想问|想了解|想知道)|又|除了|别的"
)
#: Question words: "合同有效期是多久呢" asks its own question; "乙方呢" does not.
_ZH_QUESTION = re.compile(
    r"什么|啥|怎么|怎样|如何|为什么|为何|多少|多久|几|哪|谁|吗|是否|是不是|能否|可否"
    r"|有没有|行不行|可不可以|能不能|要不要|算不算"
    r"|点|咩|乜|边个|边度|边间|几时|几多|系咪|有冇|得唔得|使唔使|要唔要|可唔可以|系唔系"
)
_EN_REFERS = re.compile(
    r"\b(?:its|they|them|their|theirs|this|these|those|such|the same|he|she|him|her)\b"
    r"|\bit\b(?! (?:is |'s )?(?:possible|necessary|allowed|ok|okay|true|legal|required|"
    r"mandatory|enough|worth|advisable)\b)"  # not "is it possible to …"
    r"|\b(?:which|that|this|the other|another|is there|are there|there's|any) ones?\b"
    r"|\bthat\b(?! (?:the|a|an|party|we|i|you|it|they|he|she|there|if|this)\b)"
)
#: A clause before a comma: a pronoun after it may point back inside the question itself
#: ("甲方逾期付款，这算违约吗？", "If the parties can't agree, is that a breach?").
_CLAUSE_BREAK = re.compile(r"[,，;；:：]")
_EN_THE_AGREEMENT = re.compile(r"\b(?:this|that|the) (?:agreement|contract)\b")
_EN_ADDS = re.compile(
    r"\b(?:too|also|as well|else|either|instead|again|other than|apart from|besides)\b"
)
_EN_ELLIPSIS = re.compile(r"^(?:what about|how about|and if|but if|and what if|and when)\b")
#: English fragments: a preposition or "only" first, and no verb.
_EN_FRAGMENT = re.compile(
    r"^(?:in|for|to|against|with|by|on|at|from|under|within|before|after|during|only|just|"
    r"except|via|through|how much|how many|how long|which one)\b"
)
_EN_VERB = re.compile(
    r"\b(?:is|are|was|were|be|been|do|does|did|have|has|had|can|could|will|would|shall|should|"
    r"may|might|must|need|needs|happen|happens|pay|pays|paid|get|gets|go|goes|work|works|mean|"
    r"means|say|says|count|counts|apply|applies|cover|covers|take|takes)\b|'s\b|n't\b"
)
#: What is left of "那乙方呢" / "and what about Party B" once the party is taken out.
#: Substitution, copula and condition words count as nothing too: "换成乙方呢", "如果是乙方那边呢",
#: "and if it's the vendor?" ask the same about the other side.
_BARE = re.compile(
    r"呢|吗|的|呀|啊|吧|换成|换做|改成|如果|要是|假如|若是|是|那边|这边|方面|的话"
    r"|\b(?:and|or|what|how|about|then|so|for|with|if|it's|it is|the|specifically|instead)\b|\s"
)
#: A condition opening the question ("如果已经外流了，…"); its clause is group 1.
_ZH_CONDITIONAL = re.compile(r"^(?:如果|要是|假如|万一|若是|若|假设)(.*)")
#: ... or closed by 的话 in the first clause ("违反的话后果是什么"): the condition is group 1.
_ZH_CONDITION_AFTER = re.compile(r"^([^，,、]*?)的话")
#: "Which clause is that?" (asked without a topic of its own).
_ASKS_CLAUSE = re.compile(
    r"哪一?条|哪个条款|哪项条款|第几条|条款号|条款编号|哪一?款|什么条款|依据|出处|根据哪"
    r"|\b(?:which|what) (?:clause|section|article|part)\b|\bclause (?:number|no)\b"
    r"|\bwhere (?:is|does) (?:it|that|this) (?:say|stated|written|come from)\b"
)
_CLAUSE_WORDS = frozenset(
    {"哪一条", "哪条", "条", "条款", "规定", "款", "依据", "出处", "对应", "义务", "写", "在"}
    | {"clause", "number", "section", "article", "cover", "part", "say", "state", "stat"}
)
#: "Who is Party A?" is about the party itself: it has a topic.
_ASKS_WHO = re.compile(
    r"是谁|是什么(?:身份|角色|人|公司|单位)?|什么身份|什么角色|是做什么的|是干什么的|做什么的"
    r"|\b(?:who|what)(?: is| are|'s|’s) (?:party [ab]|the parties)\b"
)


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Words that carry no topic: generic verbs of asking what to do, and what is left of
#: demonstratives and openers once jieba has cut them ("那要", "这是").
GENERIC_WORDS = _wordset(
    """处理 办 做 解决 应对 操作 处置 怎样 不行 行 会 先 要 那要 还要 直接 具体 一下 可 唔 之前
    之后 后 前 来 去 该 完 完要 那边 这是 这些 那些 相关 对应 不好 不成
    咁 点 点算 点样 点办 点做 乜 咩 做乜 系 咪 佢 哋 冇 使 啲 嘅 嘢 好 边 入面
    do does happen handle deal what next then first ever only exactly also too after before
    against one treat written word apply well ok okay
    已经 一直 仍然 仍 还是 总是 老是 已 already still yet just anyway"""
)


@dataclass(frozen=True)
class Cues:
    """What the wording of a question says about whether it needs its predecessor."""

    refers_back: bool = False  # any cue below that points back
    points_back: bool = False  # a pronoun or demonstrative that points out of the question
    asks_clause: bool = False
    fragment: bool = False
    topic_words: tuple[str, ...] = ()
    asks_who: bool = False
    length: int = 0  # Chinese characters, or English words, openers aside
    party: str | None = None  # the party it is about (first named), "甲方" / "乙方"
    parties: tuple[str, ...] = ()  # the parties it names, in order
    bare_party: bool = False  # nothing but a party ("那乙方呢？", "what about Party B?")
    conditional: bool = False  # "如果已经外流了，…": a condition with no subject of its own
    other_side: bool = False  # "反过来呢": the other party, not named
    elided: bool = False  # "要双方都签吗": a modal verb first, the subject left to the context
    new_question: bool = False  # "另外，…", "Also, …": another question announced
    english: bool = False


#: A party by its letter alone ("and A?", "what about b"): only when that is all there is, as
#: "a" is also the article.
_BARE_LETTER = re.compile(r"^((?:(?:and|or|then|so|what about|how about)\s+)*)([ab])$")


def _party_name(match: str) -> str:
    return "甲方" if match in ("甲方", "party a", "a方") else "乙方"


def parties_in(text: str) -> tuple[str, ...]:
    """The parties ``text`` names, in order of first mention."""
    found = (_party_name(m.group(0)) for m in _PARTY.finditer(normalize(text)))
    return tuple(dict.fromkeys(found))


def focus_party(text: str) -> str | None:
    """The party a question is about: the first one it names, unless it names both sides."""
    norm = normalize(text)
    if _BOTH.search(norm):
        return None
    match = _PARTY.search(norm)
    return _party_name(match.group(0)) if match else None


def _topical(text: str) -> bool:
    """Whether ``text`` names something beyond parties and generic words."""
    return any(w not in GENERIC_WORDS for w in words(_PARTY.sub(" ", _BOTH.sub(" ", text))))


#: Pronouns that point inside the question when what comes before them in it says what they
#: stand for, as (pronoun, what comes before) pairs:
#: - a plural pronoun after the parties ("where do the parties put their seals?", "双方各自的
#:   义务是什么，他们…");
#: - a possessive after a party ("Is Party B ever allowed to suspend its services?", "乙方违约了，
#:   他们要赔什么");
#: - a place word after a noun, where that noun is ("签字页那里", "乙方那边"; "在那里签"
#:   points back).
_POINTS_INSIDE = (
    (
        re.compile(r"他们|她们|\b(?:they|them|their|theirs)\b"),
        re.compile(r"双方|各方|\bparties\b|\bboth\b"),
    ),
    (re.compile(r"他们|他|它|\b(?:its|their|theirs)\b"), _PARTY),
    (re.compile(r"[这那](?:里|边)"), re.compile(r"[\u3400-\u9fff](?<![在去到从往来回于])$")),
)


def _points_back(pattern: re.Pattern[str], text: str) -> bool:
    """A pronoun or demonstrative that points out of the question: not one after a clause of
    its own that names a topic ("甲方逾期付款，这算违约吗？" points inside), nor one whose
    antecedent comes before it in the question (``_POINTS_INSIDE``)."""
    for match in pattern.finditer(text):
        head = text[: match.start()]
        if any(
            pronoun.fullmatch(match.group(0)) and antecedent.search(head)
            for pronoun, antecedent in _POINTS_INSIDE
        ):
            continue
        before = _CLAUSE_BREAK.split(head)
        if len(before) < 2 or not _topical(" ".join(before[:-1])):
            return True
    return False


def cues(question: str) -> Cues:
    """The cues of ``question`` (any language or script)."""
    norm = normalize(question).strip(" ?!.。？！,，:：;；~～…\"'“”‘’「」")
    norm = _BARE_LETTER.sub(r"\1party \2", norm)
    english = not re.search(r"[\u3400-\u9fff]", norm)
    party = focus_party(norm)
    elided = False
    if english:
        body = _EN_OPENER.sub("", norm)
        pronoun = _points_back(_EN_REFERS, _EN_THE_AGREEMENT.sub("", body))
        refers = bool(
            pronoun
            or _EN_ADDS.search(body)
            or _EN_ELLIPSIS.search(norm)
            or _EN_ELLIPSIS.search(body)
        )
        fragment = bool(_EN_FRAGMENT.search(body)) and not _EN_VERB.search(body)
        length = len(re.findall(r"[a-z0-9]+", body))
    else:
        body = _ZH_OPENER.sub("", norm)
        without_agreement = re.sub(_THE_AGREEMENT, "", body)
        elliptical = body.endswith("呢") and not _ZH_QUESTION.search(body)
        pronoun = _points_back(_ZH_REFERS, without_agreement)
        elided = bool(_ZH_ELIDED.match(body))
        refers = bool(pronoun or _ZH_ADDS.search(body) or elliptical)
        fragment = False
        length = len(re.findall(r"[\u3400-\u9fff]", re.sub(r"[呢吗吧啊呀嘛]$", "", body)))
    content = [
        w
        for w in words(_PARTY.sub(" ", _BOTH.sub(" ", body)))
        if w not in GENERIC_WORDS and not (english and len(w) == 1)
    ]
    rest = _PARTY.sub("", _EN_ELLIPSIS.sub("", body))
    bare_party = party is not None and not re.search(r"[\u3400-\u9fffa-z0-9]", _BARE.sub("", rest))
    conditional = False
    if not english and (match := _ZH_CONDITIONAL.match(body) or _ZH_CONDITION_AFTER.match(body)):
        condition = re.split(r"[，,、]", match.group(1))[0]
        # "如果双方意见不一致，…" leaves its subject to the context when answered weakly; a
        # condition closed by 的话 is a topic of its own once it names both sides
        # ("双方闹僵了的话…").
        after = match.re is _ZH_CONDITION_AFTER
        conditional = not (
            _PARTY.search(condition)
            or (after and _BOTH.search(condition))
            or re.search(r"协议|合同|合约", condition)
        )
    asks_clause = bool(_ASKS_CLAUSE.search(norm))
    if asks_clause:
        content = [w for w in content if w not in _CLAUSE_WORDS]
    return Cues(
        refers_back=refers,
        points_back=pronoun,
        asks_clause=asks_clause,
        fragment=fragment,
        topic_words=tuple(content),
        asks_who=bool(_ASKS_WHO.search(norm)),
        length=length,
        party=party,
        parties=parties_in(norm),
        bare_party=bare_party,
        conditional=conditional,
        other_side=bool(_OTHER_SIDE.search(norm)),
        elided=elided,
        new_question=bool(_NEW_QUESTION.match(norm)),
        english=english,
    )


def follow_up_kind(
    question: str,
    context: DialogueTurn | None,
    alone: Retrieval | None = None,
    *,
    elsewhere: bool = False,
) -> FollowUpKind:
    """Why ``question`` continues ``context``, or "" when it stands on its own.

    ``alone`` is the question's own retrieval; ``elsewhere`` says that on its own it is about
    something the agreement does not cover ("那北京天气呢？", "what about my mortgage?"): such a
    question is answered on its own (not covered), never merged into an answer about the
    agreement.
    """
    if context is None or elsewhere:
        return ""
    c = cues(question)
    if c.asks_clause and not c.topic_words:
        return "clause"
    if switches_party(c, context):
        return "party"
    own = self_sufficient(c, alone) or (c.new_question and bool(c.topic_words))
    if c.points_back or (c.refers_back and not own):
        return "refers"
    if c.conditional and not own:
        return "conditional"
    if c.fragment:
        return "fragment"
    if not c.topic_words and not c.asks_who:
        return "no-topic"
    if own:
        return ""
    if c.elided:
        return "elided"
    strong = alone is not None and bool(alone.hits) and alone.hits[0].dense >= STRONG_MATCH
    elsewhere_topic = alone is not None and not continues_topic(alone, context.item_id, NEW_TOPIC)
    short = (
        c.length <= (SHORT_WORDS if c.english else SHORT_HAN) or len(c.topic_words) <= 1
    ) and not c.asks_who
    if short and not strong and not elsewhere_topic:
        return "short"
    if alone is not None and alone.abstain:  # weak alone: in context "then what's the remedy?"
        return "weak"
    if alone is not None and not c.asks_who and continues_topic(alone, context.item_id):
        return "continues"
    return ""


def self_sufficient(c: Cues, alone: Retrieval | None) -> bool:
    """Whether a question names enough of its own and is answered confidently by itself: then
    only a pronoun pointing back makes it a follow-up, not an opener or an additive word."""
    return (
        alone is not None
        and not alone.abstain
        and alone.confidence >= SELF_CONFIDENCE
        and len(c.topic_words) >= SELF_TOPIC_WORDS
    )


def continues_topic(alone: Retrieval, item_id: str, gap: float | None = None) -> bool:
    """Whether a question's own retrieval finds the previous answer's item (nearly) as good as
    its best: it stays on that topic ("账号在哪里写？" after the payment time)."""
    gap = CONTINUITY_GAP if gap is None else gap
    scores = {hit.item_id: hit.score for hit in alone.hits}
    if item_id not in scores or not alone.hits:
        return False
    return alone.hits[0].score - scores[item_id] <= gap


def previous_parties(context: DialogueTurn) -> tuple[str, ...]:
    """The parties of the latest question in the context that names any."""
    for line in reversed(context.question.splitlines()):
        if found := parties_in(line):
            return found
    return ()


def switches_party(c: Cues, context: DialogueTurn) -> bool:
    """The same question about the other side: "那乙方呢？" after a question about 甲方, or the
    two parties named the other way round ("那乙方可以向甲方要吗？" after "甲方可以要求乙方…")."""
    before = previous_parties(context)
    if not before:
        return False
    if c.party is None:  # "反过来呢", "对方是什么样的公司": the other side, unnamed
        return c.other_side and not c.parties
    if c.asks_who:
        return False
    if c.bare_party:
        return c.party != before[0]
    return not c.topic_words and len(c.parties) == 2 and c.parties == tuple(reversed(before))


# --- retrieval in context --------------------------------------------------------------------


_SWAP = re.compile(r"甲方|乙方|\b[Pp]arty [ABab]\b")
_OTHER = {"甲方": "乙方", "乙方": "甲方", "a": "b", "b": "a", "A": "B", "B": "A"}


def swap_parties(text: str) -> str:
    """甲方 ↔ 乙方, Party A ↔ Party B: the same question asked about the other side."""

    def flip(match: re.Match[str]) -> str:
        word = match.group(0)
        return _OTHER[word] if word in _OTHER else word[:-1] + _OTHER[word[-1]]

    return _SWAP.sub(flip, text)


def neighbours(item_id: str, knowledge: KnowledgeLike) -> frozenset[str]:
    """The items ``item_id`` links to and those that link to it."""
    out = {link.to for link in item.links} if (item := knowledge.get(item_id)) else set()
    out |= {
        other.id for other in knowledge.items if any(link.to == item_id for link in other.links)
    }
    if item is not None and item.kind == "clause" and "." in item.id:
        # Clauses of one article are neighbours too ("and for end users?" after 1.1 → 1.2).
        section = item.id.split(".")[0] + "."
        out |= {o.id for o in knowledge.items if o.kind == "clause" and o.id.startswith(section)}
    out.discard(item_id)
    return frozenset(out)


def item_side(item: Item) -> str | None:
    """The one party an item is about (its title names it first, or it concerns only one);
    None for items about both sides ("任何一方", 双方)."""
    for text in (item.title, item.text):
        norm = normalize(text)
        if _BOTH.search(norm[:12]):
            return None
        match = _PARTY.search(norm)
        if match and text is item.title:
            return _party_name(match.group(0))
    parties = {p for p in item.parties if p in ("甲方", "乙方")}
    return next(iter(parties)) if len(parties) == 1 else None


#: On its own a question is about something else when it is at least as close to the
#: off-topic examples (bot/search/off_topics.toml) as to the agreement, or when this share of
#: its nearest neighbours are such examples (the abstention model's own signals).
OFF_TOPIC_MARGIN = 0.0
OFF_TOPIC_SHARE = 0.4


def about_something_else(
    retriever: RetrieverLike, question: str, alone: Retrieval, previous: str | None = None
) -> bool:
    """Whether ``question``, which abstains on its own, is about what the agreement does not
    cover rather than elliptical ("in what currency?" abstains too, but is about the fee).

    Every short elliptical question looks off-topic to the abstention signals ("晚了呢？",
    "by whom?" are as close to the off-topic examples as "那北京天气呢？"), so a question that
    points back or has no topic of its own is only ruled off-topic when most of its topic
    words are the off-topic examples' and not the agreement's (天气, mortgage). Nor is one
    whose own best item is ``previous`` (the item the chat was about) and whose topic words
    are all the agreement's ("how far ahead is notice needed" after a question on renewal).
    """
    if not alone.abstain:
        return False
    c = cues(question)
    if (
        previous is not None
        and alone.hits
        and alone.hits[0].item_id == previous
        and c.topic_words
        and foreign_share(c.topic_words, retriever.knowledge) == 0.0
    ):
        return False
    score_many = getattr(retriever, "score_many", None)
    if score_many is None:  # a retriever without the abstention signals: trust the abstention
        return True
    features = score_many([question])[0].features
    off = bool(
        features.get("off_topic_margin", 1.0) >= OFF_TOPIC_MARGIN
        or features.get("off_topic_share", 1.0) >= OFF_TOPIC_SHARE
    )
    short = c.length <= (SHORT_WORDS if c.english else SHORT_HAN)
    if not off or not (c.refers_back or c.conditional or c.fragment or short or not c.topic_words):
        return off
    return foreign_share(c.topic_words, retriever.knowledge) > 0.5


def foreign_share(topic_words: Sequence[str], knowledge: KnowledgeLike) -> float:
    """The share of ``topic_words`` that the off-topic examples use and the knowledge does not."""
    if not topic_words:
        return 0.0
    foreign = _off_topic_words() - _knowledge_words(knowledge)
    telling = [w for w in topic_words if len(w) > 1]
    if not telling:
        return 0.0
    return sum(w in foreign for w in telling) / len(telling)


@cache
def _off_topic_words() -> frozenset[str]:
    from bot.search.index import load_off_topics

    return frozenset(w for text in load_off_topics() for w in words(text))


#: The knowledge's words, per knowledge object (a reload brings a new one).
_KNOWLEDGE_WORDS: dict[int, tuple[KnowledgeLike, frozenset[str]]] = {}


def _knowledge_words(knowledge: KnowledgeLike) -> frozenset[str]:
    kept = _KNOWLEDGE_WORDS.get(id(knowledge))
    if kept is not None and kept[0] is knowledge:
        return kept[1]
    texts = (
        text
        for item in knowledge.items
        for text in (item.title, item.title_en, item.text, item.text_en, *item.questions)
    )
    vocabulary = frozenset(w for text in texts for w in words(text) for w in (w, *pieces(w)))
    _KNOWLEDGE_WORDS.clear()  # one knowledge serves at a time
    _KNOWLEDGE_WORDS[id(knowledge)] = (knowledge, vocabulary)
    return vocabulary


def _search(retriever: RetrieverLike, questions: Sequence[str], k: int) -> list[Retrieval]:
    many = getattr(retriever, "search_many", None)
    if many is not None:
        return list(many(list(questions), k))
    return [retriever.search(q, k) for q in questions]


def context_query(
    question: str, context: DialogueTurn, kind: FollowUpKind, merge: Merge = MERGE
) -> str:
    """The question in context: the questions before it and it, as one text (after a party
    switch with 甲方 and 乙方 swapped in the earlier ones)."""
    previous = " ".join(context.question.splitlines())
    if kind == "party" and merge.structure:
        previous = swap_parties(previous)
    return f"{previous} {question}"


def contextual_retrieval(
    question: str,
    context: DialogueTurn,
    kind: FollowUpKind,
    retriever: RetrieverLike,
    alone: Retrieval,
    *,
    merge: Merge = MERGE,
    k: int = 5,
    together: Retrieval | None = None,
) -> tuple[Retrieval, str]:
    """The retrieval of a follow-up in ``context``, and the text retrieved with it.

    ``together`` is the retrieval of that text when the caller has it already (``answer_turn``
    embeds it in one batch with the question).
    """
    knowledge = retriever.knowledge
    c = cues(question)
    party = kind == "party" and merge.structure
    understood = context_query(question, context, kind, merge)
    if together is None or together.query != understood:
        (together,) = _search(retriever, [understood], merge.depth)
    # A question with a topic of its own that it can be answered on weighs its own words
    # most; one with none (or a fragment, or one not about the agreement by itself) is
    # mostly its context.
    bare = not c.topic_words or c.fragment or alone.abstain
    w = merge.bare_own_weight if bare else merge.own_weight
    if kind == "continues":  # its own words already find the topic: they decide the aspect
        w = merge.continue_own_weight
    if kind == "elided":  # "要双方都签吗": the subject, the thing asked about, is the context's
        w = merge.bare_own_weight
    if party and c.bare_party:  # "换成乙方呢" alone finds only the party's description
        w = merge.party_own_weight
    if (
        c.topic_words
        and not alone.abstain
        and not party
        and merge.own_confidence is not None
        and alone.hits
        and alone.confidence >= merge.own_confidence
        and alone.hits[0].item_id in neighbours(context.item_id, knowledge)
    ):
        # Its own words confidently find an item next to the previous one ("how is it paid?"
        # after the payment time, "and for end users?" after the scope): they decide; the
        # context only kept it on the topic.
        w, bare = 1.0, False
    scores = _mix(((alone, w), (together, 1 - w)))

    def add(ids: Iterable[str], bonus: float) -> None:
        for i in ids:
            if i in scores:
                scores[i] += bonus

    def sides() -> Iterator[tuple[str, str]]:
        for i in scores:
            item = knowledge.get(i)
            side = item_side(item) if item is not None else None
            if side is not None:
                yield i, side

    main = knowledge.get(context.item_id)
    old_side = item_side(main) if party and main is not None else None
    if party:
        # The embedding hardly tells 甲方 from 乙方: set back the previous side's one-sided
        # items (the previous answer among them) and bring the other side's forward.
        new_side = c.party or next((_OTHER[p] for p in previous_parties(context)[:1]), None)
        if old_side is None and new_side is not None:
            old_side = _OTHER[new_side]
        for i, side in list(sides()):
            scores[i] += -merge.party_penalty if side == old_side else merge.party_penalty / 2
        if main is not None and item_side(main) is None:
            # A clause about both sides ("任何一方违约…") answers for the other side too.
            add([main.id], merge.both_sides_prior)
        if main is not None and main.kind != "clause":
            # The mirror question asks for the other side's item of the same kind: a party's
            # description for a party's description, its breach for a breach (clauses, most of
            # the items, say nothing by their kind).
            add(
                [i for i, side in sides() if side == new_side and _kind(i, knowledge) == main.kind],
                merge.counterpart_prior,
            )
    else:
        related = related_by(question, context.item_id, knowledge)
        follows = (
            consequences(context.item_id, knowledge) if asks_consequence(question, main) else ()
        )
        if follows and merge.consequence_prior:
            # "晚了呢？" after the payment time asks what follows its breach, not the clause
            # again (which the question in context finds first).
            add(follows, merge.consequence_prior)
            add(obligations_of(context.item_id, knowledge), -merge.consequence_penalty)
        elif (term_clauses := clauses_using(main, question, knowledge)) and merge.term_prior:
            # After a term's definition, a question that does not ask what it means asks what
            # the agreement provides about it: the clauses the term is defined for
            # ("協議哪一條有講要付" after 违约金, "正文里具体怎么约定的" after 争议解决).
            add(term_clauses, merge.term_prior)
        elif not related:  # "what's the remedy?" asks for what the item links to, not the item
            add([context.item_id], merge.bare_item_prior if bare else merge.item_prior)
        add(neighbours(context.item_id, knowledge), merge.link_prior)
        add(related, merge.relation_prior)
    if kind == "clause" and merge.structure:
        target = _clause_of(context.item_id, knowledge, scores)
        if target is not None:
            scores[target] = max(scores.values()) + 1.0
    # Abstained on in context only when the question abstains on its own too: two questions run
    # together often look off-topic to the abstention when neither does ("去邊度告" after a
    # question about disputes), but one that abstains alone may be about something else that
    # the off-topic veto let through ("宽带合约期没到想解约，要交违约金吗？" after a question
    # about termination). The context's confidence stays: a weak reading carries the note.
    ranked = _ranked(scores, together, k, alone)
    if ranked.abstain and not alone.abstain:
        ranked = replace(ranked, abstain=False, coverage="answered")
    return ranked, understood


def _kind(item_id: str, knowledge: KnowledgeLike) -> str | None:
    item = knowledge.get(item_id)
    return item.kind if item is not None else None


def _mix(parts: Iterable[tuple[Retrieval, float]]) -> dict[str, float]:
    """Weighted sum of several retrievals' scores; an item missing from one of them counts
    with that retrieval's lowest score."""
    parts = list(parts)
    ids = {hit.item_id for retrieval, _ in parts for hit in retrieval.hits}
    scores = dict.fromkeys(ids, 0.0)
    for retrieval, weight in parts:
        own = {hit.item_id: hit.score for hit in retrieval.hits}
        floor = min(own.values(), default=0.0)
        for i in ids:
            scores[i] += weight * own.get(i, floor)
    return scores


def _ranked(
    scores: dict[str, float], base: Retrieval, k: int, alone: Retrieval | None = None
) -> Retrieval:
    """The top ``k`` of ``scores`` as a retrieval with ``base``'s confidence (and its not-stated
    outcome while the best item stays the same, unless the question's own words, ``alone``,
    are answered: then what the agreement does not say came from an earlier question)."""
    known = {hit.item_id: hit for hit in base.hits}
    order = sorted(scores, key=lambda i: -scores[i])[:k]
    hits = tuple(
        Hit(
            item_id=i,
            score=round(scores[i], 6),
            dense=known[i].dense if i in known else 0.0,
            lexical=known[i].lexical if i in known else 0.0,
        )
        for i in order
    )
    if (
        base.coverage == "not_stated"
        and (alone is None or alone.coverage != "answered")
        and hits
        and base.hits
        and hits[0].item_id == base.hits[0].item_id
    ):
        # The same best item: what the agreement does not say about it still holds.
        return replace(base, hits=hits)
    return Retrieval(
        query=base.query,
        hits=hits,
        confidence=base.confidence,
        abstain=base.abstain,
        coverage="out_of_scope" if base.abstain else "answered",
    )


_DEFINITION = re.compile(r"什么意思|定义|指什么|是指|mean|defin")
#: What a follow-up asks about the previous item, by the relation of the knowledge's links.
_RELATIONS = (
    (
        "remedy",
        re.compile(
            r"赔|违约金|责任|后果|会怎样|罚|penalt|damages|compensat|liab|remed|consequen|owe"
        ),
    ),
    # Not "account": "does it count as a breach?" is a word of its own.
    ("breach", re.compile(r"违约|违反|算不算|breach|violat|\bcounts?\b")),
    (
        "procedure",
        re.compile(
            r"怎么办|处理|怎么做|做什么|采取|应对|程序|流程|解决"
            r"|what (?:should|can|do)|how (?:do|can|should|would) (?:we|i|they|you)\b|handle|deal"
            r"|steps|procedure|settle|resolv"
        ),
    ),
    # The kinds of document the attachments are (standards, vouchers, manuals, sheets).
    (
        "document",
        re.compile(
            r"附件|文件|表格|标准|凭证|说明书|参数表|清单"
            r"|attachment|document|annex|form\b|standards?\b|voucher|manual|sheet|\blist\b"
        ),
    ),
    ("definition", _DEFINITION),
    ("obligation", re.compile(r"义务|职责|duty|duties|obligat")),
)


#: Whether something exists, in a follow-up: what it asks for is a document the previous item
#: has ("有没有配套的流程文件", "有付款凭证吗", "is there one about payments?").
_EXISTS = re.compile(
    r"^(?:(?:那么|那|还有|另外)[，,、\s]*)?有(?!权|效|关|限)|有没有|有冇"
    r"|\b(?:is|are) there (?:a|an|any|one)\b"
)

#: An obligation not kept: being late, not doing it, not paying ("拖了两个月还没付", "still
#: haven't paid"), a leak, a breach (zh-Hans after normalization; Cantonese 做唔到).
_FAILURE = re.compile(
    r"晚|迟|延迟|延误|逾期|拖欠|拖了|拖着|拖到|拖延|超期|做不到|做唔到|未能|不履行|违反|违约"
    r"|泄露|泄漏|外流|[没未不]付|[没未不]交|没给|不给"
    r"|(?<![a-z])unpaid|(?:n't|\bnot|\bnever|\bstop(?:s|ped)?) (?:yet )?pa(?:y|id)"
    # (?<![a-z]), not \b: mixed text has no boundary between 款 and "delay" ("付款delay了呢").
    r"|(?<![a-z])(?:late\b|delay|fail|miss|breach|violat|leak|disclos)"
)
#: What follows, or what comes next: "后果呢", "会怎样", "会点" (Cantonese), "what happens next?",
#: "what if it keeps happening?", "嚴重嘅話呢".
_AFTERMATH = re.compile(
    r"后果|会怎样|会怎么样|会如何|会点|严重|屡次|反复|一直|再次|接下来|然后"
    r"|(?<![a-z])(?:consequen|what happens|what if|keeps?\b|again\b|repeated|next\b)"
)


def asks_consequence(question: str, item: Item | None = None) -> bool:
    """Whether ``question`` asks what follows a failure or what comes next ("晚了呢？",
    "做唔到呢", "洩露咗會點", "so what happens next?"). After a breach or a problem (``item``),
    naming the failure again asks about that item ("is that treated as a breach?"): only what
    follows counts then."""
    norm = normalize(question)
    if _AFTERMATH.search(norm):
        return True
    return (item is None or item.kind not in ("breach", "problem")) and bool(_FAILURE.search(norm))


def consequences(item_id: str, knowledge: KnowledgeLike) -> frozenset[str]:
    """What follows when ``item_id`` is not kept, by the knowledge's links: its breaches and
    their remedies and procedures, and its own remedies and procedures (an obligation's
    breach-1 → 5.1, problem-1; a breach's remedy and procedure)."""
    item = knowledge.get(item_id)
    if item is None:
        return frozenset()
    steps = ("remedy", "procedure")
    out = {link.to for link in item.links if link.rel in ("breach", *steps)}
    for link in item.links:
        breach = knowledge.get(link.to)
        if link.rel == "breach" and breach is not None:
            out |= {b.to for b in breach.links if b.rel in steps}
    out.discard(item_id)
    return frozenset(out)


def obligations_of(item_id: str, knowledge: KnowledgeLike) -> frozenset[str]:
    """``item_id`` and the obligations its breaches break ("晚了会怎样" after the payment method
    asks what follows late payment, not about the payment schedule either)."""
    out = {item_id}
    item = knowledge.get(item_id)
    for link in item.links if item is not None else ():
        breach = knowledge.get(link.to)
        if link.rel == "breach" and breach is not None:
            out |= {b.to for b in breach.links if b.rel == "obligation"}
    return frozenset(out)


def clauses_using(item: Item | None, question: str, knowledge: KnowledgeLike) -> tuple[str, ...]:
    """The clauses a term (``item``) is linked to, unless ``question`` asks what it means."""
    if item is None or item.kind != "term":
        return ()
    if _DEFINITION.search(normalize(question)):
        return ()
    return tuple(
        link.to
        for link in item.links
        if (target := knowledge.get(link.to)) is not None and target.kind == "clause"
    )


def related_by(question: str, item_id: str, knowledge: KnowledgeLike) -> frozenset[str]:
    """Items linked from ``item_id`` by the relations ``question`` asks about (a breach's
    remedy and procedure included, as answers explain them; the item itself when other items
    link to it by such a relation)."""
    item = knowledge.get(item_id)
    if item is None:
        return frozenset()
    norm = normalize(question)
    rels = {rel for rel, pattern in _RELATIONS if pattern.search(norm)}
    if _EXISTS.search(norm):  # "is there one about payments?": a document the item has
        rels.add("document")
    out = {link.to for link in item.links if link.rel in rels}
    for link in item.links:
        breach = knowledge.get(link.to)
        if breach is not None and breach.kind == "breach":
            out |= {b.to for b in breach.links if b.rel in rels and b.rel != "obligation"}
    # The item itself when it is what the question asks for (5.2 is a remedy: "还能要违约金吗").
    out.discard(item_id)
    if any(link.rel in rels and link.to == item_id for o in knowledge.items for link in o.links):
        out.add(item_id)
    return frozenset(out)


def _clause_of(item_id: str, knowledge: KnowledgeLike, scores: dict[str, float]) -> str | None:
    """The clause an item rests on: itself, or the linked clause scoring best in context."""
    item = knowledge.get(item_id)
    if item is None:
        return None
    if item.kind == "clause":
        return item.id
    linked = [
        link.to
        for link in item.links
        if (target := knowledge.get(link.to)) is not None and target.kind == "clause"
    ]
    if not linked:
        return None
    return max(linked, key=lambda i: scores.get(i, float("-inf")))


# --- answering a turn ----------------------------------------------------------------------


def topic_line(topic: str, language: Language) -> str:
    """The one line an answer in context starts with: what the question was taken to follow."""
    text = " ".join(topic.split()).rstrip("?？!！。.")
    if len(text) > TOPIC_CHARS:
        text = text[: TOPIC_CHARS - 1].rstrip() + "…"
    return t("dialogue.topic", language, topic=text)


class _Watched:
    """A retriever that notes whether ``compose.answer`` searched at all (``used``); with a
    ``retrieval`` computed beforehand (the question in context) its ``search`` returns that, so
    the intents run on the user's own words and the answer is composed from the context's."""

    def __init__(self, retriever: RetrieverLike, retrieval: Retrieval | None = None) -> None:
        self._retriever = retriever
        self._retrieval = retrieval
        self.used = False

    @property
    def knowledge(self) -> KnowledgeLike:
        return self._retriever.knowledge

    def search(self, question: str, k: int = 5) -> Retrieval:
        self.used = True
        if self._retrieval is not None:
            return self._retrieval
        return self._retriever.search(question, k)


@dataclass(frozen=True)
class Reply:
    """One turn of a dialogue: the answer, the context for the next turn, how it was read."""

    answer: Answer
    turn: DialogueTurn | None  # None: nothing new was answered, keep the previous context
    kind: FollowUpKind = ""  # "" for a question that stands on its own
    understood: str = ""  # the text retrieved with (for a follow-up: with its context)


def main_item(result: Answer) -> str | None:
    """The item an answer is about: its first citation (None for help, abstentions, lists)."""
    if result.abstained or result.intent in ("empty", "toc") or not result.citations:
        return None
    return result.citations[0].id


def thread_of(context: DialogueTurn | None, question: str, merge: Merge = MERGE) -> str:
    """The context the next turn gets after ``question`` followed up ``context``."""
    if context is None or merge.context == "last":
        return question
    lines = [*context.question.splitlines(), question]
    return "\n".join(lines[-merge.thread_turns :])


def answer_turn(
    question: str,
    retriever: RetrieverLike,
    context: DialogueTurn | None,
    *,
    language: Language,
    now: float,
    parameters: Mapping[str, str] | None = None,
    merge: Merge = MERGE,
) -> Reply:
    """Answer ``question`` as the next turn after ``context`` (None: the first of a dialogue).

    The answer of a follow-up starts with the topic line (role "context"); ``Reply.turn`` is
    what the chat should remember next.
    """
    kind: FollowUpKind = ""
    understood = question
    if context is None:
        watched = _Watched(retriever)
        result = answer(question, watched, language=language, parameters=parameters)
        searched = watched.used
    else:
        # When the wording already says "follow-up", the question and the question in
        # context are embedded in one batch; otherwise only the question, until its own
        # retrieval says whether it can stand alone.
        guess = follow_up_kind(question, context)
        texts = [question, context_query(question, context, guess, merge)] if guess else [question]
        alone, *rest = _search(retriever, texts, merge.depth)
        elsewhere = about_something_else(retriever, question, alone, context.item_id)
        kind = follow_up_kind(question, context, alone, elsewhere=elsewhere)
        if kind:
            retrieval, understood = contextual_retrieval(
                question,
                context,
                kind,
                retriever,
                alone,
                merge=merge,
                together=rest[0] if rest else None,
            )
        else:
            retrieval = replace(alone, hits=alone.hits[:5])
        prepared = _Watched(retriever, retrieval)
        result = answer(question, prepared, language=language, parameters=parameters)
        searched = prepared.used
        if not searched:  # an explicit lookup ("3.2", "目录", "怎么投诉") needs no context
            kind, understood = "", question
        if kind:
            topic = topic_line(context.topic or context.question, language)
            result = replace(result, parts=(Part(role="context", text=topic), *result.parts))
    item_id = main_item(result)
    if item_id is None:
        return Reply(result, None, kind, understood)
    if kind and context is not None:
        turn = DialogueTurn(
            thread_of(context, question, merge), item_id, language, now, context.topic
        )
    elif searched:
        turn = DialogueTurn(question, item_id, language, now, question)
    else:  # a lookup: the item's title is the topic ("违约责任" rather than "5.1")
        title = _item_topic(item_id, retriever.knowledge, language)
        turn = DialogueTurn(title, item_id, language, now, title)
    return Reply(result, turn, kind, understood)


def _item_topic(item_id: str, knowledge: KnowledgeLike, language: Language) -> str:
    item = knowledge.get(item_id)
    if item is None:
        return item_id
    return item.title_en if language == "en" else item.title
