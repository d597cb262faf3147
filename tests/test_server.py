"""The REST service on a real trained model and real MAMS reviews: auth, limits, sync
analysis, background jobs with results and report, restart resumption, and the web
page driven by headless Chromium."""

from __future__ import annotations

import gzip
import itertools
import os
import shutil
import subprocess
import sys
import threading
import time

import httpx
import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from conftest import free_port, wait_until_serving
from topicsent.errors import InvalidParameterError
from topicsent.interfaces import _jobs
from topicsent.interfaces._server import MAX_TEXT_CHARS, ServerSettings, create_app
from topicsent.methods import make_method
from topicsent.schema import ReviewAnalysis

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, task_data):
    """A tfidf-lr ACSA model trained on real MAMS sentences, and unseen ones as a CSV."""
    train, test = task_data["acsa"]
    folder = tmp_path_factory.mktemp("served")
    make_method("tfidf-lr").fit(train).save(folder / "model")
    pd.DataFrame({"sid": [r.id for r in test], "body": [r.text for r in test]}).to_csv(folder / "reviews.csv", index=False)
    return folder, test


def _settings(folder, jobs, **overrides) -> ServerSettings:
    limits = {"token": TOKEN, "max_batch": 50, "max_body_bytes": 200_000, "max_upload_bytes": 300_000} | overrides
    return ServerSettings(folder / "model", jobs, **limits)


@pytest.fixture
def client(served, tmp_path):
    with TestClient(create_app(_settings(served[0], tmp_path / "jobs"))) as test_client:
        yield test_client


