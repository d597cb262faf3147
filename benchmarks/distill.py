"""Distillation benchmark: students trained on a teacher's labels vs on the gold labels.

A teacher is trained on a labelled sample of train; a disjoint sample of train is then
treated as unlabelled: the teacher labels it (only answers at least ``--min-confidence``
sure are kept, see ``topicsent sft-data --teacher``), and each student method is
trained twice on those reviews, once on the teacher's labels and once on their gold
labels. All are scored on the same seeded test sample; the table shows how close the
distilled student gets to its teacher and to its gold-trained twin. (An encoder
student's second training reads the first one's embeddings from the cache, so its train
seconds are not comparable.) Writes JSON and CSV named by time and commit.

    python benchmarks/distill.py --dataset nsmc-binary --teacher tfidf-lr \\
        --students "tfidf-lr,embed-head[encoder=multilingual-e5-small,C=10.0]" --min-confidence 0.8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _run_files import write_run_files

from topicsent.data import load_dataset
from topicsent.eval import primary_metric, score
from topicsent.methods import make_method, parse_method_spec, split_method_specs
from topicsent.teacher import teacher_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="nsmc-binary")
    parser.add_argument("--teacher", default="tfidf-lr", help="method spec of the teacher")
    parser.add_argument("--teacher-train", type=int, default=20_000, help="labelled reviews the teacher learns from")
    parser.add_argument("--students", default="tfidf-lr,embed-head[encoder=multilingual-e5-small,C=10.0]")
    parser.add_argument("--unlabelled", type=int, default=2_000, help="reviews the teacher labels for the students")
    parser.add_argument("--min-confidence", type=float, default=0.0)
    parser.add_argument("--test-limit", type=int, default=1_000)
    parser.add_argument("--out", type=Path, default=Path("results/bench-distill"))
    args = parser.parse_args()
    splits = load_dataset(args.dataset)
    order = splits.train.sample(args.teacher_train + args.unlabelled, seed=0)
    teacher_data, unlabelled = order[: args.teacher_train], order[args.teacher_train :]
    test = splits.test.sample(args.test_limit, seed=2)
    metric = primary_metric(splits.train.task, splits.train.label_space)

    started = time.perf_counter()
    teacher = _method(args.teacher).fit(teacher_data)
    teacher_seconds = time.perf_counter() - started
    labelled = teacher_labels([teacher], unlabelled, min_confidence=args.min_confidence)
    rows = [_row("teacher", args.teacher, teacher, teacher_data, test, metric, teacher_seconds)]
    for spec in split_method_specs(args.students):
        for labels, reviews in (("gold", unlabelled), ("teacher", labelled.reviews)):
            started = time.perf_counter()
            student = _method(spec).fit(reviews)
            rows.append(_row(f"student on {labels} labels", spec, student, reviews, test, metric, time.perf_counter() - started))
    _report(rows, args, labelled, metric)


def _method(spec: str):
    name, params = parse_method_spec(spec)
    return make_method(name, **params)


def _row(role: str, spec: str, method, trained_on, test, metric: str, train_seconds: float) -> dict:
    metrics, _, seconds = score(method, test)
    return {"role": role, "method": spec, "n_train": len(trained_on), metric: metrics[metric],
            "macro_f1": metrics.get("macro_f1"), "train_seconds": round(train_seconds, 1),
            "reviews_per_second": round(len(test) / seconds, 1)}  # fmt: skip


def _report(rows: list[dict], args, labelled, metric: str) -> None:
    kept = len(labelled.reviews) / labelled.asked
    print(f"\n{args.dataset}: teacher {args.teacher} labelled {labelled.asked:,} reviews, kept {kept:.0%} "
          f"(min confidence {args.min_confidence}); test {args.test_limit:,} reviews")  # fmt: skip
    print(f"{'role':<26}{'method':<48}{'n train':>9}{metric:>10}{'macro-F1':>10}{'train s':>9}")
    for row in rows:
        f1 = "-" if row["macro_f1"] is None else f"{row['macro_f1']:.3f}"
        print(f"{row['role']:<26}{row['method']:<48}{row['n_train']:>9,}{row[metric]:>10.3f}{f1:>10}{row['train_seconds']:>9}")
    settings = {k: str(v) for k, v in vars(args).items()}
    record = {"settings": settings, "kept_share": kept, "dropped": dict(labelled.dropped)}
    write_run_files(args.out, "distill", args.dataset, record, rows)


if __name__ == "__main__":
    main()
