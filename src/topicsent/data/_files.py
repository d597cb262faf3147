"""Reading a user's own reviews from CSV, TSV, JSONL or Parquet.

Every problem a user can make (wrong encoding, missing column, duplicate id, bad
label) ends in one :class:`InputDataError` line naming the file, the row and the
problem, never a traceback.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topicsent.data._reviews import AspectLabel, LabelSpace, Review, ReviewSet
from topicsent.errors import InputDataError
from topicsent.schema import POLARITIES, Task

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class ColumnMap:
    """Which input columns hold the review fields (the CLI's ``--*-col`` options)."""

    text: str = "text"
    id: str | None = None
    rating: str | None = None
    aspects: str | None = None
    date: str | None = None  # kept as text in ``Review.meta["date"]`` (per-topic trends)


def detect_language(text: str) -> str:
    """``ko`` when at least 30% of the letters are Hangul, else ``en``: enough to pick
    a Korean-aware tokenizer or prompt, not a general language identifier."""
    letters = len(_LETTER.findall(text))
    return "ko" if letters and len(_HANGUL.findall(text)) / letters >= 0.3 else "en"


def read_reviews(
    path: str | Path,
    columns: ColumnMap = ColumnMap(),
    *,
    task: Task | None = None,
    language: str = "auto",
    require_text: bool = True,
    rating_scale: tuple[int, int] | None = None,
    categories: tuple[str, ...] | None = None,
) -> ReviewSet:
    """Read reviews from a file (``-`` reads JSONL from standard input).

    Parameters
    ----------
    columns : which columns hold text, id, rating and aspects. Without an id column
        the 1-based row number is the id.
    require_text : when True (training), an empty text is an error; when False
        (prediction) the row is kept and the method reports it with status ``error``.
    rating_scale : inclusive rating range; inferred from the data when None.
    categories : the taxonomy; inferred from the aspect names when None.

    Examples
    --------
    >>> reviews = read_reviews("reviews.csv", ColumnMap(text="body", rating="stars"))  # doctest: +SKIP
    """
    source = str(path)
    records = list(_records(source))
    if not records:
        raise InputDataError(f"{source}: no reviews in the file (it is empty or has only a header)")
    available = set(records[0][1])
    roles = (
        ("text", columns.text),
        ("id", columns.id),
        ("rating", columns.rating),
        ("aspects", columns.aspects),
        ("date", columns.date),
    )
    for role, name in roles:
        if name is not None and name not in available:
            raise InputDataError(
                f"{source}: no column {name!r} for the {role} (columns: {', '.join(sorted(available))}); "
                f"choose one with --{role}-col"
            )
    numbered = [(row, _review(source, row, record, columns, language, require_text)) for row, record in records]
    _check_unique_ids(source, numbered)
    reviews = [review for _, review in numbered]
    observed = [r.rating for r in reviews if r.rating is not None]
    if rating_scale is None and observed:
        rating_scale = (min(observed), max(observed))
    if categories is None and any(r.aspects for r in reviews):
        categories = tuple(sorted({a.name for r in reviews for a in r.aspects if a.kind == "category"})) or None
    polarities = (
        ("positive", "negative", "neutral", "conflict")
        if any(a.polarity == "conflict" for r in reviews for a in r.aspects)
        else ("positive", "negative", "neutral")
    )
    set_language = Counter(r.language for r in reviews).most_common(1)[0][0]
    space = LabelSpace(polarities=polarities, categories=categories, rating_scale=rating_scale)
    return ReviewSet(tuple(reviews), label_space=space, task=task, name=Path(source).stem, language=set_language)


def _records(source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based row number, column -> value) for each data row of the file."""
    if source == "-":
        yield from _jsonl_records(source, _decode(source, sys.stdin.buffer.read()))
        return
    path = Path(source)
    if not path.is_file():
        raise InputDataError(f"{source}: file not found")
    compressed = path.suffix.lower() == ".gz"
    suffix = Path(path.stem).suffix.lower() if compressed else path.suffix.lower()
    kind = FORMATS.get(suffix)
    if kind is None or (compressed and kind == "parquet"):
        raise InputDataError(f"{source}: unknown file type {suffix!r}; use one of {', '.join(FORMATS)} (text formats may be .gz)")
    if kind == "parquet":
        yield from _parquet_records(path)
        return
    try:
        data = gzip.decompress(path.read_bytes()) if compressed else path.read_bytes()
    except (OSError, EOFError) as error:
        raise InputDataError(f"{source}: not a readable gzip file ({error})") from None
    if kind == "jsonl":
        yield from _jsonl_records(source, _decode(source, data))
    else:
        yield from _delimited_records(source, _decode(source, data), "\t" if kind == "tsv" else ",")


def _decode(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputDataError(
            f"{source}: line {line}: not valid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "re-save the file as UTF-8"
        ) from None


def _delimited_records(source: str, text: str, separator: str) -> Iterator[tuple[int, dict[str, Any]]]:
    import pandas as pd

    if not text.strip():
        return
    try:
        frame = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as error:
        raise InputDataError(f"{source}: cannot parse as {'TSV' if separator == chr(9) else 'CSV'}: {error}") from None
    yield from enumerate(frame.to_dict("records"), start=1)


def _jsonl_records(source: str, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputDataError(f"{source}: line {line_number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise InputDataError(f"{source}: line {line_number}: expected a JSON object, got {type(record).__name__}")
        yield line_number, record


def _parquet_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise InputDataError(f"{path}: cannot read as Parquet: {error}") from None
    yield from enumerate(table.to_pylist(), start=1)


def _review(source: str, row: int, record: dict[str, Any], columns: ColumnMap, language: str, require_text: bool) -> Review:
    where = f"{source}: row {row}"
    text = record.get(columns.text)
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputDataError(f"{where}: text must be a string, got {type(text).__name__}")
    if require_text and not text.strip():
        raise InputDataError(f"{where}: empty text; remove the row or fill it in")
    review_id = str(record[columns.id]).strip() if columns.id else str(row)
    if not review_id:
        raise InputDataError(f"{where}: empty id in column {columns.id!r}")
    aspects = _aspects(where, record.get(columns.aspects)) if columns.aspects else ()
    for aspect in aspects:
        if aspect.start is not None and not (
            isinstance(aspect.start, int) and isinstance(aspect.end, int) and 0 <= aspect.start <= aspect.end <= len(text)
        ):
            raise InputDataError(f"{where}: span {aspect.start}-{aspect.end} of term {aspect.name!r} is outside the text")
    return Review(
        id=review_id,
        text=text,
        language=detect_language(text) if language == "auto" else language,
        rating=_rating(where, record.get(columns.rating)) if columns.rating else None,
        aspects=aspects,
        meta={"date": str(record[columns.date])} if columns.date and record.get(columns.date) is not None else {},
    )


def _rating(where: str, value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputDataError(f"{where}: rating {value!r} is not a number") from None
    if not number.is_integer():
        raise InputDataError(f"{where}: rating {value!r} is not a whole number (ratings are integer stars)")
    return int(number)


def _aspects(where: str, value: Any) -> tuple[AspectLabel, ...]:
    """Aspects as a JSON list of objects (``[{"aspect": "food", "polarity": "positive"}]``,
    terms with ``from``/``to``) or the short form ``food:positive; service:negative``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise InputDataError(f"{where}: aspects are not valid JSON ({error.msg})") from None
    items = _short_form(where, value) if isinstance(value, str) else value
    if not isinstance(items, list):
        raise InputDataError(f"{where}: aspects must be a list, got {type(items).__name__}")
    return tuple(_aspect(where, item) for item in items)


def _short_form(where: str, value: str) -> list[dict[str, Any]]:
    items = []
    for part in filter(None, (p.strip() for p in value.split(";"))):
        name, _, polarity = part.rpartition(":")
        if not name.strip():
            raise InputDataError(f"{where}: aspect {part!r} is not 'name:polarity'")
        items.append({"aspect": name.strip(), "polarity": polarity.strip()})
    return items


def _aspect(where: str, item: Any) -> AspectLabel:
    if not isinstance(item, dict):
        raise InputDataError(f"{where}: each aspect must be an object, got {item!r}")
    name = item.get("aspect") or item.get("category") or item.get("term")
    if not isinstance(name, str) or not name.strip():
        raise InputDataError(f"{where}: aspect {item!r} has no name (give 'aspect', 'category' or 'term')")
    polarity = item.get("polarity")
    if polarity is not None and polarity not in POLARITIES:
        raise InputDataError(f"{where}: polarity {polarity!r} of aspect {name!r} is not one of {', '.join(POLARITIES)}")
    start, end = item.get("from", item.get("start")), item.get("to", item.get("end"))
    kind = item.get("kind") or ("term" if "term" in item or start is not None else "category")
    return AspectLabel(name.strip(), kind, polarity, start, end)


def _check_unique_ids(source: str, numbered: Iterable[tuple[int, Review]]) -> None:
    first_row: dict[str, int] = {}
    for row, review in numbered:
        if review.id in first_row:
            raise InputDataError(
                f"{source}: row {row}: duplicate id {review.id!r} (first seen in row {first_row[review.id]}); ids must be unique"
            )
        first_row[review.id] = row
