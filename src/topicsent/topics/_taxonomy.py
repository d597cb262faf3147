"""The taxonomy file: discovered (or hand-made) topics that ACSA methods take as categories.

A person reviews it, renames topics and merges near-duplicates; the topic names then
become the category list of an ACSA method (``topicsent train --taxonomy FILE``), so
discovery -> labelling -> topic-wise sentiment is one flow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from topicsent.errors import InputDataError, InvalidParameterError

OUTLIER = -1
FORMAT = "topicsent-taxonomy/1"


class Topic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=0)
    name: str = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)
    size: int = Field(default=0, ge=0)
    examples: list[str] = Field(default_factory=list)
    description: str | None = None
    merged_from: list[int] = Field(default_factory=list)
    named_by: str | None = None  # "llm", or "keywords: why an LLM name was not used"


class OutlierAssignment(BaseModel):
    """What happened to the units clustering put in no topic.

    ``found`` were left out by clustering; ``joined`` of them were at least ``threshold``
    cosine-similar to their nearest topic's centre and joined it; the rest stay in no
    topic. ``rule`` says where the threshold came from: ``auto`` (the similarity that
    ``member_share`` of the clustered units have to their own topic's centre),
    ``share`` (lowered until at most ``target_share`` of the units stay out),
    ``threshold`` (given) or ``none`` (outliers kept as clustering left them).
    """

    model_config = ConfigDict(extra="forbid")

    rule: Literal["auto", "share", "threshold", "none"]
    found: int = Field(ge=0)
    joined: int = Field(default=0, ge=0)
    threshold: float | None = None
    member_share: float | None = None
    target_share: float | None = None

    def explain(self, n_units: int, unit: str = "unit") -> str:
        """Sentences for a summary: how many units are in no topic, and why."""
        left = self.found - self.joined
        units = f"{unit}s"
        found = f"Clustering left {self.found:,} of {n_units:,} {units} ({_share(self.found, n_units)}) in no topic"
        if self.rule == "none":
            return f"{found}; they stay there (outliers were not assigned)."
        if self.threshold is None:  # nothing to decide
            if self.rule == "share" and self.found:
                return f"{found}, already within the target of {self.target_share:.0%}; none were assigned."
            return f"{found}; {'there was no topic to join' if self.found else 'nothing to assign'}."
        if self.rule == "auto":
            why = (
                f"chosen automatically: {self.member_share:.0%} of clustered {units} are at least this similar "
                "to their own topic's centre"
            )
        elif self.rule == "share":
            why = f"chosen so that at most {self.target_share:.0%} stay in no topic"
        else:
            why = "as given"
        return (
            f"{found}; {self.joined:,} of them joined their nearest topic (cosine similarity to its centre "
            f">= {self.threshold:.3f}, {why}). {left:,} ({_share(left, n_units)}) remain in no topic: "
            "less similar than that to every topic's centre."
        )


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "0%"


class Taxonomy(BaseModel):
    """Topics with unique ids and names; ``n_outliers`` segments belong to none
    (``outliers`` says how many clustering left out and how many joined a topic)."""

    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    language: str | None = None
    unit: str = "review"
    n_segments: int = Field(default=0, ge=0)
    n_outliers: int = Field(default=0, ge=0)
    outliers: OutlierAssignment | None = None
    topics: list[Topic]

    @model_validator(mode="after")
    def _unique(self) -> Taxonomy:
        for field in ("id", "name"):
            values = [getattr(t, field) for t in self.topics]
            duplicated = sorted({str(v) for v in values if values.count(v) > 1})
            if duplicated:
                raise ValueError(f"topic {field}s must be unique; repeated: {', '.join(duplicated)}")
        return self

    @property
    def categories(self) -> tuple[str, ...]:
        """The topic names, as an ACSA category list."""
        return tuple(t.name for t in self.topics)

    def names_by_id(self) -> dict[int, str]:
        return {t.id: t.name for t in self.topics}

    def topic(self, topic_id: int) -> Topic:
        for found in self.topics:
            if found.id == topic_id:
                return found
        raise InvalidParameterError(f"no topic {topic_id}; ids are {', '.join(str(t.id) for t in self.topics)}")

    def renamed(self, names: dict[int, str]) -> Taxonomy:
        """A copy with topics renamed (``{id: new name}``)."""
        for topic_id in names:
            self.topic(topic_id)
        topics = [t.model_copy(update={"name": names.get(t.id, t.name)}) for t in self.topics]
        return self.model_validate(self.model_dump() | {"topics": [t.model_dump() for t in topics]})

    def merged(self, ids: list[int], name: str | None = None) -> Taxonomy:
        """A copy where topics ``ids`` become one (the first id is kept; keywords and
        examples are combined by size)."""
        if len(set(ids)) < 2:
            raise InvalidParameterError("merging needs at least two different topic ids")
        parts = sorted((self.topic(i) for i in dict.fromkeys(ids)), key=lambda t: -t.size)
        keep = self.topic(ids[0])
        keywords = list(dict.fromkeys(word for part in parts for word in part.keywords))[: max(len(keep.keywords), 10)]
        merged = keep.model_copy(update={
            "name": name or keep.name,
            "keywords": keywords,
            "size": sum(p.size for p in parts),
            "examples": [example for part in parts for example in part.examples][: max(len(keep.examples), 3)],
            "merged_from": sorted({*keep.merged_from, *(p.id for p in parts if p.id != keep.id)}),
        })  # fmt: skip
        gone = {p.id for p in parts} - {keep.id}
        topics = [merged if t.id == keep.id else t for t in self.topics if t.id not in gone]
        return self.model_validate(self.model_dump() | {"topics": [t.model_dump() for t in topics]})

    def merge_map(self) -> dict[int, int]:
        """Original topic id -> the id it was merged into (for re-labelling assignments)."""
        return {old: t.id for t in self.topics for old in t.merged_from}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Taxonomy:
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputDataError(f"{path}: taxonomy file not found") from None
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputDataError(f"{path}: not a valid taxonomy ({where}: {first['msg']})") from None
