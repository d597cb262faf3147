"""Runs as DuckDB tables, so analysts query results with plain SQL.

Each run becomes one table (named after its folder) holding the flat results, and the
``runs`` table holds one row of metadata per run: method, parameters, model, input,
commit and times. Re-exporting a run replaces its rows, never duplicates them; a table
name that another run (or anything else) holds is refused, so ``runs`` is always true.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from topicsent._extras import import_extra
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
    duckdb = import_extra("duckdb", extra="sql", purpose="storing runs in DuckDB")
    manifest = read_manifest(run_dir)
    if manifest.get("status") != "finished":
        raise InvalidParameterError(f"{run_dir}: the run has not finished; resume it (--resume) before exporting")
    table = table_name(manifest["run_id"])
    with duckdb.connect(str(database)) as connection:
        connection.execute(_RUNS_TABLE)
        connection.execute("BEGIN TRANSACTION")  # the table and its row in `runs` change together or not at all
        _check_table_is_ours(connection, database, table, manifest["run_id"])
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
        connection.execute("COMMIT")
    return table


def _check_table_is_ours(connection, database: Path, table: str, run_id: str) -> None:
    """Refuse to replace a table that holds another run (folders ``nsmc-a`` and ``nsmc_a``
    both map to ``run_nsmc_a``) or that topicsent did not write: ``runs`` stays true."""
    owner = connection.execute("SELECT run_id, run_dir FROM runs WHERE table_name = ?", [table]).fetchone()
    if owner is not None and owner[0] != run_id:
        raise InvalidParameterError(
            f"{database}: table {table} already holds run {owner[0]!r} (from {owner[1]}); "
            "rename this run's folder or use another --db"
        )
    exists = connection.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()[0]
    if owner is None and exists:
        raise InvalidParameterError(f"{database}: a table {table} exists that is not a topicsent run; use another --db")
