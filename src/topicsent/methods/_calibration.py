"""Calibrated confidence: a method's ``confidence`` turned into the chance it is right.

A classifier's top probability is not the probability that its answer is correct
(logistic regression on sparse features is over-confident, an LLM's self-reported
confidence is a guess). Calibration learns that mapping on held-out labelled reviews:
isotonic regression from the method's top-label confidence to 0/1 correctness. It only
needs the confidence each answer already carries, so one calibrator serves every
method (encoders, baselines, LLMs) without access to their logits. The learned map is
two short lists of numbers, saved as JSON next to the model.

Abstaining and the cascade both rank reviews by :func:`review_confidence`: the least
confident of the review's answers, since one wrong aspect makes the review's answer wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from topicsent.data import Review
from topicsent.errors import InvalidParameterError
from topicsent.schema import ReviewAnalysis

MIN_CALIBRATION_ANSWERS = 20


@dataclass(frozen=True)
class ConfidenceCalibrator:
    """A monotone map from raw confidence to the observed share of correct answers,
    piecewise linear between ``knots`` (raw) and ``values`` (calibrated)."""

    knots: tuple[float, ...]
    values: tuple[float, ...]

    @classmethod
    def learn(cls, confidence: Sequence[float], correct: Sequence[bool]) -> ConfidenceCalibrator:
        """Isotonic regression of correctness on confidence."""
        from sklearn.isotonic import IsotonicRegression

        if len(confidence) < MIN_CALIBRATION_ANSWERS:
            raise InvalidParameterError(
                f"calibration needs at least {MIN_CALIBRATION_ANSWERS} answers with a confidence; got {len(confidence)}"
            )
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        model.fit(np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float))
        return cls(tuple(map(float, model.X_thresholds_)), tuple(map(float, model.y_thresholds_)))

    def __call__(self, confidence: float | np.ndarray) -> np.ndarray:
        return np.interp(confidence, self.knots, self.values)

    def apply(self, analysis: ReviewAnalysis) -> ReviewAnalysis:
        """The analysis with every confidence it carries replaced by the calibrated one."""
        aspects = [
            a if a.confidence is None else a.model_copy(update={"confidence": float(self(a.confidence))})
            for a in analysis.aspects
        ]
        overall = analysis.overall
        if overall.confidence is not None:
            overall = overall.model_copy(update={"confidence": float(self(overall.confidence))})
        return analysis.model_copy(update={"aspects": aspects, "overall": overall})

    def to_dict(self) -> dict[str, list[float]]:
        return {"knots": list(self.knots), "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> ConfidenceCalibrator:
        knots, values = tuple(map(float, data["knots"])), tuple(map(float, data["values"]))
        if not knots or len(knots) != len(values) or not np.all(np.diff(knots) >= 0) or not np.isfinite(knots).all():
            raise ValueError("calibration knots must be a non-empty ascending list of numbers as long as its values")
        if not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError("calibrated confidences must lie between 0 and 1")
        return cls(knots, values)


def answer_correctness(gold: Sequence[Review], analyses: Sequence[ReviewAnalysis], rating: bool) -> list[tuple[float, bool]]:
    """(confidence, correct) of every answer that carries a confidence: each gold aspect
    (analyses made with ``given_aspects=True``) or, for ratings, each review."""
    pairs = []
    for review, analysis in zip(gold, analyses, strict=True):
        if analysis.status != "ok":
            continue
        if rating:
            if analysis.overall.confidence is not None and analysis.overall.rating is not None:
                pairs.append((analysis.overall.confidence, round(analysis.overall.rating) == review.rating))
            continue
        for truth, answer in zip(review.aspects, analysis.aspects, strict=False):
            if answer.confidence is not None and answer.aspect == truth.name:
                pairs.append((answer.confidence, answer.polarity == truth.polarity))
    return pairs


def review_confidence(analysis: ReviewAnalysis) -> float | None:
    """The least confident of a review's answers (None when it carries no confidence)."""
    found = [a.confidence for a in analysis.aspects if a.confidence is not None]
    if analysis.overall.confidence is not None:
        found.append(analysis.overall.confidence)
    return min(found) if found else None


def abstain_when_unsure(analyses: Sequence[ReviewAnalysis], threshold: float) -> list[ReviewAnalysis]:
    """``ok`` rows whose :func:`review_confidence` is under ``threshold`` become
    ``abstained`` (their labels dropped, the reason kept); rows without a confidence
    stay as they are. Refuses a threshold when no row carries a confidence, so a method
    that has none (e.g. a rating regression) does not silently answer everything."""
    if not 0.0 <= threshold <= 1.0:
        raise InvalidParameterError(f"the abstain threshold must be between 0 and 1; got {threshold}")
    answered = [a for a in analyses if a.status == "ok"]
    if answered and all(review_confidence(a) is None for a in answered):
        raise InvalidParameterError(f"{answered[0].method} gives no confidence to abstain on (e.g. ratings by regression)")
    return [_abstained(a, threshold) for a in analyses]


def _abstained(analysis: ReviewAnalysis, threshold: float) -> ReviewAnalysis:
    confidence = review_confidence(analysis)
    if analysis.status != "ok" or confidence is None or confidence >= threshold:
        return analysis
    return ReviewAnalysis.failed(
        analysis.review_id, status="abstained", reason=f"confidence {confidence:.3f} is below {threshold:g}",
        method=analysis.method, model=analysis.model, language=analysis.language, usage=analysis.usage,
    )  # fmt: skip
