"""The REST service (``topicsent serve``): one trained model behind a small HTTP API.

- ``POST /v1/analyze``: a small batch of reviews, answered in the response.
- ``POST /v1/jobs``: upload a file (CSV, TSV, JSONL, Parquet); it is analysed in the
  background into a resumable run; ``GET /v1/jobs/{id}`` reports progress,
  ``/results`` pages through the rows and ``/report`` is the HTML report.
- ``GET /v1/models``, ``GET /healthz``, ``GET /`` (a page to paste or upload reviews).
- ``/v1/projects``: labelling projects (upload, label least-sure first, retrain, learning
  curve, JSONL and Label Studio export/import); ``GET /label`` is their page.

With a token configured every ``/v1`` route needs ``Authorization: Bearer <token>``
(compared in constant time, never logged). Bodies over the size limits get 413
before they are read into memory; batches over the limit get 413 with the way out.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, model_validator

from topicsent._version import __version__
from topicsent.data import FORMATS, ColumnMap, ReadLimits, Review, detect_language
from topicsent.errors import InputDataError, InputTooLargeError, InvalidParameterError
from topicsent.interfaces._jobs import JobStore
from topicsent.methods import BaseMethod
from topicsent.runs import part_files
from topicsent.schema import ReviewAnalysis

MAX_TEXT_CHARS = 100_000


@dataclass(frozen=True)
class ServerSettings:
    model_dir: Path
    jobs_dir: Path
    token: str | None = None
    max_batch: int = 1_000
    max_body_bytes: int = 10 * 2**20
    max_upload_bytes: int = 200 * 2**20
    projects_dir: Path | None = None  # labelling projects; None: ``jobs_dir / "projects"``

    def __post_init__(self) -> None:
        # an empty token would match a request without any header: it is no token, never an open door
        if self.token is not None and not self.token.strip():
            raise InvalidParameterError("the API token is empty or blank; give a real token or none")

    @property
    def projects_root(self) -> Path:
        return self.projects_dir if self.projects_dir is not None else self.jobs_dir / "projects"

    @property
    def upload_limits(self) -> ReadLimits:
        """An upload holds at most ``max_upload_bytes`` of data, compressed or not, and
        each review at most the characters ``/v1/analyze`` takes."""
        return ReadLimits(max_bytes=self.max_upload_bytes, max_text_chars=MAX_TEXT_CHARS)


class ReviewIn(BaseModel):
    id: str | None = Field(default=None, max_length=200, description="Your id; the position in the batch if omitted.")
    text: str = Field(max_length=MAX_TEXT_CHARS)


class AnalyzeRequest(BaseModel):
    reviews: list[ReviewIn] = Field(min_length=1)
    abstain_below: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Reviews whose least confident answer is under this come back 'abstained'.",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> AnalyzeRequest:
        given = [review.id for review in self.reviews if review.id is not None]
        if len(set(given)) != len(given):
            raise ValueError("review ids must be unique within a request")
        return self


class Problem(BaseModel):
    """An error the client can fix, in one sentence."""

    detail: str


class ModelInfo(BaseModel):
    id: str
    method: str
    task: str
    language: str
    params: dict[str, Any]
    categories: list[str] | None = None
    rating_scale: tuple[int, int] | None = None


class AnalyzeResponse(BaseModel):
    model: ModelInfo
    results: list[ReviewAnalysis]


class Job(BaseModel):
    id: str
    status: str = Field(description="queued, running, finished or failed")
    created: str
    reviews: int | None = Field(description="Reviews in the upload (known once the job starts).")
    done: int = Field(description="Reviews analysed so far.")
    error: str | None = None
    statuses: dict[str, int] | None = None


def create_app(settings: ServerSettings) -> FastAPI:
    model = BaseMethod.load(settings.model_dir)
    info = _model_info(settings.model_dir, model)
    jobs = JobStore(settings.jobs_dir, settings.model_dir, settings.upload_limits)
    app = FastAPI(
        title="topicsent",
        version=__version__,
        description="Aspect-wise sentiment and rating prediction of reviews (English and Korean).",
        on_startup=[jobs.resume_unfinished],
        on_shutdown=[jobs.shutdown],
    )
    app.add_middleware(_BodyLimit, limits=settings)
    app.add_exception_handler(RequestValidationError, _validation_error)
    api = APIRouter(
        prefix="/v1",
        dependencies=[Depends(_bearer_check(settings.token))],
        responses={401: {"description": "Missing or wrong bearer token (when the server has one)"}},
    )
    no_job = {404: {"description": "No such job"}}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return (files("topicsent.interfaces") / "static" / "index.html").read_text(encoding="utf-8")

    @api.get("/models")
    def models() -> list[ModelInfo]:
        return [info]

    @api.post("/analyze", responses={413: {"model": Problem, "description": "Too many reviews or bytes"}})
    def analyze(request: AnalyzeRequest) -> AnalyzeResponse:
        if len(request.reviews) > settings.max_batch:
            message = f"{len(request.reviews)} reviews; at most {settings.max_batch} per request: use POST /v1/jobs"
            raise HTTPException(413, message)
        reviews = [
            Review(item.id or str(i), item.text, language=detect_language(item.text))
            for i, item in enumerate(request.reviews, start=1)
        ]
        if len({r.id for r in reviews}) != len(reviews):  # a given id equal to another review's position
            raise _invalid(
                ["body", "reviews"], "review ids must be unique within a request (an id equals another review's number)"
            )
        try:
            return AnalyzeResponse(model=info, results=model.predict(reviews, abstain_below=request.abstain_below))
        except InvalidParameterError as error:  # a model without confidences cannot abstain
            raise _invalid(["body", "abstain_below"], str(error)) from None

    @api.post(
        "/jobs",
        status_code=202,
        responses={
            413: {"model": Problem, "description": "Upload over the size limit"},
            415: {"model": Problem, "description": "Not a CSV, TSV, JSONL or Parquet file"},
            422: {"description": "Unreadable upload (encoding, columns, no reviews), reported like a validation error"},
        },
    )
    def create_job(  # a plain def: FastAPI runs it in a worker thread, so checking a large upload never blocks the loop
        file: Annotated[UploadFile, File(description="Reviews: .csv, .tsv, .jsonl or .parquet (text formats may be .gz).")],
        text_col: Annotated[str, Form()] = "text",
        id_col: Annotated[str | None, Form()] = None,
        rating_col: Annotated[str | None, Form()] = None,
    ) -> Job:
        suffix = _upload_suffix(file.filename or "")
        try:
            job = jobs.submit(file.file, suffix, ColumnMap(text=text_col, id=id_col or None, rating=rating_col or None))
        except InputTooLargeError as error:
            raise HTTPException(413, str(error).split(": ", 1)[-1]) from None
        except InputDataError as error:
            raise _invalid(["body", "file"], str(error).split(": ", 1)[-1]) from None
        return Job(**job, done=0)

    @api.get("/jobs/{job_id}", responses=no_job)
    def job_status(job_id: str) -> Job:
        return Job(**_job(jobs, job_id))

    @api.get("/jobs/{job_id}/results", responses=no_job)
    def job_results(
        job_id: str, offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=5_000)] = 500
    ) -> dict[str, Any]:
        """The flat result rows (one per review x aspect, with the review text), a page at a time."""
        _job(jobs, job_id)
        return _result_page(part_files(jobs.run_dir(job_id)), offset, limit)

    @api.get("/jobs/{job_id}/report", response_class=HTMLResponse, responses=no_job | {409: {"description": "Not finished yet"}})
    def job_report(job_id: str) -> HTMLResponse:
        from topicsent.report import build_report

        if _job(jobs, job_id)["status"] != "finished":
            raise HTTPException(409, "the job has not finished yet")
        target = settings.jobs_dir / job_id / "report.html"
        if not target.is_file():
            build_report([jobs.run_dir(job_id)], target)
        return HTMLResponse(target.read_text(encoding="utf-8"))

    from topicsent.interfaces._labelling_api import label_page, labelling_router

    app.get("/label", response_class=HTMLResponse, include_in_schema=False)(label_page)
    api.include_router(labelling_router(settings.projects_root, model))
    app.include_router(api)
    return app


def _invalid(location: list[str], message: str) -> HTTPException:
    """A 422 in FastAPI's own validation-error shape, so clients parse one format."""
    return HTTPException(422, [{"loc": location, "msg": message, "type": "value_error"}])


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 shape without echoing the input: an echo of NaN, of a lone surrogate
    or of 10 MB would itself fail to encode (a 500) or flood the client. Rendered as
    ASCII JSON, so any location (a key is client text too) encodes."""
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    body = json.dumps({"detail": detail}, ensure_ascii=True, default=str)
    return Response(body, status_code=422, media_type="application/json")


def _model_info(model_dir: Path, model: BaseMethod) -> ModelInfo:
    space = model.label_space_
    return ModelInfo(
        id=Path(model_dir).resolve().name,
        method=model.name,
        task=model.task_.value,
        language=model.language_,
        params=model.get_params(),
        categories=list(space.categories) if space.categories else None,
        rating_scale=space.rating_scale,
    )


def _bearer_check(token: str | None):
    scheme = HTTPBearer(auto_error=False, description="Needed when the server runs with a token.")

    # a default, not Annotated: the annotation is a string here and could not see `scheme`
    def check(credentials: HTTPAuthorizationCredentials | None = Depends(scheme)) -> None:  # noqa: B008
        if token is None:
            return
        given = credentials.credentials if credentials else ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return check


def _upload_suffix(filename: str) -> str:
    name = filename.lower()
    for suffix in FORMATS:
        for ending in (suffix, suffix + ".gz"):
            if name.endswith(ending) and ending != ".parquet.gz":
                return ending
    raise HTTPException(415, f"unsupported file type of {filename!r}; send .csv, .tsv, .jsonl or .parquet (text may be .gz)")


def _job(jobs: JobStore, job_id: str) -> dict[str, Any]:
    job = jobs.status(job_id) if job_id.isalnum() else None
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job


def _result_page(parts: list[Path], offset: int, limit: int) -> dict[str, Any]:
    """Rows ``offset`` to ``offset + limit`` of the run: row counts come from the Parquet
    footers, and only the parts that hold the page are read."""
    import pandas as pd
    import pyarrow.parquet as pq

    sizes = [pq.ParquetFile(part).metadata.num_rows for part in parts]
    starts = [0, *itertools.accumulate(sizes)][:-1]
    wanted = [(p, s) for p, s, n in zip(parts, starts, sizes, strict=True) if s < offset + limit and s + n > offset]
    if not wanted:
        return {"total": sum(sizes), "offset": offset, "rows": []}
    frame = pd.concat(pd.read_parquet(part) for part, _ in wanted)
    first = offset - wanted[0][1]
    page = frame.iloc[first : first + limit].astype(object)
    return {"total": sum(sizes), "offset": offset, "rows": page.where(page.notna(), None).to_dict("records")}


class _BodyLimit:
    """413 for bodies over the limit: checked on Content-Length first, then while the
    body streams in (a client may send no length), so nothing oversized is buffered."""

    def __init__(self, app, limits: ServerSettings) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        uploads = scope["path"] in ("/v1/jobs", "/v1/projects") or scope["path"].endswith("/label-studio/import")
        limit = self.limits.max_upload_bytes if uploads else self.limits.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(limit)(scope, receive, send)
            return
        received, exceeded, started = 0, False, False

        async def counted_receive():
            nonlocal received, exceeded
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                exceeded = True
                raise _BodyTooLargeError
            return message

        async def guarded_send(message) -> None:
            # the app may turn the receive error into its own answer (FastAPI: 400 "error
            # parsing the body"): once the limit is passed, only the 413 below goes out
            nonlocal started
            if not exceeded:
                started = True
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:  # ours, or whatever the app made of it
            if not exceeded:
                raise
        if exceeded and not started:
            await _too_large(limit)(scope, receive, send)


class _BodyTooLargeError(Exception):
    """Raised inside the app's receive when the streamed body passes the limit."""


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over the limit of {limit:,} bytes"}, status_code=413)
