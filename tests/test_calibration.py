"""Calibrated confidence, abstaining and the cascade, on real MAMS and Women's clothing reviews."""

from __future__ import annotations

import numpy as np
import pytest

from topicsent.data import load_dataset
from topicsent.errors import InvalidParameterError
from topicsent.eval import expected_calibration_error, polarity_scores
from topicsent.methods import BaseMethod, answer_correctness, make_method, review_confidence


@pytest.fixture(scope="module")
def mams():
    splits = load_dataset("mams-acsa")
    return splits.train.sample(1500, seed=1), splits.validation.sample(400, seed=1), splits.test.sample(300, seed=2)


@pytest.fixture(scope="module")
def calibrated(mams):
    """tfidf-lr on MAMS, its raw test answers, then calibrated on validation."""
    train, validation, test = mams
    method = make_method("tfidf-lr").fit(train)
    raw = method.predict(test.unlabelled(), given_aspects=True)
    method.calibrate(validation)
    return method, raw


def _ece(test, analyses) -> float:
    return expected_calibration_error(*zip(*answer_correctness(test, analyses, rating=False), strict=True))


def test_calibration_lowers_the_calibration_error_on_unseen_reviews(mams, calibrated):
    method, raw = calibrated
    test = mams[2]
    after = method.predict(test.unlabelled(), given_aspects=True)
    print(f"ECE on 300 MAMS test reviews: raw {_ece(test, raw):.3f}, calibrated {_ece(test, after):.3f}")
    assert _ece(test, after) < _ece(test, raw)
    assert [a.polarity for r in after for a in r.aspects] == [a.polarity for r in raw for a in r.aspects], "labels unchanged"


def test_calibration_keeps_the_order_of_confidences_and_is_saved(mams, calibrated, tmp_path):
    method, raw = calibrated
    test = mams[2]
    after = method.predict(test.unlabelled(), given_aspects=True)
    before = np.array([a.confidence for r in raw for a in r.aspects])
    calibrated_confidence = np.array([a.confidence for r in after for a in r.aspects])
    order = np.argsort(before, kind="stable")
    assert np.all(np.diff(calibrated_confidence[order]) >= -1e-12), "calibration is monotone"
    method.save(tmp_path / "model")
    assert (tmp_path / "model" / "calibration.json").is_file()
    loaded = BaseMethod.load(tmp_path / "model").predict(test.unlabelled(), given_aspects=True)
    assert [a.model_dump(exclude={"usage"}) for a in loaded] == [a.model_dump(exclude={"usage"}) for a in after]


def test_abstaining_trades_coverage_for_accuracy(mams, calibrated):
    method, _ = calibrated
    test = mams[2]
    every = method.predict(test.unlabelled(), given_aspects=True)
    sure = method.predict(test.unlabelled(), given_aspects=True, abstain_below=0.7)
    abstained = [a for a in sure if a.status == "abstained"]
    assert 0 < len(abstained) < len(sure)
    assert all(not a.aspects and "below 0.7" in a.status_reason for a in abstained)
    assert all(review_confidence(a) >= 0.7 for a in sure if a.status == "ok")
    kept = [i for i, a in enumerate(sure) if a.status == "ok"]
    accuracy_kept = polarity_scores([test[i] for i in kept], [sure[i] for i in kept], test.label_space.polarities)
    accuracy_all = polarity_scores(test, every, test.label_space.polarities)
    print(f"abstain below 0.7: {len(kept)}/{len(sure)} answered, accuracy {accuracy_all['polarity_accuracy']:.3f} -> "
          f"{accuracy_kept['polarity_accuracy']:.3f}")  # fmt: skip
    assert accuracy_kept["polarity_accuracy"] > accuracy_all["polarity_accuracy"]


def test_abstaining_needs_a_confidence():
    splits = load_dataset("womens-clothing")
    ridge = make_method("tfidf-lr", rating_model="regress").fit(splits.train.sample(300, seed=1))
    with pytest.raises(InvalidParameterError, match="no confidence"):
        ridge.predict(splits.test.sample(20, seed=2).text_only(), abstain_below=0.5)
    with pytest.raises(InvalidParameterError, match="nothing to calibrate"):
        ridge.calibrate(splits.validation.sample(100, seed=1))


