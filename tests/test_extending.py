"""The examples of docs/extending.md, run as written: each file of the page goes into a folder
of its own, registered with the page's line (entry points as an installed distribution, or the
entry of a registry dict), and is then used the way a user would, in a separate Python process
so nothing stays registered in this one."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

DOC = Path(__file__).parents[1] / "docs" / "extending.md"
BLOCK = re.compile(r"```(python|toml)\n(.*?)```", re.DOTALL)
NSMC_SAMPLE = """
from topicsent.data import ColumnMap, read_reviews, sample_path
from topicsent.schema import Task
columns = ColumnMap(text="text", id="review_id", rating="rating")
train = read_reviews(sample_path("nsmc_train.csv.gz"), columns, task=Task.RATING)
test = read_reviews(sample_path("nsmc_test.csv.gz"), columns, task=Task.RATING)
"""


def page_examples() -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, str]]]:
    """(file name -> code, registry name -> its one line, entry-point group -> {name: object})."""
    files, registries, entry_points = {}, {}, {}
    for language, body in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        first, _, rest = body.partition("\n")
        if first.startswith("# file: "):
            files[first.removeprefix("# file: ").strip()] = body
        elif first.startswith("# registry: "):
            registries[first.removeprefix("# registry: ").strip()] = rest.strip()
        elif language == "toml":
            for group, points in tomllib.loads(body)["project"]["entry-points"].items():
                entry_points.setdefault(group, {}).update(points)
    return files, registries, entry_points


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    """The page's files and entry points as an installed distribution in a folder of its own."""
    folder = tmp_path_factory.mktemp("plugin")
    files, _, entry_points = page_examples()
    for name, code in files.items():
        (folder / name).write_text(code, encoding="utf-8")
    dist = folder / "topicsent_doc_examples-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: topicsent-doc-examples\nVersion: 0.1\n", encoding="utf-8")
    sections = [
        "\n".join([f"[{group}]", *(f"{name} = {value}" for name, value in pts.items())]) for group, pts in entry_points.items()
    ]
    (dist / "entry_points.txt").write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return folder


def with_plugin(plugin: Path) -> dict[str, str]:
    """This process's environment with the plugin folder first on the import path."""
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(plugin), os.environ.get("PYTHONPATH")]))}


def run_python(plugin: Path, workdir: Path, script: str, *, nsmc: bool = False, **env: str) -> dict:
    """Run ``script`` (after the bundled NSMC sample is read into ``train`` and ``test``, with
    ``nsmc``) with the plugin folder importable; it prints one JSON document."""
    cache = {"TOPICSENT_CACHE_DIR": str(workdir / "cache"), "TOPICSENT_LLM_CACHE": str(workdir / "llm.sqlite")}
    code = (NSMC_SAMPLE if nsmc else "") + textwrap.dedent(script)
    environment = with_plugin(plugin) | cache | env
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=600, env=environment
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_page_has_one_file_and_one_registry_line_per_extension():
    files, registries, entry_points = page_examples()
    assert set(files) == {"word_score.py", "plain_http.py", "hotel_reviews.py", "hashing_encoder.py"}
    assert set(registries) == {"DATASETS", "POOLED_ENCODERS"}
    assert all(len(line.splitlines()) == 1 for line in registries.values())
    assert entry_points == {
        "topicsent.methods": {"word-score": "word_score:WordScoreMethod"},
        "topicsent.backends": {"plain-http": "plain_http:PlainHttpBackend"},
    }


def test_the_method_example_is_registered_and_learns_saves_and_loads(plugin, tmp_path):
    out = run_python(
        plugin,
        tmp_path,
        nsmc=True,
        script="""
        import json
        from topicsent.methods import BaseMethod, make_method, method_names
        model = make_method("word-score", min_count=2).fit(train)
        model.save("model")
        loaded = BaseMethod.load("model")
        predicted = model.predict(test.text_only())
        again = loaded.predict(test.text_only())
        majority = make_method("majority").fit(train).predict(test.text_only())
        error = lambda analyses: sum(abs(a.overall.rating - r.rating) for a, r in zip(analyses, test)) / len(test)
        print(json.dumps({
            "names": method_names(), "statuses": sorted({a.status for a in predicted}),
            "same": [a.overall.rating for a in predicted] == [a.overall.rating for a in again],
            "mae": error(predicted), "majority_mae": error(majority), "scale": sorted({a.overall.rating for a in predicted}),
        }))
    """,
    )
    assert "word-score" in out["names"] and out["statuses"] == ["ok"] and out["same"]
    assert set(out["scale"]) <= set(range(1, 11))
    assert out["mae"] < out["majority_mae"], out  # it learns from the words, not the prior
    command = [sys.executable, "-m", "topicsent.interfaces", "methods"]
    listed = subprocess.run(command, capture_output=True, text=True, timeout=120, env=with_plugin(plugin))
    assert listed.returncode == 0 and "word-score" in listed.stdout, listed.stderr[-2000:]


