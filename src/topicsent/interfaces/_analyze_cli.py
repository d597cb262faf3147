"""``topicsent analyze``: a trained model over an input of any size, resumable, into a
run folder (Parquet parts) and optionally a DuckDB file; ``topicsent report`` turns
runs and evaluations into one HTML file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from topicsent.errors import InvalidParameterError
from topicsent.interfaces._options import AbstainBelow, IdCol, RatingCol, TextCol, columns
from topicsent.interfaces._tables import Col, FormatOption, ResultTable, TableFormat, count, print_line, printer, text


class Engine(StrEnum):
    local = "local"
    ray = "ray"


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
    abstain_below: AbstainBelow = None,
    engine: Annotated[
        Engine, typer.Option(help="local: chunks in this process, resumable. ray: Ray Data map_batches, here or on a cluster.")
    ] = Engine.local,
    ray_address: Annotated[
        str | None, typer.Option(help="With --engine ray: 'auto' or ray://HOST:10001 for a cluster; default starts Ray here.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="With --engine ray: parallel model copies (default: one per CPU).")] = None,
    format: FormatOption = TableFormat.table,
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

      topicsent analyze --model models/nsmc nsmc.tsv.gz --id-col review_id -o runs/ray --engine ray

    On a Ray cluster (the model folder and input at the same path on every node):
    `--engine ray --ray-address auto` from a cluster node, or `--ray-address ray://HEAD:10001`.
    """
    from topicsent.runs import RunRequest, analyze_to_run, analyze_with_ray, export_run

    overrides = {"max_cost": max_cost} if max_cost is not None else {}
    cols = columns(text_col, id_col, rating_col, None)
    request = RunRequest(model_dir, str(input_file), out, cols, chunk_size, overrides, abstain_below)
    if engine is Engine.ray:
        if resume:
            raise InvalidParameterError("--resume is for the local engine; a Ray run starts afresh in a new --out")
        manifest = analyze_with_ray(request, address=ray_address, workers=workers)
    else:
        manifest = analyze_to_run(request, resume=resume)
    with printer(format) as shown:
        shown.line(
            f"Run [bold]{manifest['run_id']}[/bold]: {manifest['method']} ({manifest['task']}) analysed "
            f"{manifest['reviews']:,} reviews; results in {out / 'parts'} (one Parquet file per chunk)"
        )
        shown.table(_status_table(manifest["statuses"]))
        if db is not None:
            shown.line(f"SQL: table [bold]{export_run(out, db)}[/bold] in {db} (metadata in table runs)")


def _status_table(statuses: dict[str, int]) -> ResultTable:
    rows = [{"status": status, "reviews": n} for status, n in sorted(statuses.items(), key=lambda item: -item[1])]
    return ResultTable(None, [Col("status", show=text, wrap=True), Col("reviews", show=count)], rows)


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

    print_line(f"Report: [bold]{build_report(sources, out)}[/bold]")
