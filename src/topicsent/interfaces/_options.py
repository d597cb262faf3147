"""Console objects, shared command-line options and small formatting helpers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from topicsent.errors import InvalidParameterError

console = Console()
errors = Console(stderr=True)

TextCol = Annotated[str, typer.Option("--text-col", help="Column holding the review text.")]
IdCol = Annotated[str | None, typer.Option("--id-col", help="Column holding a unique review id (default: row number).")]
RatingCol = Annotated[str | None, typer.Option("--rating-col", help="Column holding the integer star rating.")]
AspectsCol = Annotated[
    str | None,
    typer.Option(
        "--aspects-col",
        help='Column holding aspects: a JSON list ([{"aspect": "food", "polarity": "positive"}]) '
        'or "food:positive; service:negative".',
    ),
]

AbstainBelow = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="Reviews whose least confident answer is under P come back with status 'abstained' and no labels "
        "(confidences are calibrated when the model was trained with a validation split).",
    ),
]


def columns(text_col: str, id_col: str | None, rating_col: str | None, aspects_col: str | None, date_col: str | None = None):
    from topicsent.data import ColumnMap

    return ColumnMap(text=text_col, id=id_col, rating=rating_col, aspects=aspects_col, date=date_col)


def split_names(value: str, known: list[str], what: str) -> list[str]:
    names = known if value == "all" else [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise InvalidParameterError(f"unknown {what} {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}, or 'all'")
    return names


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


SPLITS = ("train", "validation", "test")


def labelled_input(dataset: str | None, input_file, cols, *, task: str | None, split: str = "train", categories=None, space=None):
    """Labelled reviews from a built-in dataset's split or a file (exactly one of them),
    and the task: the one given, the dataset's, or what the file's columns imply.
    ``space`` (a :class:`~topicsent.data.LabelSpace`, e.g. the training data's) fixes the
    file's taxonomy and rating scale, so a label outside them is an error naming its row."""
    from topicsent.data import infer_task, load_dataset, read_reviews

    if (dataset is None) == (input_file is None):
        raise InvalidParameterError("give either a labelled file or --dataset NAME, not both")
    if dataset:
        if split not in SPLITS:
            raise InvalidParameterError(f"--split must be train, validation or test, got {split!r}")
        reviews = getattr(load_dataset(dataset), split)
    else:
        if space is not None:
            categories = space.categories
        rating_scale = space.rating_scale if space is not None else None
        reviews = read_reviews(input_file, cols, task=task, categories=categories, rating_scale=rating_scale)
    found = reviews.task or infer_task(reviews, cols)
    return reviews, task or (found.value if found else None)
