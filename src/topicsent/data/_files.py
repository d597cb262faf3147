"""Reading a user's own reviews from CSV, TSV, JSONL or Parquet.

Every problem a user can make (wrong encoding, missing column, duplicate id, bad
label) ends in one :class:`InputDataError` line naming the file, the row and the
problem, never a traceback.
"""

from __future__ import annotations

import codecs
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
from topicsent.errors import InputDataError, InputTooLargeError
from topicsent.schema import POLARITIES, Task

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER = re.compile(r"[^\W\d_]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # in a Python str every surrogate is a lone one


@dataclass(frozen=True)
class ColumnMap:
    """Which input columns hold the review fields (the CLI's ``--*-col`` options)."""

    text: str = "text"
    id: str | None = None
    rating: str | None = None
    aspects: str | None = None
    date: str | None = None  # kept as text in ``Review.meta["date"]`` (per-topic trends)


@dataclass(frozen=True)
class ReadLimits:
    """Bounds for reading untrusted input (the REST service's uploads), checked while the
    bytes stream in, so a small compressed file cannot inflate into memory.

    ``max_bytes``: the whole input after decompression (an over-limit input raises
    :class:`InputTooLargeError`). ``max_text_chars``: a longer text is kept as that
    row's ``error``. A physical line may hold at most such a text JSON-escaped (6 bytes
    a character) plus 64 KiB of other fields; a longer line raises InputTooLargeError.
    """

    max_bytes: int
    max_text_chars: int

    @property
    def max_line_bytes(self) -> int:
        return 6 * self.max_text_chars + 2**16


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
    limits: ReadLimits | None = None,
) -> Iterator[list[Review]]:
    """The file's reviews in lists of ``batch_size``, read lazily: a file larger than
    memory streams through, and an input problem is still reported with its row.
    Labels are checked against the text and, when given, against ``space``.

    Ids are checked for uniqueness across the whole file (only the ids are kept).
    ``limits`` bound what an untrusted input may inflate to (see :class:`ReadLimits`)."""
    source = str(path)
    first_row: dict[str, Any] = {}
    for batch in _record_batches(source, batch_size, limits):
        if not first_row:
            check_columns(source, set(batch[0][1]), columns)
        yield records_to_reviews(
            source, batch, columns, language=language, require_text=require_text, space=space, limits=limits, first_row=first_row
        )


def records_to_reviews(
    source: str,
    records: Iterable[tuple[Any, dict[str, Any]]],
    columns: ColumnMap,
    *,
    language: str = "auto",
    require_text: bool = False,
    space: LabelSpace | None = None,
    limits: ReadLimits | None = None,
    first_row: dict[str, Any] | None = None,
) -> list[Review]:
    """(row, column -> value) records as reviews, ids checked for uniqueness and labels
    and texts as by :func:`review_from_record` (against ``space`` and ``limits`` when
    given); ``first_row`` (id -> row) carries the ids seen in earlier batches of the
    same source."""
    first_row = {} if first_row is None else first_row
    reviews = []
    for row, record in records:
        review = review_from_record(source, row, record, columns, language, require_text, space, limits=limits)
        if review.id in first_row:
            raise InputDataError(
                f"{source}: row {row}: duplicate id {review.id!r} (first seen in row {first_row[review.id]}); ids must be unique"
            )
        first_row[review.id] = row
        reviews.append(review)
    return reviews


def count_rows(path: str | Path, limits: ReadLimits | None = None) -> int | None:
    """Data rows in a file without parsing its fields (for a progress total), or None
    for standard input. It reads through the same checks as the reviews themselves
    (encoding, gzip, ``limits``), so a bad file fails here with the same one line."""
    source = str(path)
    if source == "-":
        return None
    kind, file, compressed = _file_kind(source)
    if kind == "parquet":
        return _parquet_file(file, limits).metadata.num_rows
    with _text_errors(source, limits), _open_text(file, compressed, source, limits) as text:
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


def _record_batches(source: str, size: int, limits: ReadLimits | None) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """Lists of (1-based row number, column -> value) for the file's data rows."""
    if source == "-":
        with _text_errors(source, limits), _stdin_text() as text:
            yield from _batched(_jsonl_records(source, text), size)
        return
    kind, path, compressed = _file_kind(source)
    if kind == "parquet":
        yield from _parquet_batches(path, size, limits)
        return
    with _text_errors(source, limits), _open_text(path, compressed, source, limits) as text:
        rows = _jsonl_records(source, text) if kind == "jsonl" else _delimited_records(source, text, kind, size)
        yield from _batched(rows, size)


@contextmanager
def _text_errors(source: str, limits: ReadLimits | None) -> Iterator[None]:
    """Decoding and gzip problems of a text input as one InputDataError line: every
    reader of text (reviews, row counts, standard input) goes through here."""
    try:
        yield
    except UnicodeDecodeError:
        _raise_utf8_error(source, limits)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise InputDataError(f"{source}: not a readable gzip file ({error or 'it ends too early'})") from None


def _open_text(path: Path, compressed: bool, source: str, limits: ReadLimits | None) -> io.TextIOWrapper:
    """The file as UTF-8 text (BOM dropped, newlines kept for quoted CSV fields), its
    decompressed bytes bounded by ``limits``; the caller closes it."""
    return io.TextIOWrapper(_open_bytes(path, compressed, source, limits), encoding="utf-8-sig", newline="")


def _open_bytes(path: Path, compressed: bool, source: str, limits: ReadLimits | None) -> io.BufferedIOBase:
    """The file's bytes, decompressed and bounded by ``limits``; the caller closes it."""
    raw = gzip.open(path, "rb") if compressed else path.open("rb")  # noqa: SIM115 - returned to the caller
    return raw if limits is None else io.BufferedReader(_BoundedStream(raw, source, limits))


