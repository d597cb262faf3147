"""The built-in loaders against the counts the data README publishes."""

import csv
import gzip

import pytest

from topicsent.data import DATASETS, data_dir, load_dataset


def _aspect_count(review_set) -> int:
    return sum(len(r.aspects) for r in review_set)


def test_mams_acsa_official_splits():
    splits = load_dataset("mams-acsa")
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (3149, 400, 400)
    assert (_aspect_count(splits.train), _aspect_count(splits.validation), _aspect_count(splits.test)) == (7090, 888, 901)
    assert splits.train.polarity_counts() == {"positive": 1929, "negative": 2084, "neutral": 3077}
    assert all(len({a.polarity for a in r.aspects}) >= 2 for r in splits.test)  # MAMS: >=2 polarities each


def test_mams_atsa_spans_point_at_their_terms():
    splits = load_dataset("mams-atsa")
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (4297, 500, 500)
    assert _aspect_count(splits.test) == 1336
    assert all(r.text[a.start : a.end] == a.name for r in splits.train for a in r.aspects)


def test_semeval_categories_and_terms():
    acsa, atsa = load_dataset("semeval14-acsa"), load_dataset("semeval14-atsa")
    assert len(acsa.test) == 800 and _aspect_count(acsa.test) == 1025
    assert _aspect_count(atsa.test) == 1134
    assert _aspect_count(acsa.train) + _aspect_count(acsa.validation) == 3713  # train v2
    assert acsa.train.polarity_counts()["conflict"] > 0
    assert set(acsa.train.label_space.categories) == {a.name for r in acsa.train for a in r.aspects}
    assert not {r.id for r in acsa.train} & {r.id for r in acsa.validation}


def test_nsmc_split_by_movie_and_binary_view():
    splits = load_dataset("nsmc")
    total = len(splits.train) + len(splits.validation) + len(splits.test)
    assert total == 712_383
    assert 0.75 < len(splits.train) / total < 0.85
    train_movies = {r.meta["movie_id"] for r in splits.train}
    assert not train_movies & {r.meta["movie_id"] for r in splits.test}
    assert splits.train.label_space.rating_scale == (1, 10) and splits.train.language == "ko"
    binary = load_dataset("nsmc-binary")
    binary_total = len(binary.train) + len(binary.validation) + len(binary.test)
    assert binary_total == 73_237 + 14_600 + 15_538 + 18_304 + 72_187 + 305_843  # ratings 1-4 and 9-10
    assert {r.rating for r in binary.test} == {0, 1}


def test_womens_clothing_keeps_every_review_with_text():
    with gzip.open(data_dir() / "womens_clothing" / "reviews.csv.gz", "rt", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    with_text = [r for r in rows if r["Title"].strip() or r["Review Text"].strip()]
    splits = load_dataset("womens-clothing")
    parts = (splits.train, splits.validation, splits.test)
    assert sum(map(len, parts)) == len(with_text)
    assert [round(len(p) / len(with_text), 2) for p in parts] == [0.8, 0.1, 0.1]
    assert {r.rating for r in splits.test} == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_dataset_has_three_disjoint_labelled_splits(name):
    splits = load_dataset(name)
    ids = [{r.id for r in part} for part in (splits.train, splits.validation, splits.test)]
    assert all(ids) and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert (len(splits.train), len(splits.validation), len(splits.test)) == DATASETS[name].sizes  # what `datasets` lists
    task = DATASETS[name].task
    assert splits.test.task is task and splits.test.language == DATASETS[name].language
    if task.value == "rating":
        assert all(r.rating is not None for r in splits.test)
    else:
        assert all(r.aspects for r in splits.test)


def test_limited_is_seeded_and_to_dataframe_works():
    splits = load_dataset("mams-acsa")
    first, again = splits.limited(50, seed=3), splits.limited(50, seed=3)
    assert [r.id for r in first.test] == [r.id for r in again.test] and len(first.train) == 50
    assert [r.id for r in splits.limited(50, seed=4).test] != [r.id for r in first.test]
    frame = first.test.to_dataframe(one_row_per="aspect")
    assert {"id", "text", "aspect", "polarity"} <= set(frame.columns) and len(frame) == _aspect_count(first.test)
