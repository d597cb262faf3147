"""TF-IDF features + logistic regression: the linear baseline every method must beat.

For ACSA one review can feel differently about two categories, so the polarity model
sees each (review, category) pair with the text features twice: once shared, and once
in a block of columns that belongs to the category (features "gated" by the category).
That lets one linear model learn "cold" is bad for food but "cold beer" is fine.
For ATSA the second block holds the words around the term instead.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from topicsent.data import Review
from topicsent.errors import ModelFileError
from topicsent.methods._files import check_array, read_json
from topicsent.methods._linear import (
    fit_binary,
    fit_classifier,
    fit_rater,
    pipeline_models,
    predict_ratings,
    rating_proba,
    restore_pipeline_models,
    save_models,
)
from topicsent.methods._pipeline import NO_KNOWN_WORDS, AspectPipelineMethod, Pair
from topicsent.schema import Task
from topicsent.text import korean_morphemes

ARRAYS_FILE = "tfidf_lr.npz"
VOCABULARY_FILE = "vocabulary.json"
CONTEXT_WORDS = 5  # words each side of a term that form its local context (ATSA)


def _gate(features: sp.csr_matrix, blocks: np.ndarray, n_blocks: int) -> sp.csr_matrix:
    """Copy each row's features into the column block of its category: row i's
    feature j moves to column ``blocks[i] * width + j``."""
    width = features.shape[1]
    features = features.tocsr()
    shift = np.repeat(blocks.astype(np.int64) * width, np.diff(features.indptr))
    return sp.csr_matrix((features.data, features.indices + shift, features.indptr), shape=(features.shape[0], width * n_blocks))


def _morpheme_ngrams(text: str) -> list[str]:
    """Morpheme unigrams and bigrams (``좋/VA 않/VX`` is not ``좋/VA``)."""
    morphemes = korean_morphemes(text)
    return [*morphemes, *(f"{a} {b}" for a, b in itertools.pairwise(morphemes))]


@cache
def _char_ngrams():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)).build_analyzer()


def _chars_and_morphemes(text: str) -> list[str]:
    """Character 1-3 grams and morpheme n-grams in one vocabulary (morphemes carry a
    ``/TAG``, so the two never collide)."""
    return [*_char_ngrams()(text), *_morpheme_ngrams(text)]


def _term_context(review: Review, start: int, end: int) -> str:
    before = review.text[:start].split()[-CONTEXT_WORDS:]
    after = review.text[end:].split()[:CONTEXT_WORDS]
    return " ".join([*before, review.text[start:end], *after])


class TfidfLRMethod(AspectPipelineMethod):
    """TF-IDF n-grams with logistic regression (or ridge for ratings).

    Parameters
    ----------
    C : float, default=4.0
        Inverse regularisation strength of the logistic regressions (ridge uses 1/C).
    analyzer : {"auto", "word", "char", "morph", "char+morph"}, default="auto"
        ``word``: word 1-2 grams. ``char``: character 1-3 grams within word
        boundaries, which suits Korean (agglutinative, no stemming needed).
        ``morph``: 1-2 grams of Korean morphemes (Kiwi), endings and negation
        included. ``char+morph``: both feature sets in one vocabulary.
        ``auto`` takes ``char`` for Korean training data and ``word`` otherwise.
    max_features : int, default=300_000
        Vocabulary cap (most frequent n-grams), bounding memory on large corpora.
    rating_model : {"classify", "regress"}, default="classify"
        Ratings as classes (logistic regression) or as numbers (ridge, rounded).
    term_finder : str, default="auto"
        ATSA, for reviews that come without terms: ``"auto"`` (``"trained"`` when torch is
        installed and every training term has a span, else ``"dictionary"``), ``"trained"`` (a token tagger, as in
        ``extract``, fine-tuned on the training terms: it finds terms it never saw),
        ``"dictionary"`` (the terms marked in training, found again) or the folder of a
        saved ``extract`` model.
    random_state : int, default=0
        Seed for the solvers.
    """

    name = "tfidf-lr"
    supported_tasks = frozenset({Task.ACSA, Task.ATSA, Task.RATING})
    tuning_grid: ClassVar[dict[str, list[Any]]] = {"C": [1.0, 4.0, 16.0]}
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "C": "positive",
        "analyzer": ("auto", "word", "char", "morph", "char+morph"),
        "max_features": "count",
        "rating_model": ("classify", "regress"),
        "random_state": "index",
    }

    @classmethod
    def param_grid(cls, task: Task) -> dict[str, list[Any]]:
        """Ratings also try regression: it wins on kappa/MAE, classification on accuracy."""
        if task is Task.RATING:
            return cls.tuning_grid | {"rating_model": ["classify", "regress"]}
        return cls.tuning_grid

    def __init__(
        self,
        *,
        C: float = 4.0,
        analyzer: str = "auto",
        max_features: int = 300_000,
        rating_model: str = "classify",
        term_finder: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.analyzer = analyzer
        self.max_features = max_features
        self.rating_model = rating_model
        self.term_finder = term_finder
        self.random_state = random_state

    # ----- building blocks ----------------------------------------------------------------

    def _new_vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        analyzer = self.analyzer if self.analyzer != "auto" else ("char" if self.language_ == "ko" else "word")
        common = {"sublinear_tf": True, "max_features": self.max_features}
        if analyzer == "char":
            return TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2, **common)
        if analyzer == "morph":
            return TfidfVectorizer(analyzer=_morpheme_ngrams, min_df=1, **common)
        if analyzer == "char+morph":
            return TfidfVectorizer(analyzer=_chars_and_morphemes, min_df=2, **common)
        return TfidfVectorizer(ngram_range=(1, 2), min_df=1, **common)

    def _fit_vectorizer(self, texts: list[str]) -> None:
        self.vectorizer_ = self._new_vectorizer().fit(texts)

    def _texts(self, reviews: Sequence[Review]) -> sp.csr_matrix:
        texts = [r.text for r in reviews]
        # the batch whose vocabulary was just checked (_nothing_to_go_on) is transformed once
        last = getattr(self, "_last_features", None)
        if last is not None and last[0] == texts:
            return last[1]
        features = self.vectorizer_.transform(texts)
        self._last_features = (texts, features)
        return features

    def _nothing_to_go_on(self, reviews: Sequence[Review], *, given_aspects: bool) -> list[str | None]:
        """A review without one n-gram of the vocabulary would get the intercept: the
        training prior. It is abstained instead."""
        return [None if count else NO_KNOWN_WORDS for count in self._texts(reviews).getnnz(axis=1)]

    def _pair_features(self, pairs: list[Pair]) -> sp.csr_matrix:
        shared = self._texts([review for review, _ in pairs])
        if self.task_ is Task.ACSA:
            index = self.category_index
            blocks = np.array([index[aspect.name] for _, aspect in pairs])
            return sp.hstack([shared, _gate(shared, blocks, len(index))], format="csr")
        contexts = self.vectorizer_.transform([
            _term_context(review, aspect.start, aspect.end) if aspect.start is not None else aspect.name
            for review, aspect in pairs
        ])  # fmt: skip
        return sp.hstack([shared, contexts], format="csr")

    # ----- the pipeline parts -------------------------------------------------------------

    def _fit_polarity(self, pairs: list[Pair], labels: list[str]) -> None:
        self._fit_vectorizer(list(dict.fromkeys(review.text for review, _ in pairs)))
        self.polarity_model_ = fit_classifier(self._pair_features(pairs), labels, C=self.C, seed=self.random_state)
        self.polarity_classes_ = [str(c) for c in self.polarity_model_.classes]

    def _polarity_proba(self, pairs: list[Pair]) -> np.ndarray:
        return self.polarity_model_.predict_proba(self._pair_features(pairs))

    def _fit_detector(self, reviews: Sequence[Review], mentioned: np.ndarray) -> None:
        features = self._texts(reviews)
        self.detectors_ = [fit_binary(features, column, C=self.C, seed=self.random_state) for column in mentioned.T]

    def _detect_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        features = self._texts(reviews)
        return np.column_stack([model.predict_proba(features)[:, 1] for model in self.detectors_])

    def _fit_rating(self, reviews: Sequence[Review], ratings: np.ndarray) -> None:
        self._fit_vectorizer([r.text for r in reviews])
        self.rating_model_ = fit_rater(self._texts(reviews), ratings, mode=self.rating_model, C=self.C, seed=self.random_state)

    def _rating_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        if self.rating_model == "regress":
            return super()._rating_proba(reviews)
        return rating_proba(self.rating_model_, self._texts(reviews), self.classes_)

    def _predict_rating(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray | None]:
        return predict_ratings(self.rating_model_, self._texts(reviews), self.classes_)

    # ----- persistence: vocabulary as JSON, numbers as arrays (no pickle) --------------------

    def _save_models(self, directory: Path) -> None:
        save_models(directory / ARRAYS_FILE, pipeline_models(self), idf=self.vectorizer_.idf_)
        vocabulary = self.vectorizer_.get_feature_names_out().tolist()
        (directory / VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")

    def _load_models(self, directory: Path) -> None:
        vocabulary = read_json(directory / VOCABULARY_FILE, list[str])
        if not vocabulary or len(set(vocabulary)) != len(vocabulary):
            raise ModelFileError(f"{directory / VOCABULARY_FILE}: damaged model file (an empty vocabulary or a repeated term)")
        width = len(vocabulary)
        # the polarity model's features: the text twice, shared and gated by category (ACSA) or term context (ATSA)
        pair_width = width * (1 + len(self.categories)) if self.task_ is Task.ACSA else 2 * width
        widths = {"rating": width} if self.task_ is Task.RATING else {"polarity": pair_width}
        if self.task_ is Task.ACSA:
            widths["detector"] = width
        arrays = restore_pipeline_models(self, directory / ARRAYS_FILE, widths)
        idf = check_array(directory / ARRAYS_FILE, "idf", arrays.get("idf", []), ndim=1, length=width)
        self.vectorizer_ = self._new_vectorizer()
        self.vectorizer_.vocabulary_ = {term: index for index, term in enumerate(vocabulary)}
        self.vectorizer_.idf_ = idf
