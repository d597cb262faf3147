"""Labelling projects on real MAMS and Women's clothing reviews: the REST routes (upload,
queue, save, conflicts, bad labels, retrain and curve, exports), Label Studio's
documented JSON formats (label-studio itself is not installed here: the tasks, the
predictions and the export are checked against the format of labelstud.io/guide/
task_format and /guide/predictions), `topicsent train --labels`, and the page driven
by headless Chromium with the keyboard, across a SIGKILL of the server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import free_port, wait_until_serving
from topicsent.data import ColumnMap, read_reviews
from topicsent.errors import EditConflictError, InputDataError, UnknownNameError
from topicsent.interfaces._server import ServerSettings, create_app
from topicsent.interfaces.cli import app
from topicsent.labelling import HELD_OUT_EVERY, LabelProject, import_studio, label_config, studio_tasks
from topicsent.methods import make_method

TOKEN = "label-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TAXONOMY = "food, service, staff, price"


@pytest.fixture(scope="module")
def served(tmp_path_factory, task_data):
    """A tfidf-lr MAMS model (it pre-fills projects on the same categories), and 30
    unseen MAMS sentences as a CSV with their gold labels kept aside."""
    train, test = task_data["acsa"]
    folder = tmp_path_factory.mktemp("labelling")
    make_method("tfidf-lr").fit(train).save(folder / "model")
    reviews = list(test)[:30]
    pd.DataFrame({"sid": [r.id for r in reviews], "body": [r.text for r in reviews]}).to_csv(folder / "reviews.csv", index=False)
    return folder, {r.id: r for r in reviews}


@pytest.fixture
def client(served, tmp_path):
    settings = ServerSettings(served[0] / "model", tmp_path / "jobs", token=TOKEN, projects_dir=tmp_path / "projects")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _create(client, served, name="mams", **fields):
    folder, _ = served
    files = {"file": ("reviews.csv", (folder / "reviews.csv").read_bytes(), "text/csv")}
    data = {"name": name, "categories": TAXONOMY, "text_col": "body", "id_col": "sid"} | fields
    return client.post("/v1/projects", files=files, data=data, headers=AUTH)


def _gold_label(review, categories):
    return [{"aspect": a.name, "polarity": a.polarity} for a in review.aspects if a.name in categories]


def _label_next(client, gold, n, categories=("food", "service", "staff", "price")):
    """Label the next ``n`` reviews of the queue with their gold labels; their ids in order."""
    done = []
    for _ in range(n):
        item = client.get("/v1/projects/mams/next", headers=AUTH).json()["item"]
        body = {"aspects": _gold_label(gold[item["id"]], categories), "version": item["version"], "annotator": "ann"}
        saved = client.put(f"/v1/projects/mams/reviews/{item['id']}/label", json=body, headers=AUTH)
        assert saved.status_code == 200, saved.text
        done.append(item["id"])
    return done


def test_a_project_prefills_the_served_models_answers_and_asks_the_least_sure_first(client, served):
    created = _create(client, served)
    assert created.status_code == 201, created.text
    summary = created.json()
    assert summary["reviews"] == 30 and summary["categories"] == ["food", "service", "staff", "price"]
    assert summary["labelled"] == 0 and summary["task"] == "acsa"
    first = client.get("/v1/projects/mams/next", headers=AUTH).json()["item"]
    assert first["held_out"] and first["model_answer"]["model"] == "tfidf-lr"  # the first label goes to the held-out slice
    assert {a["aspect"] for a in first["model_answer"]["aspects"]} <= {"food", "service", "staff", "price"}
    _label_next(client, served[1], 1)
    second = client.get("/v1/projects/mams/next", headers=AUTH).json()["item"]
    assert not second["held_out"]
    # uncertainty sampling: no unlabelled review outside the held-out slice is less sure than the one offered
    unsure = [client.get(f"/v1/projects/mams/reviews/{rid}", headers=AUTH).json() for rid in served[1]]
    pool = [r["model_answer"]["uncertainty"] for r in unsure if not r["held_out"] and r["label"] is None]
    assert second["model_answer"]["uncertainty"] == max(pool) and min(pool) < max(pool)
    assert _create(client, served).status_code == 409  # the name is taken


def test_without_a_fitting_model_the_queue_is_random_and_a_fifth_is_held_out(client, served):
    _, gold = served
    created = _create(client, served, name="mams", categories="", rating_scale="1-5")  # the served model rates nothing
    assert created.status_code == 201, created.text
    items = []
    for _ in range(10):
        item = client.get("/v1/projects/mams/next", headers=AUTH).json()["item"]
        assert item["model_answer"] is None
        body = {"rating": 1 + len(items) % 5, "version": 0}
        assert client.put(f"/v1/projects/mams/reviews/{item['id']}/label", json=body, headers=AUTH).status_code == 200
        items.append(item)
    assert [i["held_out"] for i in items].count(True) == 10 // HELD_OUT_EVERY
    assert [i["id"] for i in items] != list(gold)[:10]  # seeded random order, not the file's


def test_bad_labels_unknown_ids_and_concurrent_edits_get_one_clear_error_each(client, served, tmp_path):
    _, gold = served
    _create(client, served)
    rid = next(iter(gold))
    url = f"/v1/projects/mams/reviews/{rid}/label"
    outside = client.put(url, json={"aspects": [{"aspect": "parking", "polarity": "positive"}], "version": 0}, headers=AUTH)
    assert outside.status_code == 422 and "category 'parking' is not in the taxonomy" in outside.json()["detail"][0]["msg"]
    odd = client.put(url, json={"aspects": [{"aspect": "food", "polarity": "great"}], "version": 0}, headers=AUTH)
    assert odd.status_code == 422 and "polarity 'great'" in odd.json()["detail"][0]["msg"]
    twice = [{"aspect": "food", "polarity": "positive"}, {"aspect": "food", "polarity": "negative"}]
    assert "labelled twice" in client.put(url, json={"aspects": twice, "version": 0}, headers=AUTH).json()["detail"][0]["msg"]
    rated = client.put(url, json={"rating": 4, "version": 0}, headers=AUTH)
    assert rated.status_code == 422 and "not ratings" in rated.json()["detail"][0]["msg"]
    unknown = client.put("/v1/projects/mams/reviews/no-such-id/label", json={"version": 0}, headers=AUTH)
    assert unknown.status_code == 404 and "no review with id 'no-such-id'" in unknown.json()["detail"]
    assert client.get("/v1/projects/mams/reviews/no-such-id", headers=AUTH).status_code == 404
    assert client.get("/v1/projects/nope/next", headers=AUTH).status_code == 404
    assert client.get("/v1/projects/..%2F..%2Fetc/next", headers=AUTH).status_code == 404
    assert client.get("/v1/projects", headers={}).status_code == 401
    # two tabs open the same review at version 0; the first save wins, the second is refused with the reason
    tab_a = {"aspects": [{"aspect": "food", "polarity": "positive"}], "version": 0, "annotator": "ann"}
    tab_b = {"aspects": [{"aspect": "food", "polarity": "negative"}], "version": 0, "annotator": "bob"}
    assert client.put(url, json=tab_a, headers=AUTH).json()["version"] == 1
    refused = client.put(url, json=tab_b, headers=AUTH)
    assert refused.status_code == 409
    assert "was saved by ann" in refused.json()["detail"] and "version 1" in refused.json()["detail"]
    current = client.get(f"/v1/projects/mams/reviews/{rid}", headers=AUTH).json()
    assert current["label"]["aspects"] == [{"aspect": "food", "polarity": "positive"}] and current["version"] == 1
    # having seen it, tab B saves on top of version 1: accepted, and both writes are in the log
    assert client.put(url, json=tab_b | {"version": 1}, headers=AUTH).json()["version"] == 2
    with sqlite3.connect(tmp_path / "projects" / "mams" / "project.sqlite") as db:
        log = db.execute("SELECT annotator, version FROM label_log WHERE review_id = ? ORDER BY seq", (rid,)).fetchall()
    assert log == [("ann", 1), ("bob", 2)]


def test_an_upload_without_the_text_column_and_a_bad_taxonomy_are_refused(client, served):
    no_text = _create(client, served, text_col="text")
    assert no_text.status_code == 422 and "no column 'text'" in no_text.json()["detail"][0]["msg"]
    both = _create(client, served, rating_scale="1-5")
    assert both.status_code == 422 and "not both" in both.json()["detail"][0]["msg"]
    assert "given twice" in _create(client, served, categories="food, food").json()["detail"][0]["msg"]
    assert "LOW-HIGH" in _create(client, served, categories="", rating_scale="five").json()["detail"][0]["msg"]
    assert "project name" in _create(client, served, name="../x").json()["detail"][0]["msg"]
    assert client.get("/v1/projects", headers=AUTH).json() == []  # nothing half-made is left


def test_retrain_measures_the_learning_curve_and_refills_the_queue(client, served):
    _, gold = served
    _create(client, served)
    too_few = client.post("/v1/projects/mams/retrain", json={}, headers=AUTH)
    assert too_few.status_code == 422 and "no labels outside the held-out slice" in too_few.json()["detail"][0]["msg"]
    _label_next(client, gold, 25)
    model = client.post("/v1/projects/mams/retrain", json={}, headers=AUTH)
    assert model.status_code == 200, model.text
    record = model.json()
    assert record["labels"] == 20 and record["held_out"] == 5
    assert [p["labels"] for p in record["curve"]] == [10, 20] and 0 <= record["accuracy"] <= 1
    summary = client.get("/v1/projects/mams", headers=AUTH).json()
    assert summary["models"][-1]["curve"] == record["curve"]
    assert client.get("/v1/projects/mams/next", headers=AUTH).json()["item"]["model_answer"]["model"] == "tfidf-lr"
    rows = [json.loads(line) for line in client.get("/v1/projects/mams/export", headers=AUTH).text.splitlines()]
    assert len(rows) == 25 and rows[0]["annotator"] == "ann" and rows[0]["labelled_at"]
    pairs = [json.loads(line) for line in client.get("/v1/projects/mams/preference-pairs", headers=AUTH).text.splitlines()]
    assert pairs and all(p["chosen"] != p["rejected"] for p in pairs)


def test_the_export_trains_with_aspects_col_and_train_labels_retrains_the_project(client, served, tmp_path):
    _, gold = served
    _create(client, served)
    _label_next(client, gold, 25)
    export = tmp_path / "labels.jsonl"
    export.write_text(client.get("/v1/projects/mams/export", headers=AUTH).text)
    reviews = read_reviews(export, ColumnMap(id="id", aspects="aspects"))
    assert len(reviews) == 25 and reviews.task is None and reviews.label_space.categories
    for review in reviews:
        expected = _gold_label(gold[review.id], TAXONOMY.split(", "))
        assert [(a.name, a.polarity) for a in review.aspects] == [(a["aspect"], a["polarity"]) for a in expected]
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--labels", str(tmp_path / "projects" / "mams"), "-o", str(tmp_path / "out")])
    assert trained.exit_code == 0, trained.output
    assert "on 20 labels of project mams" in trained.output and (tmp_path / "out" / "topicsent.json").is_file()
    assert len(LabelProject(tmp_path / "projects" / "mams").summary()["models"]) == 1
    (tmp_path / "out" / "calibration.json").write_text("{}", encoding="utf-8")  # a file of another model in the folder
    again = runner.invoke(app, ["train", "--labels", str(tmp_path / "projects" / "mams"), "-o", str(tmp_path / "out")])
    assert again.exit_code == 0, again.output
    assert not (tmp_path / "out" / "calibration.json").exists() and (tmp_path / "out" / "topicsent.json").is_file()
    with_base = runner.invoke(app, ["train", "--labels", str(tmp_path / "projects" / "mams"), "--base", "x"])
    assert "--base does not apply with --labels" in str(with_base.exception)  # the CLI's main() makes it exit 2
    command = [sys.executable, "-m", "topicsent.interfaces", "train", "--labels", str(tmp_path / "projects" / "nope")]
    missing = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no labelling project" in missing.stderr and len(missing.stderr.splitlines()) == 1
    no_out = subprocess.run([*command[:4], "--dataset", "mams-acsa"], capture_output=True, text=True, timeout=120)
    assert no_out.returncode == 2 and "--out is needed" in no_out.stderr  # -o is optional only with --labels


def test_label_studio_tasks_and_an_export_of_them_round_trip_in_the_documented_format(client, served, tmp_path):
    _, gold = served
    _create(client, served)
    project = LabelProject(tmp_path / "projects" / "mams")
    tasks = client.get("/v1/projects/mams/label-studio/tasks", headers=AUTH).json()
    assert tasks == studio_tasks(project) and len(tasks) == 30
    config = ET.fromstring(client.get("/v1/projects/mams/label-studio/config", headers=AUTH).text)
    controls = {c.get("name"): [x.get("value") for x in c] for c in config.iter("Choices")}
    assert controls == {name: ["positive", "negative", "neutral"] for name in ("food", "service", "staff", "price")}
    assert config.find("Text").get("value") == "$text" and all(c.get("toName") == "text" for c in config.iter("Choices"))
    for task in tasks:  # the pre-annotation shape of /guide/predictions
        assert set(task) == {"data", "predictions"} and set(task["data"]) == {"text", "review_id"}
        [prediction] = task["predictions"]
        assert prediction["model_version"] == "tfidf-lr" and 0 <= prediction["score"] <= 1
        for result in prediction["result"]:
            assert result["type"] == "choices" and result["to_name"] == "text" and result["from_name"] in controls
            assert result["value"]["choices"][0] in controls[result["from_name"]]
    # what Label Studio exports once people annotated (the /guide/task_format shape): ids, annotations, predictions
    exported = []
    for number, task in enumerate(tasks[:6], start=1):
        review = gold[task["data"]["review_id"]]
        result = [{"id": f"r{number}{a['aspect']}", "from_name": a["aspect"], "to_name": "text", "type": "choices",
                   "value": {"choices": [a["polarity"]]}} for a in _gold_label(review, controls)]  # fmt: skip
        annotations = [{"id": 1000 + number, "result": result, "was_cancelled": False, "completed_by": 7,
                        "created_at": "2026-11-29T10:00:00Z", "updated_at": "2026-11-29T10:00:00Z", "task": number}]  # fmt: skip
        if number == 6:
            annotations[0]["was_cancelled"] = True  # a skipped task teaches nothing
        exported.append({"id": number, "data": task["data"], "annotations": annotations, "predictions": task["predictions"]})
    exported.append({"id": 7, "data": tasks[6]["data"], "annotations": []})  # not annotated yet
    upload = {"file": ("project-1.json", json.dumps(exported).encode(), "application/json")}
    imported = client.post("/v1/projects/mams/label-studio/import", files=upload, headers=AUTH)
    assert imported.status_code == 200 and imported.json()["imported"] == 5 and imported.json()["labelled"] == 5
    for task in exported[:5]:
        label = project.item(task["data"]["review_id"])["label"]
        assert label["annotator"] == "label-studio:7"
        assert label["aspects"] == _gold_label(gold[task["data"]["review_id"]], controls)
    # bad exports: one line naming the task, and nothing stored
    wrong = json.loads(json.dumps(exported[:2]))
    wrong[1]["annotations"][0]["result"] = [{"from_name": "parking", "type": "choices", "value": {"choices": ["positive"]}}]
    with pytest.raises(InputDataError, match=r"task 2 .*'parking' is not in the taxonomy"):
        import_studio(project, wrong)
    stranger = [{"data": {"text": "x", "review_id": "not-ours"}, "annotations": exported[0]["annotations"]}]
    with pytest.raises(InputDataError, match="task 1: project 'mams' has no review with id 'not-ours'"):
        import_studio(project, stranger)
    not_json = client.post("/v1/projects/mams/label-studio/import", files={"file": ("x.json", b"{oops")}, headers=AUTH)
    assert not_json.status_code == 422 and "not JSON" in not_json.json()["detail"][0]["msg"]
    assert project.counts()["labelled"] == 5


def test_a_rating_project_round_trips_through_label_studio(task_data, tmp_path):
    _, test = task_data["rating"]
    project = LabelProject.create(tmp_path / "stars", [r.text_only() for r in list(test)[:12]], rating_scale=(1, 5))
    assert '<Choice value="5"/>' in label_config(project)
    tasks = studio_tasks(project)
    assert all("predictions" not in t for t in tasks)  # no model yet: nothing to pre-annotate
    gold = {r.id: r.rating for r in test}
    exported = [{"data": t["data"], "annotations": [{"result": [{"from_name": "rating", "to_name": "text", "type": "choices",
                 "value": {"choices": [str(gold[t["data"]["review_id"]])]}}]}]} for t in tasks]  # fmt: skip
    assert import_studio(project, exported) == 12
    assert {r.id: r.rating for r in project.labelled()} == {t["data"]["review_id"]: gold[t["data"]["review_id"]] for t in tasks}
    exported[0]["annotations"][0]["result"][0]["value"]["choices"] = ["9"]
    with pytest.raises(InputDataError, match="rating is \\['9'\\]; expected one of 1, 2, 3, 4, 5"):
        import_studio(project, exported)


def test_the_store_refuses_stale_versions_and_unknown_ids_directly(tmp_path, task_data):
    _, test = task_data["acsa"]
    project = LabelProject.create(tmp_path / "p", [r.text_only() for r in list(test)[:5]], categories=["food"])
    rid = project.next_item()["id"]
    project.save_label(rid, aspects=[{"aspect": "food", "polarity": "positive"}], version=0)
    with pytest.raises(EditConflictError, match="version 1"):
        project.save_label(rid, aspects=[], version=0)
    with pytest.raises(UnknownNameError, match="no review with id 'x'"):
        project.save_label("x", aspects=[], version=0)
    with pytest.raises(UnknownNameError):
        LabelProject(tmp_path / "none")


@pytest.mark.slow  # two server starts and a browser: ~42 s niced on one shared core, over the default suite's budget
def test_the_page_labels_with_the_keyboard_retrains_and_survives_a_server_kill(served, tmp_path):
    """Upload 30 reviews, label 5 with the keyboard, SIGKILL the server, start it again,
    label 5 more, retrain, see the curve; all 10 labels are in the export."""
    from playwright.sync_api import expect, sync_playwright

    folder, _ = served
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is missing: run scripts/install-browser.sh (make test does)"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "topicsent.interfaces", "serve", "--model", str(folder / "model"), "--port", str(port),
               "--jobs-dir", str(tmp_path / "jobs"), "--projects-dir", str(tmp_path / "projects")]  # fmt: skip

    def start():
        server = subprocess.Popen(command, env=os.environ | {"TOPICSENT_API_TOKEN": TOKEN}, stderr=subprocess.DEVNULL)
        wait_until_serving(f"{url}/healthz", server)
        return server

    def label(page, n, start):
        for i in range(n):
            expect(page.locator("#progress")).to_contain_text(f"{start + i} of 30 reviews labelled")
            page.keyboard.press("ArrowUp")  # the first category (food) is selected already: stays there
            page.keyboard.press("p" if i % 2 else "n")
            page.keyboard.press("ArrowDown")
            page.keyboard.press("x")  # service: not mentioned
            page.keyboard.press("Enter")
        expect(page.locator("#progress")).to_contain_text(f"{start + n} of 30 reviews labelled")

    server = start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"{url}/label")
            page.fill("#token", TOKEN)
            page.fill("#annotator", "kim")
            page.click("#new-project summary")
            page.fill("#new-name", "shop")
            page.fill("#categories", TAXONOMY)
            page.set_input_files("#file", str(folder / "reviews.csv"))
            page.fill("#text-col", "body")
            page.fill("#id-col", "sid")
            page.click("#create")
            expect(page.locator("#status")).to_contain_text("project shop: 30 reviews")
            page.locator("#review-text").click()  # the keys go to the page, not a form field
            label(page, 5, 0)
            server.send_signal(signal.SIGKILL)  # between two labels: no shutdown, no flush
            server.wait(timeout=20)
            server = start()
            page.reload()
            page.fill("#token", TOKEN)
            page.fill("#annotator", "kim")
            page.dispatch_event("#token", "change")
            expect(page.locator("#project option")).to_have_text("shop (5/30 labelled)")
            page.click("#open")
            page.locator("#review-text").click()
            label(page, 5, 5)
            page.click("#retrain")
            expect(page.locator("#status")).to_contain_text("retrained tfidf-lr on 8 labels", timeout=60_000)
            expect(page.locator("#curve-svg circle")).to_have_count(1)  # one point: 8 training labels
            expect(page.locator("#curve-svg circle")).to_be_visible()
            expect(page.locator("#curve-table tbody tr")).to_have_count(1)
            expect(page.locator("#model-note")).to_contain_text("on 2 reviews")
            browser.close()
    finally:
        server.kill()
        server.wait(timeout=20)
    rows = list(LabelProject(tmp_path / "projects" / "shop").export_rows())
    assert len(rows) == 10 and {r["annotator"] for r in rows} == {"kim"}
    assert all(r["aspects"][0]["aspect"] == "food" and len(r["aspects"]) <= 3 for r in rows)
    assert {r["aspects"][0]["polarity"] for r in rows} == {"positive", "negative"}
