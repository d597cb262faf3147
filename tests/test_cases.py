"""The small real-world inputs in ../shared/cases that once broke the product, each as
the fixture of the behaviour that replaced the failure (issue 26). The kinds they stand
for are also covered across methods in tests/test_contract.py."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from topicsent.data import ColumnMap, read_reviews
from topicsent.errors import InputDataError
from topicsent.methods import make_method, method_names

CASES = Path(__file__).parents[2] / "shared" / "cases"
ASPECTS = ColumnMap(id="id", aspects="aspects")


def test_a_span_holding_another_term_is_refused_naming_row_term_and_text():
    with pytest.raises(InputDataError) as error:
        read_reviews(CASES / "span-mismatch" / "train.jsonl", ASPECTS)
    assert str(error.value) == (
        f"{CASES / 'span-mismatch' / 'train.jsonl'}: row 41: term 'soup' is given at 4-10, where the text says 'waiter'"
    )


def test_a_calibration_category_outside_the_taxonomy_is_refused_naming_it_and_the_known_ones():
    train = read_reviews(CASES / "base_acsa.csv", ASPECTS)
    with pytest.raises(InputDataError, match=r"calibration.csv: row 41: category 'parking' is not in the taxonomy \(known: amb"):
        read_reviews(CASES / "unseen-category" / "calibration.csv", ASPECTS, categories=train.label_space.categories)
    model = make_method("tfidf-lr").fit(train, "acsa")
    calibration = read_reviews(CASES / "unseen-category" / "calibration.csv", ASPECTS)
    with pytest.raises(InputDataError, match="review 'val-x': category 'parking' is not in the taxonomy"):
        model.calibrate(calibration)  # the Python API refuses it the same way


@pytest.mark.parametrize(
    ("file", "columns", "message"),
    [
        ("all_five_stars.csv", ColumnMap(id="id", rating="stars"), "every rating is 5: a rating model needs at least two"),
        ("all_positive.csv", ASPECTS, "every aspect's polarity is positive: a polarity model needs at least two"),
    ],
)
@pytest.mark.parametrize("method", method_names())
def test_one_class_training_data_is_refused_before_any_work_in_every_method(file, columns, message, method):
    reviews = read_reviews(CASES / "single-class" / file, columns)
    model = make_method(method)
    if reviews.task is None and columns.rating:
        reviews = read_reviews(CASES / "single-class" / file, columns, task="rating")
    task = "rating" if columns.rating else "acsa"
    if task not in {t.value for t in model.supported_tasks}:
        pytest.skip(f"{method} does not do {task}")
    with pytest.raises(InputDataError, match=message):
        model.fit(reviews, task)


def test_topics_from_one_rating_value_is_refused_before_discovery(monkeypatch):
    from topicsent.topics import _analysis

    monkeypatch.setattr(_analysis, "discover_topics", lambda *a, **k: pytest.fail("discovery ran"))
    reviews = read_reviews(CASES / "single-class" / "all_five_stars.csv", ColumnMap(id="id", rating="stars"))
    reviews = reviews.with_reviews(list(reviews) * 2)  # enough reviews: only the single value is wrong
    with pytest.raises(InputDataError, match="every rating is 5: per-topic sentiment and key drivers from ratings"):
        _analysis.analyze_topics(reviews)


@pytest.mark.parametrize(("method", "params"), [("lda", {"n_topics": 5, "iterations": 50}), ("tfidf-lr", {})])
def test_reviews_without_known_words_are_abstained_not_answered_from_the_prior(method, params):
    train = read_reviews(CASES / "lda-empty-docs" / "train.csv", ColumnMap(id="id", rating="stars"))
    model = make_method(method, **params).fit(train, "rating")
    reviews = read_reviews(CASES / "lda-empty-docs" / "predict.csv", ColumnMap(id="id"))
    analyses = {a.review_id: a for a in model.predict(reviews)}
    # tfidf-lr's vocabulary keeps "the", "10" and the "ㅋㅋㅋㅋ" of one training review; lda's content words do not
    empty = ["pe1", "pe3", "pe5"] + (["pe2", "pe4", "pe6"] if method == "lda" else [])
    for review_id in empty:
        analysis = analyses[review_id]
        assert analysis.status == "abstained" and analysis.status_reason.startswith("no known words"), analysis
        assert analysis.overall.rating is None and not analysis.aspects
    assert analyses["p7"].status == "ok" and analyses["p7"].overall.rating is not None


def test_a_review_where_the_term_finder_finds_nothing_says_so():
    """ATSA without given terms: no known term in the text is a real answer (no aspects),
    not one from the prior, and the row says why it has none."""
    train = read_reviews(CASES / "base_atsa.jsonl", ASPECTS)
    model = make_method("tfidf-lr", term_finder="dictionary").fit(train, "atsa")
    known = model.term_lexicon_.terms[0]
    found, nothing = model.predict(_reviews_of_texts([f"The {known} was fine.", "We went there and it was fine."]))
    assert found.status == "ok" and [a.aspect for a in found.aspects] == [known] and found.status_reason is None
    assert nothing.status == "ok" and not nothing.aspects
    assert nothing.status_reason.startswith("no aspect term found: the term finder knows the")


def _reviews_of_texts(texts: list[str]):
    from topicsent.data import Review

    return [Review(id=str(i), text=text) for i, text in enumerate(texts)]


def test_a_category_without_examples_stops_methods_that_learn_it_but_not_a_prompted_llm():
    from topicsent.data import load_dataset

    train = load_dataset("mams-acsa").train.sample(200, seed=5)
    sample = train.with_reviews([r for r in train if all(a.name != "service" for a in r.aspects)])
    assert "service" in sample.label_space.categories and not any(a.name == "service" for r in sample for a in r.aspects)
    with pytest.raises(InputDataError, match="no review is labelled with the taxonomy's 'service'"):
        make_method("tfidf-lr").fit(sample, "acsa")
    prompted = make_method("llm", backend="llamacpp", model="smollm2-135m-instruct").fit(sample, "acsa")
    assert "service" in prompted.label_space_.categories  # the taxonomy comes from the prompt, examples are optional


def _truncating_server(request: httpx.Request) -> httpx.Response:
    """An OpenAI-compatible server that cuts off the reviews marked TRUNC (partial JSON)
    and NULLC (no content) at the token limit, and answers the others."""
    body = json.loads(request.content)
    asked = " ".join(m["content"] for m in body["messages"] if m["role"] == "user")
    if "TRUNC" in asked:
        content, reason = '{"aspects": [{"aspect": "food", "polarity": "posi', "length"
    elif "NULLC" in asked:
        content, reason = None, "length"
    else:
        content, reason = json.dumps({"aspects": [{"aspect": "food", "polarity": "positive"}]}), "stop"
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": reason}
    return httpx.Response(200, json={"choices": [choice], "usage": {"prompt_tokens": 90, "completion_tokens": 40}})


def test_an_answer_cut_off_at_the_token_limit_says_so_without_a_repair_call(monkeypatch, tmp_path):
    monkeypatch.setenv("TOPICSENT_CACHE_DIR", str(tmp_path / "cache"))
    requests = []

    def server(request):
        requests.append(json.loads(request.content))
        return _truncating_server(request)

    client = httpx.AsyncClient
    monkeypatch.setattr(
        "topicsent.llm._openai.httpx.AsyncClient", lambda **kw: client(transport=httpx.MockTransport(server), **kw)
    )
    train = read_reviews(CASES / "base_acsa.csv", ASPECTS)
    params = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "stand-in", "max_tokens": 40}
    model = make_method("llm", **params).fit(train, "acsa")
    truncated, empty, fine = model.predict(read_reviews(CASES / "llm-truncated" / "reviews.csv", ColumnMap(id="id")))
    assert len(requests) == 3 and all(len(r["messages"]) == 2 for r in requests), "a repair turn was sent"
    for row in (truncated, empty):
        assert row.status == "unparsed" and not row.aspects
        assert "cut off at the token limit (max_tokens=40)" in row.status_reason and "raise max_tokens" in row.status_reason
    assert truncated.raw == '{"aspects": [{"aspect": "food", "polarity": "posi' and empty.raw == ""
    assert fine.status == "ok" and [a.aspect for a in fine.aspects] == ["food"]
    again = make_method("llm", **params).fit(train, "acsa")  # from the cache: still known to be cut off
    assert again.predict(read_reviews(CASES / "llm-truncated" / "reviews.csv", ColumnMap(id="id")))[0].status_reason == (
        truncated.status_reason
    )
    assert len(requests) == 3
