import json

import pytest
from pydantic import ValidationError

from topicsent.schema import (
    FLAT_COLUMNS,
    AspectSentiment,
    Overall,
    ReviewAnalysis,
    Span,
    Usage,
    dumps,
    flat_rows,
    json_schema,
    loads,
    read_jsonl,
    to_dataframe,
    write_analyses,
    write_jsonl,
)


def _analysis(review_id: str = "r1", **fields) -> ReviewAnalysis:
    aspects = [
        AspectSentiment(aspect="food", kind="category", polarity="positive", confidence=0.9),
        AspectSentiment(aspect="서비스", kind="term", polarity="negative", evidence="서비스", span=Span(start=0, end=3)),
    ]
    defaults = dict(
        review_id=review_id, language="ko", overall=Overall(polarity="mixed", rating=3.0, confidence=0.5),
        aspects=aspects, method="tfidf-lr", usage=Usage(latency_ms=1.5, input_tokens=10, cost_usd=0.001, cache_hit=False),
    )  # fmt: skip
    return ReviewAnalysis(**(defaults | fields))


def test_json_round_trip_keeps_everything():
    original = [_analysis("a"), _analysis("b", aspects=[], status="unparsed", status_reason="bad JSON", raw="{oops")]
    assert loads(dumps(original)) == original
    assert ReviewAnalysis.model_validate_json(original[0].model_dump_json()) == original[0]


def test_jsonl_round_trip_keeps_korean_readable(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl([_analysis()], path)
    assert "서비스" in path.read_text(encoding="utf-8")
    assert read_jsonl(path) == [_analysis()]


def test_flat_rows_one_per_aspect_and_one_for_a_review_without_aspects():
    rows = list(flat_rows([_analysis("a"), _analysis("b", aspects=[])]))
    assert [(r["review_id"], r["aspect"]) for r in rows] == [("a", "food"), ("a", "서비스"), ("b", None)]
    assert rows[1]["span_start"] == 0 and rows[1]["span_end"] == 3
    assert rows[0]["overall_rating"] == 3.0 and rows[0]["cost_usd"] == 0.001
    frame = to_dataframe([_analysis("a")])
    assert list(frame.columns) == list(FLAT_COLUMNS) and len(frame) == 2


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ".csv"])
def test_write_analyses_by_file_type(tmp_path, suffix):
    import pandas as pd

    path = write_analyses([_analysis("a"), _analysis("b")], tmp_path / f"out{suffix}")
    if suffix == ".jsonl":
        assert len(read_jsonl(path)) == 2
    else:
        frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
        assert sorted(frame["review_id"].astype(str).unique()) == ["a", "b"] and len(frame) == 4


@pytest.mark.parametrize(
    "change",
    [
        {"status": "unparsed"},  # a non-ok status needs a reason
        {"status": "guessed", "status_reason": "x"},
        {"overall": {"polarity": "great"}},
        {"overall": {"confidence": 1.5}},
        {"aspects": [{"aspect": "food", "kind": "category", "polarity": "positive", "confidence": -0.1}]},
        {"aspects": [{"aspect": "", "kind": "category", "polarity": "positive"}]},
        {"aspects": [{"aspect": "food", "kind": "dish", "polarity": "positive"}]},
        {"aspects": [{"aspect": "food", "kind": "term", "polarity": "positive", "span": {"start": 5, "end": 2}}]},
        {"usage": {"input_tokens": -1}},
        {"unexpected_field": 1},
    ],
)
def test_invalid_analyses_are_rejected(change):
    data = json.loads(_analysis().model_dump_json()) | change
    with pytest.raises(ValidationError):
        ReviewAnalysis.model_validate(data)


def test_json_schema_names_the_fields():
    schema = json_schema()
    assert {"review_id", "overall", "aspects", "status", "usage"} <= set(schema["properties"])


def test_csv_output_neutralises_formulas_but_parquet_and_jsonl_keep_the_text(tmp_path):
    import pandas as pd

    ids = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "plain"]
    analyses = [
        ReviewAnalysis(
            review_id=i,
            language="en",
            method="m",
            aspects=[AspectSentiment(aspect="=cmd|' /C calc'!A0", kind="category", polarity="positive")],
        )
        for i in ids
    ]
    csv_rows = pd.read_csv(write_analyses(analyses, tmp_path / "r.csv"), dtype=str, keep_default_na=False)
    assert list(csv_rows["review_id"]) == ["'" + i for i in ids[:4]] + ["plain"]
    assert set(csv_rows["aspect"]) == {"'=cmd|' /C calc'!A0"}
    assert list(pd.read_parquet(write_analyses(analyses, tmp_path / "r.parquet"))["review_id"]) == ids
    assert [a.review_id for a in read_jsonl(write_analyses(analyses, tmp_path / "r.jsonl"))] == ids
