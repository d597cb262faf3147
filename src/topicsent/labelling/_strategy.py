"""Which reviews to ask a person to label next (active learning): one strategy, used by
the labelling page's queue and by the active-learning benchmark alike.

The strategy, and where each part comes from:

1. **A seeded random start.** Until the model was trained on ``random_start`` labels,
   reviews are taken in random order: a model trained on a few dozen labels is badly
   calibrated, so its "least sure" reviews are mostly outliers (the cold-start problem
   of uncertainty sampling; Settles 2009, *Active Learning Literature Survey*, §6;
   Ein-Dor et al. 2020, *Active Learning for BERT*, start from 100 random labels).
   A model trained elsewhere (a served model that pre-fills a project) is not cold.
2. **Margin uncertainty.** A review's uncertainty is 1 minus the margin between the
   model's best and second-best class probabilities (Scheffer et al. 2001; Settles
   2009, §3.1), not 1 minus the best one (least confidence): with three or more
   classes the margin looks at the decision the label would settle.
3. **ACSA: the largest mention-weighted category uncertainty.** A category's polarity
   uncertainty counts in proportion to the probability that the review mentions the
   category, so a category the review barely mentions cannot pick it; the review's
   score is the largest of these (the label it is most likely to settle). The
   mention-weighted mean and sum are options (``aggregate``): measured on MAMS-ACSA
   (docs/labelling.md), the maximum needed the fewest labels, by less than the spread
   between seeds.
4. **A diverse batch.** Between two retrains many reviews are labelled; the k most
   uncertain are often near-duplicates. The ``candidates`` x k most uncertain are
   clustered into k groups (k-means on the reviews' tf-idf vectors reduced by SVD) and
   the most uncertain review of each group is taken (Zhdanov 2019, *Diverse mini-batch
   Active Learning*, arXiv:1901.05954; Citovsky et al. 2021, *Batch Active Learning at
   Scale* (cluster-margin), NeurIPS).

Methods without class probabilities (ratings by regression, LLM prompting) fall back
to 1 minus their least confident answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from topicsent.data import Review
from topicsent.errors import InvalidParameterError
from topicsent.methods import AspectPipelineMethod, BaseMethod, review_confidence
from topicsent.schema import ReviewAnalysis, Task

AGGREGATES = ("max", "mean", "sum")
#: Dimensions of the SVD-reduced tf-idf vectors that batches are made diverse on.
DIVERSITY_DIMS = 100


def uncertainty(analysis: ReviewAnalysis) -> float:
    """How unsure a model is of one answer: 1 minus its least confident part; 1.0 when
    it gave no answer with a confidence (nothing found, abstained, an error), since such
    a review is worth a label. The fallback of :func:`review_uncertainty`."""
    confidence = review_confidence(analysis) if analysis.status == "ok" else None
    return 1.0 if confidence is None else 1.0 - confidence


def _margin_uncertainty(proba: np.ndarray) -> np.ndarray:
    """1 - (best - second best) along the last axis."""
    top = np.sort(proba, axis=-1)
    return 1.0 - (top[..., -1] - top[..., -2]) if proba.shape[-1] > 1 else np.zeros(proba.shape[:-1])


def review_uncertainty(
    model: BaseMethod,
    reviews: Sequence[Review],
    analyses: Sequence[ReviewAnalysis] | None = None,
    *,
    categories: Collection[str] | None = None,
    aggregate: str = "max",
) -> np.ndarray:
    """Per review, how much a label would teach ``model``, in [0, 1] (higher: ask sooner).

    Ratings: 1 - margin of the rating-class probabilities. ACSA with a model that gives
    category probabilities: the categories' polarity margin uncertainties, each times
    the probability that the review mentions the category, aggregated (``aggregate``).
    Otherwise: :func:`uncertainty` of each answer.

    Parameters
    ----------
    model : BaseMethod
        A fitted model.
    reviews : sequence of Review
        Reviews with text.
    analyses : sequence of ReviewAnalysis, optional
        The model's answers to ``reviews``, if already made (saves a pass for the fallback).
    categories : collection of str, optional
        ACSA: only these of the model's categories count (a project's taxonomy when a
        model trained on a larger one pre-fills it). Default: all of them.
    aggregate : {"max", "mean", "sum"}, default="max"
        ACSA: how the categories' uncertainties, each weighted by its mention
        probability, make the review's: the largest, their weighted mean, or their sum
        (the expected number of uncertain labels; not bounded by 1).

    Returns
    -------
    numpy.ndarray of shape (n_reviews,)
    """
    if not reviews:
        return np.zeros(0)
    if model.task_ is Task.RATING and hasattr(model, "classes_"):
        try:
            return _margin_uncertainty(model.predict_proba(list(reviews)))
        except InvalidParameterError:  # a regression: no class probabilities
            pass
    if model.task_ is Task.ACSA and isinstance(model, AspectPipelineMethod):
        mention, polarity = model.category_proba(reviews)
        if categories is not None:
            mention = mention * np.array([c in categories for c in model.categories])
        weighted = mention * _margin_uncertainty(polarity)
        if aggregate == "max":
            return weighted.max(axis=1, initial=0.0)
        unsure, weight = weighted.sum(axis=1), mention.sum(axis=1)
        if aggregate == "sum":
            return unsure
        return np.divide(unsure, weight, out=np.ones_like(unsure), where=weight > 0)
    analyses = analyses if analyses is not None else model.predict(list(reviews))
    return np.array([uncertainty(a) for a in analyses])


def pool_vectors(texts: Sequence[str], language: str = "en") -> np.ndarray:
    """Unit-length tf-idf vectors of ``texts`` reduced by SVD to at most
    :data:`DIVERSITY_DIMS` dimensions (word 1-2 grams; character 1-3 grams for Korean),
    the space in which a batch is made diverse; shape ``(n_texts, dims)``."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    analyzer, grams = ("char_wb", (1, 3)) if language == "ko" else ("word", (1, 2))
    try:
        tfidf = TfidfVectorizer(analyzer=analyzer, ngram_range=grams, sublinear_tf=True).fit_transform(texts)
    except ValueError:  # no word at all (empty or stop-word-only texts): no direction to spread along
        return np.zeros((len(texts), 1))
    dims = min(DIVERSITY_DIMS, tfidf.shape[0] - 1, tfidf.shape[1] - 1)
    if dims < 2:
        return normalize(tfidf).toarray()
    return normalize(TruncatedSVD(n_components=dims, random_state=0).fit_transform(tfidf))


