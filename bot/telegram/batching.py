"""Micro-batching: questions that arrive while the model is busy are answered together, their
embeddings computed in one ``search_many`` call, without delaying a lone question.

``AnswerBatcher.answer`` queues a question and, if no batch is running, starts one at once (a
lone question waits for nothing). While a batch runs in its worker thread, new questions queue;
when it ends, all of them form the next batch. Only one batch runs at a time, so the model is
never asked for two forward passes at once.

A batch is answered in two passes by the pure ``answer()``: first with a retriever view that
stops at the first ``search`` (most lookups, the table of contents, help and the complaint guide
need none), then, for the questions that did search, with a view that returns the retrieval
``search_many`` computed for the whole batch. So the answers are exactly those of ``answer()``
with the real retriever, and only the questions that need the model are embedded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from bot.answers.compose import answer
from bot.telegram.format import KnowledgeLike, RetrieverLike
from bot.types import Answer, Language, Retrieval

log = logging.getLogger(__name__)

MAX_BATCH = 64


class _SearchNeeded(Exception):
    """Raised by ``_NoSearch.search``: this question needs the model."""


class _NoSearch:
    """A retriever view for the first pass: anything but the model (``search`` and whatever
    else a composition asks of the retriever, e.g. ``search_many``, raise ``_SearchNeeded``)."""

    def __init__(self, base: RetrieverLike) -> None:
        self._base = base

    @property
    def knowledge(self) -> KnowledgeLike:
        return self._base.knowledge

    def search(self, question: str, k: int = 5) -> Retrieval:
        raise _SearchNeeded(question)

    def __getattr__(self, name: str) -> Any:
        raise _SearchNeeded(name)


class Precomputed:
    """A retriever view whose ``search`` returns retrievals already computed (for a batch);
    another question or a larger ``k`` falls back to the real retriever."""

    def __init__(self, base: RetrieverLike, retrievals: Mapping[tuple[str, int], Retrieval]):
        self._base = base
        self._retrievals = retrievals

    @property
    def knowledge(self) -> KnowledgeLike:
        return self._base.knowledge

    def search(self, question: str, k: int = 5) -> Retrieval:
        found = self._retrievals.get((question, k))
        return found if found is not None else self._base.search(question, k)

    def __getattr__(self, name: str) -> Any:
        # Anything else (``search_many``, ``score_many`` for a follow-up's context) is the real
        # retriever's: the composition gets exactly what it would get unbatched.
        return getattr(self._base, name)


def search_batch(retriever: RetrieverLike, queries: Sequence[tuple[str, int]]) -> list[Retrieval]:
    """``search`` for each (question, k), embedding all questions in one call when the
    retriever can (``search_many``)."""
    many = getattr(retriever, "search_many", None)
    if many is None or not queries:
        return [retriever.search(q, k) for q, k in queries]
    out: list[Retrieval | None] = [None] * len(queries)
    for k in sorted({k for _, k in queries}):
        positions = [i for i, (_, kk) in enumerate(queries) if kk == k]
        retrievals = many([queries[i][0] for i in positions], k)
        for i, retrieval in zip(positions, retrievals, strict=True):
            out[i] = retrieval
    return [r for r in out if r is not None]


#: A composition other than plain ``answer()``: given the retriever (view), its result.
Compose = Callable[[RetrieverLike], Any]


@dataclass(frozen=True)
class Job:
    """One question of a batch: to answer, or (``search_k`` set) only to search (inline mode);
    ``compose`` answers it another way (a follow-up in its dialogue) through the same views."""

    question: str
    language: Language | None = None
    parameters: Mapping[str, str] | None = None
    search_k: int | None = None
    compose: Compose | None = None

    def run(self, retriever: RetrieverLike) -> Any:
        if self.compose is not None:
            return self.compose(retriever)
        return answer(self.question, retriever, language=self.language, parameters=self.parameters)


def answer_batch(retriever: RetrieverLike, jobs: Sequence[Job]) -> list[Any]:
    """``answer()`` for each job (``search`` for search jobs), the questions that need the
    model embedded in one call.

    A job that raises gets its exception in its place; the others are unaffected.
    """
    results: list[Answer | Retrieval | Exception | None] = [None] * len(jobs)
    searching: list[int] = []
    first = _NoSearch(retriever)
    for i, job in enumerate(jobs):
        if job.search_k is not None:
            searching.append(i)
            continue
        try:
            results[i] = job.run(first)
        except _SearchNeeded:
            searching.append(i)
        except Exception as exc:  # a bug for one question must not cost the others theirs
            results[i] = exc
    if searching:
        queries = list(dict.fromkeys((jobs[i].question, jobs[i].search_k or 5) for i in searching))
        try:
            retrievals: Mapping[tuple[str, int], Retrieval] = dict(
                zip(queries, search_batch(retriever, queries), strict=True)
            )
        except Exception:  # one question broke the batch: each searches alone below
            log.exception("batched search failed; searching one question at a time")
            retrievals = {}
        view = Precomputed(retriever, retrievals)
        for i in searching:
            job = jobs[i]
            try:
                if job.search_k is not None:
                    results[i] = view.search(job.question, job.search_k)
                else:
                    results[i] = job.run(view)
            except Exception as exc:
                results[i] = exc
    return [r if r is not None else RuntimeError("not answered") for r in results]


@dataclass
class _Pending:
    retriever: RetrieverLike
    job: Job
    future: asyncio.Future[Any]


@dataclass
class AnswerBatcher:
    """Answers questions from async code, batching those that arrive while a batch runs.

    ``batches`` and ``batched`` count the batches and the questions they answered, ``largest``
    is the largest batch so far (for tests and the benchmark).
    """

    max_batch: int = MAX_BATCH
    batches: int = 0
    batched: int = 0
    largest: int = 0
    running: int = 0  # questions in the batch being answered now
    _queue: list[_Pending] = field(default_factory=list)
    _worker: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Questions waiting for the next batch."""
        return len(self._queue)

    async def answer(
        self,
        question: str,
        retriever: RetrieverLike,
        *,
        language: Language | None = None,
        parameters: Mapping[str, str] | None = None,
    ) -> Answer:
        return cast(Answer, await self._submit(retriever, Job(question, language, parameters)))

    async def run(self, question: str, retriever: RetrieverLike, compose: Compose) -> Any:
        """``compose(retriever)`` in the batch's worker thread, its search for ``question``
        batched with the other questions' (what else it asks of the retriever is not)."""
        return await self._submit(retriever, Job(question, compose=compose))

    async def search(self, question: str, retriever: RetrieverLike, k: int = 5) -> Retrieval:
        """``retriever.search(question, k)``, batched with the questions being answered."""
        return cast(Retrieval, await self._submit(retriever, Job(question, search_k=k)))

    async def _submit(self, retriever: RetrieverLike, job: Job) -> Answer | Retrieval:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(retriever, job, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="answer-batcher")
        return cast(Answer | Retrieval, await future)

    async def _run(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            batch = [p for p in batch if not p.future.done()]  # e.g. cancelled at shutdown
            if not batch:
                continue
            # Jobs keep the retriever they were asked with (a /reload swaps it for later ones).
            groups: dict[int, list[_Pending]] = {}
            for pending in batch:
                groups.setdefault(id(pending.retriever), []).append(pending)
            for group in groups.values():
                await self._answer_group(group)

    async def _answer_group(self, group: list[_Pending]) -> None:
        jobs = [p.job for p in group]
        self.running = len(group)
        try:
            results = await asyncio.to_thread(answer_batch, group[0].retriever, jobs)
        except Exception as exc:  # e.g. the thread could not start
            results = [exc] * len(group)
        finally:
            self.running = 0
        self.batches += 1
        self.batched += len(group)
        self.largest = max(self.largest, len(group))
        for pending, result in zip(group, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, Exception):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)