def test_cascade_is_at_least_as_good_as_its_first_stage_where_it_chose(mams):
    """On the held-out part the thresholds were chosen on, the cascade cannot lose to its
    first stage (answering everything there is one of the settings tried); on test the
    last stage answers about the allowed share and every answer names its stage."""
    train, _, test = mams
    cascade = make_method("cascade", stages="tfidf-lr[C=1.0]>tfidf-lr[analyzer=char]", max_last_share=0.3).fit(train)
    report = cascade.holdout_report_
    assert report["accuracy"] >= report["single_stage_accuracy"][0]
    assert report["answered_by_stage"][-1] <= 0.3
    answers = cascade.predict(test.unlabelled(), given_aspects=True)
    by_stage = [a.model for a in answers]
    assert set(by_stage) == {"1:tfidf-lr", "2:tfidf-lr"} and all(a.method == "cascade" for a in answers)
    assert by_stage.count("2:tfidf-lr") / len(answers) <= 0.3 + 0.1  # chosen on 300 held-out reviews
    accuracy = polarity_scores(test, answers, test.label_space.polarities)["polarity_accuracy"]
    assert accuracy > 0.6, accuracy  # majority is 0.44 on MAMS


@pytest.mark.parametrize(("threshold", "stage"), [(0.0, "1:tfidf-lr"), (1.01, "2:tfidf-lr")])
def test_cascade_routes_by_its_thresholds(mams, threshold, stage):
    train, _, test = mams
    cascade = make_method("cascade", stages="tfidf-lr>tfidf-lr[C=1.0]", thresholds=[threshold]).fit(train[:400])
    assert {a.model for a in cascade.predict(test.unlabelled()[:50], given_aspects=True)} == {stage}


def test_cascade_stages_must_be_able_to_pass_reviews_on(mams):
    with pytest.raises(InvalidParameterError, match="two stages"):
        make_method("cascade", stages="tfidf-lr").fit(mams[0][:400])
    ratings = load_dataset("womens-clothing").train.sample(300, seed=1)
    with pytest.raises(InvalidParameterError, match="nothing to calibrate"):  # a regression has no confidence
        make_method("cascade", stages="tfidf-lr[rating_model=regress]>tfidf-lr").fit(ratings)


def test_eval_reports_which_stage_answered():
    from topicsent.eval import run_evaluation

    run = run_evaluation(["semeval14-acsa"], ["majority", "cascade[stages=tfidf-lr>tfidf-lr[C=1.0]]"], limit=600, tune=False)
    majority, cascade = run["results"]
    assert majority["answered_by"] is None and set(cascade["answered_by"]) == {"1:tfidf-lr", "2:tfidf-lr"}
    assert sum(cascade["answered_by"].values()) == pytest.approx(1.0)
    assert cascade["relative"]["gain_over_majority"] > 0


def test_a_cascade_of_method_objects_fits_saves_loads_and_predicts_like_its_spec_text(mams, tmp_path):
    import json

    from topicsent.methods import TfidfLRMethod

    train, _, test = mams
    stages = [TfidfLRMethod(), TfidfLRMethod(analyzer="char")]
    from_objects = make_method("cascade", stages=stages, random_state=3).fit(train[:600])
    from_text = make_method("cascade", stages="tfidf-lr>tfidf-lr[analyzer=char]", random_state=3).fit(train[:600])
    assert not hasattr(stages[0], "task_")  # the given objects stay unfitted: the stages are clones
    assert [s.random_state for s in from_objects.stages_] == [3, 3]  # seeded like stages from specs
    reviews = test.unlabelled()[:100]

    def answers(cascade):  # all but the timings
        return [a.model_dump(exclude={"usage"}) for a in cascade.predict(reviews, given_aspects=True)]

    expected = answers(from_text)
    # the same stages trained and chosen: the thresholds and every stage's held-out outcome
    assert from_objects.thresholds_ == from_text.thresholds_
    assert from_objects.holdout_report_ == from_text.holdout_report_
    assert answers(from_objects) == expected
    saved = from_objects.save(tmp_path / "cascade")
    assert json.loads((saved / "topicsent.json").read_text())["params"]["stages"] == "tfidf-lr>tfidf-lr[analyzer=char]"
    loaded = BaseMethod.load(saved)
    assert loaded.stage_specs() == ["tfidf-lr", "tfidf-lr[analyzer=char]"]
    assert answers(loaded) == expected
