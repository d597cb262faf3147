"""``analyze --engine ray``: the same predictor as Ray Data ``map_batches`` over the input.

Locally Ray uses this machine's cores; given a cluster address (``auto`` or
``ray://host:10001``) the same code runs on the cluster, where the model folder and
the input must be readable at the same path on every node (a shared or object-store
path). The output is the run folder of the local engine: ``run.json`` plus
``parts/part-NNNNNN.parquet`` with the same columns, so ``report``, ``--db`` and SQL
read both alike. Ray processes blocks out of order, so an id column is required.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from topicsent._extras import require
from topicsent.data import FORMATS, ColumnMap, count_rows, review_from_record
from topicsent.errors import InvalidParameterError, TopicsentError
from topicsent.runs._run import (
    PARTS,
    RunRequest,
    _counts,
    _identity,
    _now,
    _start_or_resume,
    _write_manifest,
    load_model,
    part_frame,
    run_folder,
)

#: Ray counts CPUs logically: model copies that claimed every CPU would leave none for
#: the read and write tasks and the pipeline would wait forever. Models get this share
#: of the CPUs; reading and writing (light, mostly I/O) claim a fraction each.
MODEL_SHARE = 0.8
IO_CPUS = 0.1


class RunPredictor:
    """A Ray actor: loads the model once, then analyses pandas batches into part tables."""

    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self.model = load_model(request)

    def __call__(self, batch):  # pandas.DataFrame -> pandas.DataFrame
        source = self.request.input_path
        records = batch.to_dict("records")
        reviews = [review_from_record(source, 0, record, self.request.columns) for record in records]
        return part_frame(reviews, self.model.predict(reviews, abstain_below=self.request.abstain_below))


def analyze_with_ray(request: RunRequest, *, address: str | None = None, workers: int | None = None) -> dict[str, Any]:
    """Analyse the input on Ray into a new run folder; returns the manifest."""
    ray = require("ray", needed_by="--engine ray")

    if request.columns.id is None:
        raise InvalidParameterError("--engine ray needs --id-col: workers finish blocks out of order, so row numbers are no ids")
    model = load_model(request)
    with run_folder(request.out):
        manifest = _start_or_resume(request.out, _identity(request, model), resume=False)
        manifest |= {"method": model.name, "params": model.get_params(), "task": model.task_.value, "engine": "ray"}
        _write_manifest(request.out, manifest)
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        cpus = ray.cluster_resources().get("CPU", 1.0)
        workers = workers or max(int(cpus), 1)
        staging = request.out / "ray-output"
        try:
            _read(request).map_batches(
                RunPredictor,
                fn_constructor_args=(request,),
                batch_size=request.chunk_size,
                batch_format="pandas",
                concurrency=workers,
                num_cpus=MODEL_SHARE * cpus / workers,  # the rest keeps reading and writing schedulable
            ).write_parquet(str(staging), ray_remote_args={"num_cpus": IO_CPUS})
        except ray.exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, TopicsentError):
                raise cause from None
            raise
        _adopt_parts(staging, request.out / PARTS)
        manifest |= _counts(request.out, expected=count_rows(request.input_path)) | {"status": "finished", "finished": _now()}
        _write_manifest(request.out, manifest)
    return manifest


def _read(request: RunRequest):
    """The input as a Ray dataset with the text, id and rating columns read as strings,
    as the local reader does (an id like 007 stays 007)."""
    import pyarrow as pa
    import pyarrow.csv as csv
    import ray

    path = request.input_path
    compressed = path.lower().endswith(".gz")
    kind = FORMATS.get(Path(path[:-3] if compressed else path).suffix.lower())
    stream_args = {"compression": "gzip"} if compressed else {}
    if kind == "parquet":
        return ray.data.read_parquet(path, num_cpus=IO_CPUS)
    if kind == "jsonl":
        return ray.data.read_json(path, lines=True, arrow_open_stream_args=stream_args, num_cpus=IO_CPUS)
    if kind not in ("csv", "tsv"):
        raise InvalidParameterError(f"{path}: --engine ray reads CSV, TSV, JSONL and Parquet files, not standard input")
    return ray.data.read_csv(
        path,
        parse_options=(
            csv.ParseOptions(delimiter="\t", quote_char=False)  # TSV: no quoting, as the local reader
            if kind == "tsv"
            else csv.ParseOptions(newlines_in_values=True)
        ),
        convert_options=csv.ConvertOptions(column_types=dict.fromkeys(_used_columns(request.columns), pa.string())),
        arrow_open_stream_args=stream_args,
        num_cpus=IO_CPUS,
    )


def _used_columns(columns: ColumnMap) -> list[str]:
    return [name for name in (columns.text, columns.id, columns.rating, columns.aspects, columns.date) if name]


def _adopt_parts(staging: Path, parts: Path) -> None:
    """Ray's output files, renamed to the run's part names."""
    parts.mkdir(parents=True, exist_ok=True)
    for index, written in enumerate(sorted(staging.glob("*.parquet"))):
        os.replace(written, parts / f"part-{index:06d}.parquet")
    for leftover in staging.iterdir():
        leftover.unlink()
    staging.rmdir()
