"""Aggregates over many analyses: how often each aspect comes up and how people feel.

This is the table a data team reads first ("service: 31% of reviews, 58% negative").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from topicsent.schema import POLARITIES, ReviewAnalysis


def aspect_summary(analyses: Sequence[ReviewAnalysis]) -> list[dict[str, Any]]:
    """Per aspect, most mentioned first: mentions, share of answered reviews that
    mention it, the share of each polarity, mean confidence."""
    answered = [a for a in analyses if a.status == "ok"]
    polarities: dict[str, Counter[str]] = defaultdict(Counter)
    confidences: dict[str, list[float]] = defaultdict(list)
    for analysis in answered:
        for aspect in analysis.aspects:
            polarities[aspect.aspect][aspect.polarity] += 1
            if aspect.confidence is not None:
                confidences[aspect.aspect].append(aspect.confidence)
    rows = []
    for name, counts in sorted(polarities.items(), key=lambda item: (-item[1].total(), item[0])):
        mentions = counts.total()
        rows.append(
            {"aspect": name, "mentions": mentions, "review_share": mentions / len(answered)}
            | {polarity: counts[polarity] / mentions for polarity in POLARITIES}
            | {"mean_confidence": sum(confidences[name]) / len(confidences[name]) if confidences[name] else None}
        )
    return rows


def rating_summary(analyses: Sequence[ReviewAnalysis]) -> dict[str, Any]:
    """Predicted rating distribution, mean rating and overall polarity shares."""
    answered = [a for a in analyses if a.status == "ok" and a.overall.rating is not None]
    ratings = Counter(round(a.overall.rating) for a in answered)
    polarity = Counter(a.overall.polarity for a in answered)
    return {
        "reviews": len(analyses),
        "answered": len(answered),
        "mean_rating": sum(a.overall.rating for a in answered) / len(answered) if answered else None,
        "distribution": dict(sorted(ratings.items())),
        "polarity": {k: v / len(answered) for k, v in polarity.most_common()} if answered else {},
    }
