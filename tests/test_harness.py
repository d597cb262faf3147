"""The evaluation harness end to end on quick seeded samples of real data."""

import csv
import json

from topicsent.eval import run_evaluation, write_run


def test_quick_run_tunes_scores_and_writes_results(tmp_path):
    run = run_evaluation(["mams-acsa", "womens-clothing"], ["majority", "tfidf-lr"], limit=300, seed=0)
    results = {(r["dataset"], r["method"]): r for r in run["results"]}
    assert set(results) == {(d, m) for d in ("mams-acsa", "womens-clothing") for m in ("majority", "tfidf-lr")}

    tfidf = results[("mams-acsa", "tfidf-lr")]
    assert len(tfidf["tuning"]) == 3 and all(t["validation"] is not None for t in tfidf["tuning"])
    best = max(tfidf["tuning"], key=lambda t: t["validation"])
    assert tfidf["params"]["C"] == best["params"]["C"]
    assert len(results[("womens-clothing", "tfidf-lr")]["tuning"]) == 6  # C x {classify, regress}
    assert {"polarity_accuracy", "polarity_macro_f1", "detection_f1", "joint_f1", "coverage"} <= set(tfidf["metrics"])
    assert {"accuracy", "macro_f1", "mae", "qwk"} <= set(results[("womens-clothing", "majority")]["metrics"])
    assert tfidf["score"] > results[("mams-acsa", "majority")]["score"]
    assert tfidf["relative"]["speed_vs_tfidf_lr"] == 1.0
    assert tfidf["relative"]["gain_over_majority"] == tfidf["score"] - results[("mams-acsa", "majority")]["score"]
    assert tfidf["reviews_per_second"] > 0 and tfidf["peak_rss_mb"] > 0 and tfidf["n_test"] == 300
    assert 0 < tfidf["metrics"]["ece"] < 0.5 and 0 <= tfidf["metrics"]["ece_calibrated"] < 0.5  # calibrated on validation

    json_path, csv_path = write_run(run, tmp_path)
    saved = json.loads(json_path.read_text())
    assert saved["run"]["commit"] and saved["run"]["limit"] == 300 and len(saved["results"]) == 4
    with csv_path.open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 4 and {"qwk", "polarity_accuracy", "speed_vs_tfidf_lr", "commit"} <= set(rows[0])


def test_methods_skip_tasks_they_do_not_declare():
    run = run_evaluation(["semeval14-atsa"], ["majority[term_finder=dictionary]"], limit=100, tune=False)
    assert [r["method"] for r in run["results"]] == ["majority[term_finder=dictionary]"] and run["results"][0]["tuning"] == []


def test_the_run_times_prediction_with_an_empty_embedding_cache():
    import os

    from topicsent.encoders import CACHE_DIR_ENV

    before = os.environ.get(CACHE_DIR_ENV)
    seen = []
    run_evaluation(
        ["mams-acsa"], ["majority"], limit=50, tune=False, on_result=lambda run, result: seen.append(os.environ[CACHE_DIR_ENV])
    )
    assert seen and seen[0] != before and "topicsent-eval-cache-" in seen[0]
    assert os.environ.get(CACHE_DIR_ENV) == before and not os.path.exists(seen[0])


def test_method_objects_are_evaluated_and_labelled_by_their_spec(tmp_path):
    from topicsent.methods import CascadeMethod, MajorityMethod, TfidfLRMethod

    cascade = CascadeMethod(stages=[TfidfLRMethod(C=0.5), TfidfLRMethod(analyzer="char")])
    run = run_evaluation(["mams-acsa"], [MajorityMethod(), cascade], limit=300, tune=False, calibration_sample=0)
    label = 'cascade[stages="tfidf-lr[C=0.5]>tfidf-lr[analyzer=char]"]'
    assert run["run"]["methods"] == ["majority", label] and [r["method"] for r in run["results"]] == ["majority", label]
    assert run["results"][1]["params"]["stages"] == "tfidf-lr[C=0.5]>tfidf-lr[analyzer=char]"  # JSON, not objects
    assert not hasattr(cascade, "stages_")  # the harness trained a clone
    json_path, _ = write_run(run, tmp_path)
    assert json.loads(json_path.read_text())["results"][1]["method"] == label
