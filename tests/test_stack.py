"""The stack: members combined on held-out reviews, on real MAMS reviews; members refused
before any training when they give no class probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from topicsent.data import load_dataset
from topicsent.errors import InvalidParameterError, UnknownNameError, UnsupportedTaskError
from topicsent.eval import score
from topicsent.methods import BaseMethod, TfidfLRMethod, make_method, parse_method_spec, split_holdout
from topicsent.schema import Task

MEMBERS = "tfidf-lr[C=1.0]+tfidf-lr[analyzer=char]"  # word and character n-grams err differently


@pytest.fixture(scope="module")
def mams():
    splits = load_dataset("mams-acsa")
    return splits.train.sample(600, seed=1), splits.test.sample(200, seed=2)


@pytest.fixture(scope="module")
def stack(mams):
    return make_method("stack", members=MEMBERS).fit(mams[0])


def _pairs(reviews):
    return [(review, aspect) for review in reviews.unlabelled() for aspect in review.aspects]


def test_stack_beats_majority_and_is_at_least_as_good_as_its_worst_member(mams, stack):
    _, test = mams
    combined, _, _ = score(stack, test)
    members = [score(member, test)[0] for member in stack.members_]  # refit: each is that member trained alone
    majority, _, _ = score(make_method("majority").fit(mams[0]), test)
    assert combined["polarity_accuracy"] >= min(m["polarity_accuracy"] for m in members)
    assert combined["polarity_accuracy"] >= majority["polarity_accuracy"] + 0.1
    # detection is where the two vocabularies complement each other most (0.75 vs 0.58/0.68 here)
    assert combined["detection_f1"] >= max(m["detection_f1"] for m in members)
    report = stack.holdout_report_
    assert report["reviews"] == 120 and len(report["member_accuracy"]) == 2
    assert all(0.5 < accuracy < 1.0 for accuracy in report["member_accuracy"])
    assert {a.model for a in stack.predict(test.text_only()[:5])} == {"tfidf-lr+tfidf-lr"}


def test_refit_members_saw_every_review_and_kept_ones_only_the_rest(mams, stack):
    train, test = mams
    pairs = _pairs(test[:30])
    alone = make_method("tfidf-lr", C=1.0).fit(train)
    np.testing.assert_allclose(stack.members_[0]._polarity_proba(pairs), alone._polarity_proba(pairs))
    kept = make_method("stack", members="tfidf-lr[C=1.0]+majority", refit=False).fit(train)
    training, _ = split_holdout(train, 0.2, 0, who="a test")
    without_holdout = make_method("tfidf-lr", C=1.0).fit(training)
    np.testing.assert_allclose(kept.members_[0]._polarity_proba(pairs), without_holdout._polarity_proba(pairs))
    assert not np.allclose(kept.members_[0]._polarity_proba(pairs), alone._polarity_proba(pairs))


@pytest.mark.parametrize(
    ("members", "task", "error", "message"),
    [
        ("tfidf-lr+llm", Task.ACSA, InvalidParameterError, "stack member 'llm' answers labels without class probabilities"),
        ("tfidf-lr+cascade[stages=majority>tfidf-lr]", Task.ACSA, InvalidParameterError, "member 'cascade[stages="),
        ("tfidf-lr", Task.ACSA, InvalidParameterError, "a stack needs at least two members separated by '+'"),
        ("tfidf-lr+tfidf-lr[rating_model=regress]", Task.RATING, InvalidParameterError, "without class probabilities"),
        ("tfidf-lr+lda[n_topics=3]", Task.RATING, InvalidParameterError, "member 'lda[n_topics=3]'"),
        ("tfidf-lr+lda", Task.ATSA, UnsupportedTaskError, "stack member 'lda' does not do atsa"),
        ("tfidf-lr+nope", Task.ACSA, UnknownNameError, "unknown method 'nope'"),
        (["tfidf-lr", "llm"], Task.ACSA, InvalidParameterError, "stack member 'llm' answers labels"),  # a list
        (["tfidf-lr", 3], Task.ACSA, InvalidParameterError, "3 is neither a method spec nor a method"),
    ],
)
def test_members_that_cannot_be_stacked_are_refused_before_any_training(members, task, error, message, task_data, monkeypatch):
    def no_training(self, reviews):
        raise AssertionError("a member trained before the stack refused its members")

    monkeypatch.setattr(TfidfLRMethod, "_fit", no_training)
    with pytest.raises(error) as raised:
        make_method("stack", members=members).fit(task_data[task.value][0], task)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_holdout_must_leave_reviews_on_both_sides(task_data):
    with pytest.raises(InvalidParameterError, match=r"'holdout' parameter of StackMethod must be in \(0, 1\)"):
        make_method("stack", members="majority+majority", holdout=1.0).fit(task_data["acsa"][0])
    with pytest.raises(InvalidParameterError, match="a stack needs at least 10 training and 10 held-out reviews; got 30"):
        make_method("stack", members="majority+majority").fit(task_data["acsa"][0][:30])


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("stack", {"members": "majority+majority", "holdout": "0.2"}),
        ("cascade", {"stages": "majority>majority", "holdout": 0.0}),
        ("cascade", {"stages": "majority>majority", "max_last_share": 1.5}),
    ],
)
def test_shares_of_composed_methods_are_checked_by_one_constraint(method, params, task_data):
    """A share outside (0, 1), or not a number (it was a TypeError), is the parameter error."""
    name = next(k for k in params if k not in {"members", "stages"})
    with pytest.raises(InvalidParameterError, match=rf"The '{name}' parameter of \w+Method must be in \(0, 1\)\. Got"):
        make_method(method, **params).fit(task_data["acsa"][0])


def test_member_specs_keep_their_own_brackets():
    name, params = parse_method_spec("stack[members=tfidf-lr[C=1.0,analyzer=char]+finetune[epochs=2],refit=False]")
    assert (name, params) == ("stack", {"members": "tfidf-lr[C=1.0,analyzer=char]+finetune[epochs=2]", "refit": False})
    assert make_method(name, **params).member_specs() == ["tfidf-lr[C=1.0,analyzer=char]", "finetune[epochs=2]"]


def test_a_stack_of_method_objects_trains_clones_and_saves_them_as_specs(mams, stack, tmp_path):
    train, test = mams
    members = [TfidfLRMethod(C=1.0), TfidfLRMethod(analyzer="char")]
    from_objects = make_method("stack", members=members).fit(train)
    assert not hasattr(members[0], "task_") and from_objects.member_specs() == MEMBERS.split("+")
    pairs = _pairs(test[:30])
    expected = stack._polarity_proba(pairs)  # the same members from spec text
    np.testing.assert_allclose(from_objects._polarity_proba(pairs), expected)
    loaded = BaseMethod.load(from_objects.save(tmp_path / "stack"))
    assert loaded.members == MEMBERS
    np.testing.assert_allclose(loaded._polarity_proba(pairs), expected)
