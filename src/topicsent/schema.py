"""The one output schema every method returns.

A :class:`ReviewAnalysis` is what topicsent says about one review: its overall
polarity and rating, its aspects with their polarities, and how the answer came
about (status, method, model, usage). Every method, from the majority baseline
to an LLM, returns exactly this shape, so results can be compared, stored and
reported the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from topicsent.errors import InvalidParameterError

Polarity = Literal["positive", "negative", "neutral", "conflict"]
OverallPolarity = Literal["positive", "negative", "neutral", "mixed"]
AspectKind = Literal["category", "term", "topic"]
Status = Literal["ok", "abstained", "unparsed", "error"]

POLARITIES: tuple[str, ...] = ("positive", "negative", "neutral", "conflict")


class Task(StrEnum):
    """What a method is asked to do.

    ``acsa``: polarity of each category of a taxonomy, and which categories a review
    mentions. ``atsa``: polarity of aspect terms, given or extracted. ``rating``: the
    overall star rating on the dataset's own scale.
    """

    ACSA = "acsa"
    ATSA = "atsa"
    RATING = "rating"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Span(_Strict):
    """Character offsets into the review text, Python slice style (``text[start:end]``)."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Span:
        if self.end < self.start:
            raise ValueError(f"span end {self.end} is before its start {self.start}")
        return self


class AspectSentiment(_Strict):
    """How a review feels about one aspect (a category, a term or a discovered topic).

    ``evidence`` is the quoted text at ``span``: for a term, the term itself (where it
    is); for a category, the quote that carries it. ``opinion`` is the opinion term
    that gives the aspect its polarity (``"horrible"`` for ``staff``), at
    ``opinion_span``: an aspect term, its opinion and the polarity form one ASTE
    triplet, and an aspect with two opinions is two answers, one per opinion.
    """

    aspect: str = Field(min_length=1)
    kind: AspectKind
    polarity: Polarity
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    evidence: str | None = None
    span: Span | None = None
    opinion: str | None = None
    opinion_span: Span | None = None
    rating: float | None = None


class Overall(_Strict):
    """The review as a whole: polarity, rating on the dataset's scale, confidence."""

    polarity: OverallPolarity | None = None
    rating: float | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class Usage(_Strict):
    """What producing the answer cost. Token and cost fields are for LLM methods."""

    latency_ms: float | None = Field(default=None, ge=0.0)
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0.0)
    cache_hit: bool | None = None


class ReviewAnalysis(_Strict):
    """Everything a method says about one review.

    ``status`` is ``ok`` for a real answer. Anything else carries a ``status_reason``
    and no invented labels: an unparseable LLM answer is ``unparsed`` (with ``raw``),
    never a guessed label.
    """

    review_id: str
    language: str | None = None
    overall: Overall = Field(default_factory=Overall)
    aspects: list[AspectSentiment] = Field(default_factory=list)
    status: Status = "ok"
    status_reason: str | None = None
    raw: str | None = None
    method: str
    model: str | None = None
    usage: Usage = Field(default_factory=Usage)

    @model_validator(mode="after")
    def _reason_for_non_ok(self) -> ReviewAnalysis:
        if self.status != "ok" and not self.status_reason:
            raise ValueError(f"status {self.status!r} needs a status_reason saying why")
        return self

    @classmethod
    def failed(cls, review_id: str, *, status: Status, reason: str, method: str, **fields: Any) -> ReviewAnalysis:
        """A row that carries no labels, only why there are none."""
        return cls(review_id=review_id, status=status, status_reason=reason, method=method, **fields)


#: The flat table's columns and their (nullable pandas) types: fixed, so every Parquet
#: file of a run has one schema even when a column is empty in one chunk.
FLAT_TYPES: dict[str, str] = {
    "review_id": "string", "language": "string", "status": "string", "status_reason": "string",
    "method": "string", "model": "string",
    "overall_polarity": "string", "overall_rating": "Float64", "overall_confidence": "Float64",
    "aspect": "string", "aspect_kind": "string", "aspect_polarity": "string", "aspect_confidence": "Float64",
    "aspect_rating": "Float64", "evidence": "string", "span_start": "Int64", "span_end": "Int64",
    "opinion": "string", "opinion_start": "Int64", "opinion_end": "Int64",
    "latency_ms": "Float64", "input_tokens": "Int64", "output_tokens": "Int64", "cost_usd": "Float64",
    "cache_hit": "boolean",
}  # fmt: skip
FLAT_COLUMNS: tuple[str, ...] = tuple(FLAT_TYPES)


def flat_rows(analyses: Iterable[ReviewAnalysis]) -> Iterator[dict[str, Any]]:
    """One row per review x aspect (one row with empty aspect columns for a review
    without aspects), so results load into pandas, Parquet or DuckDB as a plain table."""
    for analysis in analyses:
        review_part = {
            "review_id": analysis.review_id,
            "language": analysis.language,
            "status": analysis.status,
            "status_reason": analysis.status_reason,
            "method": analysis.method,
            "model": analysis.model,
            "overall_polarity": analysis.overall.polarity,
            "overall_rating": analysis.overall.rating,
            "overall_confidence": analysis.overall.confidence,
            **analysis.usage.model_dump(),
        }
        for aspect in analysis.aspects or [None]:
            yield review_part | _aspect_columns(aspect)


