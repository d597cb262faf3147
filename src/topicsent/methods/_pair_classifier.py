"""One model for "does this review mention this aspect, and how does it feel about it?".

The BERT-pair recipe (Sun et al. 2019): each (review, aspect) becomes a sentence pair,
the review and an auxiliary question about the aspect, and one classifier answers
with a polarity or ``none``. For ACSA, categories a review does not mention are
sampled as ``none`` examples, so the same model detects categories (``1 - P(none)``)
and rates them; one sentence can get different polarities for different categories,
because the category is part of the input. Subclasses supply the pair model.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from topicsent.data import AspectLabel, Review, ReviewSet
from topicsent.methods._finetuning import Example
from topicsent.methods._pipeline import AspectPipelineMethod, Pair
from topicsent.schema import Task

NONE = "none"
HELD_OUT = 0.1  # share of training reviews kept aside for early stopping

_QUESTIONS = {"en": "what do you think of the {}?", "ko": "{}은(는) 어떤가요?"}


def auxiliary_sentence(aspect: str, language: str) -> str:
    """The question paired with a review: ``what do you think of the food?``."""
    readable = aspect.replace("_", " ").replace("/", " or ").replace("#", " ")
    return _QUESTIONS.get(language, _QUESTIONS["en"]).format(readable)


def sample_per_class(labels: Sequence[str], per_class: int | None, seed: int) -> list[int]:
    """Row indices with at most ``per_class`` rows of each label (seeded), in input order."""
    if per_class is None:
        return list(range(len(labels)))
    rows_of: dict[str, list[int]] = defaultdict(list)
    for row, label in enumerate(labels):
        rows_of[label].append(row)
    rng = random.Random(seed)
    chosen = [row for rows in rows_of.values() for row in rng.sample(rows, min(per_class, len(rows)))]
    return sorted(chosen)


def held_out_rows(review_ids: Sequence[str], seed: int) -> tuple[list[int], list[int]]:
    """Rows for training and for early stopping; a review's rows stay on one side."""
    distinct = sorted(set(review_ids))
    held = set(random.Random(seed).sample(distinct, max(1, int(len(distinct) * HELD_OUT)))) if len(distinct) > 1 else set()
    train = [i for i, rid in enumerate(review_ids) if rid not in held]
    return train, [i for i, rid in enumerate(review_ids) if rid in held] or train


class PairClassifierMethod(AspectPipelineMethod):
    """Aspect methods built on one (review, aspect question) classifier.

    Subclasses define the parameters ``negative_ratio`` (``none`` examples per labelled
    aspect, ACSA), ``examples_per_class`` (few-shot cap, None = all) and
    ``random_state``, and implement :meth:`_fit_pair_model` and :meth:`_pair_model_proba`.
    """

    negative_ratio: float
    examples_per_class: int | None
    random_state: int

    @abstractmethod
    def _fit_pair_model(self, examples: list[Example], targets: np.ndarray, review_ids: list[str]) -> None:
        """Learn ``targets`` (indices into :attr:`pair_classes_`) of the examples."""

    @abstractmethod
    def _pair_model_proba(self, examples: list[Example]) -> np.ndarray:
        """Probabilities over :attr:`pair_classes_`, one row per example."""

    @property
    def pair_classes_(self) -> list[str]:
        """What the pair model predicts: the polarities, plus ``none`` for ACSA."""
        return [*self.polarity_classes_, NONE] if self.task_ is Task.ACSA else list(self.polarity_classes_)

    def _fit(self, reviews: ReviewSet) -> None:
        self.__dict__.pop("_recent_outputs", None)  # remembered from the weights this fit replaces
        super()._fit(reviews)

    def _rating_sample(self, reviews: Sequence[Review], ratings: np.ndarray) -> tuple[list[Review], np.ndarray]:
        """The rating-training reviews, at most ``examples_per_class`` per rating (seeded)."""
        keep = sample_per_class([str(r) for r in ratings], self.examples_per_class, self.random_state)
        return [reviews[i] for i in keep], ratings[keep]

    def _examples(self, pairs: Sequence[Pair]) -> list[Example]:
        return [(review.text, auxiliary_sentence(aspect.name, self.language_)) for review, aspect in pairs]

    def _unmentioned_pairs(self, pairs: Sequence[Pair]) -> list[Pair]:
        """A seeded sample of (review, category it does not mention) pairs, ``negative_ratio``
        per labelled pair."""
        mentioned: dict[str, set[str]] = defaultdict(set)
        reviews: dict[str, Review] = {}
        for review, aspect in pairs:
            mentioned[review.id].add(aspect.name)
            reviews[review.id] = review
        candidates = [
            (review, AspectLabel(name, "category"))
            for rid, review in reviews.items()
            for name in self.categories
            if name not in mentioned[rid]
        ]
        wanted = min(len(candidates), round(self.negative_ratio * len(pairs)))
        return random.Random(self.random_state).sample(candidates, wanted)

    def _fit_polarity(self, pairs: list[Pair], labels: list[str]) -> None:
        self.polarity_classes_ = sorted(set(labels))
        if self.task_ is Task.ACSA:
            negatives = self._unmentioned_pairs(pairs)
            pairs, labels = pairs + negatives, labels + [NONE] * len(negatives)
        keep = sample_per_class(labels, self.examples_per_class, self.random_state)
        index = {name: i for i, name in enumerate(self.pair_classes_)}
        chosen = [pairs[i] for i in keep]
        targets = np.array([index[labels[i]] for i in keep])
        self._fit_pair_model(self._examples(chosen), targets, [review.id for review, _ in chosen])

    def _fit_detector(self, reviews: Sequence[Review], mentioned: np.ndarray) -> None:
        """Nothing to learn: the pair model's ``none`` class is the detector."""

    def _detect_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        pairs = [(review, AspectLabel(name, "category")) for review in reviews for name in self.categories]
        proba = self._pair_model_proba(self._examples(pairs))
        # remembered for the polarity of the detected pairs, asked for next in the same batch
        self._recent_outputs = {_pair_key(pair): row for pair, row in zip(pairs, proba, strict=True)}
        return 1.0 - proba[:, -1].reshape(len(reviews), len(self.categories))

    def _polarity_proba(self, pairs: list[Pair]) -> np.ndarray:
        recent = getattr(self, "_recent_outputs", {})
        missing = [pair for pair in pairs if _pair_key(pair) not in recent]
        if missing:
            recent = recent | dict(zip(map(_pair_key, missing), self._pair_model_proba(self._examples(missing)), strict=True))
        joint = np.stack([recent[_pair_key(pair)] for pair in pairs])
        polarity = joint[:, : len(self.polarity_classes_)]  # drop ``none``: the aspect is given
        return polarity / np.clip(polarity.sum(axis=1, keepdims=True), 1e-12, None)


def _pair_key(pair: Pair) -> tuple[str, str, str, int | None]:
    review, aspect = pair
    return review.text, aspect.name, aspect.kind, aspect.start
