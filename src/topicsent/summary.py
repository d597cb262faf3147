"""Aggregates over many analyses: how often each aspect comes up and how people feel.

This is the table a data team reads first ("service: 31% of reviews, 58% negative").
Both functions read the flat result table (:func:`topicsent.schema.to_dataframe`, or
the Parquet parts of a run), so the demo, the CLI and the HTML report count the same way.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from topicsent.schema import POLARITIES


def aspect_summary(flat: pd.DataFrame) -> list[dict[str, Any]]:
    """Per aspect, most mentioned first: mentions, share of answered reviews that
    mention it, the share of each polarity, mean confidence."""
    answered = flat[flat.status == "ok"]
    n_reviews = answered.review_id.nunique()
    mentions = answered.dropna(subset=["aspect"])
    rows = []
    for name, group in mentions.groupby("aspect", sort=False):
        shares = group.aspect_polarity.value_counts(normalize=True)
        confidence = group.aspect_confidence.dropna()
        rows.append(
            {"aspect": name, "mentions": len(group), "review_share": group.review_id.nunique() / n_reviews}
            | {polarity: float(shares.get(polarity, 0.0)) for polarity in POLARITIES}
            | {"mean_confidence": float(confidence.mean()) if len(confidence) else None}
        )
    return sorted(rows, key=lambda row: (-row["mentions"], row["aspect"]))


def rating_summary(flat: pd.DataFrame) -> dict[str, Any]:
    """Predicted rating distribution, mean rating and overall polarity shares."""
    reviews = flat.drop_duplicates("review_id")
    answered = reviews[(reviews.status == "ok") & reviews.overall_rating.notna()]
    ratings = answered.overall_rating.astype(float).round().astype(int).value_counts().sort_index()
    return {
        "reviews": len(reviews),
        "answered": len(answered),
        "mean_rating": float(answered.overall_rating.mean()) if len(answered) else None,
        "distribution": {int(k): int(v) for k, v in ratings.items()},
        "polarity": {str(k): float(v) for k, v in answered.overall_polarity.value_counts(normalize=True).items()},
    }
