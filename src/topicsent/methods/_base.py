"""The estimator contract every method follows.

A method is configured in its constructor (keyword parameters, stored as given),
learns in ``fit(reviews, task)`` (learned state in attributes ending in ``_``) and
answers in ``predict(reviews)`` with one :class:`~topicsent.schema.ReviewAnalysis`
per review. The framework here owns what is the same for every method: task and
label checks, empty texts, batching with a progress bar, latency, save/load.
"""

from __future__ import annotations

import inspect
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from topicsent import __version__
from topicsent._progress import progress_bar
from topicsent.data import LabelSpace, Review, ReviewSet
from topicsent.errors import (
    InputDataError,
    InvalidParameterError,
    ModelFileError,
    NotFittedError,
    UnsupportedTaskError,
)
from topicsent.methods._calibration import ConfidenceCalibrator, abstain_when_unsure, answer_correctness
from topicsent.schema import ReviewAnalysis, Task, Usage

CONFIG_FILE = "topicsent.json"
CALIBRATION_FILE = "calibration.json"
FORMAT_VERSION = 1


class BaseMethod(ABC):
    """Base class of all methods.

    Subclasses set ``name`` and ``supported_tasks``, take only keyword parameters in
    ``__init__`` (stored unchanged, so :meth:`get_params` and :meth:`clone` work), and
    implement ``_fit``, ``_predict``, ``_save_state`` and ``_load_state``.
    """

    name: ClassVar[str]
    supported_tasks: ClassVar[frozenset[Task]]
    #: Small grid the evaluation harness searches on the validation split.
    tuning_grid: ClassVar[dict[str, list[Any]]] = {}
    #: Reviews per ``_predict`` call; one progress step each.
    batch_size: ClassVar[int] = 2048
    #: Whether a row can come back ``unparsed`` (an LLM's answer that stayed invalid).
    answers_can_fail: ClassVar[bool] = False
    #: Whether ``topicsent train`` calibrates on the validation split unasked (not when
    #: every review costs a model call).
    calibrate_by_default: ClassVar[bool] = True

    # ----- parameters -------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters as given: ``type(m)(**m.get_params())`` is an unfitted twin."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        unknown = set(params) - set(self._param_names())
        if unknown:
            raise InvalidParameterError(
                f"{type(self).__name__} has no parameter(s) {', '.join(sorted(unknown))}; valid: {', '.join(self._param_names())}"
            )
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def clone(self, **overrides: Any) -> Self:
        """A new unfitted method with the same parameters (and ``overrides``)."""
        return type(self)(**(self.get_params() | overrides))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    @classmethod
    def param_grid(cls, task: Task) -> dict[str, list[Any]]:
        """The parameter values worth trying for ``task`` (default: ``tuning_grid``)."""
        return cls.tuning_grid

    #: Declarative checks run in ``fit``: a tuple of allowed values, ``"positive"`` (a
    #: number > 0) or ``"count"`` (an int >= 1).
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {}

    def _validate_params(self) -> None:
        """Raise :class:`InvalidParameterError` for a parameter outside its constraint."""
        for param, constraint in self.parameter_constraints.items():
            value = getattr(self, param)
            if isinstance(constraint, tuple):
                valid, expected = value in constraint, f"one of {constraint}"
            elif constraint == "positive":
                valid, expected = isinstance(value, int | float) and not isinstance(value, bool) and value > 0, "a float > 0"
            else:
                valid, expected = isinstance(value, int) and not isinstance(value, bool) and value >= 1, "an int >= 1"
            if not valid:
                raise InvalidParameterError(
                    f"The {param!r} parameter of {type(self).__name__} must be {expected}. Got {value!r} instead."
                )

    # ----- fit / predict -------------------------------------------------------------

    def fit(self, reviews: ReviewSet, task: Task | str | None = None) -> Self:
        """Learn from labelled reviews for ``task`` (default: the review set's task)."""
        self._validate_params()
        task = self._resolve_task(reviews, task)
        _check_training_labels(reviews, task)
        usable = reviews.with_reviews([r for r in reviews if r.text.strip()])
        self.task_ = task
        self.label_space_ = reviews.label_space
        self.language_ = reviews.language
        self._fit(usable)
        return self

    def predict(
        self, reviews: Sequence[Review], *, given_aspects: bool = False, abstain_below: float | None = None
    ) -> list[ReviewAnalysis]:
        """One analysis per review, in input order.

        With ``given_aspects=True`` each review's own aspects (names, and spans for
        terms; their labels are ignored) are the ones scored, and exactly those come
        back, in order: the standard ACSA/ATSA evaluation protocol. Otherwise the
        method finds the aspects itself. Empty texts and rows the reader marked
        (``Review.problem``) come back with status ``error``.
        Confidences are calibrated once :meth:`calibrate` has run. With
        ``abstain_below=P`` a review whose least confident answer is under ``P`` comes
        back ``abstained``, without labels.
        """
        self._check_fitted()
        results: dict[int, ReviewAnalysis] = {}
        usable = [i for i, review in enumerate(reviews) if review.analysable]
        with progress_bar(f"{self.name}: predict", total=len(usable)) as advance:
            for start in range(0, len(usable), self.batch_size):
                batch = usable[start : start + self.batch_size]
                began = time.perf_counter()
                answers = self._predict([reviews[i] for i in batch], given_aspects=given_aspects)
                if hasattr(self, "calibrator_"):
                    answers = [self.calibrator_.apply(answer) for answer in answers]
                per_review_ms = (time.perf_counter() - began) * 1000 / len(batch)
                for index, answer in zip(batch, answers, strict=True):
                    if answer.usage.latency_ms is None:
                        answer.usage = answer.usage.model_copy(update={"latency_ms": per_review_ms})
                    results[index] = answer
                advance(len(batch))
        analyses = [results.get(i) or self._unanalysable_row(review) for i, review in enumerate(reviews)]
        return analyses if abstain_below is None else abstain_when_unsure(analyses, abstain_below)

    def predict_labelled(self, reviews: Sequence[Review]) -> list[ReviewAnalysis]:
        """Answers for labelled reviews as they are scored: their aspects given (labels
        hidden), or the text alone for ratings; for calibrating and routing."""
        if self.task_ is Task.RATING:
            return self.predict([review.text_only() for review in reviews])
        return self.predict([review.unlabelled() for review in reviews], given_aspects=True)

    def calibrate(self, reviews: ReviewSet, *, predictions: Sequence[ReviewAnalysis] | None = None) -> Self:
        """Learn how often an answer of each confidence is right, on labelled reviews the
        method did not train on (a validation split); later predictions carry that
        calibrated confidence, and it is saved with the model. ``predictions``: this
        method's uncalibrated answers for ``reviews`` (gold aspects given), to save a pass."""
        self._check_fitted()
        if predictions is None:
            self.__dict__.pop("calibrator_", None)
            predictions = self.predict_labelled(reviews)
        answers = answer_correctness(reviews, predictions, self.task_ is Task.RATING)
        if not answers:
            raise InvalidParameterError(f"{self!r} gives no confidence with its answers; there is nothing to calibrate")
        confidence, correct = zip(*answers, strict=True)
        self.calibrator_ = ConfidenceCalibrator.learn(confidence, correct)
        return self

    def predict_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        """Rating-class probabilities, shape ``(n_reviews, len(classes_))``; rows of
        empty texts are NaN. Only for the ``rating`` task of methods that classify."""
        self._check_fitted()
        if self.task_ is not Task.RATING:
            raise InvalidParameterError(f"predict_proba is for the rating task; {self.name} was fitted for {self.task_.value}")
        if not hasattr(self, "classes_"):
            self._rating_proba([])  # methods without classes say why they have no probabilities
        usable = [i for i, review in enumerate(reviews) if review.analysable]
        proba = np.full((len(reviews), len(self.classes_)), np.nan)
        if usable:
            proba[usable] = self._rating_proba([reviews[i] for i in usable])
        return proba

    def _rating_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        """Rating-class probabilities of non-empty reviews; methods that classify override it."""
        raise InvalidParameterError(f"{self!r} predicts ratings without class probabilities")

    def _unanalysable_row(self, review: Review) -> ReviewAnalysis:
        return ReviewAnalysis.failed(
            review.id, status="error", reason=review.problem or "empty or whitespace-only text", method=self.name,
            language=review.language, model=self.model_name, usage=Usage(),
        )  # fmt: skip

    def _analysis(self, review: Review, **fields: Any) -> ReviewAnalysis:
        """An ``ok`` analysis of ``review`` carrying this method's names."""
        return ReviewAnalysis(review_id=review.id, language=review.language, method=self.name, model=self.model_name, **fields)

    @property
    def model_name(self) -> str | None:
        """The underlying model, for the ``model`` field of results (None for baselines)."""
        return None

    def _resolve_task(self, reviews: ReviewSet, task: Task | str | None) -> Task:
        chosen = task if task is not None else reviews.task
        if chosen is None:
            raise InvalidParameterError(f"say which task to fit: one of {', '.join(t.value for t in self.supported_tasks)}")
        try:
            chosen = Task(chosen)
        except ValueError:
            raise InvalidParameterError(f"unknown task {chosen!r}; tasks are {', '.join(t.value for t in Task)}") from None
        if chosen not in self.supported_tasks:
            supported = ", ".join(sorted(t.value for t in self.supported_tasks))
            raise UnsupportedTaskError(f"method {self.name!r} does not do {chosen.value}; it does: {supported}")
        return chosen

    def _check_fitted(self) -> None:
        if not hasattr(self, "task_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with labelled reviews before predicting."
            )

    @abstractmethod
    def _fit(self, reviews: ReviewSet) -> None:
        """Learn from non-empty, label-checked reviews; ``task_`` and ``label_space_`` are set."""

    @abstractmethod
    def _predict(self, reviews: Sequence[Review], *, given_aspects: bool) -> list[ReviewAnalysis]:
        """Analyse a batch of non-empty reviews, one result each, in order."""

    # ----- persistence -------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write the fitted method to ``directory`` (JSON config + safe state files, no pickle)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            "format": FORMAT_VERSION,
            "topicsent_version": __version__,
            "method": self.name,
            "params": self.get_params(),
            "task": self.task_.value,
            "language": self.language_,
            "label_space": self.label_space_.to_dict(),
        }
        self._save_state(directory)
        if hasattr(self, "calibrator_"):
            (directory / CALIBRATION_FILE).write_text(json.dumps(self.calibrator_.to_dict()), encoding="utf-8")
        else:
            (directory / CALIBRATION_FILE).unlink(missing_ok=True)  # an older save's calibration is not this model's
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> BaseMethod:
        """Load a method saved with :meth:`save`; the class comes from the registry."""
        from topicsent.methods._registry import method_class

        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise ModelFileError(f"{directory}: not a saved topicsent model (no {CONFIG_FILE})")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            format_version = config["format"]
            method = method_class(config["method"])(**config["params"])
            method.task_ = Task(config["task"])
            method.language_ = config["language"]
            method.label_space_ = LabelSpace.from_dict(config["label_space"])
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{config_path}: malformed model config ({error})") from None
        if format_version != FORMAT_VERSION:
            raise ModelFileError(f"{config_path}: model format {format_version}, this topicsent reads {FORMAT_VERSION}")
        try:
            method._load_state(directory)
            if (directory / CALIBRATION_FILE).is_file():
                calibration = json.loads((directory / CALIBRATION_FILE).read_text(encoding="utf-8"))
                method.calibrator_ = ConfidenceCalibrator.from_dict(calibration)
        except (OSError, KeyError, ValueError) as error:
            raise ModelFileError(f"{directory}: incomplete or damaged model files ({error})") from None
        return method

    @abstractmethod
    def _save_state(self, directory: Path) -> None:
        """Write learned state (not the config) into ``directory``."""

    @abstractmethod
    def _load_state(self, directory: Path) -> None:
        """Restore what :meth:`_save_state` wrote."""


