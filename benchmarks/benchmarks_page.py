"""Write docs/benchmarks.md from the benchmark runs committed under docs/benchmarks/.

Every table on the page is computed from a JSON run file kept in the repository and names
that file, so each number traces to its run (commit, parameters, training curve). The prose
around the tables carries no numbers of its own. `make docs` runs this script; ``--check``
exits 1 when the committed page is not what the runs give (a test runs it).

    python benchmarks/benchmarks_page.py            # rewrite docs/benchmarks.md
    python benchmarks/benchmarks_page.py --check    # is the committed page up to date?
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from results_table import markdown as eval_markdown
from results_table import table_rows  # benchmarks/ is on sys.path when this file runs as a script

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGE = DOCS / "benchmarks.md"
RUNS = DOCS / "benchmarks"

EVAL_COLUMNS = ("dataset", "method", "test reviews", "metrics", "train_s", "peak_mb", "reviews_per_s", "speed_vs_tfidf_lr", "run")


def _link(path: Path) -> str:
    return f"[{path.name}]({path.relative_to(DOCS).as_posix()})"


def _number(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _table(columns: tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def eval_table(paths: list[Path]) -> str:
    """`topicsent eval` runs, one row per method, each run's rows together (its baselines beside it)."""
    rows = []
    for path in paths:
        run = json.loads(path.read_text(encoding="utf-8"))
        for row, result in zip(table_rows(run), run["results"], strict=True):
            rows.append(row | {"test reviews": f"{result['n_test']:,}", "run": _link(path)})
    return eval_markdown(rows, EVAL_COLUMNS)


def active_learning_table(paths: list[Path]) -> str:
    """`benchmarks/active_learning.py` runs: labels needed to reach 95% of the full-pool accuracy,
    random order against the query strategy (the first single-seed run called it `uncertainty`)."""
    rows = []
    for path in paths:
        bench = json.loads(path.read_text(encoding="utf-8"))
        for run in bench["runs"]:
            needed = run["labels_to_target"]
            strategy = needed.get("strategy", needed.get("uncertainty"))
            rows.append([
                run["dataset"], run["method"], ", ".join(map(str, bench.get("seeds", [bench.get("seed")]))),
                str(bench.get("strategy", {}).get("aggregate", run.get("aggregate", "")) or ""),
                _number(run["full_pool_accuracy"]), f"{needed['random']:.0f}", f"{strategy:.0f}",
                f"**{run['label_saving']:.0%}**", bench["commit"][:7], _link(path),
            ])  # fmt: skip
    columns = ("dataset", "method", "seeds", "aggregate", "full-pool accuracy", "labels, random order",
               "labels, strategy", "fewer labels", "commit", "run")  # fmt: skip
    return _table(columns, rows)


def cascade_table(paths: list[Path]) -> str:
    """`benchmarks/cascade.py` runs: each stage alone beside the cascade, on the same test reviews."""
    rows = []
    for path in paths:
        bench = json.loads(path.read_text(encoding="utf-8"))
        for run in bench["runs"]:
            alone = " / ".join(_number(stage["accuracy"]) for stage in run["stages"])
            per_1000 = " / ".join(f"{stage['seconds_per_review'] * 1000:.1f}" for stage in run["stages"])
            cascade = run["cascade"]
            rows.append([
                run["dataset"], f"`{bench['stages']}`", f"{run['n_test']:,}", alone, f"**{_number(cascade['accuracy'])}**",
                f"{cascade['answered_by_stage'][-1]:.0%}", f"{per_1000} / {cascade['seconds_per_1000']:.1f}",
                bench["commit"][:7], _link(path),
            ])  # fmt: skip
    columns = ("dataset", "stages", "test reviews", "polarity accuracy, each stage alone", "cascade",
               "answered by the last stage", "s per 1,000 reviews (stages / cascade)", "commit", "run")  # fmt: skip
    return _table(columns, rows)


def outliers_table(paths: list[Path]) -> str:
    """`benchmarks/topic_outliers.py`: topic discovery's outliers under each assignment rule."""
    rows = []
    for path in paths:
        bench = json.loads(path.read_text(encoding="utf-8"))
        for result in bench["results"]:
            rows.append([
                result["dataset"], result["model"], str(result["n_topics"]), _number(result["npmi"]), _number(result["c_v"]),
                _number(result["outlier_share"]), _number(result["outlier_threshold"]),
                _number(result["mapped_detection_f1"]), _number(result["nmi"]), _number(result["ari"]),
                _number(result["purity"]), bench["commit"][:7], _link(path),
            ])  # fmt: skip
    columns = ("dataset", "outlier rule", "topics", "NPMI", "C_V", "outlier share", "threshold",
               "mapped detection F1", "NMI", "ARI", "purity", "commit", "run")  # fmt: skip
    return _table(columns, rows)


@dataclass(frozen=True)
class Section:
    title: str
    command: str  # the make target or script that writes such runs
    about: str  # what was run and how to read it: no numbers here, they come from the runs
    pattern: str  # glob under docs/benchmarks/
    render: Callable[[list[Path]], str]


