"""Topic-model benchmark: the LDA baseline against embedding clustering (BERTopic).

Both fit on the same reviews (texts only). Per dataset and model:

- coherence (NPMI, C_V) of the top-10 keywords, counted over all the reviews used
  (fitted and test: co-occurrence statistics of a few hundred short sentences are
  too sparse), and keyword diversity;
- where gold categories exist (MAMS, SemEval-14): topics are fitted on train and test
  texts together (discovery is unsupervised), each topic is mapped to the categories
  that at least half of its *training* reviews carry, and test reviews are scored:
  micro-F1 of the mapped categories against gold (``mapped_detection_f1``), and NMI,
  ARI and purity on test reviews with exactly one gold category.

Clustering is fitted once and scored under each rule for its outliers
(:data:`OUTLIER_RULES`): kept as clustering left them (outliers get no category), the
default automatic threshold, and every outlier joined to its closest topic, LDA's
situation (it has no outliers). Keywords come from the clustered units, so coherence
and diversity are the same under every rule; outlier share and gold alignment differ.
LDA runs twice: with as many topics as clustering found (a like-for-like comparison)
and with its usual 20.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from topicsent._progress import progress_bar
from topicsent._provenance import git_commit
from topicsent.data import Review, load_dataset
from topicsent.text import content_words
from topicsent.topics import OUTLIER, alignment, assign_outliers, discover_topics, topic_quality

#: Training reviews topics are fitted on (None: all); ACSA sets also add their test texts.
FIT_SAMPLES = {"womens-clothing": 6000, "nsmc": 20000, "mams-acsa": None, "semeval14-acsa": None}
REFERENCE_SAMPLE = 20000
LDA_DEFAULT_TOPICS = 20
CATEGORY_SHARE = 0.5
CLUSTERING = "embedding-clustering"
#: Model-name suffix -> how outliers are treated (arguments of assign_outliers); "" is the default of `topics`
OUTLIER_RULES: dict[str, dict[str, Any]] = {
    " (outliers kept)": {"threshold": None},
    "": {"threshold": "auto"},
    " (all outliers assigned)": {"threshold": -1.0},
}


@dataclass
class TopicModelResult:
    dataset: str
    model: str
    n_topics: int
    npmi: float
    c_v: float
    diversity: float
    outlier_share: float
    seconds: float
    n_fit: int
    outlier_threshold: float | None = None
    mapped_detection_f1: float | None = None
    nmi: float | None = None
    ari: float | None = None
    purity: float | None = None
    example_keywords: list[list[str]] | None = None


def evaluate_topic_models(
    dataset: str,
    *,
    seed: int = 0,
    fit_sample: int | None = None,
    test_sample: int | None = None,
    lda: bool = True,
    outlier_rules: dict[str, dict[str, Any]] | None = None,
) -> list[TopicModelResult]:
    """Embedding clustering (once per outlier rule) and LDA on one dataset (see the module docstring).

    ``fit_sample`` / ``test_sample``: seeded samples of the training and test reviews
    (defaults: :data:`FIT_SAMPLES`, and up to 20,000 test reviews); ``outlier_rules``
    defaults to :data:`OUTLIER_RULES`.
    """
    splits = load_dataset(dataset)
    language = splits.train.language
    has_categories = splits.train.label_space.categories is not None
    train = list(splits.train.sample(fit_sample or FIT_SAMPLES.get(dataset), seed=seed))
    test = list(splits.test.sample(test_sample or REFERENCE_SAMPLE, seed=seed))
    fitted = train + test if has_categories else train
    # co-occurrence needs many documents: short review sentences rarely share words
    reference = content_words([r.text for r in dict.fromkeys(train + test)], language)

    began = time.perf_counter()
    discovery = discover_topics(fitted, language=language, seed=seed, outlier_threshold=None)
    keywords = [t.keywords for t in discovery.taxonomy.topics]
    found = _result(dataset, CLUSTERING, keywords, reference, time.perf_counter() - began, len(fitted))
    results = []
    for suffix, rule in (OUTLIER_RULES if outlier_rules is None else outlier_rules).items():
        topics, report = assign_outliers(discovery.topics, discovery.embeddings, **rule)
        left = (report.found - report.joined) / len(fitted)
        result = replace(found, model=CLUSTERING + suffix, outlier_share=left, outlier_threshold=report.threshold)
        if has_categories:
            _add_category_scores(result, topics, train, test)
        results.append(result)
    if lda:
        for k in sorted({max(2, found.n_topics), LDA_DEFAULT_TOPICS}):
            results.append(_lda_result(dataset, fitted, train, test, reference, k, seed, has_categories, language))
    return results


def _lda_result(dataset, fitted, train, test, reference, k, seed, has_categories, language) -> TopicModelResult:
    from topicsent.data import ReviewSet
    from topicsent.methods import make_method

    began = time.perf_counter()
    lda = make_method("lda", n_topics=k, random_state=seed, remove_top=3 if language == "ko" else 0)
    lda.fit_topics(ReviewSet(tuple(fitted), language=language))
    result = _result(dataset, f"lda (k={k})", lda.topic_keywords(10), reference, time.perf_counter() - began, len(fitted))
    if has_categories:
        _add_category_scores(result, lda.topic_mixture(fitted).argmax(axis=1), train, test)
    return result


def _result(dataset, model, keywords, reference, seconds, n_fit, outlier_share=0.0) -> TopicModelResult:
    quality = topic_quality(keywords, reference)
    return TopicModelResult(
        dataset=dataset, model=model, n_topics=len(keywords), npmi=quality["npmi"], c_v=quality["c_v"],
        diversity=quality["diversity"], outlier_share=outlier_share, seconds=seconds, n_fit=n_fit,
        example_keywords=[list(words)[:6] for words in keywords[:5]],
    )  # fmt: skip


def _add_category_scores(result: TopicModelResult, topics: np.ndarray, train: Sequence[Review], test: Sequence[Review]) -> None:
    """Map topics to categories on train (topics of ``train + test`` in that order), score on test."""
    train_topics, test_topics = topics[: len(train)], topics[len(train) :]
    by_topic: dict[int, Counter] = {}
    topic_sizes: Counter = Counter()
    for topic, review in zip(train_topics, train, strict=True):
        topic_sizes[int(topic)] += 1
        by_topic.setdefault(int(topic), Counter()).update({a.name for a in review.aspects})
    categories_of = {
        topic: {c for c, n in counts.items() if n >= CATEGORY_SHARE * topic_sizes[topic]}
        for topic, counts in by_topic.items()
        if topic != OUTLIER
    }
    found = [categories_of.get(int(t), set()) for t in test_topics]
    gold = [{a.name for a in r.aspects} for r in test]
    true_positive = sum(len(f & g) for f, g in zip(found, gold, strict=True))
    predicted, actual = sum(map(len, found)), sum(map(len, gold))
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / actual if actual else 0.0
    result.mapped_detection_f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    single = [(int(t), next(iter(g))) for t, g in zip(test_topics, gold, strict=True) if len(g) == 1]
    if len(single) >= 2:
        scores = alignment([t for t, _ in single], [c for _, c in single])
        result.nmi, result.ari, result.purity = scores["nmi"], scores["ari"], scores["purity"]


def run_topic_benchmark(datasets: Sequence[str], *, seed: int = 0, on_result=None) -> dict[str, Any]:
    """Every dataset in turn; ``on_result(run)`` after each so partial runs are kept."""
    run: dict[str, Any] = {
        "run": {"started": datetime.now(UTC).isoformat(timespec="seconds"), "commit": git_commit(), "seed": seed},
        "results": [],
    }
    for dataset in datasets:
        with progress_bar(f"topics: {dataset}", total=None):
            results = evaluate_topic_models(dataset, seed=seed)
        run["results"].extend(asdict(r) for r in results)
        if on_result:
            on_result(run)
    return run