def _check_training_labels(reviews: ReviewSet, task: Task) -> None:
    """Refuse training data that cannot teach ``task``, naming the first bad review."""
    if not len(reviews):
        raise InputDataError(f"{reviews.name}: no reviews to train on")
    space = reviews.label_space
    for review in reviews:
        if task is Task.RATING:
            if review.rating is None:
                raise InputDataError(f"{reviews.name}: review {review.id!r} has no rating; rating training needs one per review")
            if space.rating_scale and not space.rating_scale[0] <= review.rating <= space.rating_scale[1]:
                raise InputDataError(
                    f"{reviews.name}: review {review.id!r} rating {review.rating} is outside {space.rating_scale}"
                )
            continue
        for aspect in review.aspects:
            if aspect.polarity not in space.polarities:
                raise InputDataError(
                    f"{reviews.name}: review {review.id!r} aspect {aspect.name!r} has polarity {aspect.polarity!r}; "
                    f"expected one of {', '.join(space.polarities)}"
                )
            if task is Task.ACSA and space.categories is not None and aspect.name not in space.categories:
                raise InputDataError(f"{reviews.name}: review {review.id!r} category {aspect.name!r} is not in the taxonomy")
    if task is not Task.RATING and not any(r.aspects for r in reviews):
        raise InputDataError(f"{reviews.name}: no review has labelled aspects; {task.value} training needs them")
