"""The demo: the main job of topicsent on bundled real reviews, start to finish.

English: learn aspect-category sentiment from MAMS restaurant sentences, analyse
400 unseen ones. Korean: learn ratings from 20,000 NSMC movie reviews, rate 2,000
unseen ones. Both write their results and are scored against the human labels.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topicsent.data import ColumnMap, ReviewSet, read_reviews, sample_path
from topicsent.eval import detection_scores, polarity_scores, rating_scores
from topicsent.methods import make_method
from topicsent.schema import ReviewAnalysis, Task, to_dataframe, write_analyses
from topicsent.summary import aspect_summary, rating_summary

MAMS_COLUMNS = ColumnMap(text="text", id="sentence_id", aspects="aspect_categories")
NSMC_COLUMNS = ColumnMap(text="text", id="review_id", rating="rating")


@dataclass
class DemoPart:
    title: str
    analyses: list[ReviewAnalysis]
    output: Path
    agreement: dict[str, float]
    summary: Any


def _read(name: str, columns: ColumnMap, task: Task) -> ReviewSet:
    return read_reviews(sample_path(name), columns, task=task)


def english_aspects(out_dir: Path, method: str = "tfidf-lr") -> DemoPart:
    train = _read("mams_acsa_train.jsonl.gz", MAMS_COLUMNS, Task.ACSA)
    test = _read("mams_acsa_test.jsonl.gz", MAMS_COLUMNS, Task.ACSA)
    model = make_method(method).fit(train)
    model.save(out_dir / "models" / "mams")
    analyses = model.predict(test.text_only())
    agreement = polarity_scores(test, model.predict(test.unlabelled(), given_aspects=True), test.label_space.polarities)
    agreement |= detection_scores(test, analyses, Task.ACSA)
    output = write_analyses(analyses, out_dir / "mams_acsa_analysis.jsonl")
    summary = aspect_summary(to_dataframe(analyses))
    return DemoPart("English restaurant reviews (MAMS): aspect sentiment", analyses, output, agreement, summary)


def korean_ratings(out_dir: Path, method: str = "tfidf-lr") -> DemoPart:
    train = _read("nsmc_train.csv.gz", NSMC_COLUMNS, Task.RATING)
    test = _read("nsmc_test.csv.gz", NSMC_COLUMNS, Task.RATING)
    model = make_method(method).fit(train)
    model.save(out_dir / "models" / "nsmc")
    analyses = model.predict(test.text_only())
    agreement = rating_scores(test, analyses, train.label_space)
    output = write_analyses(analyses, out_dir / "nsmc_ratings.parquet")
    summary = rating_summary(to_dataframe(analyses))
    return DemoPart("Korean movie reviews (NSMC): 1-10 rating", analyses, output, agreement, summary)


def report(out_dir: Path) -> Path:
    """Both unseen test files through `analyze` with the saved demo models (the NSMC
    reviewers' own ratings kept beside the predictions), then one HTML report."""
    from topicsent.report import build_report
    from topicsent.runs import RunRequest, analyze_to_run

    runs = {
        "mams": ("mams_acsa_test.jsonl.gz", ColumnMap(text="text", id="sentence_id")),
        "nsmc": ("nsmc_test.csv.gz", ColumnMap(text="text", id="review_id", rating="rating")),
    }
    folders = []
    for name, (sample, columns) in runs.items():
        folder = out_dir / "runs" / name
        shutil.rmtree(folder, ignore_errors=True)  # the models were just retrained: start afresh
        analyze_to_run(RunRequest(out_dir / "models" / name, str(sample_path(sample)), folder, columns))
        folders.append(folder)
    return build_report(folders, out_dir / "report.html")
