"""Resumable analysis runs over inputs of any size.

A run is a folder: ``run.json`` (what ran on what: method, parameters, model, input
fingerprint, commit, times, counts) and ``parts/part-NNNNNN.parquet``, one flat result
table per input chunk. Each part is written to a temporary file and renamed into
place, so it is either complete or absent: a run killed at any moment resumes from
the first missing part, finished rows are never redone and never written twice.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from topicsent._folders import LOCK_FILE, folder_lock
from topicsent._progress import progress_bar
from topicsent._provenance import file_sha256, git_commit, path_sha256
from topicsent._version import __version__
from topicsent.data import ColumnMap, ReadLimits, Review, count_rows, review_batches
from topicsent.errors import InputDataError, InvalidParameterError, TopicsentError
from topicsent.methods import BaseMethod
from topicsent.schema import ReviewAnalysis, to_dataframe

MANIFEST = "run.json"
#: What a disk or folder answers when it will not take a write (full, quota, read-only, no permission).
_DISK_REFUSED = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
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
    limits: ReadLimits | None = None  # bounds on an untrusted input (the REST service's uploads)

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
    model = load_model(request)
    with run_folder(request.out):
        manifest = _start_or_resume(request.out, _identity(request, model), resume)
        manifest |= {"method": model.name, "params": model.get_params(), "task": model.task_.value}
        _write_manifest(request.out, manifest)
        parts = request.out / PARTS
        parts.mkdir(parents=True, exist_ok=True)
        seen = 0
        with progress_bar("analysing reviews", count_rows(request.input_path, request.limits)) as advance:
            for index, reviews in enumerate(_chunks(request)):
                part = parts / f"part-{index:06d}.parquet"
                if not part.exists():
                    _write_part(part, reviews, model.predict(reviews, abstain_below=request.abstain_below))
                seen += len(reviews)
                advance(len(reviews))
        manifest |= _counts(request.out, expected=seen) | {"status": "finished", "finished": _now()}
        _write_manifest(request.out, manifest)
    return manifest


@contextmanager
def run_folder(out: Path) -> Iterator[None]:
    """Write a run folder: one process at a time (a second is refused in one line; the
    lock of a killed process is taken over), and a write the disk refuses (full, read-only,
    no permission) ends in one line naming the folder and the cause. Finished parts stay,
    so the same command with --resume continues once the disk takes writes again."""
    try:
        with folder_lock(out):
            yield
    except OSError as error:
        if error.errno not in _DISK_REFUSED:
            raise
        raise TopicsentError(
            f"{out}: cannot write the run ({os.strerror(error.errno)}); "
            "free space or make the folder writable, then re-run with --resume"
        ) from None


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise InputDataError(f"{run_dir}: not a topicsent run folder (no {MANIFEST})")
    return json.loads(path.read_text(encoding="utf-8"))


def part_files(run_dir: Path) -> list[Path]:
    """The finished parts of a run, in input order."""
    return sorted((Path(run_dir) / PARTS).glob("part-*.parquet"))


def _identity(request: RunRequest, model: BaseMethod) -> dict[str, Any]:
    """What must not change between an interrupted run and its resumption. The model is
    every file of its folder (weights, vocabularies, calibration, adapters: a model
    retrained in place is another model) and any local file or folder a parameter names
    (a base or encoder given by path)."""
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
        "model": {"path": str(model_dir.resolve()), "sha256": path_sha256(model_dir)} | _named_paths(model),
        "columns": asdict(request.columns),
        "chunk_size": request.chunk_size,
        "abstain_below": request.abstain_below,  # absent from older runs: read as None, as it was
    }


def _named_paths(model: BaseMethod) -> dict[str, dict[str, str]]:
    """Fingerprints of the local files or folders the model's parameters name."""
    named = {
        name: path_sha256(Path(value))
        for name, value in sorted(model.get_params().items())
        if isinstance(value, str) and value and Path(value).exists()
    }
    return {"named_paths": named} if named else {}


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
    if not _fresh(out):
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


def _fresh(out: Path) -> bool:
    """Whether ``out`` holds nothing of value: absent, empty, or only what a run that
    stopped before its manifest leaves (its lock, temporary files, an empty parts folder)."""
    if not out.exists():
        return True
    for entry in out.iterdir():
        if entry.name == PARTS and entry.is_dir():
            if any(not p.name.endswith(".tmp") for p in entry.iterdir()):
                return False
        elif entry.name != LOCK_FILE and not entry.name.endswith(".tmp"):
            return False
    return True


def _chunks(request: RunRequest) -> Iterator[list[Review]]:
    yield from review_batches(
        request.input_path, request.columns, batch_size=request.chunk_size, require_text=False, limits=request.limits
    )


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
    try:
        part_frame(reviews, analyses).to_parquet(temporary, index=False)
        os.replace(temporary, part)
    finally:
        temporary.unlink(missing_ok=True)  # a disk that filled up mid-write keeps no half part


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