def _finished(client: TestClient, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/v1/jobs/{job_id}", headers=AUTH).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def test_auth_is_required_on_the_api_but_not_for_health(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    missing = client.get("/v1/models")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    [model] = client.get("/v1/models", headers=AUTH).json()
    assert model["method"] == "tfidf-lr" and model["task"] == "acsa" and "food" in model["categories"]
    schema = client.get("/openapi.json").json()
    assert {"/v1/analyze", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/models"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_analyze_answers_a_batch_in_the_schema(client, served):
    _, test = served
    reviews = [{"id": r.id, "text": r.text} for r in test[:20]] + [{"text": ""}]
    response = client.post("/v1/analyze", json={"reviews": reviews}, headers=AUTH)
    assert response.status_code == 200
    results = [ReviewAnalysis.model_validate(r) for r in response.json()["results"]]
    assert [r.review_id for r in results] == [r.id for r in test[:20]] + ["21"]
    assert sum(bool(r.aspects) for r in results) >= 10 and results[-1].status == "error"
    unsure = client.post("/v1/analyze", json={"reviews": reviews[:20], "abstain_below": 0.8}, headers=AUTH).json()["results"]
    statuses = [r["status"] for r in unsure]
    assert {"ok", "abstained"} <= set(statuses) and all(not r["aspects"] for r in unsure if r["status"] == "abstained")
    assert client.post("/v1/analyze", json={"reviews": reviews, "abstain_below": 2}, headers=AUTH).status_code == 422


def test_limits_give_clear_4xx(client):
    too_many = {"reviews": [{"text": "fine"}] * 51}
    response = client.post("/v1/analyze", json=too_many, headers=AUTH)
    assert response.status_code == 413 and "use POST /v1/jobs" in response.json()["detail"]
    huge = client.post("/v1/analyze", content=b"x" * 200_001, headers=AUTH | {"content-type": "application/json"})
    assert huge.status_code == 413 and "over the limit" in huge.json()["detail"]
    long_text = client.post("/v1/analyze", json={"reviews": [{"text": "a" * (MAX_TEXT_CHARS + 1)}]}, headers=AUTH)
    assert long_text.status_code in (413, 422)
    doubled = client.post("/v1/analyze", json={"reviews": [{"id": "1", "text": "a"}, {"id": "1", "text": "b"}]}, headers=AUTH)
    assert doubled.status_code == 422 and "unique" in doubled.json()["detail"][0]["msg"]
    not_json = client.post("/v1/analyze", content=b"{not json", headers=AUTH | {"content-type": "application/json"})
    assert not_json.status_code == 422
    assert client.post("/v1/analyze", json={"reviews": []}, headers=AUTH).status_code == 422


def test_a_job_analyses_an_upload_in_the_background(client, served, monkeypatch):
    folder, test = served
    monkeypatch.setattr(_jobs, "CHUNK_SIZE", 25)  # three parts: pages cross them
    files = {"file": ("reviews.csv", (folder / "reviews.csv").read_bytes(), "text/csv")}
    created = client.post("/v1/jobs", files=files, data={"text_col": "body", "id_col": "sid"}, headers=AUTH)
    assert created.status_code == 202, created.text
    job = _finished(client, created.json()["id"])
    assert job["status"] == "finished" and job["reviews"] == job["done"] == len(test)
    page = client.get(f"/v1/jobs/{job['id']}/results?limit=5000", headers=AUTH).json()
    assert {row["review_id"] for row in page["rows"]} == {r.id for r in test} and page["rows"][0]["text"]
    pages = [client.get(f"/v1/jobs/{job['id']}/results?offset={o}&limit=7", headers=AUTH).json() for o in range(0, 200, 7)]
    assert [row for p in pages for row in p["rows"]] == page["rows"] and pages[0]["total"] == len(page["rows"])
    report = client.get(f"/v1/jobs/{job['id']}/report", headers=AUTH)
    assert report.status_code == 200 and report.text.count('<figure class="chart"') >= 2
    assert client.get("/v1/jobs/0123abc", headers=AUTH).status_code == 404
    assert client.get("/v1/jobs/..%2F..%2Fetc/results", headers=AUTH).status_code == 404  # no path out of the jobs folder


def test_bad_uploads_are_refused_with_the_reason(client, served):
    folder, _ = served
    csv_bytes = (folder / "reviews.csv").read_bytes()
    missing = client.post("/v1/jobs", files={"file": ("r.csv", csv_bytes)}, headers=AUTH)  # text column is "body"
    assert missing.status_code == 422 and "no column 'text'" in missing.json()["detail"][0]["msg"]
    assert client.post("/v1/jobs", files={"file": ("r.txt", b"hello")}, headers=AUTH).status_code == 415
    big = client.post("/v1/jobs", files={"file": ("r.csv", b"text\n" + b"words " * 60_000)}, headers=AUTH)
    assert big.status_code == 413


def test_a_restarted_server_finishes_the_jobs_it_had_queued(served, tmp_path, monkeypatch):
    folder, test = served
    jobs = tmp_path / "jobs"
    store = _jobs.JobStore(jobs, folder / "model")
    monkeypatch.setattr(store._executor, "submit", lambda *args: None)  # the server dies before the job runs
    queued = store.submit((folder / "reviews.csv").read_bytes(), ".csv", _jobs.ColumnMap(text="body", id="sid"))
    assert store.status(queued["id"])["status"] == "queued"
    with TestClient(create_app(_settings(folder, jobs))) as restarted:
        assert _finished(restarted, queued["id"])["done"] == len(test)


def test_the_web_page_uploads_a_file_and_shows_results_and_report(served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    folder, test = served
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is missing: run scripts/install-browser.sh (make test does)"
    port = free_port()
    command = [sys.executable, "-m", "topicsent.interfaces", "serve", "--model", str(folder / "model"),
               "--port", str(port), "--jobs-dir", str(tmp_path / "jobs")]  # fmt: skip
    server = subprocess.Popen(command, env=os.environ | {"TOPICSENT_API_TOKEN": TOKEN}, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{url}/healthz", server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(url)
            page.fill("#token", TOKEN)
            page.dispatch_event("#token", "change")
            expect(page.locator("#model")).to_contain_text("tfidf-lr (acsa, en)")
            page.set_input_files("#file", str(folder / "reviews.csv"))
            page.fill("#text-col", "body")
            page.fill("#id-col", "sid")
            page.click("#analyse")
            expect(page.locator("#status")).to_contain_text(f"finished: {len(test)} reviews", timeout=120_000)
            assert page.locator("#results tbody tr").count() >= len(test)
            report = page.frame_locator("#report")
            expect(report.locator("figure.chart svg").first).to_be_visible()
            assert report.locator("figure.chart").count() >= 2
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_generated_requests_never_cause_a_server_error(served, tmp_path):
    """schemathesis sends schema-conforming and broken requests to every operation
    (with the token): 4xx is fine, a 5xx or a response off its own schema fails."""
    app = create_app(_settings(served[0], tmp_path / "jobs"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case):
            case.headers = {**(case.headers or {}), **AUTH}
            # an upload the schema allows may still be unreadable (a .txt, no text column): 415/422
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        no_server_error()


_CELL = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_CSV_LIKE = st.builds(
    lambda header, rows, sep: "\n".join([sep.join(header), *(sep.join(row) for row in rows)]).encode(),
    st.lists(st.sampled_from(["text", "body", "id", "", '"text"', "text,"]), min_size=1, max_size=3),
    st.lists(st.lists(_CELL, min_size=1, max_size=3), max_size=8),
    st.sampled_from([",", "\t", ";"]),
)


@given(
    content=st.one_of(st.binary(max_size=3000), _CSV_LIKE),
    suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".parquet", ".csv.gz", ".json", ""]),
    text_col=st.sampled_from(["text", "body", ""]),
)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_any_upload_is_refused_with_a_reason_or_becomes_a_job_that_ends(client, content, suffix, text_col):
    """Whatever bytes, name and column a client sends: 202 and a job that finishes or
    fails with its error, or a 4xx with the reason; never a 5xx, never a stuck job."""
    answer = client.post("/v1/jobs", files={"file": (f"upload{suffix}", content)}, data={"text_col": text_col}, headers=AUTH)
    assert answer.status_code in (202, 413, 415, 422), answer.text
    event(f"HTTP {answer.status_code}")
    if answer.status_code != 202:
        assert answer.json()["detail"]
        return
    job = _finished(client, answer.json()["id"], timeout=60)
    event(f"job {job['status']}")
    assert job["status"] == "finished" or (job["status"] == "failed" and job["error"]), job


@pytest.mark.parametrize(
    ("token_args", "environment"),
    [(["--token", ""], {}), (["--token", "   "], {}), ([], {"TOPICSENT_API_TOKEN": " \t"}), ([], {"TOPICSENT_API_TOKEN": ""})],
)
def test_a_blank_token_from_any_source_never_opens_the_server(served, tmp_path, token_args, environment):
    folder, _ = served
    command = [sys.executable, "-m", "topicsent.interfaces", "serve", "--model", str(folder / "model"), "--host", "0.0.0.0",
               "--port", str(free_port()), "--jobs-dir", str(tmp_path / "jobs"), *token_args]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TOPICSENT_API_TOKEN"} | environment
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "blank" in refused.stderr or "needs a token" in refused.stderr
    with pytest.raises(InvalidParameterError, match="blank"):
        create_app(_settings(folder, tmp_path / "jobs", token=" "))


def test_a_compressed_upload_cannot_inflate_past_the_limits(client, served, tmp_path):
    bomb = gzip.compress(b'{"text": "' + b"a" * 20_000_000 + b'"}\n', compresslevel=9)  # one 20 MB review
    assert len(bomb) < 50_000
    with TestClient(create_app(_settings(served[0], tmp_path / "big", max_upload_bytes=50_000_000))) as roomy:
        started = time.monotonic()
        answer = roomy.post("/v1/jobs", files={"file": ("r.jsonl.gz", bomb)}, headers=AUTH)
    assert answer.status_code == 413 and "line 1: over" in answer.json()["detail"], answer.text
    assert f"{MAX_TEXT_CHARS:,} characters" in answer.json()["detail"] and time.monotonic() - started < 10
    many = gzip.compress(b"text\n" + b"good food\n" * 100_000)  # 1 MB of short reviews; the upload limit is 300 KB
    answer = client.post("/v1/jobs", files={"file": ("r.csv.gz", many)}, headers=AUTH)
    assert answer.status_code == 413 and "decompressed" in answer.json()["detail"], answer.text
    long_text = pd.DataFrame({"text": ["fine food", "a" * (MAX_TEXT_CHARS + 1)]}).to_csv(index=False).encode()
    created = client.post("/v1/jobs", files={"file": ("r.csv", long_text)}, headers=AUTH)
    assert created.status_code == 202 and created.json()["reviews"] == 2
    job = _finished(client, created.json()["id"])
    assert job["status"] == "finished" and job["statuses"] == {"ok": 1, "error": 1}, job
    rows = client.get(f"/v1/jobs/{job['id']}/results", headers=AUTH).json()["rows"]
    assert "over the limit of 100,000" in next(r["status_reason"] for r in rows if r["review_id"] == "2")


def test_a_lone_surrogate_is_a_422_naming_the_row_or_that_rows_error(client):
    for field, review in (("text", '{"text": "good \\ud800"}'), ("id", '{"id": "x\\udfff", "text": "ok"}')):
        body = '{"reviews": [{"text": "fine"}, %s]}' % review  # noqa: UP031
        answer = client.post("/v1/analyze", content=body.encode(), headers=AUTH | {"content-type": "application/json"})
        assert answer.status_code == 422, answer.text
        [error] = answer.json()["detail"]
        assert error["loc"] == ["body", "reviews", 1, field] and "unicode" in error["msg"]  # pydantic's own check
    lines = b'{"text": "great food"}\n{"text": "rude \\udc00 waiter"}\n{"text": "nice place"}\n'
    created = client.post("/v1/jobs", files={"file": ("r.jsonl", lines)}, headers=AUTH)
    job = _finished(client, created.json()["id"])
    assert job["status"] == "finished" and job["statuses"]["error"] == 1 and job["reviews"] == 3, job


@given(
    abstain=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([float("nan"), float("inf"), -1e309])),
    text=st.text(max_size=30),  # surrogates included
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_non_finite_numbers_and_any_text_never_reach_a_500(client, abstain, text):
    import json

    body = json.dumps({"reviews": [{"text": text}], "abstain_below": abstain})  # NaN/Infinity as Python's json writes them
    answer = client.post("/v1/analyze", content=body.encode(), headers=AUTH | {"content-type": "application/json"})
    assert answer.status_code in (200, 422), answer.text
    if not 0 <= abstain <= 1:
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "abstain_below"]


def _chunks(size: int, block: int = 2**20):
    sent = 0
    while sent < size:
        yield b" " * min(block, size - sent)
        sent += block


@pytest.fixture(scope="module")
def live_server(served, tmp_path_factory):
    """`topicsent serve` as users run it (uvicorn on a port), with a 50 MiB upload limit."""
    folder, _ = served
    port = free_port()
    command = [sys.executable, "-m", "topicsent.interfaces", "serve", "--model", str(folder / "model"), "--port", str(port),
               "--jobs-dir", str(tmp_path_factory.mktemp("live") / "jobs"), "--max-upload-mb", "50"]  # fmt: skip
    server = subprocess.Popen(command, env=os.environ | {"TOPICSENT_API_TOKEN": TOKEN}, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/healthz", server)
        yield url
    finally:
        server.kill()
        server.wait(timeout=20)


def test_a_large_upload_is_checked_off_the_event_loop(live_server):
    """While a 40 MB (decompressed) upload is saved and checked, /healthz still answers at once."""
    payload = gzip.compress(b"text\n" + b"good food and kind staff\n" * 1_600_000, compresslevel=1)
    answer = {}

    def upload() -> None:
        answer["response"] = httpx.post(
            f"{live_server}/v1/jobs", files={"file": ("r.csv.gz", payload)}, headers=AUTH, timeout=300
        )

    sender = threading.Thread(target=upload)
    sender.start()
    waits = []
    while sender.is_alive():
        began = time.monotonic()
        assert httpx.get(f"{live_server}/healthz", timeout=30).status_code == 200
        waits.append(time.monotonic() - began)
        time.sleep(0.05)
    sender.join()
    assert answer["response"].status_code == 202 and answer["response"].json()["reviews"] == 1_600_000
    assert len(waits) >= 5 and max(waits) < 1.0, waits


def test_a_chunked_body_over_the_limit_is_413(live_server):
    """No Content-Length: the limit is checked as the body streams in, and the answer is 413, not 400."""
    analyze = httpx.post(f"{live_server}/v1/analyze", content=_chunks(11 * 2**20),
                         headers=AUTH | {"content-type": "application/json"}, timeout=60)  # fmt: skip
    assert analyze.status_code == 413 and "over the limit" in analyze.json()["detail"], analyze.text
    boundary = "topicsentboundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.csv"\r\n\r\ntext\n'.encode()
    upload = httpx.post(f"{live_server}/v1/jobs", content=itertools.chain([head], _chunks(51 * 2**20)),
                        headers=AUTH | {"content-type": f"multipart/form-data; boundary={boundary}"}, timeout=60)  # fmt: skip
    assert upload.status_code == 413 and "over the limit" in upload.json()["detail"], upload.text
