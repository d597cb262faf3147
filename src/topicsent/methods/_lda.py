"""LDA topics with sentiment spread over them: the classic baseline the product must beat.

Topics come from tomotopy's collapsed Gibbs sampler. We chose tomotopy over gensim
because it has supervised LDA (sLDA: the rating is a response of the topic mixture,
trained jointly), because it is fast (~10x gensim here), and because training and
inference are reproducible with a seed when run on one worker (tomotopy itself
warns that several workers give different results); it also computes topic
coherence (NPMI, C_V), which the topic benchmarks use.

How the classic pipeline answers each question:
- rating: sLDA's regression on the topic mixture (``supervised=True``), or ridge
  regression / logistic classification on the mixture (``supervised=False``); the
  review's topics are reported as ``topic`` aspects carrying the review's sentiment.
- ACSA detection: a logistic model per category on the topic mixture (the
  topic -> category mapping, learned on the training reviews).
- ACSA polarity: one sentiment per review from its content words, given to every
  category it mentions. A review that likes the food and hates the staff gets one
  polarity for both; MAMS is built to expose that, which is the point of a baseline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from topicsent._progress import progress_bar
from topicsent.data import Review, ReviewSet
from topicsent.methods._files import check_array, load_arrays, model_file
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
from topicsent.schema import AspectSentiment, Overall, ReviewAnalysis, Task
from topicsent.text import content_words

TOPIC_MODEL_FILE = "lda.bin"
ARRAYS_FILE = "lda.npz"
TRAIN_STEP = 10  # Gibbs iterations per progress step
INFER_ITERATIONS = 100
#: Besides its main topic, a review "talks about" any topic holding this share of its words.
TOPIC_SHARE_SHOWN = 0.25
KEYWORDS_IN_LABEL = 3


def _train_in_steps(model, iterations: int, advance) -> None:
    """Train in steps on one worker (reproducible), advancing the progress bar."""
    for _ in range(0, iterations, TRAIN_STEP):
        model.train(TRAIN_STEP, workers=1)
        advance(TRAIN_STEP)


class LdaMethod(AspectPipelineMethod):
    """Latent Dirichlet allocation topics (tomotopy) with review-level sentiment.

    Parameters
    ----------
    n_topics : int, default=20
        Number of topics.
    iterations : int, default=300
        Gibbs sampling iterations over the training reviews.
    min_count : int, default=3
        Words seen fewer times in training are dropped.
    remove_top : int, default=0
        Drop this many most frequent words (e.g. "영화" in movie reviews says nothing).
    supervised : bool, default=True
        Rating task: supervised LDA (rating as a response of the topics) when True;
        topics first, then a model on the topic mixture (``rating_model``) when False.
    rating_model : {"classify", "regress"}, default="regress"
        The model on the topic mixture when ``supervised`` is False.
    C : float, default=1.0
        Inverse regularisation of the logistic/ridge models on top of the topics.
    random_state : int, default=0
        Seed of the sampler and the solvers.
    """

    name = "lda"
    supported_tasks = frozenset({Task.ACSA, Task.RATING})
    tuning_grid: ClassVar[dict[str, list[Any]]] = {}
    parameter_constraints: ClassVar[dict[str, tuple | str]] = {
        "n_topics": "count",
        "iterations": "count",
        "min_count": "count",
        "remove_top": "index",
        "supervised": (True, False),
        "rating_model": ("classify", "regress"),
        "C": "positive",
        "random_state": "index",
    }

    def __init__(
        self,
        *,
        n_topics: int = 20,
        iterations: int = 300,
        min_count: int = 3,
        remove_top: int = 0,
        supervised: bool = True,
        rating_model: str = "regress",
        C: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.n_topics = n_topics
        self.iterations = iterations
        self.min_count = min_count
        self.remove_top = remove_top
        self.supervised = supervised
        self.rating_model = rating_model
        self.C = C
        self.random_state = random_state

    @property
    def model_name(self) -> str:
        return f"tomotopy-{'slda' if self._is_slda else 'lda'}-k{self.n_topics}"

    @property
    def _is_slda(self) -> bool:
        return self.task_ is Task.RATING and self.supervised

    # ----- topics ---------------------------------------------------------------------------

    def fit_topics(self, reviews: ReviewSet) -> LdaMethod:
        """Fit only the topic model, from texts alone (no labels): for topic discovery
        and the topic benchmarks. ``predict`` still needs :meth:`fit`."""
        self._validate_params()
        self.language_ = reviews.language
        self._fit_topics([r for r in reviews if r.text.strip()])
        return self

    def _fit_topics(self, reviews: Sequence[Review], ratings: np.ndarray | None = None) -> None:
        import tomotopy as tp

        options = {"k": self.n_topics, "min_cf": self.min_count, "rm_top": self.remove_top, "seed": self.random_state}
        model = tp.SLDAModel(vars=["l"], **options) if ratings is not None else tp.LDAModel(**options)
        for index, words in enumerate(self._words(reviews)):
            if not words:
                continue
            if ratings is None:
                model.add_doc(words)
            else:
                model.add_doc(words, y=[float(ratings[index])])
        with progress_bar(f"{self.name}: Gibbs sampling", total=self.iterations) as advance:
            _train_in_steps(model, self.iterations, advance)
        self.topic_model_ = model
        self.vocabulary_ = {word: i for i, word in enumerate(model.used_vocabs)}

    def _words(self, reviews: Sequence[Review]) -> list[list[str]]:
        return content_words([r.text for r in reviews], self.language_ or "en")

    def _inferred_documents(self, reviews: Sequence[Review]) -> list:
        """tomotopy documents with inferred topic mixtures (None for reviews with no known word)."""
        known = [[w for w in ws if w in self.vocabulary_] for ws in self._words(reviews)]
        documents = [self.topic_model_.make_doc(ws) if ws else None for ws in known]
        present = [d for d in documents if d is not None]
        if present:
            self.topic_model_.infer(present, iterations=INFER_ITERATIONS, workers=1)
        return documents

    def _nothing_to_go_on(self, reviews: Sequence[Review], *, given_aspects: bool) -> list[str | None]:
        """A review with no word of the topic model's vocabulary has no topic mixture (it
        would be uniform, its argmax topic 0) and no rating but the training mean."""
        known = [any(w in self.vocabulary_ for w in words) for words in self._words(reviews)]
        return [None if found else NO_KNOWN_WORDS for found in known]

    def topic_mixture(self, reviews: Sequence[Review]) -> np.ndarray:
        """Topic shares per review, shape ``(n, n_topics)``; uniform for a review with no known word."""
        return self._mixture(self._inferred_documents(reviews))

    def _mixture(self, documents: list) -> np.ndarray:
        uniform = np.full(self.n_topics, 1.0 / self.n_topics)
        return np.array([d.get_topic_dist() if d is not None else uniform for d in documents])

    def topic_keywords(self, top_n: int = 10) -> list[list[str]]:
        """The most probable words of each topic."""
        return [[word for word, _ in self.topic_model_.get_topic_words(k, top_n=top_n)] for k in range(self.n_topics)]

    def topic_labels(self) -> list[str]:
        return [f"topic {k}: {', '.join(words)}" for k, words in enumerate(self.topic_keywords(KEYWORDS_IN_LABEL))]

    # ----- the pipeline parts -------------------------------------------------------------

    def _bag_of_words(self, words: list[list[str]]) -> sp.csr_matrix:
        rows, columns = [], []
        for row, ws in enumerate(words):
            found = {self.vocabulary_[w] for w in ws if w in self.vocabulary_}
            rows.extend([row] * len(found))
            columns.extend(found)
        data = np.ones(len(rows))
        return sp.csr_matrix((data, (rows, columns)), shape=(len(words), len(self.vocabulary_)))

    def _fit_polarity(self, pairs: list[Pair], labels: list[str]) -> None:
        reviews = list(dict.fromkeys(review for review, _ in pairs))
        self._fit_topics(reviews)
        features = self._bag_of_words(self._words([review for review, _ in pairs]))
        self.polarity_model_ = fit_classifier(features, labels, C=self.C, seed=self.random_state)
        self.polarity_classes_ = [str(c) for c in self.polarity_model_.classes]

    def _polarity_proba(self, pairs: list[Pair]) -> np.ndarray:
        return self.polarity_model_.predict_proba(self._bag_of_words(self._words([review for review, _ in pairs])))

    def _fit_detector(self, reviews: Sequence[Review], mentioned: np.ndarray) -> None:
        mixture = self.topic_mixture(reviews)
        self.detectors_ = [fit_binary(mixture, column, C=self.C, seed=self.random_state) for column in mentioned.T]

    def _detect_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        mixture = self.topic_mixture(reviews)
        return np.column_stack([model.predict_proba(mixture)[:, 1] for model in self.detectors_])

    def _fit_rating(self, reviews: Sequence[Review], ratings: np.ndarray) -> None:
        if self.supervised:
            self._fit_topics(reviews, ratings)
            return
        self._fit_topics(reviews)
        mixture = self.topic_mixture(reviews)
        self.rating_model_ = fit_rater(mixture, ratings, mode=self.rating_model, C=self.C, seed=self.random_state)

    def _rating_proba(self, reviews: Sequence[Review]) -> np.ndarray:
        """Class probabilities exist only for ``supervised=False, rating_model="classify"``."""
        if self.supervised or self.rating_model == "regress":
            return super()._rating_proba(reviews)
        return rating_proba(self.rating_model_, self.topic_mixture(reviews), self.classes_)

    def _predict_rating(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray | None]:
        ratings, confidence, _ = self._ratings_and_mixture(reviews)
        return ratings, confidence

    def _ratings_and_mixture(self, reviews: Sequence[Review]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        documents = self._inferred_documents(reviews)
        mixture = self._mixture(documents)
        if not self.supervised:
            ratings, confidence = predict_ratings(self.rating_model_, mixture, self.classes_)
            return ratings, confidence, mixture
        mean_rating = float(np.mean(self.classes_))
        raw = np.array([self.topic_model_.estimate(d)[0] if d is not None else mean_rating for d in documents])
        return np.clip(np.rint(raw), self.classes_.min(), self.classes_.max()), None, mixture

    def _rating_analyses(self, reviews: Sequence[Review]) -> list[ReviewAnalysis]:
        """Ratings, plus the review's main topics carrying its sentiment (the classic
        "sentiment spread over the topic mixture")."""
        ratings, confidence, mixture = self._ratings_and_mixture(reviews)
        labels = self.topic_labels()
        analyses = []
        for i, review in enumerate(reviews):
            polarity = self.label_space_.rating_polarity(float(ratings[i]))
            overall = Overall(
                polarity=polarity, rating=float(ratings[i]), confidence=None if confidence is None else float(confidence[i])
            )
            main = int(np.argmax(mixture[i]))
            topics = [
                AspectSentiment(aspect=labels[k], kind="topic", polarity=polarity, confidence=float(share), rating=overall.rating)
                for k, share in enumerate(mixture[i])
                if k == main or share >= TOPIC_SHARE_SHOWN
            ]
            analyses.append(self._analysis(review, overall=overall, aspects=topics))
        return analyses

    # ----- persistence: tomotopy's own binary format (no pickle) and arrays ------------------

    def _save_models(self, directory: Path) -> None:
        self.topic_model_.save(str(directory / TOPIC_MODEL_FILE))
        digest = hashlib.sha256((directory / TOPIC_MODEL_FILE).read_bytes()).hexdigest()
        save_models(directory / ARRAYS_FILE, pipeline_models(self), topic_model_sha256=np.array(digest))

    def _load_models(self, directory: Path) -> None:
        import tomotopy as tp

        model_class = tp.SLDAModel if self._is_slda else tp.LDAModel
        path = directory / TOPIC_MODEL_FILE
        # tomotopy aborts the whole process on some damaged files: their bytes are checked first
        # (models saved before the digest existed are loaded unchecked)
        saved_digest = load_arrays(directory / ARRAYS_FILE).get("topic_model_sha256")
        if saved_digest is not None:
            check_array(directory / ARRAYS_FILE, "topic_model_sha256", saved_digest, ndim=0, kind="U")
        with model_file(path):
            if saved_digest is not None and hashlib.sha256(path.read_bytes()).hexdigest() != str(saved_digest):
                raise ValueError("its sha256 differs from the one saved with the model: the file was changed or damaged")
            self.topic_model_ = model_class.load(str(path))
            if self.topic_model_.k != self.n_topics:
                raise ValueError(f"{self.topic_model_.k} topics, the config says {self.n_topics}")
        self.vocabulary_ = {word: i for i, word in enumerate(self.topic_model_.used_vocabs)}
        widths: dict[str, int | None] = {}
        if self.task_ is Task.ACSA:
            widths = {"polarity": len(self.vocabulary_), "detector": self.n_topics}
        elif not self.supervised:
            widths = {"rating": self.n_topics}
        restore_pipeline_models(self, directory / ARRAYS_FILE, widths)
