"""Active learning measured: accuracy against the number of labels, the labelling
queue's strategy against random order, with the gold labels playing the annotator.

For each dataset, method and seed: a pool of training reviews starts unlabelled. Both
orders begin with the same random labels; at each step the random order labels the
next reviews of a seeded shuffle, and the strategy order labels the batch that
:class:`topicsent.labelling.QueryStrategy` picks given the model trained on the labels
so far (what the labelling page's queue uses: a seeded random start, then margin
uncertainty, mention-weighted over categories for ACSA, made diverse by clustering).
After each step a fresh model is trained on the labels
(:func:`topicsent.labelling.fit_labels`) and scored on the test split
(:func:`topicsent.labelling.held_out_accuracy`: aspect polarity with the gold aspects
given, or exact rating). Target: the labels the strategy needs to reach 95% of the
full-pool accuracy, against random order's (linear interpolation between steps), on
the curves averaged over the seeds; each seed's saving is kept too.

    python benchmarks/active_learning.py --dataset mams-acsa,womens-clothing --methods tfidf-lr --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from topicsent.data import load_dataset
from topicsent.encoders import CACHE_DIR_ENV
from topicsent.eval import git_commit
from topicsent.labelling import QueryStrategy, fit_labels, held_out_accuracy, pool_vectors
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
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated; each draws its own pool, test sample and order")
    parser.add_argument("--random-start", type=int, default=QueryStrategy.random_start)
    parser.add_argument("--candidates", type=int, default=QueryStrategy.candidates)
    parser.add_argument("--aggregate", default=QueryStrategy.aggregate, help="ACSA: mean, max or sum over categories")
    parser.add_argument("--out", type=Path, default=Path("results/bench-active"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*max_iter was reached.*")
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ[CACHE_DIR_ENV] = tempfile.mkdtemp(prefix="topicsent-bench-active-")  # the user's cache stays as it was
    strategy = QueryStrategy(random_start=args.random_start, candidates=args.candidates, aggregate=args.aggregate)
    seeds = [int(s) for s in args.seeds.split(",")]
    commit, stamp = git_commit(), datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    per_seed, combined = [], []
    for dataset in args.dataset.split(","):
        for method in filter(None, args.methods.split(",")):
            runs = [_run(dataset, method, seed, strategy, args) for seed in seeds]
            per_seed += runs
            combined.append(_combine(runs))
            print(_summary(combined[-1]), flush=True)
    path = args.out / f"active-learning-{stamp}-{commit}.json"
    document = {"commit": commit, "seeds": seeds, "strategy": asdict(strategy), "schedule": SCHEDULE,
                "runs": combined, "per_seed": per_seed}  # fmt: skip
    path.write_text(json.dumps(document, indent=2))
    _plot(combined, path.with_suffix(".png"))
    for run in combined:
        print(_summary(run))
    print(f"wrote {path} and its plot")


def _plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4), squeeze=False)
    for axis, run in zip(axes[0], runs, strict=True):
        for order, style in (("random", "--o"), ("strategy", "-o")):
            curve = run["curves"][order]
            labels = [p["labels"] for p in curve]
            line = axis.plot(labels, [p["accuracy"] for p in curve], style, markersize=3, label=order)[0]
            axis.fill_between(labels, [p["min"] for p in curve], [p["max"] for p in curve], color=line.get_color(), alpha=0.15)
        axis.axhline(run["target_accuracy"], color="grey", linewidth=0.8, label="95% of full pool")
        axis.set_xscale("log")
        axis.set_xlabel("labels")
        axis.set_ylabel(run["metric"].replace("_", " "))
        axis.set_title(f"{run['dataset']} / {run['method']} ({len(run['seeds'])} seeds, range shaded)")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _run(dataset: str, method_name: str, seed: int, strategy: QueryStrategy, args) -> dict:
    splits = load_dataset(dataset)
    pool = splits.train.sample(args.pool, seed=seed)
    test = splits.test.sample(args.test_limit, seed=seed + 1)
    method = make_method(method_name)
    began = time.perf_counter()
    full = held_out_accuracy(fit_labels(method, pool), test)
    sizes = [n for n in SCHEDULE if n < len(pool)] + [len(pool)]
    shuffled = list(range(len(pool)))
    random.Random(seed).shuffle(shuffled)
    curves = {"random": [], "strategy": []}
    tag = f"{dataset} {method_name} seed {seed}"
    for size in sizes[:-1]:  # random order: a prefix of one shuffle (the whole pool is the full-pool model)
        model = fit_labels(method, pool.with_reviews([pool[i] for i in shuffled[:size]]))
        curves["random"].append({"labels": size, "accuracy": held_out_accuracy(model, test)})
        print(f"{tag} random {size}: {curves['random'][-1]['accuracy']:.3f}", flush=True)
    curves["random"].append({"labels": len(pool), "accuracy": full})
    vectors = pool_vectors([r.text for r in pool], pool.language)
    chosen = shuffled[: sizes[0]]  # the same random start
    for size in sizes:
        if size == len(pool):  # the whole pool, whatever the order: the full-pool model's accuracy
            curves["strategy"].append({"labels": size, "accuracy": full})
            break
        if size > len(chosen):  # the product's strategy picks the next batch, given the model trained so far
            taken = set(chosen)
            rest = [i for i in shuffled if i not in taken]  # still in the shuffle's order: random picks continue it
            batch = size - len(chosen)
            cold = strategy.random_picks(batch, len(chosen)) == batch
            unsure = np.zeros(len(rest)) if cold else strategy.uncertainty(model, [pool[i].text_only() for i in rest])
            picks = strategy.select(batch, uncertainty=unsure, vectors=vectors[rest], random_order=range(len(rest)),
                                    trained_on=len(chosen), seed=seed)  # fmt: skip
            chosen += [rest[p] for p in picks]
        model = fit_labels(method, pool.with_reviews([pool[i] for i in chosen]))
        curves["strategy"].append({"labels": size, "accuracy": held_out_accuracy(model, test)})
        print(f"{tag} strategy {size}: {curves['strategy'][-1]['accuracy']:.3f}", flush=True)
    target = TARGET_SHARE * full
    reached = {order: _labels_to_reach(curve, target) for order, curve in curves.items()}
    return {
        "dataset": dataset, "method": method_name, "seed": seed, "task": pool.task.value, "pool": len(pool),
        "test": len(test), "metric": "accuracy" if pool.task.value == "rating" else "polarity_accuracy",
        "full_pool_accuracy": full, "target_accuracy": target, "labels_to_target": reached,
        "label_saving": _saving(reached), "curves": curves, "seconds": round(time.perf_counter() - began, 1),
    }  # fmt: skip


def _saving(reached: dict) -> float | None:
    """1 - strategy labels / random labels to the target (None if either never reaches it)."""
    if reached["random"] and reached["strategy"]:
        return 1 - reached["strategy"] / reached["random"]
    return None


def _combine(runs: list[dict]) -> dict:
    """Seeds of one dataset and method as one run: per step the mean accuracy and its
    range over seeds; the target from the mean full-pool accuracy, reached on the mean curves."""
    first = runs[0]
    full = statistics.fmean(r["full_pool_accuracy"] for r in runs)
    curves = {}
    for order in ("random", "strategy"):
        curves[order] = [
            {"labels": points[0]["labels"], "accuracy": statistics.fmean(p["accuracy"] for p in points),
             "min": min(p["accuracy"] for p in points), "max": max(p["accuracy"] for p in points)}
            for points in zip(*(r["curves"][order] for r in runs), strict=True)
        ]  # fmt: skip
    reached = {order: _labels_to_reach(curve, TARGET_SHARE * full) for order, curve in curves.items()}
    savings = [r["label_saving"] for r in runs]
    saving = _saving(reached)
    return {
        "dataset": first["dataset"], "method": first["method"], "seeds": [r["seed"] for r in runs],
        "task": first["task"], "pool": first["pool"], "test": first["test"], "metric": first["metric"],
        "full_pool_accuracy": full, "target_accuracy": TARGET_SHARE * full, "labels_to_target": reached,
        "label_saving": saving, "label_saving_per_seed": savings,
        "target_met": saving is not None and saving >= TARGET_SAVING, "curves": curves,
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
    per_seed = ", ".join("-" if s is None else f"{s:.0%}" for s in run["label_saving_per_seed"])
    return (
        f"{run['dataset']} / {run['method']} (seeds {run['seeds']}): full pool ({run['pool']}) "
        f"{run['full_pool_accuracy']:.3f}; 95% of it ({run['target_accuracy']:.3f}) after {fmt['random']} random vs "
        f"{fmt['strategy']} strategy labels (mean curves): {saving} fewer (per seed: {per_seed}; target >= 30%: "
        f"{'met' if run['target_met'] else 'not met'})"
    )


if __name__ == "__main__":
    main()
