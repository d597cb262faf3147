"""Where a benchmark script writes its run: one JSON (the record, with the commit) and one
CSV (a row per measured row), named ``PREFIX-STAMP-COMMIT``, shared by the scripts so
every run file carries the commit the same way."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from topicsent.eval import git_commit


def write_run_files(out: Path, prefix: str, dataset: str, record: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    """Write ``{"commit": ..., **record, "rows": rows}`` as JSON and ``rows`` (with commit
    and dataset columns) as CSV under ``out``; returns the shared stem."""
    commit, stamp = git_commit(), datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{prefix}-{stamp}-{commit}"
    stem.with_suffix(".json").write_text(json.dumps({"commit": commit, **record, "rows": rows}, indent=2, ensure_ascii=False))
    with stem.with_suffix(".csv").open("w", newline="") as table:
        writer = csv.DictWriter(table, fieldnames=["commit", "dataset", *rows[0]])
        writer.writeheader()
        writer.writerows({"commit": commit, "dataset": dataset, **row} for row in rows)
    print(f"Results: {stem}.json and .csv")
    return stem
