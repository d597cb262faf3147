"""Reading users' own review files, including every bad input the issue names."""

import gzip
import json

import pandas as pd
import pytest

from topicsent.data import ColumnMap, LabelSpace, ReadLimits, detect_language, read_reviews, review_batches
from topicsent.errors import InputDataError, InputTooLargeError


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_column_mapping(tmp_path):
    path = _write(
        tmp_path / "r.csv",
        'id,body,stars,labels\nx1,"Great food, slow service",4,"food:positive; service:negative"\nx2,"맛있어요",5,\n',
    )
    reviews = read_reviews(path, ColumnMap(text="body", id="id", rating="stars", aspects="labels"))
    assert [r.id for r in reviews] == ["x1", "x2"]
    assert [(a.name, a.polarity) for a in reviews[0].aspects] == [("food", "positive"), ("service", "negative")]
    assert [r.language for r in reviews] == ["en", "ko"]
    assert reviews.label_space.rating_scale == (4, 5) and reviews.label_space.categories == ("food", "service")


def test_jsonl_parquet_tsv_and_gzip_read_the_same(tmp_path):
    rows = [{"text": "good", "rating": 5, "aspects": [{"term": "good", "from": 0, "to": 4, "polarity": "positive"}]},
            {"text": "bad", "rating": 1, "aspects": []}]  # fmt: skip
    jsonl = _write(tmp_path / "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    gz = tmp_path / "r.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl.read_bytes()))
    parquet = tmp_path / "r.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    tsv = _write(tmp_path / "r.tsv", "text\trating\ngood\t5\nbad\t1\n")
    columns = ColumnMap(rating="rating", aspects="aspects")
    for path in (jsonl, gz, parquet):
        reviews = read_reviews(path, columns)
        assert [(r.text, r.rating) for r in reviews] == [("good", 5), ("bad", 1)]
        assert reviews[0].aspects[0].kind == "term" and reviews[0].aspects[0].end == 4
    assert [r.rating for r in read_reviews(tsv, ColumnMap(rating="rating"))] == [5, 1]


def test_byte_order_mark_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,rating\r\nnice,5\r\n".encode())
    assert read_reviews(path, ColumnMap(rating="rating"))[0].rating == 5


@pytest.mark.parametrize(
    ("content", "columns", "message"),
    [
        ("", ColumnMap(), "no reviews"),
        ("text\n", ColumnMap(), "no reviews"),
        ("body\nhello\n", ColumnMap(), "no column 'text' for the text"),
        ("text,id\nhello,1\nworld,1\n", ColumnMap(id="id"), "row 2: duplicate id '1' (first seen in row 1)"),
        ('text\n"   "\n', ColumnMap(), "row 1: empty text"),
        ("text,r\nhi,4.5\n", ColumnMap(rating="r"), "row 1: rating '4.5' is not a whole number"),
        ("text,r\nhi,five\n", ColumnMap(rating="r"), "row 1: rating 'five' is not a number"),
        ("text,a\nhi,food:great\n", ColumnMap(aspects="a"), "polarity 'great' of aspect 'food'"),
        (
            'text,a\nhi,"[{""term"": ""hi"", ""from"": 0, ""to"": 9, ""polarity"": ""positive""}]"\n',
            ColumnMap(aspects="a"),
            "outside the text",
        ),
        ('text,a\nhi,"[{""aspect"": ""x"""\n', ColumnMap(aspects="a"), "aspects are not valid JSON"),
        ('text\n"unclosed\n', ColumnMap(), "cannot parse as CSV"),
    ],
)
def test_bad_input_names_file_row_and_problem(tmp_path, content, columns, message):
    path = _write(tmp_path / "bad.csv", content)
    with pytest.raises(InputDataError) as error:
        read_reviews(path, columns)
    assert str(error.value).startswith(str(path)) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text\nok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(InputDataError, match=r"line 3: not valid UTF-8 \(byte 0xe9"):
        read_reviews(path)


def test_non_utf8_in_a_gzip_file_names_the_line_within_the_limits(tmp_path):
    """The slow path that names the line reads the decompressed bytes through the same
    opener as the reader; a bound passed inside the CSV parser stays its own one line
    (InputTooLargeError, the service's 413), never "cannot parse as CSV"."""
    path = tmp_path / "latin1.csv.gz"
    path.write_bytes(gzip.compress("text\nok\ncaf\xe9\n".encode("latin-1")))
    with pytest.raises(InputDataError, match=r"latin1\.csv\.gz: line 3: not valid UTF-8 \(byte 0xe9 at offset 11\)"):
        read_reviews(path)
    with pytest.raises(InputTooLargeError) as error:
        list(review_batches(path, limits=ReadLimits(max_bytes=12, max_text_chars=10)))
    assert str(error.value) == f"{path}: over 12 bytes (decompressed); split it into smaller files"


