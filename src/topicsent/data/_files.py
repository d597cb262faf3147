"""Reading a user's own reviews from CSV, TSV, JSONL or Parquet.

Every problem a user can make (wrong encoding, missing column, duplicate id, bad
label) ends in one :class:`InputDataError` line naming the file, the row and the
problem, never a traceback.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from topicsent.data._labels import label_problem
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
    rating_scale : inclusive rating range; inferred from the data when None. When
        given, a rating outside it is an error naming its row.
    categories : the taxonomy; inferred from the aspect names when None. When given, a
        category outside it is an error naming its row, the category and the known ones.

    Raises
    ------
    InputDataError
        One line naming the file, the row and the problem: unreadable file, missing
        column, duplicate id, or a label that contradicts the text (a term's span holding
        other words) or the given taxonomy or scale.

    Examples
    --------
    >>> reviews = read_reviews("reviews.csv", ColumnMap(text="body", rating="stars"))  # doctest: +SKIP
    """
    source = str(path)
    given = given_space(categories, rating_scale)
    batches = review_batches(source, columns, language=language, require_text=require_text, space=given)
    reviews = [review for batch in batches for review in batch]
    if not reviews:
        raise InputDataError(f"{source}: no reviews in the file (it is empty or has only a header)")
    return labelled_set(reviews, Path(source).stem, task=task, rating_scale=rating_scale, categories=categories)


def given_space(categories: tuple[str, ...] | None, rating_scale: tuple[int, int] | None) -> LabelSpace | None:
    """The label space a caller fixed (a taxonomy, a rating scale), to check every row's
    labels against while reading; None when nothing is fixed (the labels define it)."""
    if categories is None and rating_scale is None:
        return None
    return LabelSpace(polarities=POLARITIES, categories=categories, rating_scale=rating_scale)


def labelled_set(
    reviews: list[Review],
    name: str,
    *,
    task: Task | None = None,
    rating_scale: tuple[int, int] | None = None,
    categories: tuple[str, ...] | None = None,
) -> ReviewSet:
    """Reviews read from a user's file or table as a :class:`ReviewSet`: the rating scale
    and the taxonomy are the ones given, else what the labels show; polarities include
    ``conflict`` only when a label uses it."""
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
    return ReviewSet(tuple(reviews), label_space=space, task=task, name=name, language=set_language)


def review_batches(
    path: str | Path,
    columns: ColumnMap = ColumnMap(),
    *,
    batch_size: int = 50_000,
    language: str = "auto",
    require_text: bool = False,
    space: LabelSpace | None = None,
) -> Iterator[list[Review]]:
    """The file's reviews in lists of ``batch_size``, read lazily: a file larger than
    memory streams through, and an input problem is still reported with its row.
    Labels are checked against the text and, when given, against ``space``.

    Ids are checked for uniqueness across the whole file (only the ids are kept)."""
    source = str(path)
    first_row: dict[str, Any] = {}
    for batch in _record_batches(source, batch_size):
        if not first_row:
            check_columns(source, set(batch[0][1]), columns)
        yield records_to_reviews(
            source, batch, columns, language=language, require_text=require_text, space=space, first_row=first_row
        )


def records_to_reviews(
    source: str,
    records: Iterable[tuple[Any, dict[str, Any]]],
    columns: ColumnMap,
    *,
    language: str = "auto",
    require_text: bool = False,
    space: LabelSpace | None = None,
    first_row: dict[str, Any] | None = None,
) -> list[Review]:
    """(row, column -> value) records as reviews, ids checked for uniqueness and labels
    as by :func:`review_from_record` (against ``space`` when given); ``first_row``
    (id -> row) carries the ids seen in earlier batches of the same source."""
    first_row = {} if first_row is None else first_row
    reviews = []
    for row, record in records:
        review = review_from_record(source, row, record, columns, language, require_text, space)
        if review.id in first_row:
            raise InputDataError(
                f"{source}: row {row}: duplicate id {review.id!r} (first seen in row {first_row[review.id]}); ids must be unique"
            )
        first_row[review.id] = row
        reviews.append(review)
    return reviews


def count_rows(path: str | Path) -> int | None:
    """Data rows in a file without parsing its fields (for a progress total), or None
    for standard input."""
    source = str(path)
    if source == "-":
        return None
    kind, file, compressed = _file_kind(source)
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(file).metadata.num_rows
    with _open_text(file, compressed) as text:
        if kind == "jsonl":
            return sum(1 for line in text if line.strip())
        dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if kind == "tsv" else {"delimiter": ","}
        return max(sum(1 for _ in csv.reader(text, **dialect)) - 1, 0)


def check_columns(source: str, available: set[str], columns: ColumnMap, *, option: str = "--{role}-col") -> None:
    """Refuse a column map naming a column the input lacks, listing the ones it has and
    the ``option`` that chooses another (the CLI's ``--text-col``, the API's ``text=``)."""
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
                f"{source}: no column {name!r} for the {role} (columns: {', '.join(sorted(map(str, available)))}); "
                f"choose one with {option.format(role=role)}"
            )


