"""What a replica counts, in the Prometheus text format (served at ``/metrics``).

One ``Metrics`` per application, with its own registry (no process-wide state): questions by
outcome and language, answer latency, Telegram API errors by method and status, retries, and
which index build is loaded.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.types import Answer

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Seconds; an answer takes some tens of milliseconds, more when the machine is loaded.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def outcome(answer: Answer) -> str:
    """How a question ended, for the metrics: its coverage ("answered", "not_stated",
    "out_of_scope") for a free question, "lookup" for a clause, term, contents, gaps or
    complaint-guide lookup."""
    if answer.intent in ("question", "abstain", "not_stated"):
        return answer.coverage
    return "lookup"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.questions = Counter(
            "contract_bot_questions",
            "Questions answered, by outcome (answered, not_stated, out_of_scope, lookup, ...) "
            "and reply language",
            ["outcome", "language"],
            registry=self.registry,
        )
        self.answer_seconds = Histogram(
            "contract_bot_answer_seconds",
            "Time from receiving a question to sending its answer",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.api_errors = Counter(
            "contract_bot_telegram_api_errors",
            "Bot API calls that failed, by method and HTTP status (0: network error)",
            ["method", "status"],
            registry=self.registry,
        )
        self.retries = Counter(
            "contract_bot_telegram_retries",
            "Bot API calls retried after a transient failure, by method",
            ["method"],
            registry=self.registry,
        )
        self.index = Gauge(
            "contract_bot_index_info",
            "The index build this process serves (1 for the loaded build)",
            ["build", "built_at"],
            registry=self.registry,
        )

    def answered(self, outcome: str, language: str, seconds: float) -> None:
        self.questions.labels(outcome=outcome, language=language).inc()
        self.answer_seconds.observe(seconds)

    def api_failure(self, method: str, status: str, retried: bool) -> None:
        """A Bot API request failed with ``status``; ``retried`` when it is tried again."""
        self.api_errors.labels(method=method, status=status).inc()
        if retried:
            self.retries.labels(method=method).inc()

    def set_index(self, build: str, built_at: str) -> None:
        """Record which index build is loaded (a reload replaces the previous one)."""
        self.index.clear()
        self.index.labels(build=build, built_at=built_at).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
