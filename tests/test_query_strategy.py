"""The active-learning strategy shared by the labelling queue and the benchmark, on small
real samples (Women's clothing ratings, MAMS categories): margin uncertainty, the
mention-weighted mean over categories, the random start, the diverse batch, and the
queue following the strategy's plan."""

from __future__ import annotations

import numpy as np
import pytest

from topicsent.errors import InvalidParameterError
from topicsent.labelling import LabelProject, QueryStrategy, pool_vectors, refresh_queue, review_uncertainty
from topicsent.methods import make_method


@pytest.fixture(scope="module")
def rating_model(task_data):
    train, test = task_data["rating"]
    return make_method("tfidf-lr").fit(train), [r.text_only() for r in list(test)[:40]]


@pytest.fixture(scope="module")
def acsa_model(task_data):
    train, test = task_data["acsa"]
    return make_method("tfidf-lr").fit(train), list(test)[:30]


def test_rating_uncertainty_is_one_minus_the_margin_not_the_least_confidence(rating_model):
    model, pool = rating_model
    top = np.sort(model.predict_proba(pool), axis=1)
    scores = review_uncertainty(model, pool)
    assert scores.shape == (40,) and np.allclose(scores, 1 - (top[:, -1] - top[:, -2]))
    least_confidence = 1 - top[:, -1]
    assert list(np.argsort(-scores)) != list(np.argsort(-least_confidence))  # five classes: the two rules disagree


def test_a_model_without_class_probabilities_falls_back_to_its_least_confident_answer(task_data, rating_model):
    _, pool = rating_model
    regression = make_method("tfidf-lr", rating_model="regress").fit(task_data["rating"][0])
    assert np.array_equal(review_uncertainty(regression, pool), np.ones(len(pool)))  # no confidence: worth a label


def test_acsa_uncertainty_is_the_largest_mention_weighted_category_margin(acsa_model):
    model, reviews = acsa_model
    pool = [r.text_only() for r in reviews]
    mention, polarity = model.category_proba(pool)
    assert mention.shape == (30, len(model.categories)) and polarity.shape == (30, len(model.categories), 3)
    # category_proba agrees with predict: a given aspect's polarity is the most probable one
    answers = model.predict([r.unlabelled() for r in reviews], given_aspects=True)
    for row, answer in enumerate(answers):
        for aspect in answer.aspects:
            column = model.categories.index(aspect.aspect)
            assert aspect.polarity == model.polarity_classes_[int(np.argmax(polarity[row, column]))]
    top = np.sort(polarity, axis=2)
    per_category = 1 - (top[:, :, -1] - top[:, :, -2])
    scores = review_uncertainty(model, pool)
    assert np.allclose(scores, (mention * per_category).max(1))
    # weighted: a category the review barely mentions does not pick it (unweighted max would rank otherwise)
    assert np.mean(scores < per_category.max(1) - 0.05) > 0.5
    assert list(np.argsort(-scores)) != list(np.argsort(-per_category.max(1)))
    mean = review_uncertainty(model, pool, aggregate="mean")
    assert np.allclose(mean, (mention * per_category).sum(1) / mention.sum(1))
    assert np.allclose(review_uncertainty(model, pool, aggregate="sum"), (mention * per_category).sum(1))
    assert np.allclose(QueryStrategy(aggregate="mean").uncertainty(model, pool), mean)
    food = model.categories.index("food")  # only the project's taxonomy counts
    assert np.allclose(review_uncertainty(model, pool, categories={"food"}), mention[:, food] * per_category[:, food])


def test_a_batch_starts_random_then_takes_one_of_near_duplicates(rating_model):
    _, pool = rating_model
    texts = [r.text for r in pool] + [pool[0].text] * 5  # six copies of review 0
    copies = {0, *range(40, 45)}
    unsure = np.random.default_rng(0).uniform(0, 0.8, len(texts))
    unsure[sorted(copies)] = [0.99, 0.98, 0.97, 0.96, 0.95, 0.94]  # the copies are the most uncertain
    vectors = pool_vectors(texts)
    random_order = list(np.random.default_rng(1).permutation(len(texts)))
    strategy = QueryStrategy(random_start=100, candidates=3)
    pick = {"uncertainty": unsure, "vectors": vectors, "random_order": random_order}
    warm = strategy.select(5, trained_on=100, **pick)
    assert warm[0] == 0 and len(set(warm)) == 5 and len(copies & set(warm)) == 1  # plain top-5 would take five copies
    assert list(unsure[warm]) == sorted(unsure[warm], reverse=True)
    assert strategy.select(5, trained_on=None, **pick) == warm  # a model trained elsewhere is not cold
    assert strategy.select(5, trained_on=0, **pick) == random_order[:5]
    mixed = strategy.select(5, trained_on=97, **pick)
    assert mixed[:3] == random_order[:3] and mixed[3] == 0 and len(set(mixed)) == 5
    assert len(strategy.select(500, trained_on=100, **pick)) == len(texts)
    with pytest.raises(InvalidParameterError, match="random_start >= 0"):
        QueryStrategy(random_start=-1)
    with pytest.raises(InvalidParameterError, match="aggregate in"):
        QueryStrategy(aggregate="median")


def test_the_queue_asks_in_the_order_the_strategy_plans(acsa_model, tmp_path):
    model, reviews = acsa_model
    categories = ["food", "service", "staff", "price"]
    project = LabelProject.create(tmp_path / "p", [r.text_only() for r in reviews], categories=categories)
    cold = refresh_queue(project, model, trained_on=10)  # the default strategy: random while trained on < 100 labels
    assert cold == project.queue_pool()
    assert refresh_queue(project, model, trained_on=0, strategy=QueryStrategy(random_start=20))[:20] == cold[:20]
    strategy = QueryStrategy(random_start=0, candidates=2)
    planned = refresh_queue(project, model, trained_on=10, strategy=strategy)
    pool = project.queue_pool()
    texts = {r.id: r for r in project.reviews()}
    unsure = review_uncertainty(model, [texts[i] for i in pool], categories=set(categories))
    vectors = pool_vectors([texts[i].text for i in pool])
    expected = strategy.select(50, uncertainty=unsure, vectors=vectors, random_order=range(len(pool)), trained_on=10)
    assert planned == [pool[i] for i in expected] and planned != cold  # the benchmark's select, on the same inputs
    asked = []
    while (item := project.next_item()) is not None:
        project.save_label(item["id"], aspects=[], version=0)
        if not item["held_out"]:
            asked.append(item["id"])
            assert item["model_answer"]["uncertainty"] == pytest.approx(unsure[pool.index(item["id"])])
    assert asked == planned
