"""Follow-up questions: detection from the wording, retrieval in context, the topic line.

The pure pieces are tested on hand-made questions, items and scores; ``answer_turn`` once on the
real retriever. The figures on the dialogue sets are in tests/test_evaluation_dialogues.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pytest

from bot.answers import dialogue
from bot.answers.dialogue import (
    asks_consequence,
    consequences,
    contextual_retrieval,
    cues,
    follow_up_kind,
    item_side,
    neighbours,
    obligations_of,
    parties_in,
    related_by,
    swap_parties,
    thread_of,
    topic_line,
)
from bot.types import DialogueTurn, Hit, Item, Link, Parameter, Retrieval

if TYPE_CHECKING:
    from bot.knowledge.loader import Knowledge
    from bot.search.retrieval import Retriever


def _item(item_id: str, title: str, text: str, parties: tuple[str, ...], *links: Link) -> Item:
    kind = "clause" if item_id[0].isdigit() else {"b": "breach", "p": "problem"}[item_id[0]]
    return Item(item_id, kind, "", "", title, title, text, text, parties, (), links)


ITEMS = (
    _item(
        "3.2",
        "付款时间",
        "甲方应于每季度第一个月内支付服务费用。",
        ("甲方",),
        Link("breach", "b1"),
        Link("related", "3.3"),
    ),
    _item("3.3", "付款方式", "付款方式为银行转账。", ("甲方", "乙方"), Link("related", "3.2")),
    _item(
        "b1",
        "甲方未按约定支付服务费用",
        "甲方未按约定及时支付服务费用。",
        ("甲方",),
        Link("obligation", "3.2"),
        Link("remedy", "5.1"),
        Link("procedure", "p1"),
    ),
    _item("5.1", "违约责任", "任何一方违反本协议的约定，应承担违约责任。", ("甲方", "乙方")),
    _item(
        "p1",
        "甲方延迟支付服务费用",
        "乙方应及时与甲方沟通。",
        ("甲方", "乙方"),
        Link("related", "3.2"),
        Link("related", "b1"),
    ),
    _item(
        "p2",
        "乙方服务质量不符合要求",
        "甲方应及时向乙方提出。",
        ("甲方", "乙方"),
        Link("remedy", "5.2"),
    ),
    _item("5.2", "乙方未提供服务时甲方的解除权", "甲方有权解除本协议。", ("甲方", "乙方")),
)


@dataclass
class FakeKnowledge:
    items: tuple[Item, ...] = ITEMS
    parameters: Mapping[str, Parameter] = field(default_factory=dict)

    def get(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)


KNOWLEDGE = FakeKnowledge()


class FakeRetriever:
    """Scores per query text, hand-made; unknown texts score every item alike."""

    def __init__(self, scores: Mapping[str, Mapping[str, float]], abstain: bool = False) -> None:
        self.knowledge = KNOWLEDGE
        self.scores = scores
        self.abstain = abstain
        self.asked: list[str] = []

    def search(self, question: str, k: int = 5) -> Retrieval:
        return self.search_many([question], k)[0]

    def search_many(self, questions: Sequence[str], k: int = 5) -> list[Retrieval]:
        self.asked.extend(questions)
        out = []
        for q in questions:
            scores = self.scores.get(q, {item.id: 0.5 for item in ITEMS})
            order = sorted(scores, key=lambda i: -scores[i])[:k]
            hits = tuple(Hit(i, scores[i], dense=scores[i]) for i in order)
            out.append(Retrieval(q, hits, 0.9, self.abstain))
        return out


def _context(question: str = "甲方拖欠服务费怎么办", item_id: str = "p1") -> DialogueTurn:
    return DialogueTurn(question, item_id, "zh-Hans", 0.0, topic=question)


def _alone(
    dense: float = 0.9, abstain: bool = False, gap: float = 0.2, confidence: float = 0.9
) -> Retrieval:
    """A question's own retrieval: its best item, and the previous answer's ("p1") ``gap``
    below it."""
    hits = (Hit("3.2", dense, dense=dense), Hit("p1", dense - gap, dense=dense - gap))
    return Retrieval("q", hits, confidence, abstain)


# --- detection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("那乙方呢？", "party"),  # the same question about the other side
        ("what about Party B?", "party"),
        ("他们要赔吗？", "refers"),  # a pronoun
        ("合同上哪里写这个日期？", "refers"),  # a demonstrative
        ("协商不成呢？", "refers"),  # an elliptical 呢
        ("纯硬件也算吗？", "refers"),  # 也: in addition to what was said
        ("does it have to be in writing?", "refers"),
        ("and if Party B doesn't deliver the service?", "refers"),
        ("And what about confidentiality?", "refers"),
        ("What happens if it is late?", "refers"),
        ("这是哪一条规定的？", "clause"),
        ("what's the clause number?", "clause"),
        ("in what currency?", "fragment"),
        ("那乙方可以怎么处理？", "no-topic"),  # nothing but a party and a generic verb
        ("要先做什么？", "no-topic"),
        ("如果已经外流了，甲方要怎么做？", "conditional"),  # a condition without its subject
        ("违反的话后果是什么？", "conditional"),  # ... or closed by 的话
        ("谁付给谁？", "short"),
        # Cantonese, as zh-Hant users write it: 佢哋 they, 嗰個 that, 咁 so, 點 how.
        ("佢哋要賠嗎？", "refers"),
        ("嗰個點算？", "refers"),
        ("咁乙方呢？", "party"),
        ("乙方可以點做？", "no-topic"),
    ],
)
def test_follow_ups_are_recognised(question: str, kind: str) -> None:
    # Not confident on its own: a cue without a pronoun still makes a follow-up.
    assert follow_up_kind(question, _context(), _alone(gap=0.08, confidence=0.1)) == kind


@pytest.mark.parametrize(
    "question",
    [
        # Openers that new questions start with too.
        "那合同一式几份？",
        "那么续约要提前几天通知？",
        "还有，争议最后去哪里打官司？",
        "另外，协议的附件里有技术参数表吗？",
        "Then what's the payment method?",
        "And how many copies of the contract are there?",
        # "This agreement" points at the agreement, not back; 呢 after a question word.
        "这个合同有效期多久？",
        "合同有效期是多久呢？",
        "What does this agreement say about renewal?",
        # A conditional with its own subject; a question about a party itself.
        "如果乙方泄露了甲方的资料怎么办？",
        "乙方违约的话甲方能解约吗？",
        "双方谈不拢的话去哪里解决？",
        "and who is Party A?",
        "甲方是做什么的？",
        # A pronoun pointing inside the question, a dummy "it", asking words that are no cue.
        "甲方逾期付款，这算违约吗？",
        "If the parties can't agree, is that a breach?",
        "Is it possible to renew the agreement?",
        "Does one party have to notify the other?",
        "还有一个问题：合同有效期多久？",
        "我也想知道续约要提前多久",
        "其实我想问合同有效期多久",
        "續約要提前幾耐通知？",
    ],
)
def test_questions_that_stand_alone_are_never_merged(question: str) -> None:
    assert follow_up_kind(question, _context(), _alone()) == ""


def test_short_questions_stand_alone_when_strong_or_on_another_topic() -> None:
    near = 0.08  # the previous answer's item close behind, not close enough to continue it
    assert follow_up_kind("付款方式？", _context(), _alone(0.9, gap=near)) == "short"
    assert follow_up_kind("付款方式？", _context(), _alone(0.97, gap=near)) == ""
    assert follow_up_kind("付款方式？", _context(), _alone(0.9, gap=0.2)) == ""


def test_a_question_whose_own_retrieval_stays_on_the_topic_continues_it() -> None:
    question = "账号在哪里写呀，银行那一栏？"
    # Answered, but not confidently enough to be self-sufficient.
    middling = dialogue.SELF_CONFIDENCE / 2
    between = _alone(gap=0.03, confidence=middling)
    assert follow_up_kind(question, _context(), between) == "continues"
    assert follow_up_kind(question, _context(), _alone(gap=0.2, confidence=0.3)) == ""


@pytest.mark.parametrize(
    "question",
    [
        "What about the confidentiality clause, who does it bind?",
        "And what if the parties disagree about termination, is that a breach?",
        "售后支援服务的定义又是什么？",
        "那如果双方对解约意见不一致，算违约吗？",
    ],
)
def test_a_self_sufficient_question_needs_a_pronoun_to_follow_up(question: str) -> None:
    """Enough topic words and a confident retrieval of its own: an opener, "what about", 又 or
    a condition does not make it a follow-up; the same words answered weakly still do."""
    assert follow_up_kind(question, _context(), _alone(confidence=0.9)) == ""
    assert follow_up_kind(question, _context(), _alone(confidence=0.1)) != ""


@pytest.mark.parametrize(
    "question",
    [
        "另外，售后支援服务的定义又是什么？",
        "另外请问乙方要不要培训",
        "还有，付款后要留什么凭证？",
        "此外乙方也要保密吗",
        "Also, is there a list of attachments?",
        "Also, can either party assign the agreement to someone else?",
    ],
)
def test_a_question_announced_as_another_is_new(question: str) -> None:
    """另外 / 此外 / 还有， / "Also," announce another question: with a topic of its
    own it is new, however weakly it is answered alone, and whatever additive word it has."""
    assert cues(question).new_question
    assert follow_up_kind(question, _context(), _alone(gap=0.0, confidence=0.1)) == ""


def test_an_announcing_opener_still_follows_up_with_a_pronoun_or_no_topic() -> None:
    assert follow_up_kind("另外，这个要书面吗？", _context(), _alone(confidence=0.9)) == "refers"
    assert follow_up_kind("还有，要先做什么？", _context(), _alone(confidence=0.9)) == "no-topic"
    assert follow_up_kind("Also, what about Party B?", _context(), _alone()) == "party"
    # Not an announcement: 还有 without a comma asks for more of the same, 另外的 is "the other".
    assert not cues("还有别的办法吗").new_question
    assert not cues("另外的情况呢").new_question


def test_self_sufficient_needs_topic_words_and_a_confident_own_retrieval() -> None:
    many = cues("售后支援服务的定义是什么")
    assert len(many.topic_words) >= dialogue.SELF_TOPIC_WORDS
    assert dialogue.self_sufficient(many, _alone(confidence=0.9))
    assert not dialogue.self_sufficient(many, _alone(confidence=0.9, abstain=True))
    assert not dialogue.self_sufficient(many, _alone(confidence=0.1))
    assert not dialogue.self_sufficient(many, None)
    assert not dialogue.self_sufficient(cues("那乙方呢？"), _alone(confidence=1.0))
    # A pronoun pointing back keeps a follow-up, however self-sufficient.
    assert follow_up_kind("他们要赔偿违约损失吗？", _context(), _alone(confidence=1.0)) == "refers"


def test_foreign_share_counts_the_off_topic_examples_words(knowledge: Knowledge) -> None:
    assert dialogue.foreign_share(("北京", "天气"), knowledge) == 1.0
    assert dialogue.foreign_share(("mortgage",), knowledge) == 1.0
    assert dialogue.foreign_share(("服务费", "天气"), knowledge) == 0.5
    assert dialogue.foreign_share(("后果",), knowledge) == 0.0  # no off-topic word
    assert dialogue.foreign_share((), knowledge) == 0.0
    # One character is no subject of its own: "佢哋唔改呢" (改) is not about something else,
    # and it does not water down a word that is ("改" beside "天气").
    assert "改" in dialogue._off_topic_words()
    assert dialogue.foreign_share(("改",), knowledge) == 0.0
    assert dialogue.foreign_share(("改", "天气"), knowledge) == 1.0
    # A word the agreement uses only inside a compound is still its word: 电话 (联系电话), so
    # "打个电话口头说一声行不行" after a question on the renewal notice is not about something else.
    assert "电话" in dialogue._off_topic_words()
    assert dialogue.foreign_share(("电话", "口头"), knowledge) == 0.0


def test_not_about_the_agreement_is_not_merged_and_no_context_no_follow_up() -> None:
    weak = _alone(0.85, abstain=True)
    assert follow_up_kind("then what's the remedy?", _context(), weak) == "weak"
    assert follow_up_kind("那北京天气呢？", _context(), weak, elsewhere=True) == ""
    assert follow_up_kind("那乙方呢？", None, _alone()) == ""


def test_cues_of_a_party_switch() -> None:
    bare = cues("那乙方呢？")
    assert bare.bare_party and bare.party == "乙方" and not bare.topic_words
    both = cues("那乙方可以向甲方要吗？")
    assert both.parties == ("乙方", "甲方") and not both.bare_party
    # Named the other way round than before: a switch, without a topic of its own.
    before = _context("甲方可以要求乙方付违约金吗？", "5.2")
    assert follow_up_kind("那乙方可以向甲方要吗？", before, _alone()) == "party"
    assert follow_up_kind("那乙方呢？", _context("乙方违约怎么办"), _alone()) == "refers"


def test_swap_parties() -> None:
    assert swap_parties("甲方拖欠乙方的服务费") == "乙方拖欠甲方的服务费"
    assert swap_parties("Can Party A sue party b?") == "Can Party B sue party a?"


# --- the knowledge's structure --------------------------------------------------------------


def test_item_side() -> None:
    sides = {item.id: item_side(item) for item in ITEMS}
    assert sides == {
        "3.2": "甲方",  # concerns only 甲方
        "3.3": None,
        "b1": "甲方",  # the title names it
        "5.1": None,  # 任何一方
        "p1": "甲方",
        "p2": "乙方",
        "5.2": "乙方",  # named first: 乙方's failure is what it is about
    }


def test_neighbours_and_relations() -> None:
    assert neighbours("3.2", KNOWLEDGE) == {"b1", "3.3", "p1"}
    assert related_by("会怎样，要赔吗？", "3.2", KNOWLEDGE) == {"5.1"}  # via its breach
    assert related_by("那怎么处理？", "3.2", KNOWLEDGE) == {"p1"}
    assert related_by("要赔吗？", "5.1", KNOWLEDGE) == {"5.1"}  # it is a remedy itself
    assert related_by("什么时候付？", "3.2", KNOWLEDGE) == frozenset()


def test_a_party_switch_sets_the_previous_side_back() -> None:
    # The embedding finds the same items for the swapped question; the structure decides.
    swapped = "乙方拖欠服务费怎么办 那乙方呢？"
    retriever = FakeRetriever(
        {"那乙方呢？": {"p1": 0.95, "p2": 0.93, "b1": 0.92}, swapped: {"p1": 0.96, "p2": 0.94}}
    )
    alone = retriever.search("那乙方呢？", 50)
    result, understood = contextual_retrieval(
        "那乙方呢？", _context("甲方拖欠服务费怎么办"), "party", retriever, alone
    )
    assert understood == swapped and result.hits[0].item_id == "p2"


def test_which_clause_is_the_clause_behind_the_previous_answer() -> None:
    retriever = FakeRetriever({})
    question = "这是哪一条规定的？"
    alone = retriever.search(question, 50)
    result, _ = contextual_retrieval(question, _context(item_id="3.3"), "clause", retriever, alone)
    assert result.hits[0].item_id == "3.3"  # a clause itself
    result, _ = contextual_retrieval(question, _context(item_id="b1"), "clause", retriever, alone)
    assert result.hits[0].item_id in ("3.2", "5.1")  # a breach: a clause it links to


def test_a_bare_question_leans_on_the_previous_item() -> None:
    question = "is that only for Party A?"
    retriever = FakeRetriever({question: {"3.2": 0.92, "5.1": 0.90}})
    alone = retriever.search(question, 50)
    before = _context("If one side breaches, what does it owe?", "5.1")
    result, understood = contextual_retrieval(question, before, "refers", retriever, alone)
    assert result.hits[0].item_id == "5.1"
    assert understood == "If one side breaches, what does it owe? is that only for Party A?"


def test_topic_line_and_thread() -> None:
    assert topic_line("甲方拖欠服务费怎么办？", "zh-Hans") == "（接上一问：甲方拖欠服务费怎么办）"
    assert topic_line("甲方拖欠服务费怎么办？", "zh-Hant") == "（接上一問：甲方拖欠服務費怎麼辦）"
    long = topic_line("What happens if Party A doesn't pay the service fee on time?", "en")
    assert long.startswith("(Following on from: What happens") and long.endswith("…)")
    assert len(long) < 60
    turn = DialogueTurn("q1\nq2\nq3", "3.2", "zh-Hans", 0.0)
    assert thread_of(turn, "q4") == "q2\nq3\nq4"  # the last three questions
    assert thread_of(None, "q1") == "q1"


# --- a turn, on the real retriever ----------------------------------------------------------


def test_answer_turn(retriever: Retriever) -> None:
    first = dialogue.answer_turn(
        "甲方拖欠服务费怎么办", retriever, None, language="zh-Hans", now=1.0
    )
    assert first.kind == "" and first.turn is not None and first.turn.asked_at == 1.0
    assert first.answer.parts[0].role != "context"
    second = dialogue.answer_turn("那乙方呢？", retriever, first.turn, language="zh-Hans", now=2.0)
    assert second.kind == "party" and second.answer.parts[0].role == "context"
    assert second.answer.question == "那乙方呢？"  # logged as the user asked it
    assert second.turn is not None and second.turn.topic == "甲方拖欠服务费怎么办"
    assert second.turn.question == "甲方拖欠服务费怎么办\n那乙方呢？"
    # An explicit lookup is no follow-up; its item's title becomes the topic.
    lookup = dialogue.answer_turn("3.2", retriever, second.turn, language="zh-Hans", now=3.0)
    assert lookup.kind == "" and lookup.turn is not None and lookup.turn.topic == "付款时间"
    # Something the agreement does not cover keeps the context for the next question.
    other = dialogue.answer_turn("那北京天气呢？", retriever, first.turn, language="zh-Hans", now=4)
    assert other.answer.abstained and other.kind == "" and other.turn is None


def test_the_other_side_unnamed_and_the_vendor_switch_parties() -> None:
    before = _context("甲方需要什么样的售后支持？")
    assert follow_up_kind("反過來呢", before, _alone(confidence=0.1, abstain=True)) == "party"
    assert follow_up_kind("对方是什么样的公司", before, _alone(confidence=1.0)) == "party"
    assert follow_up_kind("反过来呢", _context("合同有效期多久"), _alone()) != "party"
    assert parties_in("and if it's the vendor?") == ("乙方",)
    assert cues("what about the service provider?").bare_party


# --- consequences, party switches with a word beside the party, confident own answers -------


def test_asks_consequence_names_a_failure_or_what_follows() -> None:
    for question in (
        "晚了呢？",
        "做唔到呢",
        "洩露咗會點",
        "如果付款delay了呢？",
        "what happens next?",
    ):
        assert asks_consequence(question), question
    for question in ("用什么方式付？", "具体要提前几天", "and to which account?"):
        assert not asks_consequence(question), question
    # After a breach, naming the failure again asks about that breach; what follows still counts.
    breach = KNOWLEDGE.get("b1")
    assert not asks_consequence("is that treated as a breach?", breach)
    assert asks_consequence("what if it keeps happening?", breach)


def test_consequences_follow_breach_remedy_and_procedure_links() -> None:
    # An obligation: its breach, and the breach's remedy and procedure.
    assert consequences("3.2", KNOWLEDGE) == {"b1", "5.1", "p1"}
    assert consequences("b1", KNOWLEDGE) == {"5.1", "p1"}  # a breach: its remedy and procedure
    assert consequences("3.3", KNOWLEDGE) == frozenset()  # nothing follows by the links
    assert consequences("nope", KNOWLEDGE) == frozenset()


def test_an_elliptical_consequence_leaves_the_clause_for_its_breach() -> None:
    question = "晚了呢？"
    context = _context("甲方每个季度什么时候付款？", "3.2")
    together = f"{context.question} {question}"
    # In context the clause itself is found first: the question's words name no item.
    retriever = FakeRetriever(
        {question: {"3.2": 0.90, "b1": 0.88}, together: {"3.2": 1.10, "b1": 0.95, "p1": 0.94}}
    )
    alone = replace(retriever.search(question, 50), abstain=True)
    result, _ = contextual_retrieval(question, context, "refers", retriever, alone)
    assert result.hits[0].item_id in ("b1", "p1")


def test_a_follow_up_is_abstained_on_in_context_only_if_it_abstains_alone() -> None:
    """Two questions run together can look off-topic to the abstention (a long, odd text) when
    neither does: then the follow-up is answered (with the context's low confidence); one that
    abstains on its own too may be about something else and still abstains."""
    question = "逾期呢？"
    context = _context("用什么方式付？", "3.3")
    together = f"{context.question} {question}"
    retriever = FakeRetriever({together: {"b1": 1.0, "3.3": 0.9}}, abstain=True)
    alone = Retrieval(question, (Hit("b1", 0.9, dense=0.9), Hit("3.3", 0.7, dense=0.7)), 0.5, False)
    result, _ = contextual_retrieval(question, context, "refers", retriever, alone)
    assert not result.abstain and result.coverage == "answered"
    assert result.hits[0].item_id == "b1"
    result, _ = contextual_retrieval(
        question, context, "refers", retriever, replace(alone, abstain=True)
    )
    assert result.abstain


@pytest.mark.parametrize(
    "question", ["换成乙方呢", "如果是乙方那边呢", "and if it's the vendor?", "Party B instead?"]
)
def test_a_party_beside_a_substitution_word_is_a_switch(question: str) -> None:
    assert cues(question).bare_party
    assert follow_up_kind(question, _context("甲方违约要承担什么？"), _alone()) == "party"


def test_a_party_beside_words_of_its_own_is_no_bare_switch() -> None:
    assert not cues("那乙方可以怎么处理？").bare_party
    assert not cues("and what can the vendor do?").bare_party


def test_a_plural_pronoun_after_the_parties_points_inside() -> None:
    assert not cues("And where do the parties put their seals?").points_back
    assert cues("where do they put their seals?").points_back
    assert not cues("双方签字以后他们各执几份？").points_back


def test_a_possessive_after_a_party_points_at_it() -> None:
    assert not cues("Is Party B ever allowed to suspend its services?").points_back
    assert not cues("乙方违约了，他们要赔什么？").points_back
    assert cues("are its services suspended then?").points_back


def test_a_place_word_after_a_noun_points_inside() -> None:
    assert not cues("签字页那里需要盖公章吗？").points_back
    assert cues("在那里签吗").points_back


def test_whos_party_b_asks_who_and_a_letter_alone_names_a_party() -> None:
    assert cues("who's party B?").asks_who
    assert cues("and A?").bare_party and cues("and A?").party == "甲方"
    assert cues("what about b").party == "乙方"
    assert cues("and a fee?").party is None  # the article
    before = _context("who's party B?", "scenario-2")
    assert follow_up_kind("and A?", before, _alone()) == "party"


def test_a_confident_own_answer_next_to_the_previous_item_decides() -> None:
    question = "how is it paid?"
    context = _context("When is the quarterly fee due?", "3.2")
    together = f"{context.question} {question}"
    retriever = FakeRetriever(
        {question: {"3.3": 0.93, "3.2": 0.92}, together: {"3.2": 1.04, "3.3": 0.93}}
    )
    alone = replace(retriever.search(question, 50), confidence=0.74)
    result, _ = contextual_retrieval(question, context, "refers", retriever, alone)
    assert result.hits[0].item_id == "3.3"
    # Unsure on its own: the context keeps the previous item.
    unsure = replace(alone, confidence=0.3)
    result, _ = contextual_retrieval(question, context, "refers", retriever, unsure)
    assert result.hits[0].item_id == "3.2"


def test_a_question_that_abstains_on_its_own_is_weak_in_context() -> None:
    refused = _alone(0.85, confidence=0.1, abstain=True)
    assert follow_up_kind("then what's the payment penalty?", _context(), refused) == "weak"
    # Answered alone, however unsure, it is not weak (#12's abstention threshold covers that).
    unsure = _alone(0.85, confidence=0.05)
    assert follow_up_kind("then what's the payment penalty?", _context(), unsure) == ""


def test_a_follow_up_keeps_what_the_agreement_does_not_say_while_its_item_stays_first() -> None:
    base = Retrieval(
        query="那违约金是多少？",
        hits=(Hit(item_id="5.1", score=0.9), Hit(item_id="term-3", score=0.8)),
        confidence=0.9,
        abstain=False,
        coverage="not_stated",
        category="damages_amount",
        aspect="amount",
        nearest=("5.1", "term-3"),
    )
    same = dialogue._ranked({"5.1": 1.0, "term-3": 0.7}, base, k=2)
    assert (same.coverage, same.aspect, same.nearest) == ("not_stated", "amount", ("5.1", "term-3"))
    other = dialogue._ranked({"5.1": 0.5, "term-3": 0.9}, base, k=2)
    assert other.coverage == "answered" and other.hits[0].item_id == "term-3"


# --- rules checked on all three dev writers (subjects left out, documents, terms) -------------


def _knowledge(*extra: Item) -> FakeKnowledge:
    return FakeKnowledge(items=ITEMS + extra)


def _plain(item_id: str, kind: str, title: str, *links: Link) -> Item:
    return Item(item_id, kind, "", "", title, title, title, title, ("甲方", "乙方"), (), links)


@pytest.mark.parametrize(
    "question", ["要雙方都簽嗎？", "可以直接停服务吗", "得双方都签字吗", "那可以直接解约吗？"]
)
def test_a_chinese_question_without_a_subject_follows_up(question: str) -> None:
    # Confident on its own and away from the previous item: only the missing subject says so.
    assert cues(question).elided
    assert follow_up_kind(question, _context(), _alone()) in ("elided", "short")


def test_a_question_without_a_subject_is_retrieved_mostly_in_its_context() -> None:
    """Its own words ("同意") find something else; the subject it leaves out is the context's."""
    question = "要双方都同意吗"
    context = _context("补充协议是怎么回事？", "5.1")
    together = f"{context.question} {question}"
    retriever = FakeRetriever(
        {question: {"3.3": 0.95, "5.2": 0.85}, together: {"5.2": 1.0, "3.3": 0.9}}
    )
    alone = replace(retriever.search(question, 50), confidence=0.5)
    result, _ = contextual_retrieval(question, context, "elided", retriever, alone)
    assert result.hits[0].item_id == "5.2"
    # Read for another cue, its own words would decide.
    result, _ = contextual_retrieval(question, context, "short", retriever, alone)
    assert result.hits[0].item_id == "3.3"


def test_a_subject_or_a_condition_first_is_no_elided_subject() -> None:
    for question in ("还有，协议需要双方盖章吗？", "乙方可以暂停服务吗", "要是处理得不及时呢"):
        assert not cues(question).elided, question
    assert follow_up_kind("还有，协议需要双方盖章吗？", _context(), _alone()) == ""


def test_openers_in_a_row_are_all_taken_off() -> None:
    assert cues("ok and on top of losses?").fragment
    assert cues("那么还有呢").length == 0
    # An interjection before a comma is no clause of its own: the pronoun points back.
    assert cues("蛤，所以他们不用赔吗？").points_back
    assert follow_up_kind("喔，那他们要先通知吗", _context(), _alone(confidence=0.9)) == "refers"


def test_a_standard_or_a_voucher_asks_for_the_items_documents() -> None:
    knowledge = _knowledge(
        _plain("4.2", "clause", "质量控制体系", Link("document", "att")),
        _plain("att", "attachments", "附件列表"),
    )
    for question in ("against what standard?", "這個有評估標準嗎", "有付款凭证吗"):
        assert related_by(question, "4.2", knowledge) == {"att"}, question
    # Whether something exists: a document the item has.
    assert related_by("is there one about payments?", "4.2", knowledge) == {"att"}
    assert related_by("有效期多久", "4.2", knowledge) == frozenset()


def test_after_a_term_a_question_not_asking_its_meaning_gets_its_clause() -> None:
    knowledge = _knowledge(_plain("t3", "term", "违约金", Link("related", "5.1")))
    question = "協議哪一條有講要付"
    context = _context("違約金的定義是什麼", "t3")
    together = f"{context.question} {question}"
    retriever = FakeRetriever(
        {question: {"t3": 0.95, "5.1": 0.90}, together: {"t3": 1.05, "5.1": 0.98}}
    )
    retriever.knowledge = knowledge
    alone = retriever.search(question, 50)
    result, _ = contextual_retrieval(question, context, "continues", retriever, alone)
    assert result.hits[0].item_id == "5.1"
    # Asking what it means stays on the term.
    meaning = "它是什么意思"
    retriever.scores = {meaning: {"t3": 0.95, "5.1": 0.90}}
    alone = retriever.search(meaning, 50)
    result, _ = contextual_retrieval(meaning, context, "refers", retriever, alone)
    assert result.hits[0].item_id == "t3"


def test_what_follows_a_failure_sets_back_every_obligation_it_breaks() -> None:
    knowledge = _knowledge()
    assert obligations_of("3.2", knowledge) == {"3.2"}  # b1 names 3.2 as its obligation
    knowledge = FakeKnowledge(
        items=tuple(
            replace(i, links=(*i.links, Link("breach", "b1"))) if i.id == "3.3" else i
            for i in ITEMS
        )
    )
    # The payment method's breach is late payment, whose obligation is the payment time.
    assert obligations_of("3.3", knowledge) == {"3.3", "3.2"}
    assert asks_consequence("what if it does")


def test_clauses_of_one_article_are_neighbours() -> None:
    knowledge = _knowledge(_plain("3.1", "clause", "服务费用金额"))
    assert {"3.1", "3.3"} <= neighbours("3.2", knowledge)
    assert "3.2" not in neighbours("5.1", knowledge)


def test_a_party_switch_after_a_clause_about_both_sides_keeps_it() -> None:
    question = "换成乙方呢"
    context = _context("我们是甲方，如果我们违约了要承担什么？", "5.1")
    swapped = f"{swap_parties(context.question)} {question}"
    retriever = FakeRetriever({swapped: {"5.1": 0.96, "p2": 0.95, "5.2": 0.90}})
    alone = retriever.search(question, 50)
    result, _ = contextual_retrieval(question, context, "party", retriever, alone)
    # 乙方's one-sided items come forward, but the clause binding either side stays first.
    assert result.hits[0].item_id == "5.1"


def test_a_follow_up_answered_by_its_own_words_drops_a_not_stated_context() -> None:
    base = Retrieval(
        query="q",
        hits=(Hit(item_id="p1", score=0.9),),
        confidence=0.9,
        abstain=False,
        coverage="not_stated",
        category="invoice",
    )
    answered = Retrieval("so they can just stop supporting us?", (Hit("p1", 0.9),), 0.2, False)
    assert dialogue._ranked({"p1": 1.0}, base, 1, answered).coverage == "answered"
    unsure = replace(answered, coverage="not_stated")
    assert dialogue._ranked({"p1": 1.0}, base, 1, unsure).coverage == "not_stated"


def test_a_party_switch_after_a_non_clause_item_finds_its_counterpart() -> None:
    knowledge = _knowledge(
        _plain("s1", "scenario", "甲方的业务"), _plain("s2", "scenario", "乙方的业务")
    )
    question = "那乙方呢？"
    context = _context("甲方是做什么业务的？", "s1")
    swapped = f"{dialogue.swap_parties(context.question)} {question}"
    retriever = FakeRetriever({swapped: {"p2": 1.0, "s2": 0.97, "s1": 0.96}})
    retriever.knowledge = knowledge
    alone = retriever.search(question, 50)
    result, _ = contextual_retrieval(question, context, "party", retriever, alone)
    assert result.hits[0].item_id == "s2"  # 乙方's description, not another 乙方 item
    off = replace(dialogue.MERGE, counterpart_prior=0.0)
    result, _ = contextual_retrieval(question, context, "party", retriever, alone, merge=off)
    assert result.hits[0].item_id == "p2"


def test_a_ranking_in_context_keeps_abstain_and_coverage_together() -> None:
    hit = Hit(item_id="3.2", score=0.9, dense=0.9, lexical=1.0)
    base = Retrieval("那乙方呢", (hit,), 0.1, abstain=True, coverage="out_of_scope")
    refused = dialogue._ranked({"3.2": 0.9, "2.1": 0.5}, base, 5)
    assert refused.abstain and refused.coverage == "out_of_scope"
    answered = dialogue._ranked({"3.2": 0.9}, replace(base, abstain=False, coverage="answered"), 5)
    assert not answered.abstain and answered.coverage == "answered"
    assert [h.item_id for h in refused.hits] == ["3.2", "2.1"]


def test_a_question_whose_own_best_item_is_the_previous_one_is_not_about_something_else() -> None:
    retriever = FakeRetriever({})  # no abstention signals: an abstention is trusted
    on_p1 = Retrieval("q", (Hit("p1", 0.8, dense=0.8), Hit("3.2", 0.7, dense=0.7)), 0.2, True)
    question = "服务费用转账要及时沟通吗"  # the fake items' words only
    assert dialogue.cues(question).topic_words
    assert not dialogue.about_something_else(retriever, question, on_p1, previous="p1")
    assert dialogue.about_something_else(retriever, question, on_p1, previous="3.2")
    assert dialogue.about_something_else(retriever, question, on_p1)
    # words of the off-topic examples the agreement never uses keep it elsewhere
    assert dialogue.about_something_else(retriever, "那北京天气呢", on_p1, previous="p1")


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("what if they already did", ()),
        ("they still have not paid", ("paid",)),
        ("佢哋一直唔理又點", ("理",)),
    ],
)
def test_adverbs_of_time_name_no_topic(question: str, topic: tuple[str, ...]) -> None:
    # "already" is no subject from elsewhere: an elliptical follow-up that abstains on its own
    # is not ruled off-topic because of it.
    assert cues(question).topic_words == topic


def test_asking_whether_it_applies_names_no_topic() -> None:
    # "Does that apply to Party A as well?" after a clause on both sides is about that clause:
    # with no topic of its own it is mostly its context, not Party A's own items.
    assert cues("Does that apply to Party A as well?").topic_words == ()
    assert cues("does the confidentiality clause apply after termination?").topic_words


def test_place_words_and_ok_name_no_topic() -> None:
    # Cantonese 入面 is Mandarin 里面 (a stopword): "入面有冇付款憑證" after the attachments
    # asks about payment vouchers among them, like "里面有没有付款凭证".
    assert cues("入面有冇付款憑證").topic_words == cues("里面有没有付款凭证").topic_words
    assert cues("and how, is cash ok?").topic_words == ("cash",)


@pytest.mark.parametrize(
    "question",
    [
        "要是拖了两个月还没付呢",
        "如果一直不付款呢",
        "and if they still haven't paid?",
        "what if A never pays",
    ],
)
def test_a_payment_not_made_asks_what_follows(question: str) -> None:
    assert asks_consequence(question)
