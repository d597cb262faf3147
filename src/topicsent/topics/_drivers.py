"""Per-topic sentiment and ratings for a review set, and which topics move the rating.

Every segment (review or sentence) has a topic from discovery and a polarity from a
sentiment model. From those:

- :func:`topic_summary`: per topic, how many reviews mention it, how they feel about
  it, the mean star rating of those reviews, and (with dates) the same per month.
- :func:`key_drivers`: ordinary least squares of the review's star rating on
  indicators "mentions topic T positively / negatively", with percentile bootstrap
  confidence intervals over reviews. A coefficient of -0.9 on "negative: service"
  reads: reviews that complain about service rate 0.9 stars lower, other mentions
  held equal. Associations, not causes.

When the user gives no sentiment model but the reviews carry ratings, segment
polarity comes from a TF-IDF polarity classifier trained on the ratings (read as
negative / neutral / positive) with two-fold cross-fitting: each review's sentences
are scored by the model fitted on the other half, so a review's own rating never
labels its own sentences.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from topicsent.data import Review, ReviewSet, one_class_problem
from topicsent.errors import InputDataError
from topicsent.schema import Task
from topicsent.topics._discover import Segment
from topicsent.topics._taxonomy import OUTLIER

BOOTSTRAP_SAMPLES = 200
MIN_SUPPORT = 10  # reviews an indicator needs before it gets a coefficient
POLARITIES = ("positive", "negative", "neutral")


def segment_polarities(segments: Sequence[Segment], reviews: ReviewSet, *, method=None, seed: int = 0) -> list[str | None]:
    """The polarity of each segment: from ``method`` (a fitted rating method: the
    rating it predicts, read on its scale) when given, else from a cross-fitted
    polarity classifier trained on the reviews' own ratings."""
    language = reviews.language or "en"
    if method is not None:
        pseudo = [Review(id=f"{s.review_id}:{s.start}", text=s.text, language=language) for s in segments]
        space = method.label_space_
        return [space.rating_polarity(a.overall.rating) if a.status == "ok" else None for a in method.predict(pseudo)]
    check_rating_supervision(reviews)
    fold_of = {r.id: i % 2 for i, r in enumerate(reviews.sample(None, seed=seed))}
    polarities: list[str | None] = [None] * len(segments)
    for fold in (0, 1):
        train = [r for r in reviews if fold_of[r.id] != fold]
        classifier = _polarity_classifier(language, seed).fit(
            [r.text for r in train], [reviews.label_space.rating_polarity(r.rating) for r in train]
        )
        rows = [i for i, s in enumerate(segments) if fold_of[s.review_id] == fold]
        for row, polarity in zip(rows, classifier.predict([segments[i].text for i in rows]), strict=True):
            polarities[row] = str(polarity)
    return polarities


def check_rating_supervision(reviews: ReviewSet) -> None:
    """Raise :class:`InputDataError` unless the reviews' own ratings can teach sentiment
    and drive the key-driver regression: one per review, at least ``2 * MIN_SUPPORT``
    reviews, and at least two different values (the polarity of a rating is its place
    between the lowest and highest rating, which one value does not have). Cheap, so
    callers run it before topic discovery."""
    if any(r.rating is None for r in reviews) or len(reviews) < 2 * MIN_SUPPORT:
        raise InputDataError(
            f"per-topic sentiment needs a rating on each of at least {2 * MIN_SUPPORT} reviews (--rating-col) "
            "or a trained rating model (--sentiment-model)"
        )
    if problem := one_class_problem(reviews, Task.RATING, "per-topic sentiment and key drivers from ratings"):
        raise InputDataError(f"{reviews.name}: {problem}; give a trained rating model (--sentiment-model) or drop --rating-col")