def _file_kind(source: str) -> tuple[str, Path, bool]:
    """(format, path, gzip-compressed) of an input file, or a clear error."""
    path = Path(source)
    if not path.is_file():
        raise InputDataError(f"{source}: file not found")
    compressed = path.suffix.lower() == ".gz"
    suffix = Path(path.stem).suffix.lower() if compressed else path.suffix.lower()
    kind = FORMATS.get(suffix)
    if kind is None or (compressed and kind == "parquet"):
        raise InputDataError(f"{source}: unknown file type {suffix!r}; use one of {', '.join(FORMATS)} (text formats may be .gz)")
    return kind, path, compressed


def _record_batches(source: str, size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Lists of (1-based row number, column -> value) for the file's data rows."""
    if source == "-":
        yield from _guarded_text_batches(source, _stdin_text, "jsonl", size)
        return
    kind, path, compressed = _file_kind(source)
    if kind == "parquet":
        yield from _parquet_batches(path, size)
    else:
        yield from _guarded_text_batches(source, lambda: _open_text(path, compressed), kind, size)


def _guarded_text_batches(source: str, opener, kind: str, size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Text rows in batches, with decoding and gzip problems turned into input errors."""
    try:
        with opener() as text:
            rows = _jsonl_records(source, text) if kind == "jsonl" else _delimited_records(source, text, kind, size)
            yield from _batched(rows, size)
    except UnicodeDecodeError:
        _raise_utf8_error(source)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise InputDataError(f"{source}: not a readable gzip file ({error})") from None


def _open_text(path: Path, compressed: bool) -> io.TextIOWrapper:
    """The file as UTF-8 text (BOM dropped, newlines kept for quoted CSV fields); the caller closes it."""
    raw = gzip.open(path, "rb") if compressed else path.open("rb")  # noqa: SIM115 - wrapped and returned
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


@contextmanager
def _stdin_text() -> Iterator[io.TextIOWrapper]:
    text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    try:
        yield text
    finally:
        text.detach()  # standard input stays open for the caller


def _raise_utf8_error(source: str) -> NoReturn:
    """Name the line of the first undecodable byte (the slow path, taken only on error)."""
    if source == "-":
        raise InputDataError("-: standard input is not valid UTF-8; send UTF-8 text")
    data = Path(source).read_bytes()
    if source.lower().endswith(".gz"):
        data = gzip.decompress(data)
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputDataError(
            f"{source}: line {line}: not valid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "re-save the file as UTF-8"
        ) from None
    raise InputDataError(f"{source}: not valid UTF-8; re-save the file as UTF-8")  # the reader saw it; a re-read did not


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _delimited_records(source: str, text: io.TextIOWrapper, kind: str, size: int) -> Iterator[tuple[int, dict[str, Any]]]:
    import pandas as pd

    # TSV as IANA defines it: no quoting (a tab-separated text may hold a lone " as text)
    dialect = {"sep": "\t", "quoting": csv.QUOTE_NONE} if kind == "tsv" else {"sep": ","}
    try:
        chunks = pd.read_csv(text, dtype=str, keep_default_na=False, chunksize=size, **dialect)
        row = 0
        for frame in chunks:
            for record in frame.to_dict("records"):
                row += 1
                yield row, record
    except pd.errors.EmptyDataError:
        return
    except UnicodeDecodeError:
        raise  # reported with its line by the caller
    except (pd.errors.ParserError, ValueError) as error:
        raise InputDataError(f"{source}: cannot parse as {kind.upper()}: {error}") from None


def _jsonl_records(source: str, text: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputDataError(f"{source}: line {line_number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise InputDataError(f"{source}: line {line_number}: expected a JSON object, got {type(record).__name__}")
        yield line_number, record


def _parquet_batches(path: Path, size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        row = 0
        for batch in parquet.iter_batches(batch_size=size):
            records = batch.to_pylist()
            yield list(enumerate(records, start=row + 1))
            row += len(records)
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise InputDataError(f"{path}: cannot read as Parquet: {error}") from None


def review_from_record(
    source: str,
    row: Any,
    record: dict[str, Any],
    columns: ColumnMap,
    language: str = "auto",
    require_text: bool = False,
    space: LabelSpace | None = None,
) -> Review:
    """One input row as a :class:`Review`, with errors naming the source and row
    (labels checked by :func:`~topicsent.data.label_problem`, against ``space`` when given)."""
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
    review = Review(
        id=review_id,
        text=text,
        language=detect_language(text) if language == "auto" else language,
        rating=_rating(where, record.get(columns.rating)) if columns.rating else None,
        aspects=_aspects(where, record.get(columns.aspects)) if columns.aspects else (),
        meta={"date": str(record[columns.date])} if columns.date and record.get(columns.date) is not None else {},
    )
    if problem := label_problem(review, space):
        raise InputDataError(f"{where}: {problem}")
    return review


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
