"""The taxonomy file: discovered (or hand-made) topics that ACSA methods take as categories.

A person reviews it, renames topics and merges near-duplicates; the topic names then
become the category list of an ACSA method (``topicsent train --taxonomy FILE``), so
discovery -> labelling -> topic-wise sentiment is one flow.
"""

from __future__ import annotations

from pathlib import Path

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


class Taxonomy(BaseModel):
    """Topics with unique ids and names; ``n_outliers`` segments belong to none."""

    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    language: str | None = None
    unit: str = "review"
    n_segments: int = Field(default=0, ge=0)
    n_outliers: int = Field(default=0, ge=0)
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
