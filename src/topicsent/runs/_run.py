"""Resumable analysis runs over inputs of any size.

A run is a folder: ``run.json`` (what ran on what: method, parameters, model, input
fingerprint, commit, times, counts) and ``parts/part-NNNNNN.parquet``, one flat result
table per input chunk. Each part is written to a temporary file and renamed into
place, so it is either complete or absent: a run killed at any moment resumes from
the first missing part, finished rows are never redone and never written twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from topicsent import __version__
from topicsent._progress import progress_bar
from topicsent._provenance import file_sha256, git_commit
from topicsent.data import ColumnMap, Review, count_rows, review_batches
from topicsent.errors import InputDataError, InvalidParameterError, TopicsentError
from topicsent.methods import BaseMethod
from topicsent.schema import ReviewAnalysis, to_dataframe

MANIFEST = "run.json"
PARTS = "parts"


@dataclass(frozen=True)
class RunRequest:
    """What to analyse and how; a resumed run must ask for exactly the same."""

    model_dir: Path
    input_path: str
    out: Path
    columns: ColumnMap = field(default_factory=ColumnMap)
    chunk_size: int = 5_000
    model_params: dict[str, Any] = field(default_factory=dict)  # e.g. an LLM's max_cost
    abstain_below: float | None = None  # reviews less confident than this come back 'abstained'

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise InvalidParameterError(f"chunk size must be at least 1, got {self.chunk_size}")


def load_model(request: RunRequest) -> BaseMethod:
    """The saved model with the run's parameter overrides applied."""
    model = BaseMethod.load(request.model_dir)
    return model.set_params(**request.model_params) if request.model_params else model


def analyze_to_run(request: RunRequest, *, resume: bool = False) -> dict[str, Any]:
    """Analyse every review of the input into the run folder and return its manifest.

    ``resume`` continues an interrupted run in ``request.out`` (it must have been
    started with the same model, input, columns and chunk size); without it an
    existing run is an error, so nothing is overwritten by accident.
    """
    manifest = _start_or_resume(request.out, _identity(request), resume)
    model = load_model(request)
    manifest |= {"method": model.name, "params": model.get_params(), "task": model.task_.value}
    _write_manifest(request.out, manifest)
    parts = request.out / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    seen = 0
    with progress_bar("analysing reviews", count_rows(request.input_path)) as advance:
        for index, reviews in enumerate(_chunks(request)):
            part = parts / f"part-{index:06d}.parquet"
            if not part.exists():
                _write_part(part, reviews, model.predict(reviews, abstain_below=request.abstain_below))
            seen += len(reviews)
            advance(len(reviews))
    manifest |= _counts(request.out, expected=seen) | {"status": "finished", "finished": _now()}
    _write_manifest(request.out, manifest)
    return manifest


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise InputDataError(f"{run_dir}: not a topicsent run folder (no {MANIFEST})")
    return json.loads(path.read_text(encoding="utf-8"))


def part_files(run_dir: Path) -> list[Path]:
    """The finished parts of a run, in input order."""
    return sorted((Path(run_dir) / PARTS).glob("part-*.parquet"))


def _identity(request: RunRequest) -> dict[str, Any]:
    """What must not change between an interrupted run and its resumption."""
    if request.input_path == "-":
        source = {"path": "-"}
    else:
        path = Path(request.input_path)
        if not path.is_file():
            raise InputDataError(f"{request.input_path}: file not found")
        source = {"path": str(path.resolve()), "bytes": path.stat().st_size, "sha256": file_sha256(path)}
    model_dir = Path(request.model_dir)
    return {
        "input": source,
        "model": {"path": str(model_dir.resolve()), "sha256": file_sha256(model_dir / "topicsent.json")},
        "columns": asdict(request.columns),
        "chunk_size": request.chunk_size,
        "abstain_below": request.abstain_below,  # absent from older runs: read as None, as it was
    }


def _start_or_resume(out: Path, identity: dict[str, Any], resume: bool) -> dict[str, Any]:
    if (out / MANIFEST).is_file():
        if not resume:
            raise InvalidParameterError(f"{out} holds a run already; add --resume to continue it, or choose another --out")
        if identity["input"]["path"] == "-":
            raise InvalidParameterError("a run reading standard input cannot be resumed; save the input to a file")
        manifest = read_manifest(out)
        changed = [key for key, value in identity.items() if manifest.get(key) != value]
        if changed:
            raise InvalidParameterError(
                f"{out}: cannot resume, the {' and '.join(changed)} differ from the interrupted run; "
                "resume with the same options or choose another --out"
            )
        return manifest | {"status": "running", "resumed": [*manifest.get("resumed", []), _now()]}
    if out.exists() and any(out.iterdir()):
        raise InvalidParameterError(f"{out} exists and is not a topicsent run folder; choose an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)
    return {
        "run_id": out.resolve().name,
        "status": "running",
        "started": _now(),
        "commit": git_commit(),
        "topicsent_version": __version__,
        **identity,
    }


def _chunks(request: RunRequest) -> Iterator[list[Review]]:
    yield from review_batches(request.input_path, request.columns, batch_size=request.chunk_size, require_text=False)


def part_frame(reviews: list[Review], analyses: list[ReviewAnalysis]):  # -> pandas.DataFrame
    """A part's table: the flat results plus the review text and the input's own rating
    (if a rating column was given: reports compare it and find what drives it)."""
    frame = to_dataframe(analyses)
    by_id = {review.id: review for review in reviews}
    frame.insert(1, "text", frame["review_id"].map(lambda i: by_id[i].text).astype("string"))
    frame.insert(2, "input_rating", frame["review_id"].map(lambda i: by_id[i].rating).astype("Int64"))
    return frame


def _write_part(part: Path, reviews: list[Review], analyses: list[ReviewAnalysis]) -> None:
    """Write a part, renamed into place only once complete."""
    temporary = part.with_suffix(".tmp")
    part_frame(reviews, analyses).to_parquet(temporary, index=False)
    os.replace(temporary, part)


def _counts(run_dir: Path, *, expected: int) -> dict[str, Any]:
    """Reviews per status over all parts, after checking that every input review has
    exactly one result (a part left from a different chunking would break that)."""
    import pandas as pd

    frames = [pd.read_parquet(part, columns=["review_id", "status"]) for part in part_files(run_dir)]
    reviews = pd.concat(frames).drop_duplicates("review_id") if frames else pd.DataFrame(columns=["review_id", "status"])
    distinct = len(reviews)
    in_parts = sum(frame["review_id"].nunique() for frame in frames)
    if not distinct == in_parts == expected:
        raise TopicsentError(
            f"{run_dir}: the parts hold {in_parts:,} results for {distinct:,} distinct reviews, "
            f"but the input has {expected:,}; start a new run"
        )
    return {"reviews": distinct, "statuses": {str(k): int(v) for k, v in reviews["status"].value_counts().items()}}


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    temporary = out / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, out / MANIFEST)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
