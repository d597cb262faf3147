"""Outliers of topic discovery before and after the automatic assignment, in one run.

HDBSCAN left 30-50% of reviews in no topic. `topicsent topics` now lets an outlier
join its nearest topic when it is at least as similar to that topic's centre as 95%
of the clustered units are to theirs. For each dataset, clustering is fitted once on a
seeded sample and scored under every outlier rule:

- ``outliers kept``: before (clustering's outliers stay out);
- the default (automatic threshold), a 10% target share, every outlier assigned;

with the existing measures: outlier share, coherence (NPMI, C_V) and diversity of the
keywords, and, where gold categories exist (MAMS, SemEval-14), gold alignment
(mapped detection F1; NMI, ARI and purity on single-category sentences). The check:
the default's gold alignment may not fall more than a point below ``outliers kept``.

About 3,000 units per dataset (MAMS and SemEval: training and test sentences
together), so the run takes a few minutes on 2 cores:

    python benchmarks/topic_outliers.py --out docs/benchmarks/topics
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from topicsent.data import load_dataset
from topicsent.eval import CLUSTERING, OUTLIER_RULES, evaluate_topic_models, git_commit
from topicsent.interfaces import TableFormat, printer, topic_table

DATASETS = "nsmc,womens-clothing,mams-acsa,semeval14-acsa"
RULES = OUTLIER_RULES | {" (target share 10%)": {"share": 0.10}}
BEFORE, AFTER = CLUSTERING + " (outliers kept)", CLUSTERING
ALIGNMENT = ("mapped_detection_f1", "nmi", "ari", "purity")
#: How far (absolute) the default may fall below `outliers kept` on any gold-alignment measure
TOLERANCE = 0.01


def samples(dataset: str, units: int) -> tuple[int, int]:
    """(train, test) sample sizes adding up to about ``units``: the ACSA sets score on a third of them."""
    splits = load_dataset(dataset)
    if splits.train.label_space.categories is None:
        return units, 1  # test reviews are not used without categories
    test = min(len(splits.test), units // 3)
    return units - test, test


def checks(results: list[dict]) -> list[dict]:
    """Per dataset and gold-alignment measure: before, after, change, and whether it stayed within the tolerance."""
    rows = []
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        by_model = {r["model"]: r for r in results if r["dataset"] == dataset}
        before, after = by_model[BEFORE], by_model[AFTER]
        for measure in ALIGNMENT:
            if before[measure] is not None:
                change = after[measure] - before[measure]
                rows.append({"dataset": dataset, "measure": measure, "before": before[measure], "after": after[measure],
                             "change": change, "within_tolerance": change >= -TOLERANCE})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=DATASETS)
    parser.add_argument("--units", type=int, default=3000, help="units per dataset (train + test sample)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/topics"))
    parser.add_argument("--format", type=TableFormat, default=TableFormat.table, choices=list(TableFormat))
    args = parser.parse_args()
    began = time.perf_counter()
    run = {"commit": git_commit(), "started": datetime.now(UTC).isoformat(timespec="seconds"), "seed": args.seed,
           "units": args.units, "rules": {name.strip(" ()") or "default (auto)": rule for name, rule in RULES.items()},
           "results": []}  # fmt: skip
    with printer(args.format) as shown:
        for dataset in args.dataset.split(","):
            fit, test = samples(dataset, args.units)
            results = evaluate_topic_models(
                dataset, seed=args.seed, fit_sample=fit, test_sample=test, lda=False, outlier_rules=RULES
            )
            run["results"] += [asdict(r) for r in results]
            shown.table(topic_table(run["results"][-len(results) :], title=f"{dataset}: outliers before and after"))
        run["alignment_checks"] = checks(run["results"])
        run["seconds"] = time.perf_counter() - began
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "outliers.json"
        path.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        failed = [c for c in run["alignment_checks"] if not c["within_tolerance"]]
        shown.line(f"Gold alignment within {TOLERANCE:.2f} of `outliers kept`: {'no: ' + str(failed) if failed else 'yes'}")
        shown.line(f"{run['seconds']:.0f} s; saved {path}")


if __name__ == "__main__":
    main()
