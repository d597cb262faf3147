"""Shared fixtures: small seeded samples of the real datasets, loaded once per session."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time

import pytest

from topicsent.data import ReviewSet, load_dataset

# (dataset, train sample, test sample) per task: real data, small enough for every method.
TASK_SAMPLES = {
    "acsa": ("mams-acsa", 400, 60),
    "atsa": ("semeval14-atsa", 400, 60),
    "rating": ("womens-clothing", 500, 60),
}


def pytest_configure(config) -> None:
    """Under xdist, pin each worker to its own core: torch and llama.cpp size their thread
    pools by the CPUs a process may use, so two workers no longer fight over both cores."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    cpus = sorted(os.sched_getaffinity(0))
    if worker.startswith("gw") and len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[int(worker[2:]) % len(cpus)]})


#: Why tests that need llama.cpp skip where it is missing (a core-only or `make test` set-up).
LLAMACPP_MISSING = (
    "needs llama-cpp-python (the `llamacpp` extra): the registry has no wheel of it, so `make test` does not "
    "build it (~19 min); `make test-llm` installs it and runs these tests"
)


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that start the llama.cpp server (the ``llama_server`` fixture) carry the ``llamacpp``
    marker like the ones marked by hand; all of them skip, saying why, without llama-cpp-python."""
    missing = importlib.util.find_spec("llama_cpp") is None
    for item in items:
        if "llama_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.llamacpp)
        if missing and item.get_closest_marker("llamacpp"):
            item.add_marker(pytest.mark.skip(reason=LLAMACPP_MISSING))


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


SERVED_MODEL = "smollm2-135m-instruct"  # what `llama_server` serves


def wait_until_serving(url: str, server: subprocess.Popen, log_path=None, *, timeout: float = 60) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or the time runs out."""
    import httpx  # the `llm` extra: imported here so a core-only install can still load this file

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            log = log_path.read_text()[-2000:] if log_path else ""
            pytest.fail(f"the server at {url} did not start:\n{log}")
        time.sleep(0.3)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A llama.cpp server process (one per test worker); its log is shown if it fails to start."""
    from topicsent.llm import packaged_model_path

    model = packaged_model_path(SERVED_MODEL)
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "4096", "--n_threads", "1"]  # fmt: skip
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"OMP_WAIT_POLICY": "PASSIVE"})
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(f"{base_url}/models", server, log_path, timeout=90)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=20)
