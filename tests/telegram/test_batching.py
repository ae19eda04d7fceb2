"""Micro-batching with the real retriever: the same answers as ``answer()``, one model call for
the questions that need it, and a lone question sent to the model at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from bot.answers.compose import answer
from bot.search.retrieval import Retriever
from bot.telegram.batching import AnswerBatcher, Job, answer_batch
from bot.types import Retrieval

QUESTIONS = [
    "合同有效期多久？",  # needs the model
    "3.2",  # a lookup: no model
    "What happens if Party B leaks our documents?",
    "目录",  # the table of contents: no model
    "今天上海天气怎么样？",  # out of scope: the model says so
    "",  # help
    "怎么投诉",  # the complaint guide: no model
]


class CountingRetriever:
    """The real retriever, counting the questions each ``search_many`` call embeds."""

    def __init__(self, base: Retriever) -> None:
        self.base = base
        self.calls: list[list[str]] = []

    @property
    def knowledge(self) -> Any:
        return self.base.knowledge

    def search(self, question: str, k: int = 5) -> Retrieval:
        self.calls.append([question])
        return self.base.search(question, k)

    def search_many(self, questions: Sequence[str], k: int = 5) -> list[Retrieval]:
        self.calls.append(list(questions))
        return self.base.search_many(questions, k)


def test_a_batch_answers_exactly_as_one_at_a_time(retriever: Retriever) -> None:
    counting = CountingRetriever(retriever)
    jobs = [Job(q, "en" if q.isascii() and q else None) for q in QUESTIONS]
    batched = answer_batch(counting, jobs)
    alone = [answer(job.question, retriever, language=job.language) for job in jobs]
    assert batched == alone
    # one model call, with only the three questions that search
    assert counting.calls == [[QUESTIONS[0], QUESTIONS[2], QUESTIONS[4]]]


def test_a_failing_question_does_not_cost_the_others_their_answers(retriever: Retriever) -> None:
    class Broken(CountingRetriever):
        def search_many(self, questions: Sequence[str], k: int = 5) -> list[Retrieval]:
            if "boom" in questions:
                raise RuntimeError("boom")
            return super().search_many(questions, k)

        def search(self, question: str, k: int = 5) -> Retrieval:
            if question == "boom":
                raise RuntimeError("boom")
            return super().search(question, k)

    results = answer_batch(Broken(retriever), [Job("合同有效期多久？"), Job("boom"), Job("3.2")])
    assert isinstance(results[1], RuntimeError)
    assert [r.citations[0].id for r in (results[0], results[2])] == ["2.1", "3.2"]  # type: ignore[union-attr]


async def test_questions_arriving_together_share_a_model_call(retriever: Retriever) -> None:
    counting = CountingRetriever(retriever)
    batcher = AnswerBatcher()
    questions = ["合同有效期多久？", "甲方什么时候付款？", "乙方违约怎么办？"] * 4
    answers = await asyncio.gather(*(batcher.answer(q, counting) for q in questions))
    assert [a.question for a in answers] == questions
    assert batcher.batched == len(questions) and batcher.batches <= 3 and batcher.largest >= 2
    assert len(counting.calls) == batcher.batches  # one model call per batch


async def test_a_lone_question_goes_to_the_model_at_once(retriever: Retriever) -> None:
    batcher = AnswerBatcher()
    task = asyncio.create_task(batcher.answer("合同有效期多久？", retriever))
    for _ in range(3):  # a few turns of the event loop, no time
        await asyncio.sleep(0)
    assert batcher.queued == 0 and batcher.running == 1  # taken into a batch, not held back
    result = await task
    assert result.citations[0].id == "2.1" and (batcher.batches, batcher.largest) == (1, 1)
