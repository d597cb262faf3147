"""Runs as DuckDB tables, so analysts query results with plain SQL.

Each run becomes one table (named after its folder) holding the flat results, and the
``runs`` table holds one row of metadata per run: method, parameters, model, input,
commit and times. Re-exporting a run replaces its rows, never duplicates them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from topicsent.errors import InvalidParameterError
from topicsent.runs._run import PARTS, read_manifest

_RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, table_name VARCHAR, method VARCHAR, task VARCHAR, params JSON,
    model_path VARCHAR, input_path VARCHAR, reviews BIGINT, statuses JSON,
    commit VARCHAR, topicsent_version VARCHAR, started TIMESTAMPTZ, finished TIMESTAMPTZ, run_dir VARCHAR
)
"""


def table_name(run_id: str) -> str:
    """A SQL identifier from a run id: ``nsmc run 2`` -> ``run_nsmc_run_2``."""
    return "run_" + re.sub(r"\W+", "_", run_id).strip("_").lower()


def export_run(run_dir: Path, database: Path) -> str:
    """Copy a finished run into ``database`` (created if missing); returns the table name."""
    try:
        import duckdb
    except ModuleNotFoundError:
        raise InvalidParameterError("storing runs in DuckDB needs duckdb: pip install 'topicsent[sql]'") from None
    manifest = read_manifest(run_dir)
    if manifest.get("status") != "finished":
        raise InvalidParameterError(f"{run_dir}: the run has not finished; resume it (--resume) before exporting")
    table = table_name(manifest["run_id"])
    with duckdb.connect(str(database)) as connection:
        connection.execute(_RUNS_TABLE)
        connection.execute(
            f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM read_parquet(?)',
            [str(Path(run_dir) / PARTS / "part-*.parquet")],
        )
        connection.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                manifest["run_id"], table, manifest["method"], manifest["task"], json.dumps(manifest["params"]),
                manifest["model"]["path"], manifest["input"]["path"], manifest["reviews"], json.dumps(manifest["statuses"]),
                manifest["commit"], manifest["topicsent_version"], manifest["started"], manifest["finished"],
                str(Path(run_dir).resolve()),
            ],
        )  # fmt: skip
    return table
