"""``topicsent analyze``: a trained model over an input of any size, resumable, into a
run folder (Parquet parts) and optionally a DuckDB file; ``topicsent report`` turns
runs and evaluations into one HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from topicsent.interfaces._options import IdCol, RatingCol, TextCol, columns, console

ChunkSize = Annotated[
    int, typer.Option(help="Reviews per chunk; each finished chunk is saved, so an interrupted run loses at most one.")
]


def analyze(
    model_dir: Annotated[Path, typer.Option("--model", help="A folder written by `topicsent train`.")],
    input_file: Annotated[
        Path, typer.Argument(help="Reviews: CSV, TSV, JSONL or Parquet (.gz text ok); '-' reads JSONL from stdin.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: run.json + parts/part-NNNNNN.parquet.")],
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out, skipping its finished chunks.")] = False,
    chunk_size: ChunkSize = 5_000,
    db: Annotated[
        Path | None, typer.Option(help="Also store the results in this DuckDB file (table run_<folder name> + table runs).")
    ] = None,
    text_col: TextCol = "text",
    id_col: IdCol = None,
    rating_col: RatingCol = None,
    max_cost: Annotated[float | None, typer.Option(help="USD budget of an `llm` model's calls.")] = None,
) -> None:
    """Analyse a file of any size with a trained model, chunk by chunk, resumably.

    Reads the input lazily (files larger than memory are fine), saves each chunk's
    results as it finishes and, if the run is interrupted (Ctrl-C, crash, kill),
    `--resume` continues it: finished chunks are not redone and no review is written
    twice. The output has exactly one result per input review (rows that cannot be
    analysed are kept with status 'error' or 'unparsed').

    Examples:

      topicsent analyze --model models/nsmc reviews.csv -o runs/nsmc

      topicsent analyze --model models/nsmc reviews.csv -o runs/nsmc --resume --db results.duckdb

      duckdb results.duckdb "SELECT aspect, aspect_polarity, count(*) FROM run_nsmc GROUP BY ALL"
    """
    from topicsent.runs import RunRequest, analyze_to_run, export_run

    request = RunRequest(model_dir, str(input_file), out, columns(text_col, id_col, rating_col, None), chunk_size)
    manifest = analyze_to_run(request, resume=resume, prepare=_budget(max_cost))
    console.print(
        f"Run [bold]{manifest['run_id']}[/bold]: {manifest['method']} ({manifest['task']}) analysed "
        f"{manifest['reviews']:,} reviews; results in {out / 'parts'} (one Parquet file per chunk)"
    )
    console.print(_status_table(manifest["statuses"]))
    if db is not None:
        console.print(f"SQL: table [bold]{export_run(out, db)}[/bold] in {db} (metadata in table runs)")


def _budget(max_cost: float | None):
    if max_cost is None:
        return None
    return lambda model: model.set_params(max_cost=max_cost)


def _status_table(statuses: dict[str, int]) -> Table:
    table = Table()
    table.add_column("status")
    table.add_column("reviews", justify="right")
    for status, count in sorted(statuses.items(), key=lambda item: -item[1]):
        table.add_row(status, f"{count:,}")
    return table


def report(
    sources: Annotated[list[Path], typer.Argument(help="Run folders (from `analyze`) and/or eval .json files (from `eval`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write one self-contained HTML report (opens offline) of runs and evaluations.

    For a run: mention share and sentiment per aspect, predicted vs the reviewers' own
    rating distribution, key drivers of the rating (when the run has aspects and
    --rating-col ratings), and example reviews with the evidence highlighted. For an
    evaluation: the method comparison per dataset and a quality vs cost plot.

    Examples:

      topicsent report runs/nsmc -o nsmc.html

      topicsent report runs/clothing results/eval-20261126T0312-abc.json -o report.html
    """
    from topicsent.report import build_report

    console.print(f"Report: [bold]{build_report(sources, out)}[/bold]")
