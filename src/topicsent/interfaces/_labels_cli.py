"""``topicsent labels``: a labelling project's labels as files (JSONL, preference pairs,
Label Studio tasks and config), and Label Studio annotations back in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from topicsent.errors import InputDataError
from topicsent.interfaces._tables import print_line

labels_app = typer.Typer(
    help="A labelling project (made on `topicsent serve`'s /label page): export its labels, its corrections as "
    "preference pairs, Label Studio tasks; import Label Studio annotations.",
    no_args_is_help=True,
)
Project = Annotated[Path, typer.Argument(help="The project's folder (under the server's --projects-dir).")]
Out = Annotated[Path, typer.Option("--out", "-o", help="File to write.")]


def _open(folder: Path):
    from topicsent.labelling import LabelProject

    return LabelProject(folder)


def _write_jsonl(rows, out: Path) -> int:
    count = 0
    with out.open("w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


@labels_app.command("export")
def export(project: Project, out: Out) -> None:
    """The labels as JSONL, in the --aspects-col format (or with a rating column).

    Example:

      topicsent labels export topicsent-projects/shoes -o labels.jsonl
      topicsent train labels.jsonl --id-col id --aspects-col aspects -o models/shoes
    """
    found = _open(project)
    count = _write_jsonl(found.export_rows(), out)
    print_line(f"Wrote {count:,} labelled reviews of {found.name} to [bold]{out}[/bold]")


@labels_app.command("pairs")
def pairs(project: Project, out: Out) -> None:
    """Corrections as preference pairs (chosen = the label, rejected = the model's answer), JSONL."""
    found = _open(project)
    count = _write_jsonl(found.preference_pairs(), out)
    print_line(f"Wrote {count:,} preference pairs of {found.name} to [bold]{out}[/bold]")


@labels_app.command("studio-export")
def studio_export(
    project: Project,
    out: Out,
    config: Annotated[Path | None, typer.Option(help="Also write the Label Studio labelling config (XML) here.")] = None,
) -> None:
    """Every review as a Label Studio task (JSON), the model's answers as pre-annotations."""
    from topicsent.labelling import label_config, studio_tasks

    found = _open(project)
    tasks = studio_tasks(found)
    out.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    if config is not None:
        config.write_text(label_config(found), encoding="utf-8")
    print_line(f"Wrote {len(tasks):,} Label Studio tasks to [bold]{out}[/bold]")


@labels_app.command("studio-import")
def studio_import(
    project: Project, export_file: Annotated[Path, typer.Argument(help="A Label Studio JSON export of those tasks.")]
) -> None:
    """Store the annotations of a Label Studio JSON export as the project's labels."""
    from topicsent.labelling import import_studio

    found = _open(project)
    try:
        tasks = json.loads(export_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputDataError(f"{export_file}: not a readable JSON file ({error})") from None
    count = import_studio(found, tasks, source=str(export_file))
    print_line(f"Imported {count:,} labels into {found.name}")
