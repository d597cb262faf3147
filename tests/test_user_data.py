"""A user's own labels: `eval --train` on their files, and the pandas-first Python API.

The files are the clean cases in ../shared/cases (60 MAMS-ACSA sentences, 80 Women's
clothing reviews with stars); the bad inputs are made from them.
"""

from __future__ import annotations

import doctest
import importlib
import json
import os
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import topicsent
from topicsent.data import ColumnMap, file_splits, read_reviews, stratified_split
from topicsent.errors import InputDataError, NotFittedError
from topicsent.report import read_eval
from topicsent.schema import FLAT_COLUMNS, Predictions, Task

CASES = Path(__file__).parents[2] / "shared" / "cases"
ACSA, RATING = CASES / "base_acsa.csv", CASES / "base_rating.csv"
TUTORIAL = Path(__file__).parents[1] / "docs" / "tutorial.md"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"COLUMNS": "200"}
    command = [sys.executable, "-m", "topicsent.interfaces", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


# ----- eval on the user's files ------------------------------------------------------------------


def test_eval_on_a_labelled_csv_prints_the_table_writes_json_and_csv_and_the_report_reads_it(tmp_path):
    result = run("eval", "--train", str(ACSA), "--id-col", "id", "--aspects-col", "aspects", "-m", "majority,tfidf-lr",
                 "-o", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "base_acsa (test: 12 reviews, train: 43)" in result.stdout  # 20% of 60, then 10% of the other 48 to validate
    assert "polarity_accuracy" in result.stdout and "ece_calibrated" in result.stdout and "tfidf-lr" in result.stdout
    [json_path], [csv_path] = tmp_path.glob("eval-*.json"), tmp_path.glob("eval-*.csv")
    run_record = read_eval(json_path)
    assert run_record["run"]["datasets"] == ["base_acsa"]
    source = run_record["run"]["sources"]["base_acsa"]
    assert source["train"] == str(ACSA) and source["test_size"] == 0.2
    assert source["sizes"] == {"train": 43, "validation": 5, "test": 12}
    assert source["label_space"]["categories"] == [
        "ambience",
        "food",
        "menu",
        "miscellaneous",
        "place",
        "price",
        "service",
        "staff",
    ]
    results = {r["method"]: r for r in run_record["results"]}
    assert set(results) == {"majority", "tfidf-lr"} and results["tfidf-lr"]["task"] == "acsa"
    assert results["tfidf-lr"]["n_test"] == 12 and "ece" in results["tfidf-lr"]["metrics"]
    assert results["tfidf-lr"]["score"] > results["majority"]["score"]
    assert "base_acsa" in csv_path.read_text(encoding="utf-8")
    report = run("report", str(json_path), "-o", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "base_acsa" in html and "tfidf-lr" in html


def test_eval_on_a_rating_csv_with_a_test_file(tmp_path):
    frame = pd.read_csv(RATING).sample(frac=1.0, random_state=0)  # the file is sorted by stars
    frame.iloc[:60].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[60:].to_csv(tmp_path / "test.csv", index=False)
    result = run("eval", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"), "--id-col", "id",
                 "--rating-col", "stars", "-m", "majority,tfidf-lr,tfidf-lr[C=0.5]", "--no-tune",
                 "-o", str(tmp_path / "out"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "train (test: 20 reviews, train: 54)" in result.stdout and "qwk" in result.stdout  # 10% of train validates
    [json_path] = (tmp_path / "out").glob("eval-*.json")
    run_record = json.loads(json_path.read_text(encoding="utf-8"))
    assert run_record["run"]["sources"]["train"]["label_space"]["rating_scale"] == [1, 5]
    tasks = {r["method"]: r["task"] for r in run_record["results"]}
    assert tasks == {"majority": "rating", "tfidf-lr": "rating", "tfidf-lr[C=0.5]": "rating"}  # variants too
    assert all(r["n_test"] == 20 for r in run_record["results"])


def _ten_point_test_file(tmp_path) -> Path:
    frame = pd.read_csv(RATING)
    frame["stars"] = frame["stars"] * 2  # the same reviews on a 2-10 scale
    frame.to_csv(tmp_path / "ten.csv", index=False)
    return tmp_path / "ten.csv"


def test_eval_on_a_user_file_prints_through_the_one_table_helper(tmp_path):
    """`eval --train` prints its table like every results printer: --format json is one
    document on stdout with the raw values, the other lines on stderr."""
    result = run("eval", "--train", str(ACSA), "--id-col", "id", "--aspects-col", "aspects", "-m", "majority",
                 "--no-tune", "--calibration-sample", "0", "--format", "json", "-o", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    [table] = json.loads(result.stdout)["tables"]  # nothing else on stdout
    assert table["title"] == "base_acsa (test: 12 reviews, train: 43)"
    [saved] = json.loads(next(tmp_path.glob("eval-*.json")).read_text(encoding="utf-8"))["results"]
    [row] = table["rows"]
    assert row["method"] == "majority" and row["polarity_accuracy"] == saved["metrics"]["polarity_accuracy"]
    assert "Results:" in result.stderr and "base_acsa / majority" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train", str(ACSA), "--test", str(CASES / "unseen-category" / "calibration.csv"), "--aspects-col", "aspects"],
         "review 'val-x': category 'parking' is not among the categories of the training file"),
        (["--train", str(RATING), "--test", "TEN", "--rating-col", "stars"],
         "rating 6 is outside the scale 1-5 of the training file"),
        (["--train", str(ACSA), "--test-size", "0.99", "--aspects-col", "aspects"],
         "a test share of 0.99 of 60 reviews leaves none for training"),
        (["--train", str(ACSA), "--test-size", "1.5", "--aspects-col", "aspects"], "must be between 0 and 1"),
        (["--train", str(ACSA), "--test", str(ACSA), "--test-size", "0.3", "--aspects-col", "aspects"],
         "give --test FILE or --test-size, not both"),
        (["--test-size", "0.3"], "go with --train FILE"),
        (["--train", str(ACSA), "--aspects-col", "labels"], "no column 'labels' for the aspects"),
    ],
)  # fmt: skip
def test_bad_user_files_fail_in_one_line_with_exit_2(tmp_path, args, message):
    args = [str(_ten_point_test_file(tmp_path)) if arg == "TEN" else arg for arg in args]
    result = run("eval", "--id-col", "id", "-m", "majority", "-o", str(tmp_path / "out"), *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before anything trained


def test_splits_are_seeded_stratified_and_keep_the_label_space():
    columns = ColumnMap(id="id", rating="stars")
    splits = file_splits(RATING, columns=columns, seed=3)
    again = file_splits(RATING, columns=columns, seed=3)
    other = file_splits(RATING, columns=columns, seed=4)
    ids = [[r.id for r in part] for part in (splits.train, splits.validation, splits.test)]
    assert ids == [[r.id for r in part] for part in (again.train, again.validation, again.test)]
    assert ids[2] != [r.id for r in other.test]
    assert sum(map(len, ids)) == 80 and not set(ids[0]) & set(ids[2]) and not set(ids[1]) & set(ids[2])
    everything = Counter(r.rating for r in read_reviews(RATING, columns))
    tested = Counter(r.rating for r in splits.test)
    for rating, count in everything.items():  # each rating's share of the test split follows the file's
        assert abs(tested[rating] - count * len(splits.test) / 80) <= 1
    assert splits.test.task is Task.RATING and splits.test.label_space.rating_scale == (1, 5)
    assert splits.train.name == "base_rating/train"


def test_aspect_splits_put_each_category_with_two_reviews_on_both_sides():
    reviews = list(read_reviews(ACSA, ColumnMap(id="id", aspects="aspects")))
    kept, held = stratified_split(reviews, 0.3, Task.ACSA, seed=0)
    counts = Counter(a.name for r in reviews for a in r.aspects)
    in_kept = {a.name for r in kept for a in r.aspects}
    assert {name for name, count in counts.items() if count >= 2} <= in_kept
    assert len(held) == 18 and [r.id for r in kept] == sorted((r.id for r in kept), key=[r.id for r in reviews].index)


def test_held_out_files_and_tables_are_checked_like_training_data(tmp_path):
    """The test file of an evaluation and a table given a taxonomy go through the one
    label check (data.check_labels / label_problem) that training files and fit use."""
    columns = ColumnMap(id="id", aspects="aspects")
    unlabelled = tmp_path / "test.jsonl"
    unlabelled.write_text(json.dumps({"id": "t-1", "text": "Good food", "aspects": [{"aspect": "food"}]}) + "\n")
    with pytest.raises(InputDataError) as error:
        file_splits(ACSA, test=unlabelled, columns=columns)
    assert str(error.value).startswith(f"{unlabelled}: review 't-1' aspect 'food' has no polarity; expected one of")
    frame = pd.DataFrame({"text": ["Great food", "Rude staff"], "aspects": ["food:positive", "staff:negative"]})
    with pytest.raises(InputDataError, match=r"^DataFrame: row 1: category 'staff' is not in the taxonomy \(known: food\)$"):
        topicsent.data.as_review_set(frame, aspects="aspects", categories=("food",))
    known = topicsent.data.as_review_set(frame, aspects="aspects", categories=("food", "staff")).label_space
    assert known.categories == ("food", "staff")


# ----- the Python API --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acsa_frame() -> pd.DataFrame:
    return pd.read_csv(ACSA)


@pytest.fixture(scope="module")
def acsa_model(acsa_frame):
    return topicsent.make_method("tfidf-lr").fit(acsa_frame, text="text", aspects="aspects", id="id")


def test_fit_a_dataframe_by_column_names(acsa_model, acsa_frame):
    assert acsa_model.task_ is Task.ACSA and "staff" in acsa_model.label_space_.categories
    renamed = acsa_frame.rename(columns={"text": "body", "aspects": "labels"})
    twin = topicsent.TfidfLRMethod().fit(renamed, text="body", aspects="labels")
    texts = acsa_frame["text"].head(5).tolist()
    assert [a.aspects for a in twin.predict(texts)] == [a.aspects for a in acsa_model.predict(texts)]


def test_predict_takes_a_string_a_list_a_series_and_a_dataframe(acsa_model, acsa_frame):
    one = acsa_model.predict("The pasta was great but the waiter was rude.")
    assert isinstance(one, Predictions) and len(one) == 1 and one[0].review_id == "0" and one[0].status == "ok"
    listed = acsa_model.predict(["The pasta was great", "   ", "Rude waiter"])
    assert [a.review_id for a in listed] == ["0", "1", "2"] and [a.status for a in listed] == ["ok", "error", "ok"]
    series = acsa_frame.set_index("id")["text"]
    by_series = acsa_model.predict(series)
    assert [a.review_id for a in by_series] == list(series.index)  # the index labels are the ids
    by_frame = acsa_model.predict(acsa_frame, id="id")
    assert [a.aspects for a in by_frame] == [a.aspects for a in by_series]
    given = acsa_model.predict(acsa_frame.head(4), id="id", aspects="aspects", given_aspects=True)
    gold = [[part.split(":")[0].strip() for part in cell.split(";")] for cell in acsa_frame["aspects"].head(4)]
    assert [[a.aspect for a in analysis.aspects] for analysis in given] == gold


def test_results_become_a_dataframe_in_one_call(acsa_model, acsa_frame):
    table = acsa_model.predict(acsa_frame["text"]).to_dataframe()
    assert list(table.columns) == list(FLAT_COLUMNS)
    assert set(table.review_id) == {str(i) for i in acsa_frame.index}
    assert set(table.aspect.dropna()) <= set(acsa_model.label_space_.categories)


def test_fit_a_list_of_dicts_and_ratings_with_missing_values(tmp_path):
    rows = pd.read_csv(RATING).to_dict("records")
    model = topicsent.make_method("majority").fit(rows, rating="stars", id="id")
    assert model.task_ is Task.RATING and model.label_space_.rating_scale[1] == 5
    frame = pd.read_csv(RATING)
    frame.loc[3, "stars"] = None  # a missing rating is a review without one, not NaN
    with pytest.raises(InputDataError, match=r"review '.*' has no rating"):
        topicsent.make_method("tfidf-lr").fit(frame, rating="stars", id="id")
    proba = topicsent.make_method("tfidf-lr").fit(rows, rating="stars").predict_proba(frame["text"].head(3))
    assert proba.shape == (3, len(set(r["stars"] for r in rows)))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.predict(pd.DataFrame({"body": ["x"]})), "DataFrame: no column 'text' for the text .*choose one with text="),
        (lambda m: m.predict([1, 2]), "list: expected review texts \\(str\\) or rows \\(dict\\), got int"),
        (lambda m: m.predict(pd.Series(["a", "b"], index=[1, 1])), "Series: row 1: duplicate id '1'"),
        (lambda m: m.predict(42), "cannot read reviews from a int"),
        (lambda m: topicsent.TfidfLRMethod().fit(pd.DataFrame({"text": ["good", ""], "aspects": ["food:positive"] * 2}),
                                                 aspects="aspects"), "DataFrame: row 1: empty text"),
    ],
)  # fmt: skip
def test_bad_in_memory_input_names_the_row_and_the_fix(acsa_model, call, message):
    with pytest.raises(InputDataError, match=message):
        call(acsa_model)


def test_a_lone_surrogate_in_memory_is_that_rows_error_when_predicting_and_refused_when_fitting(acsa_model):
    """Rows in memory go through the same row reader as a file: a text with a lone
    surrogate (half a UTF-16 pair, which a JSON escape can make) is that row's error, the
    other rows are answered; training on it names the row. (pandas' default string
    columns cannot hold one; an object column can.)"""
    texts = ["The pasta was great", "bad \ud800 waiter", "Rude waiter"]
    answered = acsa_model.predict(texts)
    assert [a.status for a in answered] == ["ok", "error", "ok"]
    assert "lone surrogate (U+D800 at character 4)" in answered[1].status_reason
    labels = ["food:positive", "staff:negative", "staff:negative"]
    frame = pd.DataFrame({"text": texts, "aspects": labels}, dtype=object)
    assert [a.status for a in acsa_model.predict(frame)] == ["ok", "error", "ok"]
    with pytest.raises(InputDataError, match=r"^DataFrame: row 1: text holds a lone surrogate .*; fix or remove the row$"):
        topicsent.TfidfLRMethod().fit(frame, aspects="aspects")


def test_predict_before_fit_says_call_fit():
    with pytest.raises(NotFittedError, match="Call 'fit'"):
        topicsent.MajorityMethod().predict("text")


def test_everything_users_need_is_importable_from_topicsent():
    from topicsent.methods import method_class, method_names

    for name in method_names():  # every registered method by class name, and by name
        cls = method_class(name)
        assert getattr(topicsent, cls.__name__) is cls and cls.__name__ in topicsent.__all__
        assert type(topicsent.make_method(name)) is cls
    for name in ("DATASETS", "load_dataset", "file_splits", "read_reviews", "sample_path", "ReviewAnalysis", "Predictions",
                 "to_dataframe", "json_schema", "Task", "run_evaluation", "InputDataError", "BaseMethod"):  # fmt: skip
        assert getattr(topicsent, name) is not None and name in dir(topicsent)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        topicsent.Nope  # noqa: B018


@pytest.mark.parametrize("module", ["topicsent", "topicsent.methods._base", "topicsent.schema"])
def test_the_api_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 2 and result.failed == 0


def test_the_tutorial_runs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's convergence notes are not the tutorial's output
        result = doctest.testfile(
            str(TUTORIAL), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        )
    assert result.attempted >= 25 and result.failed == 0