@dataclass(frozen=True)
class QueryStrategy:
    """Picks the next batch of reviews to label (see the module docstring for the sources).

    Parameters
    ----------
    random_start : int, default=100
        Labels taken in random order before a model's uncertainty is trusted.
    candidates : int, default=10
        A batch of k reviews is picked among the ``candidates * k`` most uncertain.
    aggregate : {"max", "mean", "sum"}, default="max"
        ACSA: how categories make a review's uncertainty (see :func:`review_uncertainty`).
    """

    random_start: int = 100
    candidates: int = 10
    aggregate: str = "max"

    def __post_init__(self) -> None:
        if self.random_start < 0 or self.candidates < 1 or self.aggregate not in AGGREGATES:
            raise InvalidParameterError(
                f"QueryStrategy needs random_start >= 0, candidates >= 1 and aggregate in {AGGREGATES}; "
                f"got {self.random_start}, {self.candidates}, {self.aggregate!r}"
            )

    def uncertainty(
        self,
        model: BaseMethod,
        reviews: Sequence[Review],
        analyses: Sequence[ReviewAnalysis] | None = None,
        *,
        categories: Collection[str] | None = None,
    ) -> np.ndarray:
        """:func:`review_uncertainty` with this strategy's ``aggregate``."""
        return review_uncertainty(model, reviews, analyses, categories=categories, aggregate=self.aggregate)

    def random_picks(self, k: int, trained_on: int | None) -> int:
        """How many of the next ``k`` picks are random for a model trained on
        ``trained_on`` labels (None: a model trained elsewhere, not cold)."""
        return 0 if trained_on is None else max(0, min(k, self.random_start - trained_on))

    def select(
        self,
        k: int,
        *,
        uncertainty: np.ndarray,
        vectors: np.ndarray,
        random_order: Sequence[int],
        trained_on: int | None,
        seed: int = 0,
    ) -> list[int]:
        """The next ``k`` reviews to label, as positions in the pool of unlabelled reviews,
        in the order to ask them.

        Parameters
        ----------
        k : int
            Batch size (labels until the next retrain).
        uncertainty : numpy.ndarray of shape (n_pool,)
            :func:`review_uncertainty` of the pool (ignored for random picks).
        vectors : numpy.ndarray of shape (n_pool, dims)
            :func:`pool_vectors` of the pool.
        random_order : sequence of int
            The pool positions in a seeded random order: the random picks are its first ones.
        trained_on : int or None
            Labels the model was trained on (see :meth:`random_picks`).
        seed : int, default=0
            Seed of the clustering.

        Returns
        -------
        list of int
            ``min(k, n_pool)`` distinct positions: the random picks first, then the
            diverse uncertain ones, most uncertain first.
        """
        k = min(k, len(vectors))
        picked = list(random_order[: self.random_picks(k, trained_on)])
        left = k - len(picked)
        if left <= 0:
            return picked
        taken = set(picked)
        ranked = [i for i in np.argsort(-uncertainty, kind="stable") if i not in taken]
        pool = np.array(ranked[: self.candidates * left])
        if left == 1 or len(pool) <= left:
            return picked + [int(i) for i in pool[:left]]
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():  # fewer distinct vectors than clusters is handled below
            warnings.simplefilter("ignore", ConvergenceWarning)
            groups = KMeans(n_clusters=left, n_init=1, random_state=seed).fit_predict(vectors[pool])
        best: dict[int, int] = {}
        for i, group in zip(pool, groups, strict=True):  # pool is most uncertain first
            best.setdefault(int(group), int(i))
        chosen = sorted(best.values(), key=lambda i: -uncertainty[i])
        if len(chosen) < left:  # k-means can leave a cluster empty on repeated vectors
            have = set(chosen)
            chosen += [int(i) for i in pool if int(i) not in have][: left - len(chosen)]
        return picked + chosen
