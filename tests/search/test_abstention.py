"""The abstention model and its off-topic signals, on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from bot.search.abstention import Abstention, off_topic_features


def test_abstention_confidence_is_a_logistic_of_standardized_features() -> None:
    model = Abstention(
        mean=(1.0, 0.0), scale=(2.0, 1.0), weights=(2.0, -1.0), bias=0.5, threshold=0.5,
        features=("dense_top", "coverage"),
    )  # fmt: skip
    assert model.confidence([1.0, 0.0]) == pytest.approx(1 / (1 + np.exp(-0.5)))
    assert model.confidence([3.0, 0.0]) > model.confidence([1.0, 0.0])
    assert 0.0 <= model.confidence([-1e6, 1e6]) <= 1.0


# -- explicit references ----------------------------------------------------------------------


def test_off_topic_features_on_hand_made_cosines() -> None:
    rows = np.array([0.80, 0.90, 0.70, 0.85])
    # Two off-topic texts closer than every row: among the 3 nearest, 2 are off-topic.
    far_off = off_topic_features(np.array([0.95, 0.92, 0.10]), rows, dense_top=0.90, k=3)
    assert far_off == pytest.approx({"off_topic_margin": 0.05, "off_topic_share": 2 / 3})
    # Nothing off-topic is near: the margin is negative and no neighbour is off-topic.
    near = off_topic_features(np.array([0.50, 0.40]), rows, dense_top=0.90, k=3)
    assert near == pytest.approx({"off_topic_margin": -0.40, "off_topic_share": 0.0})
    # A tie goes to the agreement's own text.
    tie = off_topic_features(np.array([0.90]), rows, dense_top=0.90, k=1)
    assert tie["off_topic_share"] == 0.0
    assert off_topic_features(np.array([]), rows, 0.9)["off_topic_share"] == 0.0
