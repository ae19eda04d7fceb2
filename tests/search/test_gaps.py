"""The coverage-map signals on hand-made inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.knowledge.coverage import Category, Coverage
from bot.search.gaps import (
    GapVocabulary,
    classifier_features,
    gap_neighbours,
    log_softmax,
    subject_matcher,
    unexplained,
    without_introduction,
)
from bot.types import Item


def test_log_softmax_rows_sum_to_one() -> None:
    p = np.exp(log_softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])))
    assert np.allclose(p.sum(axis=1), 1.0)
    assert np.allclose(p[1], 1 / 3)


def test_classifier_features_compare_gap_and_item_classes() -> None:
    # classes: two items, two gap categories, off-topic
    gap = np.array([False, False, True, True, False])
    off = np.array([False, False, False, False, True])
    log_p = np.log(np.array([0.1, 0.1, 0.5, 0.2, 0.1]))
    features, best = classifier_features(log_p, gap, off)
    assert features["gap_logit"] == pytest.approx(math.log(0.7 / 0.2))
    assert features["off_logit"] == pytest.approx(math.log(0.1 / 0.9))
    assert best == 2
    _, none = classifier_features(log_p, np.zeros(5, dtype=bool), off)
    assert none == -1


def test_gap_margin_is_the_lead_of_the_nearest_coverage_example() -> None:
    assert gap_neighbours(np.array([0.91, 0.95]), 0.93)["gap_margin"] == pytest.approx(0.02)
    assert gap_neighbours(np.array([]), 0.9)["gap_margin"] < 0


def _vocabulary() -> GapVocabulary:
    item = Item(
        id="1.3",
        kind="clause",
        section="s",
        section_en="s",
        title="保密义务",
        title_en="Confidentiality",
        text="乙方应对资料保密",
        text_en="Party B keeps materials confidential",
        parties=("乙方",),
        questions=("乙方要保密吗",),
    )
    category = Category(
        id="subcontracting",
        name="转包",
        name_en="Subcontracting",
        covered="no",
        not_stated="本协议没有约定转包",
        not_stated_en="The agreement does not say",
        nearest=("1.3",),
        examples=("乙方能转包吗", "可以分包吗"),
    )
    return GapVocabulary.build([item], Coverage((category,)), lambda text: list(text))


def test_gap_words_favour_the_words_of_what_is_not_said() -> None:
    vocabulary = _vocabulary()
    assert vocabulary.score(["转", "包"]) > 0
    assert vocabulary.score(["保", "密"]) < 0
    assert vocabulary.score(["2", "3.2"]) == 0  # numbers say nothing


def test_subjects_match_chinese_anywhere_and_english_words_whole() -> None:
    pattern = subject_matcher(["房东", "rent", "landlord"])
    assert pattern.findall("房东要涨房租") == ["房东"]
    assert pattern.findall("can my landlord raise the rent") == ["landlord", "rent"]
    assert not pattern.findall("the current quarter")  # "rent" inside a word
    assert not subject_matcher([]).findall("anything")


def test_unexplained_sums_the_weight_of_unknown_words() -> None:
    known = {"服务费"}.__contains__
    assert unexplained(["服务费", "含税"], [2.0, 5.0], known) == 5.0
    assert unexplained([], [], known) == 0.0


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("我是甲方的产品经理,最近用户反馈app闪退,该谁解决?", "最近用户反馈app闪退,该谁解决?"),
        ("您好,我是律师,想确认一下争议怎么解决?", "想确认一下争议怎么解决?"),
        ("我们是乙方 最近人手不够 能外包吗", "最近人手不够 能外包吗"),
        (
            "we're party b, a is 2 months late paying, what should we do",
            "a is 2 months late paying, what should we do",
        ),
        ("we're a hong kong company acting as party b - which law governs?", "which law governs?"),
        # Not an introduction, or nothing left to ask: unchanged.
        (
            "i'm a customer and nobody answers my complaint. what now?",
            "i'm a customer and nobody answers my complaint. what now?",
        ),
        ("我是说服务费什么时候付", "我是说服务费什么时候付"),
        ("我是用户,谁?", "我是用户,谁?"),
        ("服务费是多少", "服务费是多少"),
    ],
)
def test_without_introduction_leaves_the_question_of_whoever_asks(text: str, asked: str) -> None:
    assert without_introduction(text) == asked
