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
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from typing_extensions import TypedDict  # pydantic reads a TypedDict from here before Python 3.12

from topicsent._extras import extras_needed
from topicsent._progress import progress_bar
from topicsent._version import __version__
from topicsent.data import (
    LabelSpace,
    Review,
    ReviewSet,
    as_review_set,
    as_reviews,
    check_labels,
    infer_task,
    label_problem,
    one_class_problem,
)
from topicsent.errors import (
    InputDataError,
    InvalidParameterError,
    MissingExtraError,
    ModelFileError,
    NotFittedError,
    UnsupportedTaskError,
)
from topicsent.methods._calibration import ConfidenceCalibrator, abstain_when_unsure, answer_correctness
from topicsent.methods._files import model_file, read_json
from topicsent.methods._registry import spec_params
from topicsent.schema import Predictions, ReviewAnalysis, Task, Usage

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
    #: Whether ACSA training learns something per category (a detector, a weight block),
    #: so every taxonomy category needs training examples. A prompted LLM reads the
    #: taxonomy from its prompt and does not.
    learns_each_category: ClassVar[bool] = True

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
    #: finite number > 0), ``"non-negative"`` (a finite number >= 0), ``"share"`` (a finite
    #: number in (0, 1)), ``"index"`` (an int >= 0), ``"text"`` (a non-empty string) or
    #: ``"count"`` (an int >= 1); a string constraint starting with ``"optional "`` also
    #: allows None.
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {}
    #: Parameters that hold other methods (a cascade's stages): name -> the separator of
    #: their spec text, how they are written when saved (see :func:`~topicsent.methods.spec_params`).
    nested_methods: ClassVar[dict[str, str]] = {}

    def _validate_params(self) -> None:
        """Raise :class:`InvalidParameterError` for a parameter outside its constraint."""
        for param, constraint in self.parameter_constraints.items():
            value = getattr(self, param)
            if isinstance(constraint, tuple):
                valid, expected = value in constraint, f"one of {constraint}"
            else:
                valid, expected = _satisfies(value, constraint.removeprefix("optional "))
                if constraint.startswith("optional "):
                    valid, expected = valid or value is None, f"None or {expected}"
            if not valid:
                raise InvalidParameterError(
                    f"The {param!r} parameter of {type(self).__name__} must be {expected}. Got {value!r} instead."
                )

    # ----- fit / predict -------------------------------------------------------------

    def fit(
        self,
        reviews: ReviewSet | Any,
        task: Task | str | None = None,
        *,
        text: str = "text",
        id: str | None = None,
        aspects: str | None = None,
        rating: str | None = None,
    ) -> Self:
        """Learn from labelled reviews.

        Parameters
        ----------
        reviews : ReviewSet, pandas.DataFrame or list of dict
            Labelled reviews. Rows of a DataFrame or dicts are read by column name
            (the same rules as files): ``aspects`` cells are a list of
            ``{"aspect": "food", "polarity": "positive"}`` dicts (terms with
            ``from``/``to`` offsets), its JSON, or ``"food:positive; service:negative"``;
            ``rating`` cells are whole numbers on the data's own scale.
        task : {"acsa", "atsa", "rating"}, optional
            Default: the review set's task, else what the labels show (ratings, term
            aspects or category aspects).
        text, id, aspects, rating : str, optional
            Column names in ``reviews`` (ignored for a ``ReviewSet``); without ``id`` the
            index labels (DataFrame) or positions from 0 (list) are the ids.

        Returns
        -------
        self
            Fitted: ``task_``, ``label_space_`` and ``language_`` are set.

        Raises
        ------
        InputDataError
            A missing column, an empty text, a bad label (naming the row), or no labels
            the task can learn from.
        InvalidParameterError
            A parameter outside its constraint, or an unknown task.
        UnsupportedTaskError
            The method does not do ``task``.

        Examples
        --------
        >>> import pandas as pd
        >>> from topicsent import MajorityMethod
        >>> df = pd.DataFrame({"text": ["Great food", "Rude staff"], "aspects": ["food:positive", "staff:negative"]})
        >>> MajorityMethod().fit(df, aspects="aspects").task_.value
        'acsa'
        """
        self._validate_params()
        reviews = as_review_set(reviews, text=text, id=id, aspects=aspects, rating=rating)
        if task is None and reviews.task is None:
            task = infer_task(reviews)
        task = self._resolve_task(reviews, task)
        _check_training_labels(reviews, task, every_category=self.learns_each_category)
        usable = reviews.with_reviews([r for r in reviews if r.text.strip()])
        self.task_ = task
        self.label_space_ = reviews.label_space
        self.language_ = reviews.language
        with extras_needed(f"method {self.name!r}"):
            self._fit(usable)
        return self

    def predict(
        self,
        reviews: Sequence[Review] | Any,
        *,
        given_aspects: bool = False,
        abstain_below: float | None = None,
        text: str = "text",
        id: str | None = None,
        aspects: str | None = None,
    ) -> Predictions:
        """Analyse reviews: one :class:`~topicsent.schema.ReviewAnalysis` per review, in input order.

        Parameters
        ----------
        reviews : str, list of str, pandas.Series, pandas.DataFrame, list of dict or Review objects
            One text, texts, or rows with a ``text`` column. Ids are a DataFrame's or
            Series' index labels (or the ``id`` column), a list's positions from 0.
        given_aspects : bool, default=False
            Score each review's own aspects (names, and spans for terms; their labels
            are ignored) and return exactly those, in order: the standard ACSA/ATSA
            evaluation protocol; a review whose given aspect the model cannot score
            (a category outside its taxonomy, a term whose span holds other words)
            comes back ``error`` naming it, and the other reviews are answered.
            Otherwise the method finds the aspects itself.
        abstain_below : float in [0, 1], optional
            A review whose least confident answer is under it comes back
            ``abstained``, without labels.
        text, id, aspects : str, optional
            Column names of DataFrame or dict rows (``aspects`` for ``given_aspects``).

        Returns
        -------
        Predictions
            A list of ``ReviewAnalysis`` (length ``n_reviews``); ``.to_dataframe()`` is
            the flat table, one row per review x aspect. Empty texts and rows the
            reader marked (``Review.problem``: a lone surrogate, an over-long text)
            come back with status ``error``; a review the method has nothing to go on for (no word it
            knows) comes back ``abstained`` saying so, not with an answer from its
            training prior. Confidences are calibrated once :meth:`calibrate` has run.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        InputDataError
            Input that is not reviews, a missing column or a duplicate id (naming the row).

        Examples
        --------
        >>> import pandas as pd
        >>> from topicsent import MajorityMethod
        >>> df = pd.DataFrame({"text": ["Great food", "Rude staff"], "aspects": ["food:positive", "staff:negative"]})
        >>> model = MajorityMethod().fit(df, aspects="aspects")
        >>> [a.review_id for a in model.predict(["Lovely pasta", "Slow service"])]
        ['0', '1']
        >>> model.predict(df["text"]).to_dataframe().shape[0] >= 2
        True
        """
        self._check_fitted()
        reviews = as_reviews(reviews, text=text, id=id, aspects=aspects)
        results: dict[int, ReviewAnalysis] = {}
        usable = [i for i, review in enumerate(reviews) if review.analysable]
        with progress_bar(f"{self.name}: predict", total=len(usable)) as advance:
            for start in range(0, len(usable), self.batch_size):
                batch = usable[start : start + self.batch_size]
                began = time.perf_counter()
                refused = self._refused([(i, reviews[i]) for i in batch], given_aspects)
                results |= refused
                asked = [i for i in batch if i not in refused]
                with extras_needed(f"method {self.name!r}"):
                    answers = self._predict([reviews[i] for i in asked], given_aspects=given_aspects) if asked else []
                if hasattr(self, "calibrator_"):
                    answers = [self.calibrator_.apply(answer) for answer in answers]
                per_review_ms = (time.perf_counter() - began) * 1000 / len(batch)
                for index, answer in zip(asked, answers, strict=True):
                    if answer.usage.latency_ms is None:
                        answer.usage = answer.usage.model_copy(update={"latency_ms": per_review_ms})
                    results[index] = answer
                advance(len(batch))
        analyses = [results.get(i) or self._unanalysable_row(review) for i, review in enumerate(reviews)]
        return Predictions(analyses if abstain_below is None else abstain_when_unsure(analyses, abstain_below))

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
        check_labels(reviews, self.label_space_, self.task_)  # a category the model does not know is one clear error
        if predictions is None:
            self.__dict__.pop("calibrator_", None)
            predictions = self.predict_labelled(reviews)
        answers = answer_correctness(reviews, predictions, self.task_ is Task.RATING)
        if not answers:
            raise InvalidParameterError(f"{self!r} gives no confidence with its answers; there is nothing to calibrate")
        confidence, correct = zip(*answers, strict=True)
        self.calibrator_ = ConfidenceCalibrator.learn(confidence, correct)
        return self

    def predict_proba(self, reviews: Sequence[Review] | Any, *, text: str = "text", id: str | None = None) -> np.ndarray:
        """Rating-class probabilities.

        Parameters
        ----------
        reviews : as for :meth:`predict` (texts, a Series, a DataFrame, reviews)
        text, id : str, optional
            Column names of DataFrame or dict rows.

        Returns
        -------
        numpy.ndarray of shape (n_reviews, len(classes_))
            Columns follow ``classes_`` (the ratings); rows of empty texts are NaN.

        Raises
        ------
        InvalidParameterError
            The method was fitted for an aspect task, or gives no class probabilities.
        NotFittedError
            Before :meth:`fit`.
        """
        self._check_fitted()
        reviews = as_reviews(reviews, text=text, id=id)
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
        return self._unanswered(review, "error", review.problem or "empty or whitespace-only text")

    def _unanswered(self, review: Review, status: str, reason: str) -> ReviewAnalysis:
        return ReviewAnalysis.failed(
            review.id, status=status, reason=reason, method=self.name, language=review.language, model=self.model_name,
            usage=Usage(),
        )  # fmt: skip

    def _refused(self, batch: list[tuple[int, Review]], given_aspects: bool) -> dict[int, ReviewAnalysis]:
        """Rows answered without asking the method: ``error`` for a given aspect it
        cannot score, ``abstained`` for a review it has nothing to go on for."""
        refused: dict[int, ReviewAnalysis] = {}
        if given_aspects and self.task_ is not Task.RATING:
            for index, review in batch:
                if problem := label_problem(review.unlabelled(), self.label_space_, self.task_):
                    refused[index] = self._unanswered(review, "error", problem)
        waiting = [(index, review) for index, review in batch if index not in refused]
        reasons = self._nothing_to_go_on([review for _, review in waiting], given_aspects=given_aspects) if waiting else []
        for (index, review), reason in zip(waiting, reasons, strict=True):
            if reason:
                refused[index] = self._unanswered(review, "abstained", reason)
        return refused

    def _nothing_to_go_on(self, reviews: Sequence[Review], *, given_aspects: bool) -> list[str | None]:
        """Per review, why the method has no evidence to answer from (e.g. "no word
        of the review is in the model's vocabulary"), or None. Methods whose features
        can come out empty override it, so such reviews are ``abstained`` instead of
        answered from the training prior with status ``ok``."""
        return [None] * len(reviews)

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
            raise InvalidParameterError(
                f"say which task to fit: one of {', '.join(t.value for t in self.supported_tasks)} "
                "(on the command line: --aspects-col for aspects, --rating-col for ratings, or --task)"
            )
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
            "params": spec_params(self),  # nested methods as specs: JSON, read back by __init__
            "task": self.task_.value,
            "language": self.language_,
            "label_space": self.label_space_.to_dict(),
        }
        self._save_state(directory)
        self.save_calibration(directory)
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
        return directory

    def save_calibration(self, directory: str | Path) -> Path:
        """Write (or remove, when not calibrated) only the calibration beside a model
        already saved in ``directory``: calibrating after saving needs no second full save."""
        path = Path(directory) / CALIBRATION_FILE
        if hasattr(self, "calibrator_"):
            path.write_text(json.dumps(self.calibrator_.to_dict()), encoding="utf-8")
        else:
            path.unlink(missing_ok=True)  # an older save's calibration is not this model's
        return path

    @classmethod
    def load(cls, directory: str | Path) -> BaseMethod:
        """Load a method saved with :meth:`save`; the class comes from the registry.

        Every file is validated as it is read: the config's parameters by the same
        constraints as :meth:`fit`, its label space, each JSON file's structure, each
        array's dtype, shape and finiteness.

        Raises
        ------
        ModelFileError
            Any damage (a missing, truncated or empty file, a value of the wrong type,
            an impossible parameter, an array of the wrong shape or with NaN), in one
            line naming the file.
        """
        from topicsent.methods._registry import method_class

        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise ModelFileError(f"{directory}: not a saved topicsent model (no {CONFIG_FILE})")
        config = read_json(config_path, _ModelConfig, "malformed model config")
        if config["format"] != FORMAT_VERSION:
            raise ModelFileError(f"{config_path}: model format {config['format']}, this topicsent reads {FORMAT_VERSION}")
        try:
            method = method_class(config["method"])(**config["params"])
            method._validate_params()
            method.task_ = Task(config["task"])
            method.language_ = config["language"]
            method.label_space_ = LabelSpace.from_dict(config["label_space"])
            if problem := _label_space_problem(method.label_space_, method.task_):
                raise ValueError(problem)
        except (TypeError, ValueError, KeyError) as error:  # InvalidParameterError is both; an unknown method a KeyError
            raise ModelFileError(f"{config_path}: malformed model config ({error})") from None
        try:
            with extras_needed(f"method {method.name!r}"):
                method._load_state(directory)
            if (directory / CALIBRATION_FILE).is_file():
                calibration = read_json(directory / CALIBRATION_FILE, dict[str, list[float]])
                with model_file(directory / CALIBRATION_FILE):
                    method.calibrator_ = ConfidenceCalibrator.from_dict(calibration)
        except (ModelFileError, MissingExtraError):
            raise
        except Exception as error:  # a reader without its own check: the folder, not a traceback
            reason = " ".join(str(error).split())[:200]
            raise ModelFileError(f"{directory}: incomplete or damaged model files ({type(error).__name__}: {reason})") from None
        return method

    @abstractmethod
    def _save_state(self, directory: Path) -> None:
        """Write learned state (not the config) into ``directory``."""

    @abstractmethod
    def _load_state(self, directory: Path) -> None:
        """Restore what :meth:`_save_state` wrote."""


