"""Labels checked against what they label, in one place.

A term's span must hold the term, a category must belong to the taxonomy, a rating
must lie on the scale, a polarity must be one the label space knows. Training files,
calibration files, ``--aspects-col`` input and the Python API (``fit``, ``calibrate``,
``predict`` with given aspects) all ask :func:`label_problem`, so one wrong label is
refused with the same sentence wherever it comes from.
"""

from __future__ import annotations

from collections.abc import Iterable

from topicsent.data._reviews import AspectLabel, LabelSpace, Review
from topicsent.schema import Task


def _normalised(text: str) -> str:
    """Case and runs of whitespace do not make a span disagree with its term."""
    return " ".join(text.split()).casefold()


def span_problem(text: str, aspect: AspectLabel) -> str | None:
    """Why ``aspect``'s span does not hold ``aspect`` in ``text`` (None when it does or
    there is no span)."""
    start, end = aspect.start, aspect.end
    if start is None and end is None:
        return None
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(text)):
        return f"span {start}-{end} of term {aspect.name!r} is outside the text ({len(text)} characters)"
    found = text[start:end]
    if _normalised(found) != _normalised(aspect.name):
        return f"term {aspect.name!r} is given at {start}-{end}, where the text says {found!r}"
    return None


def label_problem(review: Review, space: LabelSpace | None = None, task: Task | None = None) -> str | None:
    """The first label of ``review`` that contradicts its text or ``space``, as a
    sentence for an error message; None when every label agrees.

    Parameters
    ----------
    review : Review
        Its spans are checked against its text; polarities and rating, when present,
        against ``space``.
    space : LabelSpace, optional
        The taxonomy, polarities and rating scale to check against (None: spans only).
    task : Task, optional
        With ``Task.ACSA`` every aspect (not only those marked as categories) must be a
        category of the taxonomy: an ACSA model knows nothing else.
    """
    for aspect in review.aspects:
        if problem := span_problem(review.text, aspect):
            return problem
        if space is None:
            continue
        is_category = aspect.kind == "category" or task is Task.ACSA
        if is_category and space.categories is not None and aspect.name not in space.categories:
            return f"category {aspect.name!r} is not in the taxonomy (known: {', '.join(space.categories)})"
        if aspect.polarity is not None and aspect.polarity not in space.polarities:
            return f"aspect {aspect.name!r} has polarity {aspect.polarity!r}; expected one of {', '.join(space.polarities)}"
    if space is not None and space.rating_scale and review.rating is not None:
        low, high = space.rating_scale
        if not low <= review.rating <= high:
            return f"rating {review.rating} is outside the scale {low}-{high}"
    return None


def one_class_problem(reviews: Iterable[Review], task: Task, needed_by: str) -> str | None:
    """``"every rating is 5: <needed_by> needs at least two different ratings"`` when the
    reviews' ratings (``Task.RATING``) or aspect polarities (otherwise) all agree: a
    model cannot learn to tell apart what never differs. None when they vary (or
    there are none)."""
    if task is Task.RATING:
        values, what, plural = {r.rating for r in reviews if r.rating is not None}, "rating", "ratings"
    else:
        values = {a.polarity for r in reviews for a in r.aspects if a.polarity is not None}
        what, plural = "aspect's polarity", "polarities"
    if len(values) != 1:
        return None
    return f"every {what} is {next(iter(values))}: {needed_by} needs at least two different {plural}"