class _BoundedStream(io.RawIOBase):
    """Bytes of an input as they stream (after decompression), refused in one line once
    the whole passes ``max_bytes`` or one line passes ``max_line_bytes``: memory stays
    bounded whatever a small gzip file inflates to."""

    def __init__(self, raw: io.BufferedIOBase, source: str, limits: ReadLimits) -> None:
        self._raw, self._source, self._limits = raw, source, limits
        self._total = 0
        self._line = 1  # the line being read
        self._line_bytes = 0  # its bytes so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # never more than a line's bound at once: a line within one read is within the bound
        data = self._raw.read(min(len(buffer), self._limits.max_line_bytes))
        self._account(data)
        buffer[: len(data)] = data
        return len(data)

    def _account(self, data: bytes) -> None:
        self._total += len(data)
        if self._total > self._limits.max_bytes:
            raise InputTooLargeError(
                f"{self._source}: over {self._limits.max_bytes:,} bytes (decompressed); split it into smaller files"
            )
        newlines = data.count(b"\n")
        if newlines:
            self._line_bytes += data.find(b"\n")
            self._check_line()
            self._line += newlines
            self._line_bytes = len(data) - data.rfind(b"\n") - 1
        else:
            self._line_bytes += len(data)
        self._check_line()

    def _check_line(self) -> None:
        if self._line_bytes > self._limits.max_line_bytes:
            raise InputTooLargeError(
                f"{self._source}: line {self._line}: over {self._limits.max_line_bytes:,} bytes; "
                f"a review may have at most {self._limits.max_text_chars:,} characters"
            )

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextmanager
def _stdin_text() -> Iterator[io.TextIOWrapper]:
    text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    try:
        yield text
    finally:
        text.detach()  # standard input stays open for the caller


def _raise_utf8_error(source: str, limits: ReadLimits | None) -> NoReturn:
    """Name the line of the first undecodable byte (the slow path, taken only on error;
    it streams line by line, so a large or compressed file is never held whole)."""
    if source == "-":
        raise InputDataError("-: standard input is not valid UTF-8; send UTF-8 text")
    _, path, compressed = _file_kind(source)
    raw = _open_bytes(path, compressed, source, limits)
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0
    with raw:
        for number, line in enumerate(raw, start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as error:
                raise InputDataError(
                    f"{source}: line {number}: not valid UTF-8 (byte 0x{line[error.start]:02x} at offset "
                    f"{offset + error.start}); re-save the file as UTF-8"
                ) from None
            offset += len(line)
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
    except (UnicodeDecodeError, InputDataError):
        raise  # a bad byte is reported with its line by the caller; the stream's bounds are already one line
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


def _parquet_file(path: Path, limits: ReadLimits | None):  # -> pyarrow.parquet.ParquetFile
    """The Parquet file, its uncompressed size checked against ``limits`` from the footer."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise InputDataError(f"{path}: cannot read as Parquet: {error}") from None
    metadata = parquet.metadata
    inflated = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    if limits is not None and inflated > limits.max_bytes:
        raise InputTooLargeError(f"{path}: over {limits.max_bytes:,} bytes (uncompressed); split it into smaller files")
    return parquet


def _parquet_batches(path: Path, size: int, limits: ReadLimits | None) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    parquet = _parquet_file(path, limits)
    try:
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
    *,
    limits: ReadLimits | None = None,
) -> Review:
    """One input row as a :class:`Review`, with errors naming the source and row
    (labels checked by :func:`~topicsent.data.label_problem`, against ``space`` when given).

    A text that cannot be analysed (lone surrogates from a JSON escape such as
    ``\\ud800``, or longer than ``limits.max_text_chars``) is an error when
    ``require_text`` (training), else the row is kept with its ``problem`` and comes
    back as that row's ``error``.
    """
    where = f"{source}: row {row}"
    text = record.get(columns.text)
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputDataError(f"{where}: text must be a string, got {type(text).__name__}")
    if require_text and not text.strip():
        raise InputDataError(f"{where}: empty text; remove the row or fill it in")
    problem = _text_problem(text, limits)
    if problem and require_text:
        raise InputDataError(f"{where}: {problem}; fix or remove the row")
    text = without_lone_surrogates(text)  # the row's text is stored with the results: it must encode
    review_id = str(record[columns.id]).strip() if columns.id else str(row)
    if not review_id:
        raise InputDataError(f"{where}: empty id in column {columns.id!r}")
    if _LONE_SURROGATE.search(review_id):
        raise InputDataError(f"{where}: id {without_lone_surrogates(review_id)!r} holds a lone surrogate (not Unicode)")
    review = Review(
        id=review_id,
        text=text,
        language=detect_language(text) if language == "auto" else language,
        rating=_rating(where, record.get(columns.rating)) if columns.rating else None,
        aspects=_aspects(where, record.get(columns.aspects)) if columns.aspects else (),
        meta={"date": str(record[columns.date])} if columns.date and record.get(columns.date) is not None else {},
        problem=problem,
    )
    if wrong := label_problem(review, space):  # a span outside the text included
        raise InputDataError(f"{where}: {wrong}")
    return review


def without_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate (half of a UTF-16 pair, which no UTF-8 file can
    hold but a JSON escape can) replaced by U+FFFD, so it encodes."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _text_problem(text: str, limits: ReadLimits | None) -> str | None:
    """Why a text cannot be analysed, or None."""
    if (found := _LONE_SURROGATE.search(text)) is not None:
        return f"text holds a lone surrogate (U+{ord(found.group()):04X} at character {found.start()}), which is not Unicode"
    if limits is not None and len(text) > limits.max_text_chars:
        return f"text of {len(text):,} characters is over the limit of {limits.max_text_chars:,}"
    return None


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
