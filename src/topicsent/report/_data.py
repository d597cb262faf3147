"""What a report shows, computed from a run's flat result table.

Aggregates read only the columns they need, so a run of 700k reviews fits in memory;
review texts are fetched only for the few example reviews the report quotes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from topicsent.data import Review, ReviewSet
from topicsent.errors import InputDataError
from topicsent.runs import part_files, read_manifest
from topicsent.summary import aspect_summary, rating_summary
from topicsent.topics._drivers import driver_sentences, key_drivers

EXAMPLES_PER_SIDE = 2
EXAMPLE_ASPECTS = 6
_COLUMNS = ["review_id", "input_rating", "language", "status", "overall_rating", "overall_polarity", "overall_confidence",
            "aspect", "aspect_polarity", "aspect_confidence", "evidence", "span_start", "span_end", "opinion_start",
            "opinion_end"]  # fmt: skip


@dataclass
class RunData:
    """One run's results: metadata, the flat table (without texts) and a text lookup."""

    manifest: dict[str, Any]
    flat: pd.DataFrame
    texts: Callable[[list[str]], dict[str, str]]

    @classmethod
    def from_run(cls, run_dir: Path) -> RunData:
        manifest = read_manifest(run_dir)
        parts = part_files(run_dir)
        if not parts:
            raise InputDataError(f"{run_dir}: the run has no results yet")
        flat = pd.concat(pd.read_parquet(p, columns=_COLUMNS) for p in parts).reset_index(drop=True)

        def texts(ids: list[str]) -> dict[str, str]:
            chosen = [pd.read_parquet(p, columns=["review_id", "text"], filters=[("review_id", "in", ids)]) for p in parts]
            rows = pd.concat(chosen).drop_duplicates("review_id")
            return dict(zip(rows.review_id, rows.text, strict=True))

        return cls(manifest, flat, texts)


@dataclass
class RunSection:
    """Everything the template renders for one run."""

    title: str
    manifest: dict[str, Any]
    language: str
    reviews: int
    statuses: dict[str, int]
    aspects: list[dict[str, Any]] = field(default_factory=list)
    ratings: dict[str, Any] | None = None
    input_ratings: dict[int, int] | None = None
    drivers: pd.DataFrame | None = None
    driver_lines: list[str] = field(default_factory=list)
    drivers_note: str | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)


def run_section(run: RunData) -> RunSection:
    flat = run.flat
    per_review = flat.drop_duplicates("review_id")
    language = per_review.language.dropna().mode()
    section = RunSection(
        title=f"{run.manifest['run_id']}: {run.manifest['method']} ({run.manifest['task']})",
        manifest=run.manifest,
        language=str(language.iloc[0]) if len(language) else "en",
        reviews=len(per_review),
        statuses={str(k): int(v) for k, v in per_review.status.value_counts().items()},
        aspects=aspect_summary(flat) if flat.aspect.notna().any() else [],
    )
    if per_review.overall_rating.notna().any():
        section.ratings = rating_summary(flat)
    rated = per_review.dropna(subset=["input_rating"])
    if len(rated):
        section.input_ratings = {int(k): int(v) for k, v in rated.input_rating.value_counts().sort_index().items()}
    section.drivers, section.drivers_note = _drivers(flat, rated)
    if section.drivers is not None:
        section.driver_lines = driver_sentences(section.drivers)
    section.examples = _examples(flat, section, run.texts)
    return section


def _drivers(flat: pd.DataFrame, rated: pd.DataFrame) -> tuple[pd.DataFrame | None, str | None]:
    """Key drivers of the reviews' own ratings, when the run has both aspects and ratings."""
    if not flat.aspect.notna().any():
        return None, "Key drivers need aspects: this run's model predicts ratings only."
    if rated.empty:
        return None, "Key drivers need the reviews' own ratings: run `topicsent analyze` with --rating-col."
    mentions = flat.dropna(subset=["aspect"])
    names = dict(enumerate(sorted(mentions.aspect.unique())))
    topic_of = {name: topic for topic, name in names.items()}
    table = pd.DataFrame(
        {"review_id": mentions.review_id, "topic": mentions.aspect.map(topic_of), "polarity": mentions.aspect_polarity}
    )
    reviews = ReviewSet(tuple(Review(str(r.review_id), "", rating=int(r.input_rating)) for r in rated.itertuples()))
    try:
        return key_drivers(table, names, reviews), None
    except InputDataError as error:
        return None, f"No key drivers: {error}."


def _examples(flat: pd.DataFrame, section: RunSection, texts: Callable[[list[str]], dict[str, str]]) -> list[dict[str, Any]]:
    """A few confident example reviews per top aspect and polarity (evidence first), or
    the most confident lowest- and highest-rated reviews of a rating run."""
    answered = flat[flat.status == "ok"]
    picks = []
    if section.aspects:
        for row in section.aspects[:EXAMPLE_ASPECTS]:
            for polarity in ("positive", "negative"):
                mentions = answered[(answered.aspect == row["aspect"]) & (answered.aspect_polarity == polarity)]
                mentions = mentions.assign(has_span=mentions.span_start.notna()).sort_values(
                    ["has_span", "aspect_confidence"], ascending=False, na_position="last"
                )
                picks += [_pick(m, row["aspect"], polarity) for m in mentions.head(EXAMPLES_PER_SIDE).itertuples()]
    elif section.ratings:
        reviews = answered.drop_duplicates("review_id").dropna(subset=["overall_rating"])
        for label, ascending in (("lowest rated", True), ("highest rated", False)):
            chosen = reviews.sort_values(["overall_rating", "overall_confidence"], ascending=[ascending, False])
            picks += [_pick(m, label, m.overall_polarity, rating=m.overall_rating) for m in chosen.head(3).itertuples()]
    found = texts(sorted({p["review_id"] for p in picks})) if picks else {}
    return [p | {"text": found.get(p["review_id"], "")} for p in picks]


def _pick(row, group: str, polarity: str | None, rating: float | None = None) -> dict[str, Any]:
    span = (int(row.span_start), int(row.span_end)) if pd.notna(getattr(row, "span_start", None)) else None
    opinion = (int(row.opinion_start), int(row.opinion_end)) if pd.notna(getattr(row, "opinion_start", None)) else None
    return {"review_id": row.review_id, "group": group, "polarity": polarity, "span": span, "opinion": opinion, "rating": rating}


def read_eval(path: Path) -> dict[str, Any]:
    """An evaluation run written by ``topicsent eval`` (its JSON file)."""
    try:
        run = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputDataError(f"{path}: cannot read ({error})") from None
    if not (isinstance(run, dict) and isinstance(run.get("run"), dict) and isinstance(run.get("results"), list)):
        raise InputDataError(f"{path}: not an evaluation result file of `topicsent eval` (no run and results)")
    return run
