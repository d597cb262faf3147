"""Render `topicsent eval` JSON runs as one method x dataset markdown table.

The README's encoder table is produced by this script rather than copied by hand, so
every number in it can be traced to a run file (and its commit). Each row shows the
quality metrics of its task, train seconds, peak memory (MB, the process), reviews/s and the speed ratio against
`tfidf-lr` of the *same run* (absolute times on a shared machine are noisy; ratios
are not). Also writes the rows as CSV with ``--csv``.

    python benchmarks/results_table.py results/bench-encoders/*.json --csv table.csv

With ``--into page.md`` the table replaces the lines between ``<!-- results-table -->``
and ``<!-- /results-table -->`` of that page, so a benchmark page's prose stays and its
table is regenerated (``make bench-korean-absa``).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

#: Metrics shown for each task (a binary rating set has only accuracy / macro-F1).
TASK_METRICS = {
    "acsa": ("polarity_accuracy", "polarity_macro_f1", "detection_f1", "joint_f1"),
    "atsa": ("polarity_accuracy", "polarity_macro_f1"),
    "rating": ("accuracy", "macro_f1", "mae", "qwk"),
}
COLUMNS = ("dataset", "method", "commit", "metrics", "train_s", "peak_mb", "reviews_per_s", "speed_vs_tfidf_lr")


def _speed(reviews_per_second: float) -> str:
    """Whole reviews/s, but two significant digits below 10 (an LLM's 0.46 must not print as 0)."""
    return f"{reviews_per_second:,.0f}" if reviews_per_second >= 10 else f"{reviews_per_second:.2g}"


def table_rows(run: dict) -> list[dict]:
    """One row per result of a run, metrics formatted as `name value` pairs."""
    commit = run["run"].get("commit", "")[:7]
    rows = []
    for result in run["results"]:
        metrics = result["metrics"]
        shown = [f"{name} {metrics[name]:.3f}" for name in TASK_METRICS[result["task"]] if name in metrics]
        speed = (result.get("relative") or {}).get("speed_vs_tfidf_lr")
        rows.append({
            "dataset": result["dataset"], "method": result["method"], "commit": commit, "metrics": ", ".join(shown),
            "train_s": f"{result['train_seconds']:,.0f}", "peak_mb": f"{result.get('peak_rss_mb') or 0:,.0f}",
            "reviews_per_s": _speed(result["reviews_per_second"]),
            "speed_vs_tfidf_lr": "" if speed is None else f"{speed:.3g}",
        })  # fmt: skip
    return rows


def markdown(rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    """The rows as a markdown table of ``columns`` (method specs in backticks)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(f"`{row[c]}`" if c == "method" else row[c] for c in columns) + " |" for row in rows]
    return "\n".join(lines)


BEGIN, END = "<!-- results-table -->", "<!-- /results-table -->"


def replace_table(page: str, table: str) -> str:
    """``page`` with the text between the table markers replaced by ``table``."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"the page has no {BEGIN} ... {END} markers to put the table between")
    return f"{page[: start + len(BEGIN)]}\n{table}\n{page[end:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="eval-*.json files written by `topicsent eval --out`")
    parser.add_argument("--csv", type=Path, default=None, help="also write the rows as CSV here")
    parser.add_argument("--into", type=Path, default=None, help="put the table between the markers of this markdown page")
    args = parser.parse_args()
    rows = [row for path in sorted(args.runs) for row in table_rows(json.loads(path.read_text(encoding="utf-8")))]
    if not rows:
        raise SystemExit("no results in the given runs")
    rows.sort(key=lambda row: row["dataset"])  # stable: each dataset keeps its run order
    print(markdown(rows))
    if args.into:
        args.into.write_text(replace_table(args.into.read_text(encoding="utf-8"), markdown(rows)), encoding="utf-8")
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
