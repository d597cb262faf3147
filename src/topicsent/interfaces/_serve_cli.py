"""``topicsent serve``: the REST service and its web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from topicsent._extras import require
from topicsent.errors import InvalidParameterError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(
    model_dir: Annotated[Path, typer.Option("--model", help="A folder written by `topicsent train`.")],
    host: Annotated[str, typer.Option(help="Address to bind; beyond loopback a token is required.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(envvar="TOPICSENT_API_TOKEN", help="Bearer token clients must send (prefer the environment variable)."),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve beyond loopback without a token (only behind an authenticating proxy).")
    ] = False,
    jobs_dir: Annotated[Path, typer.Option(help="Where uploads, job results and reports are kept.")] = Path("topicsent-jobs"),
    projects_dir: Annotated[
        Path, typer.Option(help="Where labelling projects (reviews, labels in SQLite, retrained models) are kept.")
    ] = Path("topicsent-projects"),
    max_batch: Annotated[int, typer.Option(help="Most reviews in one POST /v1/analyze.")] = 1_000,
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload to POST /v1/jobs, in MiB.")] = 200,
) -> None:
    """Serve a trained model over HTTP: a JSON API, background jobs and a web page.

    POST /v1/analyze answers a small batch at once; POST /v1/jobs takes a file and
    analyses it in the background (GET /v1/jobs/ID for progress, /results, /report);
    GET / is a page to paste or upload reviews; GET /label is the labelling page
    (label and correct reviews least-sure first, retrain, learning curve). OpenAPI docs
    at /docs. Unfinished jobs resume when the server restarts.

    Examples:

      topicsent serve --model models/mams

      TOPICSENT_API_TOKEN=s3cret topicsent serve --model models/mams --host 0.0.0.0 --port 8080

      curl localhost:8000/v1/analyze -H 'content-type: application/json' -d '{"reviews": [{"text": "Rude waiter."}]}'
    """
    uvicorn = require("uvicorn", needed_by="topicsent serve")
    require("fastapi", needed_by="topicsent serve")

    from topicsent.interfaces._server import ServerSettings, create_app

    if token is None and host not in LOOPBACK and not no_auth:
        raise InvalidParameterError(
            f"serving on {host} (beyond this machine) needs a token: set TOPICSENT_API_TOKEN or --token "
            "(or --no-auth behind an authenticating proxy)"
        )
    # a blank token (`--token "$UNSET"`) is refused by ServerSettings, from any source
    settings = ServerSettings(
        model_dir,
        jobs_dir,
        token=token,
        max_batch=max_batch,
        max_upload_bytes=max_upload_mb * 2**20,
        projects_dir=projects_dir,
    )
    uvicorn.run(create_app(settings), host=host, port=port)