def test_bad_jsonl_line_and_unknown_type(tmp_path):
    with pytest.raises(InputDataError, match="line 2: not valid JSON"):
        read_reviews(_write(tmp_path / "r.jsonl", '{"text": "a"}\n{"text": \n'))
    with pytest.raises(InputDataError, match=r"unknown file type '\.xlsx'"):
        read_reviews(_write(tmp_path / "r.xlsx", "x"))
    with pytest.raises(InputDataError, match="file not found"):
        read_reviews(tmp_path / "missing.csv")


def test_empty_text_is_kept_for_prediction(tmp_path):
    reviews = read_reviews(_write(tmp_path / "r.csv", 'text\n""\nfine\n'), require_text=False)
    assert [r.text for r in reviews] == ["", "fine"]


def test_detect_language():
    assert detect_language("배우 연기가 최고였어요") == "ko"
    assert detect_language("The acting was great") == "en"
    assert detect_language("영화 OST가 good") == "ko"
    assert detect_language("1234 !!!") == "en"


def test_batches_stream_every_format_with_row_numbers_and_ids_checked_across_batches(tmp_path):
    from topicsent.data import count_rows, review_batches

    texts = [f'line one of {i}\nline "two", of {i}' for i in range(7)]  # quoted newlines and commas
    csv_path = tmp_path / "r.csv.gz"
    csv_path.write_bytes(gzip.compress(pd.DataFrame({"text": texts}).to_csv(index=False).encode()))
    jsonl = _write(tmp_path / "r.jsonl", "".join(json.dumps({"text": t}) + "\n\n" for t in texts))
    parquet = tmp_path / "r.parquet"
    pd.DataFrame({"text": texts}).to_parquet(parquet)
    for path in (csv_path, jsonl, parquet):
        batches = list(review_batches(path, batch_size=3))
        assert [len(b) for b in batches] == [3, 3, 1] and count_rows(path) == 7
        assert [r.text for b in batches for r in b] == texts
    assert [r.id for r in next(review_batches(csv_path, batch_size=3))] == ["1", "2", "3"]
    doubled = _write(tmp_path / "d.csv", "id,text\n" + "".join(f"{i % 5},t{i}\n" for i in range(7)))
    with pytest.raises(InputDataError, match=r"row 6: duplicate id '0' \(first seen in row 1"):
        list(review_batches(doubled, ColumnMap(id="id"), batch_size=3))


def test_one_read_checks_labels_against_the_space_and_texts_against_the_limits(tmp_path):
    """A file read with a label space and read limits gets both checks in one pass: an
    over-long text is that row's problem (its error in the results) when predicting and
    the row's error when training; a category outside the space, or a span outside the
    text, is an error naming the row."""
    limits, space = ReadLimits(max_bytes=2**20, max_text_chars=20), LabelSpace(categories=("food",))
    long_text = "long " * 10
    rows = [{"text": "good food", "a": "food:positive"}, {"text": long_text, "a": "food:negative"}]
    path = _write(tmp_path / "r.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    columns = ColumnMap(aspects="a")
    reviews = [r for batch in review_batches(path, columns, space=space, limits=limits) for r in batch]
    assert [r.problem for r in reviews] == [None, f"text of {len(long_text)} characters is over the limit of 20"]
    assert [r.analysable for r in reviews] == [True, False]
    with pytest.raises(InputDataError, match=r": row 2: text of 50 characters is over the limit of 20; fix or remove the row$"):
        list(review_batches(path, columns, require_text=True, space=space, limits=limits))
    rows[1] = {"text": "rude staff", "a": "staff:negative"}
    outside = _write(tmp_path / "outside.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(InputDataError, match=r": row 2: category 'staff' is not in the taxonomy \(known: food\)$"):
        list(review_batches(outside, columns, space=space, limits=limits))
    rows[1] = {"text": "hi", "a": [{"term": "hi", "from": 0, "to": 9, "polarity": "positive"}]}
    span = _write(tmp_path / "span.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(InputDataError, match=r": row 2: span 0-9 of term 'hi' is outside the text \(2 characters\)$"):
        list(review_batches(span, columns, space=space, limits=limits))