def _check_training_labels(reviews: ReviewSet, task: Task, *, every_category: bool = True) -> None:
    """Refuse training data that cannot teach ``task`` before any work starts: a bad
    label (named by its review), no labels, labels that never differ (one rating, one
    polarity), which no method can learn from, and (``every_category``: methods that
    learn per category) a taxonomy category without any example."""
    if not len(reviews):
        raise InputDataError(f"{reviews.name}: no reviews to train on")
    check_labels(reviews, reviews.label_space, task)
    if task is not Task.RATING and not any(r.aspects for r in reviews):
        raise InputDataError(f"{reviews.name}: no review has labelled aspects; {task.value} training needs them")
    needed_by = "a rating model" if task is Task.RATING else "a polarity model"
    if problem := one_class_problem(reviews, task, needed_by):
        raise InputDataError(f"{reviews.name}: {problem}")
    categories = reviews.label_space.categories
    if task is Task.ACSA and categories and every_category:
        seen = {a.name for r in reviews for a in r.aspects}
        if missing := [c for c in categories if c not in seen]:
            raise InputDataError(
                f"{reviews.name}: no review is labelled with the taxonomy's {', '.join(map(repr, missing))}; "
                "a model cannot learn a category it never saw: label some reviews with it or drop it from the taxonomy"
            )


