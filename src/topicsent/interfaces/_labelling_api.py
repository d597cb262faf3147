"""The labelling routes of ``topicsent serve`` (``/v1/projects``) and the page ``/label``.

A project is made from an upload and a taxonomy or rating scale; the page asks
``/next`` for the review to label (least sure first), saves each label with the
version it started from (409 when another tab saved the review since), retrains, and
shows the learning curve. Errors: 404 for an unknown project or review id, 422 for a
label outside the taxonomy or an unreadable upload, 409 for a concurrent edit or a
retrain already running.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from topicsent.data import ColumnMap, read_reviews
from topicsent.errors import EditConflictError, InputDataError, InvalidParameterError, UnknownNameError
from topicsent.interfaces._server import _invalid, _upload_suffix
from topicsent.labelling import (
    LabelProject,
    check_name,
    import_studio,
    label_config,
    list_projects,
    prefill,
    project_folder,
    retrain,
    studio_tasks,
)
from topicsent.methods import BaseMethod


class AspectIn(BaseModel):
    aspect: str = Field(min_length=1, max_length=200)
    polarity: str = Field(min_length=1, max_length=20)


class LabelIn(BaseModel):
    aspects: list[AspectIn] = Field(default_factory=list, max_length=500, description="The categories mentioned.")
    rating: int | None = Field(default=None, description="The rating (rating projects).")
    version: int = Field(ge=0, description="The label version the page started from (0: unlabelled).")
    annotator: str | None = Field(default=None, max_length=100)


class RetrainIn(BaseModel):
    method: str | None = Field(default=None, max_length=100, description="Default: the project's method.")


no_project = {404: {"description": "No such project (or review)"}}


def labelling_router(root: Path, served: BaseMethod) -> APIRouter:
    """The ``/projects`` routes over the projects under ``root``; ``served`` (the server's
    model) pre-fills a new project when its task and labels fit."""
    router = APIRouter(prefix="/projects", tags=["labelling"])
    retraining: set[str] = set()
    lock = threading.Lock()

    def opened(name: str) -> LabelProject:
        try:
            return LabelProject(project_folder(root, name))
        except UnknownNameError:
            raise HTTPException(404, f"no labelling project {name!r}") from None

    @router.get("")
    def projects() -> list[dict[str, Any]]:
        return [LabelProject(root / name).summary() | {"models": None} for name in list_projects(root)]

    @router.post("", status_code=201, responses={409: {"description": "The name is taken"}, 415: {}, 422: {}})
    def create_project(  # a plain def: reading the upload runs in a worker thread
        name: Annotated[str, Form(max_length=64)],
        file: Annotated[UploadFile, File(description="Reviews: .csv, .tsv, .jsonl or .parquet.")],
        categories: Annotated[str | None, Form(description="The taxonomy, comma-separated.")] = None,
        rating_scale: Annotated[str | None, Form(description="A rating scale, e.g. 1-5 (instead of a taxonomy).")] = None,
        text_col: Annotated[str, Form()] = "text",
        id_col: Annotated[str | None, Form()] = None,
        method: Annotated[str, Form(max_length=100)] = "tfidf-lr",
    ) -> dict[str, Any]:
        try:
            folder = root / check_name(name)
        except InvalidParameterError as error:
            raise _invalid(["body", "name"], str(error)) from None
        taxonomy = [c.strip() for c in categories.split(",")] if categories and categories.strip() else None
        scale = _scale(rating_scale) if rating_scale and rating_scale.strip() else None
        if name in list_projects(root):
            raise HTTPException(409, f"a project named {name!r} exists already")
        with tempfile.TemporaryDirectory() as scratch:
            upload = Path(scratch) / f"upload{_upload_suffix(file.filename or '')}"
            upload.write_bytes(file.file.read())
            try:
                reviews = read_reviews(upload, ColumnMap(text=text_col, id=id_col or None), require_text=False)
                project = LabelProject.create(folder, reviews, categories=taxonomy, rating_scale=scale, method=method)
            except InputDataError as error:
                raise _invalid(["body", "file"], str(error).split(": ", 1)[-1]) from None
            except InvalidParameterError as error:
                raise _invalid(["body"], str(error)) from None
        prefill(project, served)
        return project.summary()

    @router.get("/{name}", responses=no_project)
    def project(name: str) -> dict[str, Any]:
        return opened(name).summary()

    @router.get("/{name}/next", responses=no_project)
    def next_review(name: str) -> dict[str, Any]:
        """The review to label next (``item`` is null when every review has a label)."""
        found = opened(name)
        return {"item": found.next_item(), **found.counts()}

    @router.get("/{name}/reviews/{review_id}", responses=no_project)
    def review(name: str, review_id: str) -> dict[str, Any]:
        try:
            return opened(name).item(review_id)
        except UnknownNameError as error:
            raise HTTPException(404, str(error)) from None

    @router.put(
        "/{name}/reviews/{review_id}/label",
        responses=no_project | {409: {"description": "Saved by someone else since this version"}, 422: {}},
    )
    def save_label(name: str, review_id: str, label: LabelIn) -> dict[str, Any]:
        """Store a label (committed before the answer): 409 when the review was saved
        since ``version`` (reload it and save again), 422 for a label outside the taxonomy."""
        found = opened(name)
        aspects = [a.model_dump() for a in label.aspects]
        try:
            saved = found.save_label(
                review_id, aspects=aspects, rating=label.rating, version=label.version, annotator=label.annotator or None
            )
        except UnknownNameError as error:
            raise HTTPException(404, str(error)) from None
        except EditConflictError as error:
            raise HTTPException(409, str(error)) from None
        except InputDataError as error:
            raise _invalid(["body", "rating" if label.rating is not None else "aspects"], str(error)) from None
        return saved | found.counts()

    @router.post("/{name}/retrain", responses=no_project | {409: {"description": "A retrain is running"}, 422: {}})
    def retrain_project(name: str, options: RetrainIn | None = None) -> dict[str, Any]:
        """Train on the labels, measure the learning curve on the held-out slice, and let
        the new model pre-fill the page and order the queue."""
        found = opened(name)
        with lock:
            if name in retraining:
                raise HTTPException(409, f"project {name!r} is being retrained already; wait for it")
            retraining.add(name)
        try:
            return retrain(found, options.method if options else None)
        except (InputDataError, InvalidParameterError, UnknownNameError) as error:
            raise _invalid(["body"], str(error)) from None
        finally:
            with lock:
                retraining.discard(name)

    @router.get("/{name}/export", responses=no_project)
    def export(name: str) -> Response:
        """The labels as JSONL: ``topicsent train FILE --id-col id --aspects-col aspects`` (or ``--rating-col rating``)."""
        return _jsonl(opened(name).export_rows(), f"{name}-labels.jsonl")

    @router.get("/{name}/preference-pairs", responses=no_project)
    def preference_pairs(name: str) -> Response:
        """Corrections as preference pairs (chosen = the label, rejected = the model's answer), JSONL."""
        return _jsonl(opened(name).preference_pairs(), f"{name}-pairs.jsonl")

    @router.get("/{name}/label-studio/tasks", responses=no_project)
    def studio_export(name: str) -> list[dict[str, Any]]:
        """Every review as a Label Studio task, the model's answers as pre-annotations."""
        return studio_tasks(opened(name))

    @router.get("/{name}/label-studio/config", response_class=PlainTextResponse, responses=no_project)
    def studio_config(name: str) -> str:
        """The Label Studio labelling interface (XML) for these tasks."""
        return label_config(opened(name))

    @router.post("/{name}/label-studio/import", responses=no_project | {422: {}})
    def studio_import(name: str, file: Annotated[UploadFile, File(description="Label Studio's JSON export")]) -> dict[str, Any]:
        found = opened(name)
        try:
            imported = import_studio(found, json.loads(file.file.read()), source=file.filename or "the upload")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _invalid(["body", "file"], "not JSON: export the Label Studio project as JSON") from None
        except InputDataError as error:
            raise _invalid(["body", "file"], str(error)) from None
        return {"imported": imported, **found.counts()}

    return router


def label_page() -> HTMLResponse:
    return HTMLResponse((files("topicsent.interfaces") / "static" / "label.html").read_text(encoding="utf-8"))


def _scale(text: str) -> tuple[int, int]:
    low, _, high = text.strip().partition("-")
    try:
        return int(low), int(high)
    except ValueError:
        raise _invalid(["body", "rating_scale"], f"rating scale {text!r}: write it as LOW-HIGH, e.g. 1-5") from None


def _jsonl(rows: Iterable[dict[str, Any]], filename: str) -> Response:
    body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return Response(
        body, media_type="application/x-ndjson", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
