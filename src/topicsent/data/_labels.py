"""Labels checked against what they label, in one place.

A term's span must hold the term, a category must belong to the taxonomy, a rating
must lie on the scale, a polarity must be one the label space knows. Training files,
calibration files, test and validation files of an evaluation, ``--aspects-col`` input
and the Python API (``fit``, ``calibrate``, ``predict`` with given aspects) all ask
:func:`label_problem` (row by row while reading, or :func:`check_labels` for a whole
set), so one wrong label is refused with the same sentence wherever it comes from.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from topicsent.data._reviews import AspectLabel, LabelSpace, Review, ReviewSet
from topicsent.errors import InputDataError
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
    for opinion in aspect.opinions:
        o_start, o_end = opinion.start, opinion.end
        if not (isinstance(o_start, int) and isinstance(o_end, int) and 0 <= o_start < o_end <= len(text)):
            return f"opinion span {o_start}-{o_end} of term {aspect.name!r} is outside the text ({len(text)} characters)"
    return None


def overlap_problem(review: Review) -> str | None:
    """Why ``review``'s term spans cannot be tagged token by token (two different terms
    overlapping, e.g. ``'seafood'`` 20-27 and ``'food'`` 23-27), or None. The same span
    given twice is one term, not an overlap."""
    spans = sorted({(a.start, a.end, a.name) for a in review.aspects if a.kind == "term" and a.start is not None})
    for (start, end, name), (next_start, next_end, next_name) in itertools.pairwise(spans):
        if next_start < end and (start, end) != (next_start, next_end):
            return (
                f"terms {name!r} ({start}-{end}) and {next_name!r} ({next_start}-{next_end}) overlap; "
                "a term extractor tags each word once: keep one of them"
            )
    return None


def label_problem(
    review: Review, space: LabelSpace | None = None, task: Task | None = None, *, reference: str | None = None
) -> str | None:
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
    reference : str, optional
        Where ``space`` comes from when it is another file's (e.g. ``"the training file
        train.csv"``): the sentence names it, so the user knows which two files disagree.
        None: ``space`` is the taxonomy and scale given for this data.
    """
    for aspect in review.aspects:
        if problem := span_problem(review.text, aspect):
            return problem
        if space is None:
            continue
        is_category = aspect.kind == "category" or task is Task.ACSA
        if is_category and space.categories is not None and aspect.name not in space.categories:
            known = ", ".join(space.categories)
            if reference is None:
                return f"category {aspect.name!r} is not in the taxonomy (known: {known})"
            return (
                f"category {aspect.name!r} is not among the categories of {reference} ({known}); "
                "label it there too, or fix the name"
            )
        if aspect.polarity is not None and aspect.polarity not in space.polarities:
            of = f" (the polarities of {reference})" if reference else ""
            return f"aspect {aspect.name!r} has polarity {aspect.polarity!r}; expected one of {', '.join(space.polarities)}{of}"
    if space is not None and space.rating_scale and review.rating is not None:
        low, high = space.rating_scale
        if not low <= review.rating <= high:
            of = f" of {reference}; are the files on different rating scales?" if reference else ""
            return f"rating {review.rating} is outside the scale {low}-{high}{of}"
    return None


def check_labels(
    reviews: ReviewSet, space: LabelSpace, task: Task, *, source: str | None = None, reference: str | None = None
) -> None:
    """Refuse a labelled set that cannot teach or evaluate ``task``: a review without the
    label ``task`` needs (a rating; a polarity per aspect), or a label that contradicts
    its text or ``space`` (:func:`label_problem`).

    Parameters
    ----------
    reviews : ReviewSet
    space : LabelSpace
        The labels allowed: the set's own, a fitted model's, or the training file's.
    task : Task
    source : str, optional
        Named at the start of the message (default: the set's name).
    reference : str, optional
        Where ``space`` comes from, as for :func:`label_problem`.

    Raises
    ------
    InputDataError
        One line naming ``source``, the first bad review's id and its problem.
    """
    source = reviews.name if source is None else source
    for review in reviews:
        where = f"{source}: review {review.id!r}"
        if task is Task.RATING and review.rating is None:
            raise InputDataError(f"{where} has no rating; rating training and evaluation need one per review")
        unlabelled = next((a for a in review.aspects if a.polarity is None), None)
        if task is not Task.RATING and unlabelled is not None:
            raise InputDataError(
                f"{where} aspect {unlabelled.name!r} has no polarity; expected one of {', '.join(space.polarities)}"
            )
        if problem := label_problem(review, space, task, reference=reference):
            raise InputDataError(f"{where}: {problem}")


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