def _polarity_classifier(language: str, seed: int):
    """TF-IDF + logistic regression with balanced classes: ratings are mostly high, and an
    unweighted model would almost never call a sentence negative."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    vectorizer = (
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
        if language == "ko"
        else TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    )
    return make_pipeline(vectorizer, LogisticRegression(C=4.0, class_weight="balanced", max_iter=1000, random_state=seed))


def segment_table(segments: Sequence[Segment], topics: np.ndarray, polarities: Sequence[str | None]) -> pd.DataFrame:
    """One row per segment that has a topic and a polarity: review id, topic, polarity."""
    table = pd.DataFrame({"review_id": [s.review_id for s in segments], "topic": topics, "polarity": polarities})
    return table[(table.topic != OUTLIER) & table.polarity.notna()]


def topic_summary(table: pd.DataFrame, names: dict[int, str], reviews: ReviewSet) -> pd.DataFrame:
    """Per topic: reviews mentioning it, their share, polarity shares, mean gold rating."""
    gold = {r.id: r.rating for r in reviews}
    per_review = table.groupby(["topic", "review_id"]).polarity.agg(review_polarity).reset_index()
    rows = []
    for topic, group in per_review.groupby("topic"):
        shares = group.polarity.value_counts(normalize=True)
        ratings = [gold[r] for r in group.review_id if gold.get(r) is not None]
        rows.append({
            "topic": names.get(int(topic), str(topic)), "topic_id": int(topic), "reviews": len(group),
            "review_share": len(group) / len(reviews),
            **{polarity: float(shares.get(polarity, 0.0)) for polarity in (*POLARITIES, "mixed")},
            "mean_rating": float(np.mean(ratings)) if ratings else None,
        })  # fmt: skip
    return pd.DataFrame(rows).sort_values("reviews", ascending=False, ignore_index=True)


def review_polarity(polarities: pd.Series) -> str:
    """One review's feeling about one topic over its sentences: positive and negative
    sentences together make ``mixed``."""
    found = set(polarities)
    if {"positive", "negative"} <= found:
        return "mixed"
    return next((p for p in ("positive", "negative") if p in found), "neutral")


def topic_trend(table: pd.DataFrame, names: dict[int, str], dates: dict[str, str], *, freq: str = "M") -> pd.DataFrame:
    """Per topic and period (month by default): reviews mentioning it and the positive share."""
    parsed = pd.to_datetime(pd.Series(dates), errors="coerce")
    if parsed.isna().all():
        raise InputDataError("no value of the date column parses as a date")
    frame = table.assign(period=table.review_id.map(parsed).dt.to_period(freq).astype(str))
    frame = frame[frame.period != "NaT"]
    per_review = frame.groupby(["period", "topic", "review_id"]).polarity.agg(review_polarity).reset_index()
    trend = per_review.groupby(["period", "topic"]).polarity.agg(
        reviews="size", positive_share=lambda p: float((p == "positive").mean())
    )
    trend = trend.reset_index()
    trend["topic"] = trend.topic.map(lambda t: names.get(int(t), str(t)))
    return trend


def key_drivers(
    table: pd.DataFrame, names: dict[int, str], reviews: ReviewSet, *, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES
) -> pd.DataFrame:
    """OLS of the gold rating on per-topic positive/negative mention indicators, with
    95% bootstrap intervals; rows sorted by effect size."""
    rated = [r for r in reviews if r.rating is not None]
    if len(rated) < 2 * MIN_SUPPORT:
        raise InputDataError(f"key-driver analysis needs ratings on at least {2 * MIN_SUPPORT} reviews")
    per_review = table.groupby(["review_id", "topic"]).polarity.agg(review_polarity).reset_index()
    columns, indicators = _indicator_matrix(per_review, [r.id for r in rated])
    if not columns:
        raise InputDataError(f"no topic/polarity is mentioned by at least {MIN_SUPPORT} rated reviews")
    y = np.array([r.rating for r in rated], dtype=float)
    X = np.column_stack([np.ones(len(y)), indicators])
    coef = np.linalg.lstsq(X, y, rcond=None)[0][1:]
    rng = np.random.default_rng(seed)
    draws = np.empty((samples, len(columns)))
    for b in range(samples):
        rows = rng.integers(0, len(y), len(y))
        draws[b] = np.linalg.lstsq(X[rows], y[rows], rcond=None)[0][1:]
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    drivers = pd.DataFrame({
        "topic": [names.get(topic, str(topic)) for topic, _ in columns], "polarity": [p for _, p in columns],
        "effect": coef, "ci_low": low, "ci_high": high, "support": indicators.sum(axis=0).astype(int),
    })  # fmt: skip
    drivers["significant"] = (drivers.ci_low > 0) | (drivers.ci_high < 0)
    return drivers.reindex(drivers.effect.abs().sort_values(ascending=False).index).reset_index(drop=True)


def _indicator_matrix(per_review: pd.DataFrame, review_ids: list[str]) -> tuple[list[tuple[int, str]], np.ndarray]:
    """Columns (topic, polarity) for positive and negative mentions ("mixed" counts as
    both) with at least MIN_SUPPORT reviews; rows in ``review_ids`` order."""
    position = {review_id: i for i, review_id in enumerate(review_ids)}
    columns, blocks = [], []
    for topic in sorted(per_review.topic.unique()):
        mentions = per_review[per_review.topic == topic]
        for polarity in ("positive", "negative"):
            hits = mentions[mentions.polarity.isin([polarity, "mixed"])].review_id
            column = np.zeros(len(review_ids))
            column[[position[r] for r in hits if r in position]] = 1.0
            if column.sum() >= MIN_SUPPORT:
                columns.append((int(topic), polarity))
                blocks.append(column)
    return columns, np.column_stack(blocks) if blocks else np.empty((len(review_ids), 0))


def driver_sentences(drivers: pd.DataFrame, top: int = 5) -> list[str]:
    """Plain-language lines for the strongest significant drivers."""
    lines = []
    for row in drivers[drivers.significant].head(top).itertuples():
        lines.append(
            f"{row.polarity} {row.topic!r} is associated with {row.effect:+.2f} stars "
            f"(95% CI {row.ci_low:+.2f} to {row.ci_high:+.2f}; {row.support} reviews)"
        )
    return lines
