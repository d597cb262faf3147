"""The evaluation harness: which method wins on this data, at what cost and speed.

For each dataset and method: search the method's small tuning grid by fitting on
train and scoring on validation, keep the best, then score on test. Quality metrics
follow the published protocols (:mod:`topicsent.metrics`); cost is training
time, prediction throughput and peak memory. Results carry the git commit so runs
can be compared across commits; relative columns compare methods within one run,
since absolute speed on a shared machine is noisy.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import platform
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from topicsent._progress import progress_bar
from topicsent._provenance import git_commit
from topicsent.data import ReviewSet, Splits, load_dataset
from topicsent.encoders._cache import CACHE_DIR_ENV
from topicsent.errors import InvalidParameterError
from topicsent.eval._resources import measure
from topicsent.llm import LLM_CACHE_ENV, llm_cache_path
from topicsent.methods import BaseMethod, changed_params, make_method, method_spec, parse_method_spec, spec_params
from topicsent.methods._calibration import MIN_CALIBRATION_ANSWERS, answer_correctness
from topicsent.metrics import (
    coverage,
    detection_scores,
    expected_calibration_error,
    polarity_scores,
    primary_metric,
    rating_scores,
    status_counts,
    triplet_scores,
)
from topicsent.schema import ReviewAnalysis, Task
from topicsent.text import korean_morphemes

#: Training reviews (seeded sample) for the grid search; the chosen parameters are then
#: fitted on the full train split. Keeps tuning on NSMC's 568k reviews affordable.
TUNE_SAMPLE = 20_000
#: Validation reviews (seeded sample) the harness calibrates each method's confidence on.
CALIBRATION_SAMPLE = 2_000
REFERENCE_METHOD = "tfidf-lr"  # speed ratios are relative to this baseline when it ran
FLOOR_METHOD = "majority"  # quality gains are relative to this baseline when it ran


@dataclass(frozen=True)
class MethodChoice:
    """A method to evaluate, parsed once where the user named it.

    ``label`` names its results (the user's spec text, as typed), ``method`` is the
    unfitted method, and ``fixed`` holds the parameters the user set: tuning searches
    the method's grid over the others only.
    """

    label: str
    method: BaseMethod
    fixed: dict[str, Any]

    @classmethod
    def parse(cls, spec: str) -> MethodChoice:
        """From a spec such as ``tfidf-lr[C=0.5]``; :class:`InvalidParameterError` or
        :class:`~topicsent.errors.UnknownNameError` for a bad one."""
        name, params = parse_method_spec(spec)
        return cls(spec, make_method(name, **params), params)

    @classmethod
    def of(cls, method: str | BaseMethod | MethodChoice) -> MethodChoice:
        """A choice from a spec, a method object (labelled by its spec, its non-default
        parameters fixed) or a choice."""
        if isinstance(method, MethodChoice):
            return method
        if isinstance(method, str):
            return cls.parse(method)
        return cls(method_spec(method), method, changed_params(method))

    def build(self, seed: int, params: Mapping[str, Any]) -> BaseMethod:
        """A new unfitted twin with ``params`` (the fixed ones and a grid point), seeded."""
        return self.method.clone(**({"random_state": seed} | dict(params)))


@dataclass
class MethodResult:
    """What one method reached on one dataset's test split, and what it cost."""

    dataset: str
    task: str
    method: str
    params: dict[str, Any]
    primary_metric: str
    metrics: dict[str, float]
    tuning: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    predict_seconds: float = 0.0
    reviews_per_second: float = 0.0
    peak_rss_mb: float | None = None
    extra_peak_mb: float | None = None
    n_train: int = 0
    n_test: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    relative: dict[str, float | None] = field(default_factory=dict)
    training: dict[str, Any] | None = None  # the method's own training curve, when it keeps one
    usage: dict[str, float] | None = None  # tokens, cost and cache hits of LLM methods (analysis pass)
    answered_by: dict[str, float] | None = None  # a cascade: share of test reviews each stage answered

    @property
    def score(self) -> float:
        return self.metrics.get(self.primary_metric, float("nan"))


def score(method: BaseMethod, test: ReviewSet) -> tuple[dict[str, float], dict[str, int], float]:
    """Metrics of a fitted method on a labelled set, its statuses and the seconds of
    the full analysis pass (the one users run)."""
    metrics, statuses, seconds, _, _ = _score(method, test)
    return metrics, statuses, seconds


def _score(method: BaseMethod, test: ReviewSet, detection: bool = True):
    """Without ``detection`` an aspect task is scored (and timed) on the gold-aspect pass
    alone: half the calls, for methods where every review costs a model call. Also
    returns the analyses the quality metrics were computed on (gold aspects given)."""
    given_only = method.task_ is not Task.RATING and not detection
    with measure() as timing:
        analyses = method.predict(test.unlabelled(), given_aspects=True) if given_only else method.predict(test.text_only())
    scored = analyses
    if method.task_ is Task.RATING:
        metrics = rating_scores(test, analyses, test.label_space)
    elif given_only:
        metrics = polarity_scores(test, analyses, test.label_space.polarities)
    else:
        scored = method.predict(test.unlabelled(), given_aspects=True)
        metrics = polarity_scores(test, scored, test.label_space.polarities) | detection_scores(test, analyses, method.task_)
        if any(aspect.opinions for review in test for aspect in review.aspects):  # triplet data (ASTE)
            metrics |= triplet_scores(test, analyses)
    metrics["coverage"] = coverage(analyses)
    return metrics, status_counts(analyses), timing.seconds, usage_summary(analyses), scored


def calibration_scores(method: BaseMethod, test: ReviewSet, scored: Sequence[ReviewAnalysis], validation: ReviewSet) -> dict:
    """Expected calibration error of the method's confidence on test, as it comes (``ece``)
    and once calibrated on ``validation`` (``ece_calibrated``); nothing for a method that
    gives no confidence. Calibrating costs one pass over ``validation``."""
    answers = answer_correctness(test, scored, method.task_ is Task.RATING)
    if len(answers) < MIN_CALIBRATION_ANSWERS:
        return {}
    confidence, correct = (np.array(values, dtype=float) for values in zip(*answers, strict=True))
    scores = {"ece": expected_calibration_error(confidence, correct)}
    try:
        method.calibrate(validation)
    except InvalidParameterError:  # too few validation answers carry a confidence
        return scores
    return scores | {"ece_calibrated": expected_calibration_error(method.calibrator_(confidence), correct)}


def answered_by(analyses: Sequence[ReviewAnalysis]) -> dict[str, float] | None:
    """Share of reviews per answering model, when several answered (a cascade's stages)."""
    counts = Counter(a.model for a in analyses if a.status == "ok")
    if len(counts) < 2:
        return None
    return {str(model): count / len(analyses) for model, count in sorted(counts.items(), key=lambda kv: str(kv[0]))}


def usage_summary(analyses: Sequence[ReviewAnalysis]) -> dict[str, float] | None:
    """Per-review tokens, total cost and cache-hit share, for methods that report usage (LLMs)."""
    used = [a.usage for a in analyses if a.usage.input_tokens is not None]
    if not used:
        return None
    costs = [u.cost_usd for u in used if u.cost_usd is not None]
    return {
        "input_tokens_per_review": sum(u.input_tokens for u in used) / len(analyses),
        "output_tokens_per_review": sum(u.output_tokens or 0 for u in used) / len(analyses),
        "cost_usd": sum(costs) if costs else None,
        "cache_hit_rate": sum(bool(u.cache_hit) for u in used) / len(used),
    }


def _candidates(choice: MethodChoice, task: Task, tune: bool) -> list[dict[str, Any]]:
    """Parameter sets to try: the choice's fixed ones, crossed with the method's grid
    for the parameters the user left open."""
    fixed = choice.fixed
    grid = {k: v for k, v in type(choice.method).param_grid(task).items() if k not in fixed} if tune else {}
    keys = list(grid)
    return [fixed | dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def _tune(
    choice: MethodChoice, splits: Splits, *, metric: str, tune: bool, seed: int, tune_sample: int
) -> tuple[dict[str, Any], list[dict[str, Any]], tuple[BaseMethod, Any] | None]:
    """Grid search on (a seeded sample of at most ``tune_sample`` reviews of) train,
    scored on validation. Returns the best parameters, the trials, and the best fitted
    method with its measurement when it was trained on the whole train split."""
    task = splits.train.task
    candidates = _candidates(choice, task, tune)
    if len(candidates) == 1:
        return candidates[0], [], None
    train, validation = splits.train.sample(tune_sample, seed), splits.validation.sample(tune_sample, seed)
    trials, best = [], None
    with progress_bar(f"{splits.train.name} / {choice.label}: tune", total=len(candidates)) as advance:
        for params in candidates:
            method = choice.build(seed, params)
            with measure() as fitting:
                method.fit(train, task)
            written = {k: v for k, v in spec_params(method).items() if k in params}  # nested methods as specs: JSON
            trial = {"params": written, "validation": score(method, validation)[0].get(metric), "fit_seconds": fitting.seconds}
            trials.append(trial)
            if best is None or (trial["validation"] or 0) > (best[0]["validation"] or 0):
                best = (trial, method, fitting, params)
            advance(1)
    reusable = (best[1], best[2]) if len(train) == len(splits.train) else None
    return best[3], trials, reusable


def evaluate_method(
    dataset: str,
    splits: Splits,
    spec: str | BaseMethod | MethodChoice,
    *,
    tune: bool = True,
    seed: int = 0,
    tune_sample: int = TUNE_SAMPLE,
    detection: bool = True,
    calibration_sample: int = CALIBRATION_SAMPLE,
) -> MethodResult:
    """Tune ``spec`` (a spec string, a method object or a :class:`MethodChoice`) on
    validation, fit the chosen parameters on the full train split, and score that fit on
    test; then calibrate its confidence on (a seeded sample of ``calibration_sample``
    reviews of) validation and score the calibration on test (0: skip)."""
    choice = MethodChoice.of(spec)
    task = splits.train.task
    metric = primary_metric(task, splits.train.label_space)
    # each method pays for its own Korean morphological analysis: analyses of the test
    # texts cached by the method before would inflate this one's reviews/s
    korean_morphemes.cache_clear()
    params, trials, fitted = _tune(choice, splits, metric=metric, tune=tune, seed=seed, tune_sample=tune_sample)
    if fitted is None:
        method = choice.build(seed, params)
        with progress_bar(f"{dataset} / {choice.label}: fit on {len(splits.train):,} reviews", total=None), measure() as fitting:
            method.fit(splits.train, task)
    else:
        method, fitting = fitted
    with measure() as testing:
        metrics, statuses, analysis_seconds, usage, scored = _score(method, splits.test, detection)
    if calibration_sample:
        metrics |= calibration_scores(method, splits.test, scored, splits.validation.sample(calibration_sample, seed + 1))
    return MethodResult(
        dataset=dataset, task=task.value, method=choice.label, params=spec_params(method),
        primary_metric=metric, metrics=metrics, tuning=trials,
        train_seconds=fitting.seconds, predict_seconds=analysis_seconds,
        reviews_per_second=len(splits.test) / analysis_seconds if analysis_seconds else 0.0,
        peak_rss_mb=max(filter(None, (fitting.peak_rss_mb, testing.peak_rss_mb)), default=None),
        extra_peak_mb=max(filter(None, (fitting.extra_peak_mb, testing.extra_peak_mb)), default=None),
        n_train=len(splits.train), n_test=len(splits.test), statuses=statuses,
        training=_training_report(method), usage=usage, answered_by=answered_by(scored),
    )  # fmt: skip


def _training_report(method: BaseMethod) -> dict[str, Any] | None:
    """The validation curve of methods that train in epochs (``training_report_``)."""
    report = getattr(method, "training_report_", None)
    return report.to_dict() if report is not None else None


def add_relative_columns(results: Sequence[MethodResult]) -> None:
    """Within each dataset: primary-metric gain over ``majority`` (points) and speed
    relative to ``tfidf-lr``, both measured in the same run."""
    by_dataset: dict[str, dict[str, MethodResult]] = {}
    for result in results:
        by_dataset.setdefault(result.dataset, {})[result.method] = result
    for result in results:
        peers = by_dataset[result.dataset]
        floor, reference = peers.get(FLOOR_METHOD), peers.get(REFERENCE_METHOD)
        result.relative = {
            "gain_over_majority": result.score - floor.score if floor else None,
            "speed_vs_tfidf_lr": result.reviews_per_second / reference.reviews_per_second
            if reference and reference.reviews_per_second
            else None,
        }


def run_evaluation(
    datasets: Sequence[str],
    methods: Sequence[str | BaseMethod | MethodChoice],
    *,
    limit: int | None = None,
    seed: int = 0,
    tune: bool = True,
    tune_sample: int = TUNE_SAMPLE,
    test_limit: int | None = None,
    detection: bool = True,
    calibration_sample: int = CALIBRATION_SAMPLE,
    on_result: Callable[[dict[str, Any], MethodResult], None] | None = None,
    splits: Mapping[str, Splits] | None = None,
    sources: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Evaluate every method on every dataset; returns the run record (see :func:`write_run`).

    ``methods`` are spec strings (parsed here, once), method objects or
    :class:`MethodChoice` s (parsed by the caller, e.g. the CLI); results are labelled
    with the spec as given (an object: :func:`~topicsent.methods.method_spec`).

    ``datasets`` are built-in dataset names or keys of ``splits``: ready splits such as
    :func:`~topicsent.data.file_splits` makes of a user's files, evaluated exactly like
    the built-in ones; ``sources`` says where each came from (file paths, columns), and
    the run record keeps it under ``run.sources``.

    ``test_limit`` scores on a seeded sample of the test split only (training stays
    whole): how slow methods such as LLM prompting are compared on the same reviews;
    ``detection=False`` scores aspect tasks on the gold aspects only (one pass, not two).
    ``calibration_sample`` validation reviews calibrate each method's confidence (0: skip).
    ``on_result(run, result)`` is called after each method so callers can save partial
    runs: a crash or Ctrl-C in hour two keeps the first hour's numbers.
    """
    options = {"limit": limit, "seed": seed, "tune": tune, "tune_sample": tune_sample, "test_limit": test_limit,
               "detection": detection, "calibration_sample": calibration_sample}  # fmt: skip
    with _fresh_embedding_cache():
        choices = [MethodChoice.of(m) for m in methods]  # spec strings parsed here, once
        return _run(datasets, choices, on_result=on_result, splits=splits or {}, sources=sources or {}, **options)


@contextmanager
def _fresh_embedding_cache() -> Iterator[None]:
    """An empty embedding cache for the run: tuning still encodes each train text once,
    but the timed test pass encodes its texts for real, so reviews/s is what a user
    sees on new reviews, not a cache read. (LLM answers are different: their cache is
    the point of a rerun, and the results report its hit rate.)"""
    previous = {name: os.environ.get(name) for name in (CACHE_DIR_ENV, LLM_CACHE_ENV)}
    os.environ[LLM_CACHE_ENV] = str(llm_cache_path())  # LLM answers stay in the user's cache: a rerun makes no calls
    with tempfile.TemporaryDirectory(prefix="topicsent-eval-cache-") as directory:
        os.environ[CACHE_DIR_ENV] = directory
        try:
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _run(
    datasets, methods, *, limit, seed, tune, tune_sample, test_limit, detection, calibration_sample, on_result, splits, sources
) -> dict[str, Any]:
    started = datetime.now(UTC)
    run: dict[str, Any] = {
        "run": {
            "started": started.isoformat(timespec="seconds"),
            "seconds": 0.0,
            "commit": git_commit(),
            "datasets": list(datasets),
            "methods": [choice.label for choice in methods],
            "limit": limit,
            "seed": seed,
            "tune": tune,
            "tune_sample": tune_sample,
            "test_limit": test_limit,
            "detection": detection,
            "calibration_sample": calibration_sample,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "sources": {name: dict(source) for name, source in sources.items()},
            "notes": {},  # per dataset: what its loader skipped (unparseable lines, ...), one line per file
        },
        "results": [],
    }
    results: list[MethodResult] = []
    for dataset in datasets:
        with progress_bar(f"load {dataset}", total=None):
            chosen = (splits[dataset] if dataset in splits else load_dataset(dataset)).limited(limit, seed)
            if test_limit:
                chosen = replace(chosen, test=chosen.test.sample(test_limit, seed + 2))
        if notes := [*chosen.train.notes, *chosen.validation.notes, *chosen.test.notes]:
            run["run"]["notes"][dataset] = notes
        for choice in methods:
            if chosen.train.task not in choice.method.supported_tasks:
                continue
            result = evaluate_method(
                dataset, chosen, choice, tune=tune, seed=seed, tune_sample=tune_sample, detection=detection,
                calibration_sample=calibration_sample,
            )  # fmt: skip
            results.append(result)
            add_relative_columns(results)
            run["results"] = [asdict(r) | {"score": r.score} for r in results]
            run["run"]["seconds"] = (datetime.now(UTC) - started).total_seconds()
            if on_result:
                on_result(run, result)
    return run


CSV_FIELDS = ("dataset", "task", "method", "primary_metric", "score", "train_seconds", "predict_seconds",
              "reviews_per_second", "peak_rss_mb", "extra_peak_mb", "n_train", "n_test")  # fmt: skip


def write_run(run: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write the run as JSON (everything) and CSV (one row per dataset x method, every
    metric a column); the file names carry time and commit so runs never overwrite."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = run["run"]["started"].replace(":", "").replace("-", "")[:15]
    stem = out_dir / f"eval-{stamp}-{run['run']['commit']}"
    json_path, csv_path = stem.with_suffix(".json"), stem.with_suffix(".csv")
    json_path.write_text(json.dumps(run, indent=2, ensure_ascii=False), encoding="utf-8")
    metric_names = sorted({k for r in run["results"] for k in r["metrics"]})
    with csv_path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=["commit", *CSV_FIELDS, *metric_names, "gain_over_majority", "speed_vs_tfidf_lr"])
        writer.writeheader()
        for result in run["results"]:
            row = {k: result[k] for k in CSV_FIELDS} | result["metrics"] | result["relative"]
            writer.writerow({"commit": run["run"]["commit"], **row})
    return json_path, csv_path
