"""Cascade benchmark: accuracy against the share of reviews the costliest stage answers.

For each dataset: fit a ``cascade`` on train (its stages train on 80% of it and are
calibrated on the rest, where the thresholds are chosen), then on the test split
(gold aspects, the published polarity protocol):

- every stage alone: accuracy, seconds per review, expected calibration error (ECE)
  of its raw and of its calibrated confidence;
- the cascade as fitted, predicted for real (accuracy, share answered by each stage);
- the accuracy-cost curve: the last hop's threshold swept over every level, the
  earlier thresholds as fitted; cost is seconds per 1,000 reviews (each stage's time
  on the reviews that reach it, measured in this run) and LLM dollars where priced.

Prints a table per dataset; writes JSON, CSV and the curve plot (SVG and PNG) named by
time and commit, so runs can be compared across commits.

    python benchmarks/cascade.py --dataset mams-acsa,semeval14-acsa --stages "tfidf-lr>embed-head"
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import textwrap
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from topicsent.data import load_dataset
from topicsent.encoders import CACHE_DIR_ENV
from topicsent.eval import expected_calibration_error, git_commit, polarity_scores
from topicsent.methods import (
    StageOutcomes,
    answer_correctness,
    answers_per_review,
    confidence_levels,
    make_method,
    route,
    routed_accuracy,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mams-acsa,semeval14-acsa")
    parser.add_argument("--stages", default="tfidf-lr>embed-head")
    parser.add_argument("--max-last-share", type=float, default=0.3)
    parser.add_argument("--max-holdout", type=int, default=400, help="held-out training reviews (the last stage answers some)")
    parser.add_argument("--test-limit", type=int, default=None, help="seeded sample of the test split (LLM stages)")
    parser.add_argument("--out", type=Path, default=Path("results/bench-cascade"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ[CACHE_DIR_ENV] = tempfile.mkdtemp(prefix="topicsent-bench-cascade-")  # the user's cache stays as it was
    commit, stamp = git_commit(), datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    runs = [_dataset_run(name, args) for name in args.dataset.split(",")]
    stem = args.out / f"cascade-{stamp}-{commit}"
    stem.with_suffix(".json").write_text(json.dumps({"commit": commit, "stages": args.stages, "runs": runs}, indent=2))
    _write_csv(runs, commit, stem.with_suffix(".csv"))
    _plot(runs, args.stages, stem)
    print(f"Results: {stem}.json, .csv, .svg and .png")


def _dataset_run(name: str, args) -> dict:
    splits = load_dataset(name)
    if args.test_limit:
        splits = replace(splits, test=splits.test.sample(args.test_limit, seed=2))
    cascade = make_method("cascade", stages=args.stages, max_last_share=args.max_last_share, max_holdout=args.max_holdout)
    started = time.perf_counter()
    cascade.fit(splits.train)
    train_seconds = time.perf_counter() - started
    _encode_for_real(cascade.stages_)
    test, totals = splits.test, answers_per_review(splits.test, cascade.task_)
    stages = [_stage_on_test(stage, test) for stage in cascade.stages_]
    outcomes = [s.pop("outcomes") for s in stages]
    chosen = route([o.confidence for o in outcomes[:-1]], cascade.thresholds_)
    started = time.perf_counter()
    predicted = cascade.predict(test.unlabelled(), given_aspects=True)
    cascade_seconds = time.perf_counter() - started
    answered_by = [float(np.mean(chosen == k)) for k in range(len(stages))]
    run = {
        "dataset": name, "n_train": len(splits.train), "n_test": len(test), "train_seconds": round(train_seconds, 1),
        "thresholds": cascade.thresholds_, "holdout": cascade.holdout_report_, "stages": stages,
        "cascade": {
            "accuracy": polarity_scores(test, predicted, test.label_space.polarities)["polarity_accuracy"],
            "simulated_accuracy": routed_accuracy(outcomes, chosen, totals),
            "answered_by_stage": answered_by,
            "seconds_per_1000": round(cascade_seconds / len(test) * 1000, 2),
        },
        "curve": _curve(outcomes, cascade.thresholds_, stages, totals),
    }  # fmt: skip
    _print(run)
    return run


def _encode_for_real(stages) -> None:
    """Switch off the embedding cache of encoder stages: every timed pass below encodes
    the test texts itself, as on new reviews (otherwise the second pass over a text is a
    cache read and the cascade looks free)."""
    for stage in stages:
        encoder = getattr(stage, "_encoder", None)
        if encoder is not None:
            encoder.cache = None


def _stage_on_test(stage, test) -> dict:
    """One stage alone on every test review: accuracy, speed, and ECE before and after
    its calibration (the calibrated confidences are what the cascade routes on)."""
    calibrator = stage.__dict__.pop("calibrator_", None)
    started = time.perf_counter()
    raw = stage.predict(test.unlabelled(), given_aspects=True)
    seconds = time.perf_counter() - started
    if calibrator is not None:
        stage.calibrator_ = calibrator
    calibrated = [calibrator.apply(a) for a in raw] if calibrator else raw
    pairs = {kind: answer_correctness(test, analyses, False) for kind, analyses in (("raw", raw), ("calibrated", calibrated))}
    costs = [a.usage.cost_usd for a in raw if a.usage.cost_usd is not None]
    return {
        "stage": stage.name, "params": stage.get_params(),
        "accuracy": polarity_scores(test, raw, test.label_space.polarities)["polarity_accuracy"],
        "seconds_per_review": seconds / len(test), "cost_usd_per_review": sum(costs) / len(test) if costs else 0.0,
        "ece_raw": expected_calibration_error(*zip(*pairs["raw"], strict=True)) if pairs["raw"] else None,
        "ece_calibrated": expected_calibration_error(*zip(*pairs["calibrated"], strict=True)) if calibrator else None,
        "outcomes": StageOutcomes.of(list(test), calibrated, stage.task_, np.ones(len(test), dtype=bool)),
    }  # fmt: skip


def _curve(outcomes, thresholds, stages, totals) -> list[dict]:
    """Sweep the last hop's threshold (earlier ones as fitted): accuracy, share reaching
    the last stage, seconds per 1,000 reviews and dollars per 1,000 reviews."""
    last_hop = outcomes[-2].confidence
    points = []
    for level in sorted({0.0, *confidence_levels(last_hop)}):
        stage = route([o.confidence for o in outcomes[:-1]], [*thresholds[:-1], level])
        reaching = [float(np.mean(stage >= k)) for k in range(len(stages))]
        points.append({
            "threshold": level, "last_share": reaching[-1], "accuracy": routed_accuracy(outcomes, stage, totals),
            "seconds_per_1000": 1000 * sum(r * s["seconds_per_review"] for r, s in zip(reaching, stages, strict=True)),
            "usd_per_1000": 1000 * sum(r * s["cost_usd_per_review"] for r, s in zip(reaching, stages, strict=True)),
        })  # fmt: skip
    return points


def _print(run: dict) -> None:
    print(f"\n{run['dataset']}: {run['n_test']} test reviews, thresholds {[round(t, 3) for t in run['thresholds']]}")
    print(f"{'':<26}{'accuracy':>9}{'s/1000':>10}{'ECE raw':>9}{'ECE cal':>9}{'answers':>9}")
    cascade = run["cascade"]
    for stage, share in zip(run["stages"], cascade["answered_by_stage"], strict=True):
        ece_cal = "-" if stage["ece_calibrated"] is None else f"{stage['ece_calibrated']:.3f}"
        ece_raw = "-" if stage["ece_raw"] is None else f"{stage['ece_raw']:.3f}"
        print(
            f"{stage['stage']:<26}{stage['accuracy']:>9.3f}{stage['seconds_per_review'] * 1000:>10.1f}"
            f"{ece_raw:>9}{ece_cal:>9}{share:>9.0%}"
        )
    print(f"{'cascade':<26}{cascade['accuracy']:>9.3f}{cascade['seconds_per_1000']:>10.1f}")
    best = max(run["stages"], key=lambda s: s["accuracy"])
    print(
        f"cascade - best single stage ({best['stage']}): {cascade['accuracy'] - best['accuracy']:+.3f}; "
        f"last stage answers {cascade['answered_by_stage'][-1]:.0%} of reviews"
    )


def _write_csv(runs: list[dict], commit: str, path: Path) -> None:
    with path.open("w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(["commit", "dataset", "row", "threshold", "last_share", "accuracy", "seconds_per_1000", "usd_per_1000"])
        for run in runs:
            for stage in run["stages"]:
                writer.writerow([commit, run["dataset"], f"stage:{stage['stage']}", "", "", stage["accuracy"],
                                 stage["seconds_per_review"] * 1000, stage["cost_usd_per_review"] * 1000])  # fmt: skip
            cascade = run["cascade"]
            writer.writerow([commit, run["dataset"], "cascade", "", cascade["answered_by_stage"][-1], cascade["accuracy"],
                             cascade["seconds_per_1000"], ""])  # fmt: skip
            for point in run["curve"]:
                writer.writerow([commit, run["dataset"], "curve", *point.values()])


def _plot(runs: list[dict], stages: str, stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4.2), squeeze=False)
    for axis, run in zip(axes[0], runs, strict=True):
        curve = run["curve"]
        shares, accuracies = [p["last_share"] for p in curve], [p["accuracy"] for p in curve]
        axis.plot(shares, accuracies, marker=".", label="cascade, last threshold swept")
        for stage, style in zip(run["stages"], ("--", ":", "-."), strict=False):
            axis.axhline(stage["accuracy"], linestyle=style, linewidth=1, color="grey", label=f"{stage['stage']} alone")
        chosen = run["cascade"]
        axis.plot([chosen["answered_by_stage"][-1]], [chosen["accuracy"]], "r*", markersize=12, label="fitted thresholds")
        axis.set(title=f"{run['dataset']} ({run['n_test']} test reviews)", xlabel="share of reviews the last stage answers",
                 ylabel="polarity accuracy (gold aspects)")  # fmt: skip
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.suptitle(textwrap.fill(f"cascade {stages}", width=70 * len(runs)), fontsize=10)
    figure.tight_layout()
    figure.savefig(stem.with_suffix(".svg"))
    figure.savefig(stem.with_suffix(".png"), dpi=110)


if __name__ == "__main__":
    main()
