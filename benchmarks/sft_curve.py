"""Plot the `sft` validation curve of the newest `topicsent eval` run in a folder, beside
the test scores of every method of that run (base model prompted, baselines).

The curve is accuracy of real generated answers on held-out training reviews at each
curve point (``training`` in the eval JSON); the horizontal lines are the test-sample
scores of the other methods, so "how many steps until SFT beats prompting" reads off it.
Writes ``sft-curve.svg``/``.png`` and ``sft-curve.csv`` next to the run and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def newest_run(folder: Path) -> tuple[Path, dict]:
    runs = sorted(folder.glob("eval-*.json"))
    if not runs:
        raise SystemExit(f"no eval-*.json in {folder}: run `make bench-sft` first")
    return runs[-1], json.loads(runs[-1].read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="output folder of `topicsent eval` (newest run is used)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the plot and CSV (default: the folder)")
    args = parser.parse_args()
    path, run = newest_run(args.folder)
    out = args.out or args.folder
    tuned = [r for r in run["results"] if r["method"].startswith("sft") and r.get("training")]
    if not tuned:
        raise SystemExit(f"{path} has no sft result with a training curve")
    others = [r for r in run["results"] if not r["method"].startswith("sft")]
    _print(path, tuned, others)
    _write_csv(tuned, out / "sft-curve.csv")
    _plot(tuned, others, out / "sft-curve")


def _print(path: Path, tuned: list[dict], others: list[dict]) -> None:
    print(f"run {path.name}")
    for result in tuned:
        print(f"\n{result['method']} ({result['dataset']}): {result['train_seconds']:.0f} s training, test {result['score']:.3f}")
        print(f"{'step':>5} {'seconds':>8} {'train loss':>10} {'val loss':>9} {'val acc':>8} {'parsed':>7}")
        for p in result["training"]["curve"]:
            train_loss = "-" if p["train_loss"] is None else f"{p['train_loss']:.4f}"
            print(
                f"{p['step']:>5} {p['seconds']:>8.0f} {train_loss:>10} {p['validation_loss']:>9.4f} "
                f"{p['validation_accuracy']:>8.3f} {p['parsed']:>7.2f}"
            )
    print("\ntest scores of the same run:")
    for result in [*others, *tuned]:
        print(f"  {result['method']:<70} {result['score']:.3f}")


def _write_csv(tuned: list[dict], path: Path) -> None:
    fields = ["method", "step", "seconds", "train_loss", "validation_loss", "validation_accuracy", "parsed"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for result in tuned:
            for point in result["training"]["curve"]:
                writer.writerow({"method": result["method"], **point})


def _plot(tuned: list[dict], others: list[dict], stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for result in tuned:
        curve = result["training"]["curve"]
        steps, accuracy = [p["step"] for p in curve], [p["validation_accuracy"] for p in curve]
        axis.plot(steps, accuracy, marker="o", label=f"{result['method']} (validation)")
    for result, style in zip(others, ["-", "--", ":", "-."] * 4, strict=False):
        axis.axhline(result["score"], linestyle=style, color="grey", linewidth=1)
        axis.annotate(result["method"][:48], (0, result["score"]), fontsize=7, color="dimgrey", va="bottom")
    axis.set_xlabel("LoRA steps")
    axis.set_ylabel("polarity accuracy (gold aspects)")
    axis.set_title(f"{tuned[0]['dataset']}: SFT curve; lines = test scores of the same run")
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(stem.with_suffix(".svg"))
    figure.savefig(stem.with_suffix(".png"), dpi=110)
    print(f"\nplot: {stem.with_suffix('.png')}")


if __name__ == "__main__":
    main()
