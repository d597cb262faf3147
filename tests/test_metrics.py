"""Metrics on hand-built cases whose right answers are known."""

import pytest

from topicsent.data import AspectLabel, LabelSpace, Review
from topicsent.eval import detection_scores, polarity_scores, primary_metric, rating_scores
from topicsent.schema import AspectSentiment, Overall, ReviewAnalysis, Span, Task


def _found(review_id, *aspects, status="ok", kind="category"):
    sentiments = [
        AspectSentiment(aspect=name, kind=kind, polarity=polarity, span=Span(start=s, end=e) if s is not None else None)
        for name, polarity, s, e in ((*a, None, None)[:4] for a in aspects)
    ]
    reason = None if status == "ok" else "test"
    return ReviewAnalysis(review_id=review_id, aspects=sentiments, status=status, status_reason=reason, method="t")


GOLD = [
    Review("1", "t", aspects=(AspectLabel("food", polarity="positive"), AspectLabel("staff", polarity="negative"))),
    Review("2", "t", aspects=(AspectLabel("food", polarity="neutral"),)),
]


def test_polarity_counts_missing_and_unparsed_answers_as_wrong():
    predicted = [_found("1", ("food", "positive"), ("staff", "positive")), _found("2", status="unparsed")]
    scores = polarity_scores(GOLD, predicted, ("positive", "negative", "neutral"))
    assert scores["polarity_accuracy"] == pytest.approx(1 / 3)
    assert scores["n_aspects"] == 3
    misaligned = [_found("1", ("staff", "positive"), ("food", "negative")), _found("2", ("food", "neutral"))]
    assert polarity_scores(GOLD, misaligned, ("positive", "negative", "neutral"))["polarity_accuracy"] == pytest.approx(1 / 3)


def test_detection_and_joint_micro_f1():
    predicted = [_found("1", ("food", "positive"), ("price", "negative")), _found("2", ("food", "positive"))]
    scores = detection_scores(GOLD, predicted, Task.ACSA)
    # detection: found {food, price} + {food} vs gold {food, staff} + {food}: 2 hits of 3 found, 3 gold
    assert scores["detection_precision"] == pytest.approx(2 / 3) and scores["detection_recall"] == pytest.approx(2 / 3)
    # joint: only (1, food, positive) is right
    assert scores["joint_f1"] == pytest.approx(1 / 3)


def test_term_detection_matches_spans():
    gold = [Review("1", "great pizza", aspects=(AspectLabel("pizza", "term", "positive", 6, 11),))]
    right = [_found("1", ("pizza", "positive", 6, 11), kind="term")]
    wrong_place = [_found("1", ("pizza", "positive", 0, 5), kind="term")]
    assert detection_scores(gold, right, Task.ATSA)["joint_f1"] == 1.0
    assert detection_scores(gold, wrong_place, Task.ATSA)["detection_f1"] == 0.0


def test_rating_scores():
    space = LabelSpace(rating_scale=(1, 5))
    gold = [Review(str(i), "t", rating=r) for i, r in enumerate([1, 2, 3, 4, 5])]

    def answer(i, rating):
        return ReviewAnalysis(review_id=str(i), overall=Overall(rating=rating), method="t")

    perfect = rating_scores(gold, [answer(i, r.rating) for i, r in enumerate(gold)], space)
    assert perfect == {"accuracy": 1.0, "macro_f1": 1.0, "mae": 0.0, "qwk": 1.0}
    off_by_one = [answer(i, min(5, r.rating + 1)) for i, r in enumerate(gold)]
    off = rating_scores(gold, off_by_one, space)
    assert off["accuracy"] == pytest.approx(0.2) and off["mae"] == pytest.approx(0.8) and 0 < off["qwk"] < 1
    unanswered = [*off_by_one[:4], ReviewAnalysis.failed("4", status="error", reason="x", method="t")]
    partial = rating_scores(gold, unanswered, space)
    assert partial["accuracy"] == pytest.approx(0.0) and partial["mae"] == pytest.approx(1.0)


def test_primary_metric_per_task():
    assert primary_metric(Task.ACSA, LabelSpace()) == "polarity_accuracy"
    assert primary_metric(Task.RATING, LabelSpace(rating_scale=(0, 1))) == "accuracy"
    assert primary_metric(Task.RATING, LabelSpace(rating_scale=(1, 10))) == "qwk"
