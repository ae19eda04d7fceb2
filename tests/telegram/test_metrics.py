"""The metrics a replica exposes, rendered in the Prometheus text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.telegram.metrics import Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counts_questions_errors_retries_latency_and_index() -> None:
    metrics = Metrics()
    metrics.questions.labels(outcome="answered", language="zh-Hans").inc()
    metrics.questions.labels(outcome="answered", language="zh-Hans").inc()
    metrics.questions.labels(outcome="out_of_scope", language="en").inc()
    metrics.api_errors.labels(method="sendMessage", status="502").inc()
    metrics.retries.labels(method="sendMessage").inc(3)
    metrics.answer_seconds.observe(0.03)
    metrics.set_index("index-a", "2026-12-01T00:00:00+00:00")
    metrics.set_index("index-b", "2026-12-02T00:00:00+00:00")  # a reload
    samples = _samples(metrics)
    key = (("language", "zh-Hans"), ("outcome", "answered"))
    assert samples[("contract_bot_questions_total", key)] == 2
    error = (("method", "sendMessage"), ("status", "502"))
    assert samples[("contract_bot_telegram_api_errors_total", error)] == 1
    assert samples[("contract_bot_telegram_retries_total", (("method", "sendMessage"),))] == 3
    assert samples[("contract_bot_answer_seconds_count", ())] == 1
    assert samples[("contract_bot_answer_seconds_bucket", (("le", "0.05"),))] == 1
    builds = [k for k in samples if k[0] == "contract_bot_index_info"]
    assert builds == [
        (
            "contract_bot_index_info",
            (("build", "index-b"), ("built_at", "2026-12-02T00:00:00+00:00")),
        )
    ]


def test_each_application_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.questions.labels(outcome="answered", language="en").inc()
    assert "contract_bot_questions_total{" not in b.render().decode()


def test_outcome_is_the_coverage_of_a_question_and_lookup_otherwise() -> None:
    from bot.telegram.metrics import outcome
    from bot.types import Answer

    def made(intent: str, coverage: str) -> Answer:
        return Answer(
            question="q",
            language="zh-Hans",
            abstained=coverage == "out_of_scope",
            confidence=0.9,
            intent=intent,
            coverage=coverage,
        )

    assert outcome(made("question", "answered")) == "answered"
    assert outcome(made("not_stated", "not_stated")) == "not_stated"
    assert outcome(made("abstain", "out_of_scope")) == "out_of_scope"
    assert outcome(made("clause", "answered")) == "lookup"
    assert outcome(made("gaps", "answered")) == "lookup"