def _aspect_columns(aspect: AspectSentiment | None) -> dict[str, Any]:
    if aspect is None:
        return dict.fromkeys(
            ("aspect", "aspect_kind", "aspect_polarity", "aspect_confidence", "aspect_rating",
             "evidence", "span_start", "span_end", "opinion", "opinion_start", "opinion_end")
        )  # fmt: skip
    return {
        "aspect": aspect.aspect,
        "aspect_kind": aspect.kind,
        "aspect_polarity": aspect.polarity,
        "aspect_confidence": aspect.confidence,
        "aspect_rating": aspect.rating,
        "evidence": aspect.evidence,
        "span_start": aspect.span.start if aspect.span else None,
        "span_end": aspect.span.end if aspect.span else None,
        "opinion": aspect.opinion,
        "opinion_start": aspect.opinion_span.start if aspect.opinion_span else None,
        "opinion_end": aspect.opinion_span.end if aspect.opinion_span else None,
    }


def to_dataframe(analyses: Iterable[ReviewAnalysis]):  # -> pandas.DataFrame
    """The flat table view as a pandas DataFrame with stable column order."""
    import pandas as pd

    return pd.DataFrame(list(flat_rows(analyses)), columns=list(FLAT_COLUMNS)).astype(FLAT_TYPES)


class Predictions(list[ReviewAnalysis]):
    """What ``predict`` returns: a plain list of :class:`ReviewAnalysis`, one per input
    review in input order, that also converts itself to a table or a file.

    Examples
    --------
    >>> rows = Predictions([ReviewAnalysis(review_id="0", method="majority")])
    >>> rows.to_dataframe()[["review_id", "status", "aspect"]].to_dict("records")
    [{'review_id': '0', 'status': 'ok', 'aspect': None}]
    """

    def to_dataframe(self):  # -> pandas.DataFrame
        """The flat table (:func:`to_dataframe`): one row per review x aspect, a review
        without aspects as one row, columns :data:`FLAT_COLUMNS` with nullable types."""
        return to_dataframe(self)

    def write(self, path: str | Path) -> Path:
        """Write to ``.jsonl`` (nested), ``.parquet`` or ``.csv`` (flat); see :func:`write_analyses`."""
        return write_analyses(self, Path(path))


def write_jsonl(analyses: Iterable[ReviewAnalysis], path: Path) -> int:
    """Write one JSON object per line (UTF-8, Korean kept readable); returns the count."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for analysis in analyses:
            out.write(analysis.model_dump_json(exclude_none=True) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> list[ReviewAnalysis]:
    """Read what :func:`write_jsonl` wrote, validating every line."""
    with Path(path).open(encoding="utf-8") as lines:
        return [ReviewAnalysis.model_validate_json(line) for line in lines if line.strip()]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one :class:`ReviewAnalysis`, for consumers in other languages."""
    return ReviewAnalysis.model_json_schema()


def dumps(analyses: Iterable[ReviewAnalysis]) -> str:
    """A JSON array of analyses (the round-trip partner of :func:`loads`)."""
    return json.dumps([a.model_dump(mode="json", exclude_none=True) for a in analyses], ensure_ascii=False)


def loads(text: str) -> list[ReviewAnalysis]:
    """Parse and validate a JSON array written by :func:`dumps`."""
    return [ReviewAnalysis.model_validate(item) for item in json.loads(text)]


OUTPUT_TYPES = (".jsonl", ".parquet", ".csv")


def check_output_path(path: Path) -> Path:
    """Refuse an output type we cannot write before any work is done."""
    if Path(path).suffix.lower() not in OUTPUT_TYPES:
        raise InvalidParameterError(f"{path}: unknown output type {Path(path).suffix!r}; use {', '.join(OUTPUT_TYPES)}")
    return Path(path)


def write_analyses(analyses: Sequence[ReviewAnalysis], path: Path) -> Path:
    """Write analyses by file type: ``.jsonl`` (nested, lossless), ``.parquet`` or
    ``.csv`` (the flat table, one row per review x aspect)."""
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        write_jsonl(analyses, path)
    elif suffix == ".parquet":
        to_dataframe(analyses).to_parquet(path, index=False)
    else:
        write_csv(to_dataframe(analyses), path)
    return path


#: A cell starting with one of these is a formula to Excel, LibreOffice and Sheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def write_csv(frame, path: Path) -> Path:  # frame: pandas.DataFrame
    """Write a table as CSV for spreadsheets: a text cell that would start a formula
    (``=``, ``+``, ``-``, ``@``, tab, CR; an id or aspect name from the input) gets a
    leading ``'``, the usual guard against CSV formula injection. Numbers stay numbers;
    Parquet and JSONL outputs keep the exact text."""
    import pandas as pd

    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v)
    frame.to_csv(path, index=False)
    return Path(path)