SECTIONS = (
    Section(
        "Fine-tuned encoders against TF-IDF (accuracy)",
        "make bench-accuracy",
        "`finetune` on the assembled MPNet-base (`all-mpnet-base-v2`), one-pass (`design=attention`) and BERT-pair "
        "(`design=pair`), beside `majority` and `tfidf-lr` of the same run, on full test splits, one CPU core. "
        "How the runs were made, the validation curves and the published GPU results they compare with: "
        "[accuracy.md](benchmarks/accuracy.md).",
        "accuracy/eval-*.json",
        eval_table,
    ),
    Section(
        "Encoder methods by dataset",
        "make bench-encoders",
        "`setfit` and its learning curve, `finetune` (full and LoRA) on MiniLM, the rebuilt `multilingual-e5-small` "
        "for Korean (NSMC runs use seeded 2,000-review samples of each split: `--limit 2000`), and ratings by "
        "classification or regression on Women's clothing. Train seconds were often measured while another job "
        "shared the two cores: compare speed through `speed_vs_tfidf_lr`, which comes from the same run.",
        "encoders/eval-*.json",
        eval_table,
    ),
    Section(
        "Tuning a small LLM",
        "make bench-sft",
        "SmolLM2-135M-Instruct (packaged 4-bit GGUF) prompted zero-shot, prompted with retrieved examples and "
        "LoRA-tuned by `sft`, on the same seeded MAMS-ACSA test reviews with the gold aspects given. The "
        "validation curve of the tuning is in the run file and plotted in "
        "[sft-curve.png](benchmarks/sft-curve.png).",
        "sft-*.json",
        eval_table,
    ),
    Section(
        "Cascades",
        "make bench-cascade",
        "A cheap stage answers the reviews it is sure of and the last stage the rest; the stages train on 80% of "
        "the training reviews and the threshold is chosen on the other 20%, with the last stage allowed at most "
        "30% of reviews. Polarity accuracy on gold aspects; seconds measured in the same run with the embedding "
        "cache off. The curve of accuracy against the share sent on: "
        "[cascade-tfidf-embed-head.png](benchmarks/cascade-tfidf-embed-head.png).",
        "cascade-*.json",
        cascade_table,
    ),
    Section(
        "Korean aspect-level sentiment (M-ABSA)",
        "make bench-korean-absa",
        "Every Korean M-ABSA domain, entity-level categories (ACSA) and terms found in the text (ATSA), on the "
        "official test splits; `tfidf-lr` with character n-grams and with Kiwi morphemes. Per-file notes on "
        "unparseable lines are in the run files. The page with the reading of it: "
        "[m-absa.md](benchmarks/m-absa.md).",
        "m-absa/eval-*.json",
        eval_table,
    ),
    Section(
        "Active learning: labels needed by query order",
        "make bench-active",
        "Simulated annotator (the gold labels): the labels a method needs to reach 95% of its full-pool accuracy, "
        "taking reviews in random order or in the query strategy's order (random start, margin, mention-weighted "
        "category aggregate, diverse batches). Target: at least 30% fewer labels. Curves and the reading: "
        "[labelling.md](labelling.md).",
        "active-learning/*.json",
        active_learning_table,
    ),
    Section(
        "Topic discovery: units left in no topic",
        "make bench-outliers",
        "One clustering per dataset on seeded units; each rule then decides which outliers join their nearest "
        "topic. Keywords come from the clustered units, so coherence does not change with the rule; gold "
        "alignment is on the test sentences (NSMC and Women's clothing have no gold topics).",
        "topics/outliers.json",
        outliers_table,
    ),
)

HEADER = """# Benchmarks

<!-- Generated by `make docs` (benchmarks/benchmarks_page.py) from the run files under
docs/benchmarks/: edit the script or the runs, not this page. -->

Every table below is computed from a run file kept in the repository, named in its `run`
column: the JSON holds the commit, every parameter, the tuning trials and the training curves.
Each `topicsent eval` run has `majority` and `tfidf-lr` beside the method it measures, so a
comparison never crosses runs. The machine: 2 CPU cores shared with other work, no GPU;
read speed through `speed_vs_tfidf_lr` (a ratio within one run) rather than absolute seconds.

Older measurements whose run files were not kept (the first baseline tables, LLM prompting
with Qwen, calibration, distillation, LDA, the 712k-review scale run) are in the
[measurement notes](benchmarks/notes.md), as they were recorded.
"""


def render() -> str:
    parts = [HEADER]
    for section in SECTIONS:
        paths = sorted(RUNS.glob(section.pattern))
        if not paths:
            raise SystemExit(f"no run files match docs/benchmarks/{section.pattern} (section {section.title!r})")
        parts.append(f"## {section.title}\n\n`{section.command}`. {section.about}\n\n{section.render(paths)}\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/benchmarks.md differs from the runs")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
