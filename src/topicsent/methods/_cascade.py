"""A cascade: cheap methods answer the reviews they are sure of, the rest go further.

Stages run from cheapest to most expensive (say tfidf-lr, a fine-tuned encoder, an
LLM). Each stage but the last answers a review when its *calibrated* confidence (see
:mod:`topicsent.methods._calibration`) is at least its threshold and passes the review
on otherwise; the last stage answers whatever reaches it. Fitting keeps a seeded
held-out part of the training reviews: the stages train on the rest, are calibrated on
it, and the thresholds are the ones most accurate on it while the last stage sees at
most ``max_last_share`` of the reviews. The last stage only answers the held-out reviews
some allowed setting could send it, so an LLM stage costs a fraction of the hold-out.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from topicsent.data import Review, ReviewSet
from topicsent.errors import InvalidParameterError
from topicsent.methods._base import BaseMethod
from topicsent.methods._calibration import answer_correctness, review_confidence
from topicsent.methods._registry import item_spec, method_list, seeded_method
from topicsent.schema import ReviewAnalysis, Task

STATE_FILE = "cascade.json"
STAGE_SEPARATOR = ">"
PASS_ALL = 1.000001  # a threshold no confidence reaches


@dataclass
class StageOutcomes:
    """One stage's answers on labelled reviews: the review confidence (NaN where the
    stage has none or did not answer, so the review is passed on) and the number of
    correct answers per review (NaN where the stage was not asked)."""

    confidence: np.ndarray
    correct: np.ndarray

    @classmethod
    def of(cls, gold: Sequence[Review], analyses: Sequence[ReviewAnalysis], task: Task, asked: np.ndarray) -> StageOutcomes:
        """Outcomes over all ``len(asked)`` reviews from the analyses of the asked ones."""
        confidence, correct = np.full(len(asked), np.nan), np.full(len(asked), np.nan)
        for row, review, analysis in zip(np.flatnonzero(asked), gold, analyses, strict=True):
            found = review_confidence(analysis) if analysis.status == "ok" else None
            confidence[row] = np.nan if found is None else found
            correct[row] = sum(right for _, right in answer_correctness([review], [analysis], task is Task.RATING))
        return cls(confidence, correct)


def split_holdout(
    reviews: ReviewSet, share: float, seed: int, *, max_size: int | None = None, who: str
) -> tuple[ReviewSet, ReviewSet]:
    """A seeded split into (training, held-out) reviews, ``share`` of them held out (at
    most ``max_size``); :class:`InvalidParameterError` naming ``who`` when either part
    would have fewer than 10 reviews."""
    order = list(range(len(reviews)))
    random.Random(seed).shuffle(order)
    size = min(len(reviews) if max_size is None else max_size, round(share * len(reviews)))
    if size < 10 or len(reviews) - size < 10:
        raise InvalidParameterError(f"{who} needs at least 10 training and 10 held-out reviews; got {len(reviews)}")
    held = set(order[:size])
    return (
        reviews.with_reviews([r for i, r in enumerate(reviews) if i not in held]),
        reviews.with_reviews([r for i, r in enumerate(reviews) if i in held], name=f"{reviews.name} (held out)"),
    )


def answers_per_review(gold: Sequence[Review], task: Task) -> np.ndarray:
    """How many answers each review is scored on (its gold aspects, or 1 for a rating)."""
    return np.array([1 if task is Task.RATING else len(review.aspects) for review in gold], dtype=float)


def route(confidences: Sequence[np.ndarray], thresholds: Sequence[float]) -> np.ndarray:
    """The stage that answers each review: the first whose confidence reaches its
    threshold, else the last stage (``len(thresholds)``)."""
    stage = np.full(len(confidences[0]), len(thresholds))
    undecided = np.ones(len(stage), dtype=bool)
    for index, (confidence, threshold) in enumerate(zip(confidences, thresholds, strict=False)):
        answers = undecided & (np.nan_to_num(confidence, nan=-1.0) >= threshold)
        stage[answers] = index
        undecided &= ~answers
    return stage


def routed_accuracy(outcomes: Sequence[StageOutcomes], stage: np.ndarray, totals: np.ndarray) -> float:
    """Accuracy over all scored answers when each review is answered by ``stage[i]``."""
    correct = np.stack([o.correct for o in outcomes])[stage, np.arange(len(stage))]
    return float(np.nansum(correct) / totals.sum()) if totals.sum() else 0.0


def threshold_grid(confidences: Sequence[np.ndarray]) -> list[tuple[float, ...]]:
    """Every combination of thresholds worth trying: per stage, each distinct confidence
    it gave (isotonic calibration leaves few) plus one above all (pass everything on)."""
    return list(itertools.product(*map(confidence_levels, confidences)))


def confidence_levels(confidence: np.ndarray) -> list[float]:
    """The thresholds worth trying for one stage: each distinct confidence it gave, and
    one above all of them (pass every review on)."""
    return sorted({*np.unique(confidence[~np.isnan(confidence)]).round(6).tolist(), PASS_ALL})


class CascadeMethod(BaseMethod):
    """Cheap stages answer what they are sure of; the rest reaches costlier stages.

    Parameters
    ----------
    stages : str or list of (str or BaseMethod), default="tfidf-lr>embed-head"
        The stages from cheapest to most expensive: method specs separated by ``>``,
        e.g. ``tfidf-lr>finetune>llm[strategy=retrieval,backend=llamacpp]``, or a list
        of method objects (or specs), e.g. ``[TfidfLRMethod(), LlmMethod(...)]``. Each
        stage trains as a clone; a saved cascade writes object stages as specs.
    max_last_share : float, default=0.3
        The largest share of reviews the last stage may answer; thresholds are chosen
        within it.
    thresholds : list of float or None, default=None
        Calibrated-confidence thresholds of every stage but the last, instead of
        choosing them on the held-out reviews.
    holdout : float, default=0.2
        Share of the training reviews kept out of stage training, to calibrate the
        stages and choose thresholds.
    max_holdout : int, default=400
        At most this many held-out reviews (an LLM stage answers some of them).
    random_state : int, default=0
        Seed of the hold-out split, passed to stages that take one.
    """

    name = "cascade"
    supported_tasks = frozenset({Task.ACSA, Task.ATSA, Task.RATING})
    answers_can_fail = True  # an LLM stage's answer can stay unparsed
    batch_size = 100_000  # stages batch for themselves; one call keeps routing whole
    nested_methods: ClassVar[dict[str, str]] = {"stages": STAGE_SEPARATOR}  # saved as spec text
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "max_holdout": "count",
        "max_last_share": "share",
        "holdout": "share",
    }

    def __init__(
        self,
        *,
        stages: str | Sequence[str | BaseMethod] = "tfidf-lr>embed-head",
        max_last_share: float = 0.3,
        thresholds: list[float] | None = None,
        holdout: float = 0.2,
        max_holdout: int = 400,
        random_state: int = 0,
    ) -> None:
        self.stages = stages
        self.max_last_share = max_last_share
        self.thresholds = thresholds
        self.holdout = holdout
        self.max_holdout = max_holdout
        self.random_state = random_state

    def stage_specs(self) -> list[str]:
        """The stages' specs, cheapest first (method objects written as their spec)."""
        return [item_spec(stage) for stage in self._stage_list()]

    def _stage_list(self) -> list:
        return method_list(self.stages, STAGE_SEPARATOR, owner="a cascade", items="stages")

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.thresholds is not None and len(self.thresholds) != len(self._stage_list()) - 1:
            raise InvalidParameterError(f"thresholds needs one value per stage but the last: {len(self._stage_list()) - 1}")

    # ----- fit ----------------------------------------------------------------------------

    def _fit(self, reviews: ReviewSet) -> None:
        training, held_out = split_holdout(reviews, self.holdout, self.random_state, max_size=self.max_holdout, who="a cascade")
        self.stages_ = [seeded_method(stage, self.random_state).fit(training, self.task_) for stage in self._stage_list()]
        outcomes = [self._calibrated_outcomes(stage, held_out) for stage in self.stages_[:-1]]
        totals = answers_per_review(held_out, self.task_)
        if self.thresholds is not None:
            allowed = [tuple(self.thresholds)]  # the user's choice, whatever share it sends on
        else:
            grid = threshold_grid([o.confidence for o in outcomes])
            allowed = [t for t in grid if self._last_share(outcomes, t) <= self.max_last_share]
            allowed = allowed or [min(grid, key=lambda t: self._last_share(outcomes, t))]
        reaching_last = np.logical_or.reduce([route([o.confidence for o in outcomes], t) == len(t) for t in allowed])
        outcomes.append(self._outcomes(self.stages_[-1], held_out, reaching_last))
        self.thresholds_, self.holdout_report_ = self._choose(outcomes, allowed, totals)

    def _outcomes(self, stage: BaseMethod, held_out: ReviewSet, asked: np.ndarray) -> StageOutcomes:
        gold = [review for review, ask in zip(held_out, asked, strict=True) if ask]
        return StageOutcomes.of(gold, stage.predict_labelled(gold), self.task_, asked)

    def _calibrated_outcomes(self, stage: BaseMethod, held_out: ReviewSet) -> StageOutcomes:
        """Calibrate the stage on the held-out reviews, then its calibrated outcomes there."""
        analyses = stage.predict_labelled(held_out)
        stage.calibrate(held_out, predictions=analyses)
        calibrated = [stage.calibrator_.apply(a) for a in analyses]
        return StageOutcomes.of(list(held_out), calibrated, self.task_, np.ones(len(held_out), dtype=bool))

    @staticmethod
    def _last_share(outcomes: Sequence[StageOutcomes], thresholds: tuple[float, ...]) -> float:
        return float(np.mean(route([o.confidence for o in outcomes], thresholds) == len(thresholds)))

    def _choose(
        self, outcomes: list[StageOutcomes], allowed: list[tuple[float, ...]], totals: np.ndarray
    ) -> tuple[list[float], dict[str, Any]]:
        """The allowed thresholds most accurate on the held-out reviews (ties: fewer reviews
        reaching later stages), and what each single stage reached there for comparison."""
        confidences = [o.confidence for o in outcomes[:-1]]

        def quality(thresholds: tuple[float, ...]) -> tuple[float, float]:
            stage = route(confidences, thresholds)
            return routed_accuracy(outcomes, stage, totals), -float(stage.mean())

        best = max(allowed, key=quality)
        stage = route(confidences, best)
        report = {
            "reviews": len(totals),
            "accuracy": routed_accuracy(outcomes, stage, totals),
            "answered_by_stage": [float(np.mean(stage == k)) for k in range(len(outcomes))],
            "single_stage_accuracy": [
                float(np.nansum(o.correct) / totals.sum()) if not np.isnan(o.correct).any() else None for o in outcomes
            ],
        }
        return [float(t) for t in best], report

    # ----- predict ------------------------------------------------------------------------

    def _predict(self, reviews: Sequence[Review], *, given_aspects: bool) -> list[ReviewAnalysis]:
        answers: dict[int, ReviewAnalysis] = {}
        waiting = list(range(len(reviews)))
        for position, stage in enumerate(self.stages_):
            threshold = self.thresholds_[position] if position < len(self.thresholds_) else None
            analyses = stage.predict([reviews[i] for i in waiting], given_aspects=given_aspects) if waiting else []
            passed_on = []
            for index, analysis in zip(waiting, analyses, strict=True):
                confidence = review_confidence(analysis) if analysis.status == "ok" else None
                if threshold is not None and (confidence is None or confidence < threshold):
                    passed_on.append(index)
                else:
                    answers[index] = analysis.model_copy(update={"method": self.name, "model": _stage_label(position, stage)})
            waiting = passed_on
        return [answers[i] for i in range(len(reviews))]

    # ----- persistence --------------------------------------------------------------------

    def _save_state(self, directory: Path) -> None:
        for position, stage in enumerate(self.stages_):
            stage.save(directory / f"stage-{position}")
        state = {"thresholds": self.thresholds_, "holdout_report": self.holdout_report_}
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")

    def _load_state(self, directory: Path) -> None:
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        self.thresholds_, self.holdout_report_ = [float(t) for t in state["thresholds"]], state["holdout_report"]
        self.stages_ = [BaseMethod.load(directory / f"stage-{k}") for k in range(len(self._stage_list()))]


def _stage_label(position: int, stage: BaseMethod) -> str:
    """Which stage answered, for the ``model`` field: ``2:finetune`` or ``3:llm:MODEL``."""
    return f"{position + 1}:{stage.name}" + (f":{stage.model_name}" if stage.model_name else "")
