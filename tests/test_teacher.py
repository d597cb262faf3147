"""Teacher labels for unlabelled reviews: only sure, agreed answers are kept, and they
become instruction data; on real MAMS sentences with real trained teachers."""

from __future__ import annotations

import json

import pytest

from topicsent.data import load_dataset
from topicsent.errors import InvalidParameterError
from topicsent.methods import make_method
from topicsent.methods.llm import sft_examples
from topicsent.schema import Task
from topicsent.teacher import teacher_labels


@pytest.fixture(scope="module")
def teachers_and_reviews():
    splits = load_dataset("mams-acsa")
    train = splits.train.sample(1200, seed=3)
    teachers = [make_method("tfidf-lr", C=4.0).fit(train), make_method("tfidf-lr", C=0.5).fit(train)]
    return teachers, splits.test.sample(150, seed=3)


def test_only_sure_agreed_answers_become_labels(teachers_and_reviews):
    teachers, reviews = teachers_and_reviews
    loose = teacher_labels(teachers[:1], reviews)
    strict = teacher_labels(teachers, reviews, min_confidence=0.6)
    assert loose.asked == strict.asked == len(reviews)
    assert len(strict.reviews) < len(loose.reviews) <= len(reviews)
    assert strict.dropped["teachers disagree"] > 0 and strict.dropped["confidence below 0.6"] > 0
    assert len(strict.reviews) + sum(strict.dropped.values()) == len(reviews)
    answers = {a.review_id: a for a in teachers[1].predict(strict.reviews.text_only())}
    for review in strict.reviews:  # the kept labels are what the teachers said
        assert [(a.name, a.polarity) for a in review.aspects] == [(s.aspect, s.polarity) for s in answers[review.id].aspects]
    gold = {r.id: r for r in reviews}
    agreement = sum({a.name for a in r.aspects} <= {a.name for a in gold[r.id].aspects} for r in strict.reviews)
    assert agreement / len(strict.reviews) > 0.6  # sure, agreed labels mostly name the gold categories


def test_teacher_labels_become_chat_examples_the_parser_reads(teachers_and_reviews):
    teachers, reviews = teachers_and_reviews
    labelled = teacher_labels(teachers, reviews, min_confidence=0.6).reviews
    examples = list(sft_examples(labelled, Task.ACSA, forms=["detect"]))
    assert len(examples) == len(labelled)
    answer = json.loads(examples[0]["messages"][-1]["content"])
    assert [a["aspect"] for a in answer["aspects"]] == [a.name for a in labelled[0].aspects]


def test_teachers_must_share_the_task(teachers_and_reviews):
    teachers, reviews = teachers_and_reviews
    rater = make_method("tfidf-lr").fit(load_dataset("womens-clothing").train.sample(200, seed=1))
    with pytest.raises(InvalidParameterError, match="disagree on the task"):
        teacher_labels([teachers[0], rater], reviews)


def test_aspect_agreement_keeps_the_shared_aspects(teachers_and_reviews):
    teachers, reviews = teachers_and_reviews
    whole = teacher_labels(teachers, reviews, min_confidence=0.6)
    shared = teacher_labels(teachers, reviews, min_confidence=0.6, agree_on="aspect")
    assert len(shared.reviews) > len(whole.reviews)
    answers = [{a.review_id: a for a in t.predict(shared.reviews.text_only())} for t in teachers]
    for review in shared.reviews:
        for aspect in review.aspects:
            for said in answers:
                match = [s for s in said[review.id].aspects if s.aspect == aspect.name]
                assert match and match[0].polarity == aspect.polarity and match[0].confidence >= 0.6
