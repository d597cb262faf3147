"""The in-memory form of labelled reviews that every loader produces.

Reviews are frozen slotted dataclasses rather than pydantic models: NSMC alone has
712k of them, and the loaders validate while reading, so per-object validation would
only cost time.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from topicsent.schema import Task


@dataclass(frozen=True, slots=True)
class OpinionLabel:
    """An opinion term of an aspect term (ASTE triplets): its Python slice offsets in the
    review text and the polarity it gives the aspect."""

    start: int
    end: int
    polarity: str | None = None


@dataclass(frozen=True, slots=True)
class AspectLabel:
    """One aspect of a review: a category or a term, with its gold polarity if known.

    ``start``/``end`` are Python slice offsets of a term in the review text;
    ``opinions`` the opinion terms annotated for it (triplet data; empty elsewhere).
    """

    name: str
    kind: str = "category"
    polarity: str | None = None
    start: int | None = None
    end: int | None = None
    opinions: tuple[OpinionLabel, ...] = ()


@dataclass(frozen=True, slots=True)
class Review:
    """One review: text, optional gold rating and aspects, and free metadata."""

    id: str
    text: str
    language: str = "en"
    rating: int | None = None
    aspects: tuple[AspectLabel, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: Why this row cannot be analysed (e.g. its text is not valid Unicode); it is then
    #: kept as that row's ``error``, never a failure of its batch.
    problem: str | None = None

    @property
    def analysable(self) -> bool:
        """A non-empty text without a problem: what a method is given to analyse."""
        return self.problem is None and bool(self.text.strip())

    def unlabelled(self) -> Review:
        """The same review with gold polarities, opinions and rating hidden but aspect names and
        spans kept: what a method sees when asked about given aspects."""
        hidden = tuple(replace(a, polarity=None, opinions=()) for a in self.aspects)
        return replace(self, rating=None, aspects=hidden)

    def text_only(self) -> Review:
        """The review without any labels or aspects: what a method sees in real use."""
        return replace(self, rating=None, aspects=())


@dataclass(frozen=True, slots=True)
class LabelSpace:
    """What labels a review set can carry.

    ``categories`` is the taxonomy for ACSA (None when aspects are free terms);
    ``rating_scale`` the inclusive integer range of ratings, e.g. ``(1, 5)``.
    """

    polarities: tuple[str, ...] = ("positive", "negative", "neutral")
    categories: tuple[str, ...] | None = None
    rating_scale: tuple[int, int] | None = None

    @property
    def ratings(self) -> list[int]:
        if self.rating_scale is None:
            return []
        low, high = self.rating_scale
        return list(range(low, high + 1))

    def rating_polarity(self, rating: float) -> str:
        """Overall polarity implied by a rating: bottom 40% of the scale negative,
        top 40% positive, the middle neutral (1-5 stars: 1-2 / 3 / 4-5)."""
        low, high = self.rating_scale or (0, 1)
        position = (rating - low) / (high - low)
        if position < 0.4:
            return "negative"
        return "positive" if position > 0.6 else "neutral"

    def to_dict(self) -> dict[str, Any]:
        return {
            "polarities": list(self.polarities),
            "categories": list(self.categories) if self.categories is not None else None,
            "rating_scale": list(self.rating_scale) if self.rating_scale else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelSpace:
        return cls(
            polarities=tuple(data["polarities"]),
            categories=tuple(data["categories"]) if data.get("categories") is not None else None,
            rating_scale=tuple(data["rating_scale"]) if data.get("rating_scale") else None,
        )


@dataclass(frozen=True)
class ReviewSet(Sequence[Review]):
    """A list of reviews plus what they are about: name, task, language, label space,
    and ``notes``: one line per source file on what its loader skipped (unparseable
    lines, terms not in the text), which runs report beside their numbers."""

    reviews: tuple[Review, ...]
    label_space: LabelSpace = LabelSpace()
    task: Task | None = None
    name: str = "reviews"
    language: str = "en"
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.reviews)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return self.with_reviews(self.reviews[index])
        return self.reviews[index]

    def __iter__(self) -> Iterator[Review]:
        return iter(self.reviews)

    def with_reviews(self, reviews: Sequence[Review], name: str | None = None) -> ReviewSet:
        """A review set with the same labels and task but other reviews."""
        return replace(self, reviews=tuple(reviews), name=name or self.name)

    def sample(self, n: int | None, seed: int = 0) -> ReviewSet:
        """A seeded random sample of ``n`` reviews in their original order (all if
        ``n`` is None or not smaller than the set)."""
        if n is None or n >= len(self.reviews):
            return self
        keep = sorted(random.Random(seed).sample(range(len(self.reviews)), n))
        return self.with_reviews([self.reviews[i] for i in keep])

    def unlabelled(self) -> ReviewSet:
        return self.with_reviews([r.unlabelled() for r in self.reviews])

    def text_only(self) -> ReviewSet:
        return self.with_reviews([r.text_only() for r in self.reviews])

    def polarity_counts(self) -> Counter[str]:
        return Counter(a.polarity for r in self.reviews for a in r.aspects if a.polarity)

    def to_dataframe(self, *, one_row_per: str = "review"):  # -> pandas.DataFrame
        """Reviews as a DataFrame: one row per review (aspects as a list column) or,
        with ``one_row_per="aspect"``, one row per review x aspect."""
        import pandas as pd

        if one_row_per == "review":
            rows = [
                {
                    "id": r.id, "text": r.text, "language": r.language, "rating": r.rating,
                    "aspects": [_aspect_dict(a) for a in r.aspects],
                }
                for r in self.reviews
            ]  # fmt: skip
        elif one_row_per == "aspect":
            rows = [{"id": r.id, "text": r.text, "rating": r.rating} | _aspect_dict(a) for r in self.reviews for a in r.aspects]
        else:
            raise ValueError(f"one_row_per must be 'review' or 'aspect', got {one_row_per!r}")
        return pd.DataFrame(rows)


def _aspect_dict(aspect: AspectLabel) -> dict[str, Any]:
    return {
        "aspect": aspect.name,
        "kind": aspect.kind,
        "polarity": aspect.polarity,
        "start": aspect.start,
        "end": aspect.end,
    }


@dataclass(frozen=True)
class Splits:
    """Train, validation and test sets of one dataset."""

    train: ReviewSet
    validation: ReviewSet
    test: ReviewSet

    def limited(self, limit: int | None, seed: int = 0) -> Splits:
        """Seeded samples of at most ``limit`` reviews per split (for quick runs)."""
        return Splits(
            train=self.train.sample(limit, seed),
            validation=self.validation.sample(limit, seed + 1),
            test=self.test.sample(limit, seed + 2),
        )
