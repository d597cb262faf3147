"""Resumable analysis runs (Parquet parts + manifest) and their DuckDB export."""

from topicsent.runs._duckdb import export_run, table_name
from topicsent.runs._ray import analyze_with_ray
from topicsent.runs._run import MANIFEST, RunRequest, analyze_to_run, part_files, read_manifest

__all__ = [
    "MANIFEST", "RunRequest", "analyze_to_run", "analyze_with_ray", "export_run", "part_files", "read_manifest", "table_name",
]  # fmt: skip
