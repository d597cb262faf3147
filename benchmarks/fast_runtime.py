"""Fast-inference benchmark: one fitted finetune model predicting through torch, ONNX Runtime fp32 and int8.

The model is trained once (or loaded from ``--model`` when that folder holds one; else
the trained model is saved there) and its runtime switched with ``set_params``, so the
rows differ only in what runs the same weights. Each row is the harness's ``score`` on
the same test split: the full analysis pass, timed, which is what ``topicsent eval``
reports as reviews/s. Export and quantisation happen once, in a warm-up before the
timing. ``torch`` uses the model's own precision (bf16 autocast where the CPU has it);
``torch fp32`` is the same weights in fp32, what the ONNX graph computes. Writes JSON
and CSV named by time and commit.

    python benchmarks/fast_runtime.py --dataset mams-acsa --model results/bench-fast/model \\
        --spec "finetune[design=attention,train_layers=2,epochs=2]" --train-limit 2000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _run_files import write_run_files

from topicsent.data import load_dataset
from topicsent.eval import primary_metric, score
from topicsent.methods import BaseMethod, make_method, parse_method_spec

#: (row name, parameters set on the fitted model)
RUNTIMES = [
    ("torch", {"runtime": "torch", "quantize": False}),
    ("torch fp32", {"runtime": "torch", "quantize": False, "precision": "fp32"}),
    ("onnx fp32", {"runtime": "onnx", "quantize": False}),
    ("onnx int8", {"runtime": "onnx", "quantize": True}),
]
WARM_UP = 16  # reviews predicted before timing: export, quantisation, session start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mams-acsa")
    parser.add_argument("--spec", default="finetune[design=attention]", help="finetune spec trained when --model is empty")
    parser.add_argument("--model", type=Path, required=True, help="a saved finetune model, or where to save the one trained")
    parser.add_argument("--train-limit", type=int, default=None, help="seeded sample of the train split")
    parser.add_argument("--test-limit", type=int, default=None, help="seeded sample of the test split")
    parser.add_argument("--out", type=Path, default=Path("results/bench-fast"))
    args = parser.parse_args()
    splits = load_dataset(args.dataset)
    train = splits.train.sample(args.train_limit, seed=0) if args.train_limit else splits.train
    test = splits.test.sample(args.test_limit, seed=2) if args.test_limit else splits.test
    metric = primary_metric(splits.train.task, splits.train.label_space)

    train_seconds = None
    if (args.model / "topicsent.json").is_file():
        model = BaseMethod.load(args.model)
    else:
        name, params = parse_method_spec(args.spec)
        started = time.perf_counter()
        model = make_method(name, **params).fit(train)
        train_seconds = round(time.perf_counter() - started, 1)
        model.save(args.model)
    own_precision = model.precision
    rows = []
    for runtime, params in RUNTIMES:
        model.set_params(**{"precision": own_precision} | params)
        model.predict(test.text_only()[:WARM_UP])
        metrics, _, seconds = score(model, test)
        f1 = metrics.get("polarity_macro_f1", metrics.get("macro_f1"))
        rows.append({"runtime": runtime, metric: metrics[metric], "macro_f1": f1, "detection_f1": metrics.get("detection_f1"),
                     "reviews_per_second": round(len(test) / seconds, 1)})  # fmt: skip
    _report(rows, args, model, metric, len(train), len(test), train_seconds)


def _report(rows, args, model, metric: str, n_train: int, n_test: int, train_seconds) -> None:
    print(f"\n{args.dataset}: finetune on {model.base}, {model.design} design, "
          f"{n_train:,} train / {n_test:,} test reviews, model {args.model}")  # fmt: skip
    print(f"{'runtime':<14}{metric:>20}{'macro-F1':>10}{'detection F1':>14}{'reviews/s':>11}")
    for row in rows:
        cells = [f"{row[k]:.3f}" if row[k] is not None else "-" for k in (metric, "macro_f1", "detection_f1")]
        print(f"{row['runtime']:<14}{cells[0]:>20}{cells[1]:>10}{cells[2]:>14}{row['reviews_per_second']:>11}")
    record = {"settings": {k: str(v) for k, v in vars(args).items()}, "params": model.get_params(),
              "n_train": n_train, "n_test": n_test, "train_seconds": train_seconds}  # fmt: skip
    write_run_files(args.out, "fast", args.dataset, record, rows)


if __name__ == "__main__":
    main()
