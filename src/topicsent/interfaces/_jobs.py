"""Background analysis jobs of the REST service, kept on disk.

A job is a folder: ``job.json`` (status, options, error), the uploaded ``input.*`` and
the resumable run folder ``run/`` of :func:`topicsent.runs.analyze_to_run`. One worker
thread runs jobs in submission order (the model already uses both cores); a server
restarted after a crash resumes its unfinished jobs from their last finished chunk.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from topicsent.data import ColumnMap, ReadLimits, count_rows, review_batches
from topicsent.errors import InputDataError, TopicsentError
from topicsent.runs import RunRequest, analyze_to_run, part_files

JOB_FILE = "job.json"
CHUNK_SIZE = 2_000


class JobStore:
    """Jobs under ``root``; ``submit`` returns at once, a worker thread does the work."""

    def __init__(self, root: Path, model_dir: Path, limits: ReadLimits | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.model_dir = Path(model_dir)
        self.limits = limits  # what an upload may inflate to: checked on submit and again while it runs
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="topicsent-job")
        self._lock = threading.Lock()
        self._part_reviews: dict[Path, int] = {}  # a finished part never changes: count it once

    def resume_unfinished(self) -> list[str]:
        """Queue again every job a previous server left queued or running."""
        pending = [job["id"] for job in map(self._read, self._ids()) if job["status"] in ("queued", "running")]
        for job_id in pending:
            self._executor.submit(self._run, job_id, True)
        return pending

    def submit(self, upload: bytes | BinaryIO, suffix: str, columns: ColumnMap) -> dict[str, Any]:
        """Save the upload (bytes or a binary file, copied in blocks), check that it reads
        (whole-file encoding, gzip and size bounds, the columns and first rows), then queue
        it; an unreadable upload raises InputDataError (InputTooLargeError past the bounds)
        and leaves nothing. Blocking: call it off the event loop."""
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir()
        source = folder / f"input{suffix}"
        with source.open("wb") as saved:
            shutil.copyfileobj(io.BytesIO(upload) if isinstance(upload, bytes) else upload, saved)
        try:
            reviews = count_rows(source, self.limits)  # one bounded pass over every byte
            if next(review_batches(source, columns, batch_size=10, limits=self.limits), None) is None:
                raise InputDataError(f"input{suffix}: no reviews in the file")
        except InputDataError:
            shutil.rmtree(folder)
            raise
        job = {
            "id": job_id, "status": "queued", "created": _now(), "input": f"input{suffix}",
            "columns": asdict(columns), "reviews": reviews, "error": None,
        }  # fmt: skip
        self._write(job)
        self._executor.submit(self._run, job_id, False)
        return job

    def status(self, job_id: str) -> dict[str, Any] | None:
        """The job with its progress (reviews done so far), or None if unknown."""
        if not (self.root / job_id / JOB_FILE).is_file():
            return None
        job = self._read(job_id)
        job["done"] = self._done(job_id)
        return job

    def run_dir(self, job_id: str) -> Path:
        return self.root / job_id / "run"

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(self, job_id: str, resume: bool) -> None:
        job = self._read(job_id)
        folder = self.root / job_id
        source = folder / job["input"]
        try:
            job |= {"status": "running", "reviews": job["reviews"] or count_rows(source, self.limits)}
            self._write(job)
            columns = ColumnMap(**job["columns"])
            request = RunRequest(self.model_dir, str(source), folder / "run", columns, CHUNK_SIZE, limits=self.limits)
            manifest = analyze_to_run(request, resume=resume or (folder / "run").exists())
            job |= {"status": "finished", "finished": _now(), "reviews": manifest["reviews"], "statuses": manifest["statuses"]}
        except TopicsentError as error:
            job |= {"status": "failed", "error": str(error)}
        except Exception as error:  # a job must end in a state the client can read, whatever broke
            job |= {"status": "failed", "error": f"internal error: {type(error).__name__}: {error}"}
        self._write(job)

    def _done(self, job_id: str) -> int:
        """Reviews in the finished chunks (a review with several aspects has several rows);
        each part is read once, so polling a long job stays cheap."""
        import pyarrow.parquet as pq

        parts = part_files(self.run_dir(job_id))
        for part in parts:
            if part not in self._part_reviews:
                self._part_reviews[part] = len(pq.read_table(part, columns=["review_id"]).column(0).unique())
        return sum(self._part_reviews[part] for part in parts)

    def _ids(self) -> list[str]:
        return sorted(p.parent.name for p in self.root.glob(f"*/{JOB_FILE}"))

    def _read(self, job_id: str) -> dict[str, Any]:
        return json.loads((self.root / job_id / JOB_FILE).read_text(encoding="utf-8"))

    def _write(self, job: dict[str, Any]) -> None:
        with self._lock:
            path = self.root / job["id"] / JOB_FILE
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