class _ModelConfig(TypedDict):
    """The structure of ``topicsent.json`` (extra keys, e.g. ``topicsent_version``, are ignored)."""

    format: int
    method: str
    params: dict[str, Any]
    task: str
    language: str
    label_space: _LabelSpaceFields


class _LabelSpaceFields(TypedDict):
    polarities: list[str]
    categories: list[str] | None
    rating_scale: tuple[int, int] | None


def _label_space_problem(space: LabelSpace, task: Task) -> str | None:
    """Why a saved label space cannot be a fitted model's, or None."""
    if len(set(space.polarities)) < 2:
        return "the label space needs two or more distinct polarities"
    if task is Task.ACSA and not space.categories:
        return "an ACSA model needs a non-empty category taxonomy"
    if space.categories and len(set(space.categories)) != len(space.categories):
        return "the category taxonomy repeats a category"
    if space.rating_scale and space.rating_scale[0] >= space.rating_scale[1]:
        return f"rating scale {list(space.rating_scale)} is not low < high"
    return None


def _satisfies(value: Any, constraint: str) -> tuple[bool, str]:
    """Whether ``value`` meets a named constraint, and the constraint in words."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if constraint == "positive":
        return number and value > 0, "a finite float > 0"
    if constraint == "non-negative":
        return number and value >= 0, "a finite number >= 0"
    if constraint == "share":
        return number and 0 < value < 1, "in (0, 1)"
    if constraint == "text":
        return isinstance(value, str) and bool(value.strip()), "a non-empty string"
    if constraint == "index":
        return number and isinstance(value, int) and value >= 0, "an int >= 0"
    return number and isinstance(value, int) and value >= 1, "an int >= 1"
