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
