"""Methods built from three learnable parts, one per question a review raises.

- Which categories does it mention? (ACSA detection, multi-label)
- How does it feel about this aspect? (polarity of a (review, aspect) pair)
- What rating does it imply? (rating task)

A method built this way implements only those parts; this module turns them into
:class:`~topicsent.schema.ReviewAnalysis` objects for every task, including term
extraction for ATSA through a term finder (:mod:`topicsent.methods._terms`: a token
tagger trained on the training terms by default, or their dictionary) when a review
comes without terms.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import NotRequired

import numpy as np
from typing_extensions import TypedDict  # pydantic reads a TypedDict from here before Python 3.12

from topicsent.data import AspectLabel, Review, ReviewSet
from topicsent.errors import InvalidParameterError, ModelFileError
from topicsent.methods._base import CONFIG_FILE, BaseMethod
from topicsent.methods._files import read_json
from topicsent.methods._terms import (
    DICTIONARY,
    TermLexicon,
    check_term_finder,
    find_terms,
    fit_term_finder,
    load_tagger,
    nothing_found_reason,
    save_tagger,
)
from topicsent.schema import AspectSentiment, Overall, ReviewAnalysis, Span, Task

Pair = tuple[Review, AspectLabel]
STATE_FILE = "pipeline.json"


class _PipelineState(TypedDict):
    terms: list[str]
    tagger: NotRequired[bool]  # models saved before term taggers have none
    polarity_classes: list[str]
    classes: list[int]


DETECTION_THRESHOLD = 0.5
NO_KNOWN_WORDS = "no known words: not one word of the review is in the model's vocabulary"


def overall_from_aspects(aspects: Sequence[AspectSentiment]) -> str | None:
    """Overall polarity implied by aspect polarities: both signs (or a conflict) make
    ``mixed``; one sign wins; only neutral aspects give ``neutral``."""
    if not aspects:
        return None
    found = {a.polarity for a in aspects}
    if "conflict" in found or {"positive", "negative"} <= found:
        return "mixed"
    for polarity in ("positive", "negative"):
        if polarity in found:
            return polarity
    return "neutral"


class AspectPipelineMethod(BaseMethod):
    """Base of methods made of a detector, a pair polarity classifier and a rater."""

    # ----- parts a subclass implements ---------------------------------------------------

    @abstractmethod
    def _fit_polarity(self, pairs: list[Pair], labels: list[str]) -> None:
        """Learn the polarity of (review, aspect) pairs; set ``polarity_classes_``."""

    @abstractmethod
    def _polarity_proba(self, pairs: list[Pair]) -> np.ndarray:
        """Probabilities, shape ``(len(pairs), len(polarity_classes_))``."""

    @abstractmethod
    def _fit_detector(self, reviews: Sequence[Review], mentioned: np.ndarray) -> None:
        """Learn which categories (columns of ``mentioned``, in taxonomy order) a review mentions."""

    @abstractmethod
    def _detect_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        """Mention probability per review and category, shape ``(n, n_categories)``."""

    @abstractmethod
    def _fit_rating(self, reviews: Sequence[Review], ratings: np.ndarray) -> None:
        """Learn the rating; set ``classes_`` (the ratings of the scale)."""

    @abstractmethod
    def _predict_rating(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray | None]:
        """Ratings on the scale and their confidence (None when the model has none)."""

    @abstractmethod
    def _save_models(self, directory: Path) -> None: ...

    @abstractmethod
    def _load_models(self, directory: Path) -> None: ...

    # ----- the shared framework ----------------------------------------------------------

    def _validate_params(self) -> None:
        super()._validate_params()
        if "term_finder" in self._param_names():
            check_term_finder(self, on_disk=False)

    def _fit(self, reviews: ReviewSet) -> None:
        self._fit_terms(reviews)
        self._fit_parts(reviews)

    def _fit_terms(self, reviews: ReviewSet) -> None:
        """The term finder (ATSA), first: a bad ``term_finder`` stops the fit (of any task:
        a saved model's parameters are ones a fit accepted) before the other parts train."""
        self.term_lexicon_, self.term_tagger_ = TermLexicon([]), None
        if "term_finder" in self._param_names():
            check_term_finder(self, on_disk=True)
        if self.task_ is Task.ATSA:
            self.term_tagger_ = fit_term_finder(self.term_finder, reviews, self.random_state)  # type: ignore[attr-defined]
            self.term_lexicon_ = TermLexicon.learn(reviews)

    def _fit_parts(self, reviews: ReviewSet) -> None:
        """Polarity and category detection (aspect tasks), or the rating."""
        if self.task_ is Task.RATING:
            self.classes_ = np.array(reviews.label_space.ratings or sorted({r.rating for r in reviews}))
            self._fit_rating(list(reviews), np.array([r.rating for r in reviews]))
            return
        pairs = [(review, aspect) for review in reviews for aspect in review.aspects]
        self._fit_polarity(pairs, [aspect.polarity for _, aspect in pairs])
        if self.task_ is Task.ACSA:
            self._fit_detector(list(reviews), self._mention_matrix(reviews))

    @property
    def categories(self) -> tuple[str, ...]:
        return self.label_space_.categories or ()

    @property
    def category_index(self) -> dict[str, int]:
        """Column of each category in detection matrices and gated features (taxonomy order)."""
        return {name: i for i, name in enumerate(self.categories)}

    def _mention_matrix(self, reviews: Sequence[Review]) -> np.ndarray:
        index = self.category_index
        mentioned = np.zeros((len(reviews), len(index)), dtype=int)
        for row, review in enumerate(reviews):
            for aspect in review.aspects:
                mentioned[row, index[aspect.name]] = 1
        return mentioned

    def _predict(self, reviews: Sequence[Review], *, given_aspects: bool) -> list[ReviewAnalysis]:
        if self.task_ is Task.RATING:
            return self._rating_analyses(reviews)
        if given_aspects:
            queries = [list(review.aspects) for review in reviews]
        elif self.task_ is Task.ACSA:
            queries = self._detected_categories(reviews)
        else:
            queries = find_terms([review.text for review in reviews], self.term_lexicon_, self.term_tagger_)
        pairs = [(review, aspect) for review, aspects in zip(reviews, queries, strict=True) for aspect in aspects]
        proba = self._polarity_proba(pairs) if pairs else np.empty((0, len(self.polarity_classes_)))
        sentiments = iter(self._aspect_sentiment(pair, row) for pair, row in zip(pairs, proba, strict=True))
        analyses = []
        found_nothing = self._found_nothing_reason(given_aspects)
        for review, aspects in zip(reviews, queries, strict=True):
            found = [next(sentiments) for _ in aspects]
            overall = Overall(polarity=overall_from_aspects(found))
            reason = None if found else found_nothing
            analyses.append(self._analysis(review, overall=overall, aspects=found, status_reason=reason))
        return analyses

    def category_proba(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray]:
        """ACSA: for every review and category of the model, the probability that the
        review mentions the category, and the polarity probabilities it would get if it
        does (what active learning measures a review's uncertainty by).

        Parameters
        ----------
        reviews : sequence of Review
            Reviews with text (their labels are ignored).

        Returns
        -------
        mention : numpy.ndarray of shape (n_reviews, n_categories)
            Columns follow ``label_space_.categories``.
        polarity : numpy.ndarray of shape (n_reviews, n_categories, n_polarities)
            The last axis follows ``polarity_classes_``.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        InvalidParameterError
            The model was fitted for another task than ACSA.
        """
        self._check_fitted()
        if self.task_ is not Task.ACSA:
            raise InvalidParameterError(f"category_proba is for the acsa task; {self.name} was fitted for {self.task_.value}")
        reviews = list(reviews)
        pairs = [(review, AspectLabel(name, "category")) for review in reviews for name in self.categories]
        polarity = self._polarity_proba(pairs) if pairs else np.empty((0, len(self.polarity_classes_)))
        shape = (len(reviews), len(self.categories), len(self.polarity_classes_))
        mention = self._detect_proba(reviews) if reviews else np.empty(shape[:2])
        return mention, polarity.reshape(shape)

    def _found_nothing_reason(self, given_aspects: bool) -> str | None:
        """Why a review came back without aspects, said in the row (status stays ``ok``: no
        aspect is a real answer, not one invented from a prior)."""
        if given_aspects:
            return None
        if self.task_ is Task.ATSA:
            return nothing_found_reason(self.term_lexicon_, self.term_tagger_)
        return f"no category detected (every mention probability < {DETECTION_THRESHOLD})"

    def _detected_categories(self, reviews: Sequence[Review]) -> list[list[AspectLabel]]:
        mention = self._detect_proba(reviews)
        return [
            [AspectLabel(name, "category") for name, p in zip(self.categories, row, strict=True) if p >= DETECTION_THRESHOLD]
            for row in mention
        ]

    def _aspect_sentiment(self, pair: Pair, proba: np.ndarray) -> AspectSentiment:
        review, aspect = pair
        best = int(np.argmax(proba))
        has_span = aspect.start is not None and aspect.end is not None
        opinion = aspect.opinions[0] if aspect.opinions else None  # found by a trained term finder: the why
        return AspectSentiment(
            aspect=aspect.name,
            kind=aspect.kind,
            polarity=self.polarity_classes_[best],
            confidence=float(np.clip(proba[best], 0.0, 1.0)),
            evidence=review.text[aspect.start : aspect.end] if has_span else None,
            span=Span(start=aspect.start, end=aspect.end) if has_span else None,
            opinion=review.text[opinion.start : opinion.end] if opinion else None,
            opinion_span=Span(start=opinion.start, end=opinion.end) if opinion else None,
        )

    def _rating_analyses(self, reviews: Sequence[Review]) -> list[ReviewAnalysis]:
        ratings, confidence = self._predict_rating(reviews)
        analyses = []
        for i, review in enumerate(reviews):
            rating = float(ratings[i])
            overall = Overall(
                polarity=self.label_space_.rating_polarity(rating),
                rating=rating,
                confidence=None if confidence is None else float(np.clip(confidence[i], 0.0, 1.0)),
            )
            analyses.append(self._analysis(review, overall=overall))
        return analyses

    # ----- persistence -------------------------------------------------------------------

    def _save_state(self, directory: Path) -> None:
        state = {
            "terms": self.term_lexicon_.terms,
            "tagger": self.term_tagger_ is not None,
            "polarity_classes": list(getattr(self, "polarity_classes_", [])),
            "classes": [int(c) for c in getattr(self, "classes_", [])],
        }
        (directory / STATE_FILE).write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        save_tagger(self.term_tagger_, directory)
        self._save_models(directory)

    def _load_state(self, directory: Path) -> None:
        path = directory / STATE_FILE
        state = read_json(path, _PipelineState)
        if self.task_ is Task.RATING:
            low, high = self.label_space_.rating_scale or (-np.inf, np.inf)
            if not state["classes"] or not all(low <= c <= high for c in state["classes"]):
                raise ModelFileError(f"{path}: damaged model file (no ratings, or ratings outside the scale)")
        elif not state["polarity_classes"] or not set(state["polarity_classes"]) <= set(self.label_space_.polarities):
            raise ModelFileError(f"{path}: damaged model file (no polarities, or some outside the label space)")
        self.term_lexicon_ = TermLexicon(state["terms"])
        self.term_tagger_ = load_tagger(directory, state.get("tagger", False))
        if "term_finder" in self._param_names() and self.term_tagger_ is None:
            try:  # without its own tagger, the model's term_finder must be one a fit here would take
                check_term_finder(self, on_disk=True)
            except InvalidParameterError as error:
                raise ModelFileError(f"{directory / CONFIG_FILE}: impossible parameter ({error})") from None
        if "tagger" not in state and self.task_ is Task.ATSA and "term_finder" in self._param_names():
            self.term_finder = DICTIONARY  # saved before term taggers: it found terms by their dictionary
        if state["polarity_classes"]:
            self.polarity_classes_ = state["polarity_classes"]
        if state["classes"]:
            self.classes_ = np.array(state["classes"])
        self._load_models(directory)
