"""The HTML report: built from a real run and a real evaluation, opened in headless
Chromium, and checked to render its charts."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from topicsent.data import ColumnMap
from topicsent.errors import InputDataError
from topicsent.eval import run_evaluation, write_run
from topicsent.report import build_report
from topicsent.runs import RunRequest, analyze_to_run

MATPLOTLIB_BLUE, MATPLOTLIB_ORANGE = (31, 119, 180), (255, 127, 14)


def screenshot(html, png, height: int = 3000) -> np.ndarray:
    """Render the page as Chromium shows it; the pixels as an RGB array."""
    chromium = shutil.which("chromium")
    assert chromium, "headless Chromium is missing: run scripts/install-browser.sh (make test does)"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size=1280,{height}",
         f"--screenshot={png}", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def _pixels_near(image: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int((np.abs(image - np.array(colour)).sum(axis=2) < 30).sum())


@pytest.fixture(scope="module")
def korean_report(korean_run_input, tmp_path_factory):
    model, reviews, _ = korean_run_input
    folder = tmp_path_factory.mktemp("report")
    columns = ColumnMap(text="text", id="id", rating="stars")
    analyze_to_run(RunRequest(model, str(reviews), folder / "nsmc-run", columns=columns, chunk_size=80))
    evaluation = run_evaluation(["mams-acsa"], ["majority", "tfidf-lr"], limit=400, tune=False)
    eval_json, _ = write_run(evaluation, folder / "eval")
    return build_report([folder / "nsmc-run", eval_json], folder / "report.html")


def test_report_is_one_offline_file_with_korean_examples(korean_report):
    html = korean_report.read_text(encoding="utf-8")
    assert '<html lang="ko">' in html
    assert not re.search(r"<script|(src|href)=\"https?:", html), "the report must not load anything"
    assert html.count('<figure class="chart"') == 2 and html.count("<svg") == 2
    assert 'data-chart="Rating distribution: predicted vs the reviewers&#39; own"' in html
    examples = re.findall(r'<div class="example (\w+)">(.*?)</div>', html, flags=re.S)
    assert len(examples) == 6 and {polarity for polarity, _ in examples} >= {"negative", "positive"}
    assert all(re.search(r"[\uac00-\ud7a3]", body) for _, body in examples)  # the Korean review texts
    assert "Key drivers need aspects" in html and "tfidf-lr" in html and "polarity_accuracy" in html


def test_chromium_renders_the_charts(korean_report, tmp_path):
    image = screenshot(korean_report, tmp_path / "report.png")
    assert (image.sum(axis=2) < 600).mean() > 0.01, "the page rendered blank"
    assert _pixels_near(image, MATPLOTLIB_BLUE) > 2000, "no predicted-rating bars or method points drawn"
    assert _pixels_near(image, MATPLOTLIB_ORANGE) > 2000, "no bars of the reviewers' own ratings drawn"


def test_report_refuses_what_it_cannot_read(tmp_path):
    (tmp_path / "notes.json").write_text('{"a": 1}')
    with pytest.raises(InputDataError, match="not an evaluation result file"):
        build_report([tmp_path / "notes.json"], tmp_path / "r.html")
    with pytest.raises(InputDataError, match="neither a run folder"):
        build_report([tmp_path], tmp_path / "r.html")


def test_dollar_signs_in_labels_are_drawn_as_text(task_data, tmp_path):
    """A category like "$$$ vs $" is plain text in every chart, never mathtext."""
    import json

    import pandas as pd

    from topicsent.data import read_reviews
    from topicsent.methods import make_method

    train, test = task_data["acsa"]
    renamed = {"food": "$$$ vs $", "service": "$5 to $10 service"}  # mathtext would fail on or eat both
    rows = [
        {
            "text": r.text,
            "aspects": json.dumps([{"aspect": renamed.get(a.name, a.name), "polarity": a.polarity} for a in r.aspects]),
        }
        for r in train
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    make_method("tfidf-lr").fit(read_reviews(tmp_path / "train.csv", ColumnMap(aspects="aspects"), task="acsa")).save(
        tmp_path / "m"
    )
    pd.DataFrame({"text": [r.text for r in test]}).to_csv(tmp_path / "test.csv", index=False)
    analyze_to_run(RunRequest(tmp_path / "m", str(tmp_path / "test.csv"), tmp_path / "run"))
    html = build_report([tmp_path / "run"], tmp_path / "report.html").read_text(encoding="utf-8")
    svg_text = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", html))
    assert "$$$ vs $" in svg_text and "$5 to $10 service" in svg_text
