"""Discovery -> per-topic sentiment -> key drivers, as one call and one output folder.

The folder holds everything a person or the next step needs:

- ``taxonomy.json``: the topics (edit names, merge with ``topicsent topics-edit``);
- ``segments.parquet``: every review/sentence with its topic (-1: outlier) and polarity;
- ``topics.csv``, ``drivers.csv``, ``trend.csv``: the per-topic tables;
- ``labelled.jsonl``: the reviews with their topics as ACSA categories and polarities,
  which any ACSA method trains on (``topicsent train --data labelled.jsonl
  --aspects-col aspects --taxonomy taxonomy.json``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from topicsent.data import Review, ReviewSet
from topicsent.errors import InvalidParameterError
from topicsent.schema import write_csv
from topicsent.topics._discover import AUTO, UNITS, Discovery, discover_topics
from topicsent.topics._drivers import (
    check_rating_supervision,
    driver_sentences,
    key_drivers,
    review_polarity,
    segment_polarities,
    segment_table,
    topic_summary,
    topic_trend,
)

#: A review that is both positive and negative about a topic is a ``conflict`` in ACSA terms.
_ACSA_POLARITY = {"positive": "positive", "negative": "negative", "neutral": "neutral", "mixed": "conflict"}


@dataclass
class TopicAnalysis:
    discovery: Discovery
    segments: pd.DataFrame
    summary: pd.DataFrame | None = None
    drivers: pd.DataFrame | None = None
    trend: pd.DataFrame | None = None

    @property
    def findings(self) -> list[str]:
        return driver_sentences(self.drivers) if self.drivers is not None else []

    def write(self, folder: str | Path, reviews: ReviewSet) -> Path:
        """Write the output folder (see the module docstring)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.discovery.taxonomy.save(folder / "taxonomy.json")
        self.segments.to_parquet(folder / "segments.parquet", index=False)
        for name in ("summary", "drivers", "trend"):
            table = getattr(self, name)
            if table is not None:
                write_csv(table, folder / f"{'topics' if name == 'summary' else name}.csv")
        if "polarity" in self.segments:
            write_labelled(folder / "labelled.jsonl", self.segments, reviews)
        return folder


def analyze_topics(
    reviews: ReviewSet,
    *,
    unit: str = "review",
    encoder: str | None = None,
    min_topic_size: int | None = None,
    n_topics: int | None = None,
    outlier_threshold: float | str | None = AUTO,
    outlier_share: float | None = None,
    sentiment_method=None,
    dates: dict[str, str] | None = None,
    namer: str | None = None,
    seed: int = 0,
) -> TopicAnalysis:
    """Discover topics; with ratings or a sentiment model, also per-topic sentiment,
    key drivers (ratings needed) and the monthly trend (dates needed). ``namer``
    (``BACKEND:MODEL``) has an LLM name and describe each topic. ``outlier_threshold``
    and ``outlier_share``: which outliers of clustering join their nearest topic (see
    :func:`~topicsent.topics.assign_outliers`)."""
    if unit not in UNITS:
        raise InvalidParameterError(f"unit must be one of {', '.join(UNITS)}; got {unit!r}")
    language = reviews.language or "en"
    has_ratings = all(r.rating is not None for r in reviews)
    if sentiment_method is None and has_ratings:
        check_rating_supervision(reviews)  # before the expensive discovery, not after it
    discovery = discover_topics(
        list(reviews), language=language, unit=unit, encoder=encoder, min_topic_size=min_topic_size, n_topics=n_topics,
        outlier_threshold=outlier_threshold, outlier_share=outlier_share, seed=seed,
    )  # fmt: skip
    if namer:
        from topicsent.topics._naming import name_topics

        discovery = replace(discovery, taxonomy=name_topics(discovery.taxonomy, namer)[0])
    segments = discovery.assignments()
    if sentiment_method is None and not has_ratings:
        return TopicAnalysis(discovery, segments)
    segments["polarity"] = segment_polarities(discovery.segments, reviews, method=sentiment_method, seed=seed)
    table = segment_table(discovery.segments, discovery.topics, segments["polarity"])
    names = discovery.taxonomy.names_by_id()
    return TopicAnalysis(
        discovery,
        segments,
        summary=topic_summary(table, names, reviews),
        drivers=key_drivers(table, names, reviews, seed=seed) if has_ratings else None,
        trend=topic_trend(table, names, dates) if dates else None,
    )


def write_labelled(path: Path, segments: pd.DataFrame, reviews: Iterable[Review]) -> None:
    """Each review with its topics as ACSA aspects (a review both for and against a topic: ``conflict``)."""
    in_topics = segments[(segments.topic >= 0) & segments.polarity.notna()]
    feelings = in_topics.groupby(["review_id", "topic_name"]).polarity.agg(review_polarity)
    aspects: dict[str, list[dict]] = {}
    for (review_id, topic), polarity in feelings.items():
        aspects.setdefault(review_id, []).append({"aspect": topic, "polarity": _ACSA_POLARITY[polarity]})
    with path.open("w", encoding="utf-8") as out:
        for review in reviews:
            record = {"id": review.id, "text": review.text, "aspects": aspects.get(review.id, [])}
            if review.rating is not None:
                record["rating"] = review.rating
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
