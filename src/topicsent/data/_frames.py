"""Reviews from data in memory: a pandas DataFrame or Series, a list of dicts, strings.

The same row reader as for files (:func:`~topicsent.data._files.review_from_record`)
turns every row into a :class:`Review`, so a DataFrame gets exactly the checks and
error lines a CSV file gets. Rows are numbered as Python numbers them: a pandas
object's index labels, else positions from 0; without an id column they are the ids,
so results join back to the input (``df.join(results.set_index("review_id"))`` after
``df.index.astype(str)``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

from topicsent.data._files import ColumnMap, check_columns, given_space, labelled_set, records_to_reviews
from topicsent.data._reviews import Review, ReviewSet
from topicsent.errors import InputDataError
from topicsent.schema import Task

API_OPTION = "{role}="  # how the API names a column choice in error messages (``text=``)


def _pandas_type(data: Any, name: str) -> bool:
    pandas = sys.modules.get("pandas")  # data cannot be a pandas object unless pandas is loaded
    return pandas is not None and isinstance(data, getattr(pandas, name))


def _is_reviews(data: Any) -> bool:
    return isinstance(data, ReviewSet) or (
        isinstance(data, Sequence) and not isinstance(data, str) and bool(data) and all(isinstance(r, Review) for r in data)
    )


def _records(data: Any, columns: ColumnMap) -> tuple[str, list[tuple[Any, dict[str, Any]]]]:
    """(source name, [(row, column -> value)]) of in-memory data; missing values become None."""
    if isinstance(data, str):
        return "text", [(0, {columns.text: data})]
    if _pandas_type(data, "Series"):
        values = data.astype(object).where(data.notna(), None)
        return "Series", [(index, {columns.text: value}) for index, value in values.items()]
    if _pandas_type(data, "DataFrame"):
        check_columns("DataFrame", set(data.columns), columns, option=API_OPTION)
        cleaned = data.astype(object).where(data.notna(), None)
        return "DataFrame", list(zip(data.index, cleaned.to_dict("records"), strict=True))
    if isinstance(data, Iterable) and not isinstance(data, bytes | dict):
        rows = list(data)
        if all(isinstance(row, str) or row is None for row in rows):
            return "list", [(i, {columns.text: row}) for i, row in enumerate(rows)]
        if all(isinstance(row, dict) for row in rows):
            if rows:
                check_columns("list", set().union(*rows), columns, option=API_OPTION)
            return "list", list(enumerate(rows))
        kinds = ", ".join(sorted({type(row).__name__ for row in rows}))
        raise InputDataError(f"list: expected review texts (str) or rows (dict), got {kinds}")
    raise InputDataError(
        f"cannot read reviews from a {type(data).__name__}; give a str, a list of str or dict, a pandas Series or "
        "DataFrame, or a ReviewSet"
    )


def as_reviews(data: Any, *, text: str = "text", id: str | None = None, aspects: str | None = None) -> Sequence[Review]:
    """Reviews to analyse, from whatever a user holds.

    Parameters
    ----------
    data : str, list of str, list of dict, pandas.Series of str, pandas.DataFrame, or reviews
        One text, texts, or rows with a ``text`` column (and ``id``/``aspects`` columns
        when named). A Series' or DataFrame's index labels are the review ids unless
        ``id`` names a column; a list's positions (from 0) otherwise.
    text, id, aspects : column names of rows (``aspects`` for ``given_aspects=True``).

    Returns
    -------
    Sequence of Review
        One per row, in order; ``Review`` objects and a ``ReviewSet`` pass through as they are.

    Raises
    ------
    InputDataError
        A missing column, a non-text value, a duplicate id or bad aspects, naming the row.
    """
    if _is_reviews(data):
        return data
    columns = ColumnMap(text=text, id=id, aspects=aspects)
    source, records = _records(data, columns)
    return records_to_reviews(source, records, columns, require_text=False)


def as_review_set(
    data: Any,
    *,
    text: str = "text",
    id: str | None = None,
    aspects: str | None = None,
    rating: str | None = None,
    task: Task | None = None,
    categories: tuple[str, ...] | None = None,
) -> ReviewSet:
    """Labelled reviews to learn from: a pandas DataFrame or a list of dicts with the
    columns named here, or a ``ReviewSet`` (returned as it is).

    Parameters
    ----------
    data : pandas.DataFrame, list of dict, ReviewSet or list of Review
    text, id, aspects, rating : column names. ``aspects`` cells are a list of
        ``{"aspect": ..., "polarity": ...}`` dicts (terms with ``from``/``to``), its JSON,
        or ``"food:positive; service:negative"``; ``rating`` cells are whole numbers.
    task : stored on the set; None lets the caller infer it.
    categories : the taxonomy; default: the categories the labels use.

    Raises
    ------
    InputDataError
        As :func:`as_reviews`, plus an empty text (training needs text), no rows, or a
        label that contradicts its text or the given taxonomy (naming the row).
    """
    if isinstance(data, ReviewSet):
        return data
    if _is_reviews(data):
        return labelled_set(list(data), "reviews", task=task, categories=categories)
    columns = ColumnMap(text=text, id=id, aspects=aspects, rating=rating)
    source, records = _records(data, columns)
    reviews = records_to_reviews(source, records, columns, require_text=True, space=given_space(categories, None))
    if not reviews:
        raise InputDataError(f"{source}: no reviews to learn from (it is empty)")
    return labelled_set(reviews, source, task=task, categories=categories)