class _GenerateHandler(BaseHTTPRequestHandler):
    """The server of the backend example: answers every /generate with one rating."""

    prompts: ClassVar[list[str]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).prompts.append(body["prompt"])
        answer = json.dumps({"text": json.dumps({"rating": 8, "confidence": 0.9}), "finish_reason": "stop"}).encode()
        self.send_response(200 if self.path == "/generate" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):  # quiet
        pass


def test_the_backend_example_answers_through_the_llm_method(plugin, tmp_path):
    pytest.importorskip("httpx", reason="the llm extra is not installed")
    if not hasattr(importlib.import_module("topicsent.llm"), "Backend"):
        pytest.skip("topicsent.llm does not export Backend yet: its public face is item 2 of issue 25")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GenerateHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        out = run_python(
            plugin,
            tmp_path,
            nsmc=True,
            script=f"""
            import json
            from topicsent.methods import make_method
            model = make_method("llm", backend="plain-http", model="stand-in", base_url="{url}").fit(train[:20])
            analyses = model.predict(test.text_only()[:3])
            print(json.dumps({{"rows": [[a.status, a.overall.rating, a.model] for a in analyses]}}))
        """,
        )
    finally:
        server.shutdown()
    assert [row[:2] for row in out["rows"]] == [["ok", 8.0]] * 3
    assert len(_GenerateHandler.prompts) == 3 and all("user:" in p for p in _GenerateHandler.prompts)


def test_the_dataset_example_loads_splits_and_trains(plugin, tmp_path):
    _, registries, _ = page_examples()
    data = tmp_path / "data" / "hotel-reviews"
    data.mkdir(parents=True)
    words = {1: "dirty rude awful", 2: "noisy bad", 3: "average okay", 4: "nice clean", 5: "wonderful friendly spotless"}
    rows = [f"{i},{words[1 + i % 5]} stay number {i},{1 + i % 5}" for i in range(100)]
    (data / "reviews.csv").write_text("id,review,stars\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = run_python(
        plugin,
        tmp_path,
        f"""
        import json
        from topicsent.data import DATASETS, DatasetInfo, dataset_info, load_dataset
        from topicsent.methods import make_method
        from topicsent.schema import Task
        from hotel_reviews import load_hotel_reviews
        entry = {registries["DATASETS"].rstrip(",")}
        DATASETS[entry.name] = entry
        splits = load_dataset("hotel-reviews")
        model = make_method("tfidf-lr").fit(splits.train)
        right = sum(a.overall.rating == r.rating for a, r in zip(model.predict(splits.test.text_only()), splits.test))
        print(json.dumps({{"sizes": [len(splits.train), len(splits.validation), len(splits.test)],
                          "task": str(dataset_info("hotel-reviews").task), "right": right}}))
    """,
        TOPICSENT_DATA_DIR=str(tmp_path / "data"),
    )
    assert sum(out["sizes"]) == 100 and out["sizes"][0] > out["sizes"][2] > 0 and out["task"] == "rating"
    assert out["right"] == out["sizes"][2]  # each rating has its own words


def test_the_encoder_example_encodes_and_trains_embed_head(plugin, tmp_path):
    _, registries, _ = page_examples()
    train_head = importlib.util.find_spec("torch") is not None  # embed-head's heads are torch (the encoders extra)
    out = run_python(
        plugin,
        tmp_path,
        nsmc=True,
        script=f"""
        import json
        from topicsent.encoders import POOLED_ENCODERS, make_encoder
        from topicsent.encoders._pooled import PooledEncoderInfo  # in scope where the line goes
        from topicsent.methods import make_method
        POOLED_ENCODERS.update({{{registries["POOLED_ENCODERS"].rstrip(",")}}})
        vectors = make_encoder("hashing-256").sentences(["good food", "bad service", "good food"])
        result = {{"shape": list(vectors.shape), "same": bool((vectors[0] == vectors[2]).all())}}
        if {train_head}:
            model = make_method("embed-head", encoder="hashing-256", epochs=2).fit(train[:300])
            result["statuses"] = sorted({{a.status for a in model.predict(test.text_only()[:20])}})
        print(json.dumps(result))
    """,
    )
    assert out["shape"] == [3, 256] and out["same"]
    if train_head:
        assert out["statuses"] == ["ok"]
