"""The contract every registered method must pass, on real data, for every task it declares.

A new method registered under the ``topicsent.methods`` entry point is picked up here
without any change to this file. Known exceptions go in EXPECTED_FAILURES with a reason.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from topicsent.data import ColumnMap, Review, read_reviews
from topicsent.errors import NotFittedError, UnsupportedTaskError
from topicsent.methods import BaseMethod, _terms, make_method, method_class, method_names
from topicsent.schema import ReviewAnalysis, Task

EXPECTED_FAILURES: dict[str, dict[str, str]] = {  # method -> {check name: reason}
    "lda": {"proba": "supervised LDA regresses the rating: no class probabilities (supervised=False, classify has them)"},
    "llm": {"proba": "an LLM answers one rating; it gives no class probabilities"},
    "cascade": {"proba": "each review is answered by one stage; there is no one class distribution over all of them"},
    "sft": {"proba": "a tuned LLM answers one rating; it gives no class probabilities"},
}
#: Parameters that make a method quick enough to fit many times here (as scikit-learn's
#: checks shorten max_iter); quality is tested elsewhere with the defaults.
#: ATSA methods find terms by their dictionary here (the trained term finder, their
#: default, is one extra training: test_extraction.py checks it end to end).
DICTIONARY = {"term_finder": "dictionary"}
CONTRACT_PARAMS: dict[str, dict] = {
    "majority": DICTIONARY,
    "tfidf-lr": DICTIONARY,
    "embed-head": {"epochs": 3, **DICTIONARY},
    "finetune": {"epochs": 1, "examples_per_class": 6, "max_length": 48, **DICTIONARY},
    "setfit": {"examples_per_class": 4, "max_steps": 4, "max_length": 48, **DICTIONARY},
    # min_count=1: from 400 short MAMS sentences the default (3) keeps no word of one test
    # review, which is then rightly abstained ("no known words"); these checks need answers
    "lda": {"n_topics": 5, "iterations": 30, "min_count": 1},
    "llm": {"backend": "llamacpp", "model": "smollm2-135m-instruct", "max_tokens": 200},
    "cascade": {"stages": "tfidf-lr[C=1.0,term_finder=dictionary]>tfidf-lr[term_finder=dictionary]"},
    "stack": {"members": "tfidf-lr[C=1.0]+tfidf-lr[C=16.0,max_features=5000]", **DICTIONARY},
    "sft": {"base": "smollm2-135m-instruct", "max_steps": 1, "eval_every": 1, "validation_reviews": 1, "max_tokens": 200},
    "extract": {"epochs": 1, "max_length": 48},
}
#: The small real-world inputs that once broke the product (../shared/cases/README.md).
CASES_DIR = Path(__file__).parents[2] / "shared" / "cases"
#: Test reviews per check for methods where each review costs a model call (LLMs).
CONTRACT_TEST_SIZE: dict[str, int] = {"llm": 4, "sft": 2}

CASES = [(name, task) for name in method_names() for task in sorted(method_class(name).supported_tasks)]
#: Methods whose second fit (the determinism check) takes most of a minute here: that
#: check runs in `make test-slow` for them; every other check still runs by default.
SLOW_REFIT = {"embed-head", "extract", "finetune", "llm", "setfit", "sft"}
#: Methods that answer on llama.cpp in process with CONTRACT_PARAMS (the `llamacpp` extra):
#: their checks that predict carry the `llamacpp` marker, so they skip, saying why, where
#: llama-cpp-python is not installed, and `make test-llm` runs them. `sft` already answers
#: its validation curve on llama.cpp while it fits.
PREDICTS_ON_LLAMACPP = {"llm", "sft"}
FITS_ON_LLAMACPP = {"sft"}


def _params(cases: list, *, llamacpp: set[str], slow: set[str] = frozenset()) -> list:
    """``cases`` (method names, or tuples starting with one) as pytest params marked
    ``llamacpp`` for the methods in ``llamacpp`` and ``slow`` for those in ``slow``."""
    params = []
    for case in cases:
        values = case if isinstance(case, tuple) else (case,)
        marks = [mark for mark, methods in ((pytest.mark.llamacpp, llamacpp), (pytest.mark.slow, slow)) if values[0] in methods]
        params.append(pytest.param(*values, marks=marks))
    return params


PREDICTING_CASES = _params(CASES, llamacpp=PREDICTS_ON_LLAMACPP)
ASPECT_CASES = _params([c for c in CASES if c[1] is not Task.RATING], llamacpp=PREDICTS_ON_LLAMACPP)
REFIT_CASES = _params(CASES, llamacpp=PREDICTS_ON_LLAMACPP, slow=SLOW_REFIT)
FITTING_METHODS = _params(method_names(), llamacpp=FITS_ON_LLAMACPP)


def _skip_if_expected(method: str, check: str) -> None:
    reason = EXPECTED_FAILURES.get(method, {}).get(check)
    if reason:
        pytest.xfail(reason)


_FITTED: dict[tuple[str, Task], BaseMethod] = {}  # per test process: checks that only read a fit share it


def _fresh_fit(name: str, task: Task, task_data) -> tuple[BaseMethod, object]:
    train, test = task_data[task.value]
    test = test[: CONTRACT_TEST_SIZE.get(name, len(test))]
    with _taggers_set_aside():  # a second fit trains again, not reusing the tagger the first one left in memory
        return make_method(name, random_state=0, **CONTRACT_PARAMS.get(name, {})).fit(train, task), test


@contextmanager
def _taggers_set_aside():
    """No trained term tagger in memory during the block; the ones there come back after
    it (other tests in this process may count on them)."""
    kept = dict(_terms._TAGGERS)
    _terms.clear_tagger_cache()
    try:
        yield
    finally:
        _terms._TAGGERS.clear()
        _terms._TAGGERS.update(kept)


def _fitted(name: str, task: Task, task_data) -> tuple[BaseMethod, object]:
    """A fitted method for read-only checks (predict, save), fitted once per process."""
    if (name, task) not in _FITTED:
        _FITTED[name, task] = _fresh_fit(name, task, task_data)[0]
    _, test = task_data[task.value]
    return _FITTED[name, task], test[: CONTRACT_TEST_SIZE.get(name, len(test))]


def _comparable(analyses: list[ReviewAnalysis]) -> list[dict]:
    """Predictions without timing and cache hits, which legitimately differ between runs."""
    return [a.model_dump(exclude={"usage": {"latency_ms", "cache_hit"}}) for a in analyses]


def _answered(method: BaseMethod, analyses: list[ReviewAnalysis]) -> list[ReviewAnalysis]:
    """Every row is ``ok``, except that methods whose answers can fail (LLMs) may leave a
    minority ``unparsed``: without labels, with the raw answer and the reason kept."""
    if not method.answers_can_fail:
        assert [a.status for a in analyses] == ["ok"] * len(analyses)
        return analyses
    unparsed = [a for a in analyses if a.status != "ok"]
    assert all(a.status == "unparsed" and a.raw and a.status_reason for a in unparsed)
    assert all(not a.aspects and a.overall.rating is None for a in unparsed), "an unparsed row carries a label"
    assert len(unparsed) <= len(analyses) // 2, f"{len(unparsed)} of {len(analyses)} rows unparsed"
    return analyses


def test_methods_are_registered():
    assert {"majority", "tfidf-lr"} <= set(method_names())


@pytest.mark.parametrize(("name", "task"), PREDICTING_CASES)
def test_output_follows_the_schema(name, task, task_data):
    _skip_if_expected(name, "schema")
    method, test = _fitted(name, task, task_data)
    analyses = _answered(method, method.predict(test.text_only()))
    assert [a.review_id for a in analyses] == [r.id for r in test]
    answered = [(review, a) for review, a in zip(test, analyses, strict=True) if a.status == "ok"]
    analyses = [a for _, a in answered]
    for analysis in analyses:
        ReviewAnalysis.model_validate(analysis.model_dump())  # re-validates every field
        assert analysis.method == name
        assert analysis.usage.latency_ms is not None
    if task is Task.RATING:
        low, high = test.label_space.rating_scale
        assert all(low <= a.overall.rating <= high for a in analyses)
        assert all(a.overall.polarity in {"positive", "negative", "neutral"} for a in analyses)
    else:
        assert any(a.aspects for a in analyses), "detection found no aspect in any test review"
        allowed = set(test.label_space.polarities)
        assert all(s.polarity in allowed for a in analyses for s in a.aspects)
        if task is Task.ACSA:
            assert {s.aspect for a in analyses for s in a.aspects} <= set(test.label_space.categories)
        else:
            for review, analysis in answered:
                for found in analysis.aspects:
                    assert review.text[found.span.start : found.span.end] == found.evidence


@pytest.mark.parametrize(("name", "task"), ASPECT_CASES)
def test_given_aspects_come_back_exactly(name, task, task_data):
    _skip_if_expected(name, "given_aspects")
    method, test = _fitted(name, task, task_data)
    analyses = _answered(method, method.predict(test.unlabelled(), given_aspects=True))
    for review, analysis in zip(test, analyses, strict=True):
        if analysis.status != "ok":
            continue
        assert [a.aspect for a in analysis.aspects] == [a.name for a in review.aspects]
        assert all(0.0 <= a.confidence <= 1.0 for a in analysis.aspects)


@pytest.mark.parametrize(("name", "task"), ASPECT_CASES)
def test_a_given_aspect_the_model_cannot_score_is_a_row_error(name, task, task_data):
    """Every method the same way: a category outside the taxonomy (the calibration row of
    ../shared/cases/unseen-category) or a term whose span holds other words is an
    ``error`` row naming it, and the other reviews are still answered."""
    _skip_if_expected(name, "unknown_aspects")
    method, test = _fitted(name, task, task_data)
    if task is Task.ACSA:
        cases = read_reviews(CASES_DIR / "unseen-category" / "calibration.csv", ColumnMap(id="id", aspects="aspects"))
        bad, problem = next(r for r in cases if r.id == "val-x"), "category 'parking' is not in the taxonomy (known: "
    else:
        cases = read_reviews(CASES_DIR / "base_atsa.jsonl", ColumnMap(id="id", aspects="aspects"))
        good = next(r for r in cases if len(r.aspects) == 2)
        first, second = good.aspects
        swapped = (replace(first, start=second.start, end=second.end), replace(second, start=first.start, end=first.end))
        bad, problem = replace(good, aspects=swapped), f"term {first.name!r} is given at {second.start}-{second.end}"
    reviews = [test[0].unlabelled(), bad.unlabelled(), test[1].unlabelled()]
    analyses = method.predict(reviews, given_aspects=True)
    assert analyses[1].status == "error" and problem in analyses[1].status_reason and not analyses[1].aspects
    _answered(method, [analyses[0], analyses[2]])


@pytest.mark.parametrize(("name", "task"), REFIT_CASES)
def test_seeded_fits_are_deterministic(name, task, task_data):
    _skip_if_expected(name, "deterministic")
    first, test = _fitted(name, task, task_data)
    second, _ = _fresh_fit(name, task, task_data)
    assert _comparable(first.predict(test.text_only())) == _comparable(second.predict(test.text_only()))


@pytest.mark.parametrize(("name", "task"), PREDICTING_CASES)
def test_save_and_load_give_the_same_predictions(name, task, task_data, tmp_path):
    _skip_if_expected(name, "save_load")
    method, test = _fitted(name, task, task_data)
    method.save(tmp_path / "model")
    loaded = BaseMethod.load(tmp_path / "model")
    assert type(loaded) is type(method) and loaded.get_params() == method.get_params()
    assert _comparable(loaded.predict(test.text_only())) == _comparable(method.predict(test.text_only()))
    assert not list((tmp_path / "model").glob("*.pkl")), "models are saved without pickle"


@pytest.mark.parametrize(("name", "task"), PREDICTING_CASES)
def test_empty_and_very_long_texts(name, task, task_data):
    _skip_if_expected(name, "edge_texts")
    method, test = _fitted(name, task, task_data)
    long_text = " ".join([test[0].text] * 2000)  # hundreds of thousands of characters
    reviews = [Review("empty", ""), Review("blank", " \n\t "), Review("long", long_text), test[1].text_only()]
    analyses = method.predict(reviews)
    assert [a.review_id for a in analyses] == ["empty", "blank", "long", test[1].id]
    assert [a.status for a in analyses[:2]] == ["error", "error"]
    _answered(method, analyses[2:])
    assert analyses[0].status_reason and not analyses[0].aspects and analyses[0].overall.rating is None


@pytest.mark.parametrize("name", method_names())
def test_unfitted_and_unsupported_use_fail_clearly(name, task_data):
    method = make_method(name)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        method.predict([Review("1", "text")])
    missing = set(Task) - method.supported_tasks
    for task in missing:
        with pytest.raises(UnsupportedTaskError):
            method.fit(task_data[task.value][0], task)


@pytest.mark.parametrize("name", FITTING_METHODS)
def test_clone_keeps_parameters_and_drops_state(name, task_data):
    method = make_method(name, **CONTRACT_PARAMS.get(name, {}))
    task = sorted(method.supported_tasks)[0]
    method.fit(task_data[task.value][0], task)
    twin = method.clone()
    assert twin.get_params() == method.get_params() and not hasattr(twin, "task_")
    assert repr(twin).startswith(type(method).__name__ + "(")


@pytest.mark.parametrize("name", [n for n in method_names() if Task.RATING in method_class(n).supported_tasks])
def test_rating_probabilities_sum_to_one(name, task_data):
    _skip_if_expected(name, "proba")
    method, test = _fitted(name, Task.RATING, task_data)
    proba = method.predict_proba([*test.text_only(), Review("empty", "")])
    assert proba.shape == (len(test) + 1, len(method.classes_))
    np.testing.assert_allclose(proba[:-1].sum(axis=1), 1.0, rtol=1e-6)
    assert np.isnan(proba[-1]).all()
    best = method.classes_[proba[:-1].argmax(axis=1)]
    assert list(best) == [a.overall.rating for a in method.predict(test.text_only())]


@pytest.mark.parametrize("name", FITTING_METHODS)
def test_damaged_model_directory_is_a_clear_error(name, task_data, tmp_path):
    from topicsent.errors import ModelFileError

    tasks = method_class(name).supported_tasks
    method, _ = _fitted(name, next(t for t in (Task.RATING, Task.ACSA, Task.ATSA) if t in tasks), task_data)
    method.save(tmp_path)
    for state_file in tmp_path.rglob("*"):
        if state_file.is_file() and state_file.name != "topicsent.json":
            state_file.write_bytes(b"not what was saved")
    with pytest.raises(ModelFileError, match="damaged"):
        BaseMethod.load(tmp_path)
