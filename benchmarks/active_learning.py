"""Active learning measured: accuracy against the number of labels, uncertainty-first
against random order, with the gold labels playing the annotator.

For each dataset and method: a pool of training reviews starts unlabelled. Both orders
begin with the same random labels; then, at each step, the random order labels the
next reviews of a seeded shuffle, and the uncertainty order labels the reviews the
model trained on the labels so far is least sure of (:func:`topicsent.labelling.uncertainty`,
what the labelling page's queue uses). After each step a fresh model is trained on the
labels (:func:`topicsent.labelling.fit_labels`) and scored on the test split
(:func:`topicsent.labelling.held_out_accuracy`: aspect polarity with the gold aspects
given, or exact rating). Target: the labels uncertainty order needs to reach 95% of the
full-pool accuracy, against random order's (linear interpolation between steps).

    python benchmarks/active_learning.py --dataset mams-acsa,womens-clothing --methods tfidf-lr
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

from topicsent._provenance import git_commit
from topicsent.data import load_dataset
from topicsent.encoders._cache import CACHE_DIR_ENV
from topicsent.labelling import fit_labels, held_out_accuracy, uncertainty
from topicsent.methods import make_method

#: Labels after each step: a geometric-ish schedule, then the whole pool.
SCHEDULE = (25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200, 1600, 2400, 3200)
TARGET_SHARE = 0.95
TARGET_SAVING = 0.30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mams-acsa,womens-clothing")
    parser.add_argument("--methods", default="tfidf-lr", help="comma-separated, e.g. tfidf-lr,embed-head")
    parser.add_argument("--pool", type=int, default=4000, help="seeded sample of the train split used as the pool")
    parser.add_argument("--test-limit", type=int, default=1000, help="seeded sample of the test split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/bench-active"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*max_iter was reached.*")
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ[CACHE_DIR_ENV] = tempfile.mkdtemp(prefix="topicsent-bench-active-")  # the user's cache stays as it was
    commit, stamp = git_commit(), datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    runs = [_run(dataset, method, args) for dataset in args.dataset.split(",") for method in args.methods.split(",") if method]
    path = args.out / f"active-learning-{stamp}-{commit}.json"
    path.write_text(json.dumps({"commit": commit, "seed": args.seed, "schedule": SCHEDULE, "runs": runs}, indent=2))
    _plot(runs, path.with_suffix(".png"))
    for run in runs:
        print(_summary(run))
    print(f"wrote {path} and its plot")


def _plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4), squeeze=False)
    for axis, run in zip(axes[0], runs, strict=True):
        for order, style in (("random", "--o"), ("uncertainty", "-o")):
            curve = run["curves"][order]
            axis.plot([p["labels"] for p in curve], [p["accuracy"] for p in curve], style, markersize=3, label=order)
        axis.axhline(run["target_accuracy"], color="grey", linewidth=0.8, label="95% of full pool")
        axis.set_xscale("log")
        axis.set_xlabel("labels")
        axis.set_ylabel(run["metric"].replace("_", " "))
        axis.set_title(f"{run['dataset']} / {run['method']}")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _run(dataset: str, method_name: str, args) -> dict:
    splits = load_dataset(dataset)
    pool = splits.train.sample(args.pool, seed=args.seed)
    test = splits.test.sample(args.test_limit, seed=args.seed + 1)
    method = make_method(method_name)
    began = time.perf_counter()
    full = held_out_accuracy(fit_labels(method, pool), test)
    sizes = [n for n in SCHEDULE if n < len(pool)] + [len(pool)]
    shuffled = list(range(len(pool)))
    random.Random(args.seed).shuffle(shuffled)
    curves = {"random": [], "uncertainty": []}
    for size in sizes:  # random order: a prefix of one shuffle
        model = fit_labels(method, pool.with_reviews([pool[i] for i in shuffled[:size]]))
        curves["random"].append({"labels": size, "accuracy": held_out_accuracy(model, test)})
        print(f"{dataset} {method_name} random {size}: {curves['random'][-1]['accuracy']:.3f}", flush=True)
    chosen = shuffled[: sizes[0]]  # the same random start
    for size in sizes:
        if size > len(chosen):
            rest = sorted(set(range(len(pool))) - set(chosen))
            answers = model.predict([pool[i].text_only() for i in rest])
            ranked = sorted(zip(rest, answers, strict=True), key=lambda pair: -uncertainty(pair[1]))
            chosen += [i for i, _ in ranked[: size - len(chosen)]]
        model = fit_labels(method, pool.with_reviews([pool[i] for i in chosen]))
        curves["uncertainty"].append({"labels": size, "accuracy": held_out_accuracy(model, test)})
        print(f"{dataset} {method_name} uncertainty {size}: {curves['uncertainty'][-1]['accuracy']:.3f}", flush=True)
    target = TARGET_SHARE * full
    reached = {order: _labels_to_reach(curve, target) for order, curve in curves.items()}
    saving = None
    if reached["random"] and reached["uncertainty"]:
        saving = 1 - reached["uncertainty"] / reached["random"]
    return {
        "dataset": dataset, "method": method_name, "task": pool.task.value, "pool": len(pool), "test": len(test),
        "metric": "accuracy" if pool.task.value == "rating" else "polarity_accuracy",
        "full_pool_accuracy": full, "target_accuracy": target, "labels_to_target": reached, "label_saving": saving,
        "target_met": saving is not None and saving >= TARGET_SAVING, "curves": curves,
        "seconds": round(time.perf_counter() - began, 1),
    }  # fmt: skip


def _labels_to_reach(curve: list[dict], target: float) -> float | None:
    """The first number of labels at which ``curve`` reaches ``target``, interpolated
    linearly between the steps around it; None if it never does."""
    before = None
    for point in curve:
        if point["accuracy"] is not None and point["accuracy"] >= target:
            if before is None:
                return float(point["labels"])
            rise = point["accuracy"] - before["accuracy"]
            return before["labels"] + (point["labels"] - before["labels"]) * (target - before["accuracy"]) / rise
        before = point
    return None


def _summary(run: dict) -> str:
    reached = run["labels_to_target"]
    fmt = {k: "never" if v is None else f"{v:.0f}" for k, v in reached.items()}
    saving = "-" if run["label_saving"] is None else f"{run['label_saving']:.0%}"
    return (
        f"{run['dataset']} / {run['method']}: full pool ({run['pool']}) {run['full_pool_accuracy']:.3f}; "
        f"95% of it ({run['target_accuracy']:.3f}) after {fmt['random']} random vs {fmt['uncertainty']} "
        f"uncertainty-first labels: {saving} fewer (target >= 30%: {'met' if run['target_met'] else 'not met'})"
    )


if __name__ == "__main__":
    main()
