"""Shared fixtures: small seeded samples of the real datasets, loaded once per session."""

from __future__ import annotations

import pytest

from topicsent.data import ReviewSet, load_dataset

# (dataset, train sample, test sample) per task: real data, small enough for every method.
TASK_SAMPLES = {
    "acsa": ("mams-acsa", 400, 60),
    "atsa": ("semeval14-atsa", 400, 60),
    "rating": ("womens-clothing", 500, 60),
}


@pytest.fixture(autouse=True, scope="session")
def _embedding_cache(tmp_path_factory):
    """Embeddings go to a per-run cache (shared by the tests of one worker), never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOPICSENT_CACHE_DIR", str(tmp_path_factory.mktemp("embedding-cache")))
        yield


@pytest.fixture(scope="session")
def task_data() -> dict[str, tuple[ReviewSet, ReviewSet]]:
    """task -> (train sample, test sample) drawn from the real datasets."""
    data = {}
    for task, (name, n_train, n_test) in TASK_SAMPLES.items():
        splits = load_dataset(name)
        data[task] = (splits.train.sample(n_train, seed=1), splits.test.sample(n_test, seed=2))
    return data


@pytest.fixture(scope="session")
def korean_ratings() -> tuple[ReviewSet, ReviewSet]:
    splits = load_dataset("nsmc")
    return splits.train.sample(1500, seed=1), splits.test.sample(200, seed=2)


@pytest.fixture(scope="session")
def korean_run_input(tmp_path_factory, korean_ratings):
    """A trained Korean rating model and the 200 unseen NSMC test reviews (with their own
    ratings) plus one empty row, as a CSV file: (model dir, CSV path, number of rows)."""
    import pandas as pd

    from topicsent.methods import make_method

    train, test = korean_ratings
    folder = tmp_path_factory.mktemp("run-input")
    make_method("tfidf-lr").fit(train).save(folder / "model")
    rows = [{"id": r.id, "text": r.text, "stars": r.rating} for r in test] + [{"id": "empty-1", "text": "", "stars": None}]
    pd.DataFrame(rows).to_csv(folder / "reviews.csv", index=False)
    return folder / "model", folder / "reviews.csv", len(rows)
