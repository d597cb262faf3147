"""Train, validation and test splits of a user's own labelled files.

The evaluation harness compares methods on :class:`Splits`; the built-in datasets come
with theirs, and this module makes them from a user's files: a test (and validation)
file when given, else a seeded stratified share of the training file. The label space
(taxonomy, polarities, rating scale) is the training file's, or the taxonomy given,
and every other file must stay inside it: a test label no model could learn is a
mistake in the files, reported in one line before any training starts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from topicsent.data._files import ColumnMap, read_reviews
from topicsent.data._labels import check_labels
from topicsent.data._reviews import Review, ReviewSet, Splits
from topicsent.errors import InputDataError, InvalidParameterError
from topicsent.schema import Task

TEST_SHARE = 0.2
VALIDATION_SHARE = 0.1  # of what is left for training, when no validation file is given


def infer_task(reviews: Sequence[Review], columns: ColumnMap | None = None) -> Task | None:
    """The task labelled reviews can teach: ``rating`` when ratings are given (a rating
    column, else any rating), ``atsa`` when the aspects are terms, ``acsa`` when they are
    categories; None when there are no labels."""
    has_ratings = columns.rating is not None if columns else any(r.rating is not None for r in reviews)
    if has_ratings:
        return Task.RATING
    kinds = {a.kind for r in reviews for a in r.aspects}
    if kinds:
        return Task.ATSA if "term" in kinds else Task.ACSA
    return Task.ACSA if columns and columns.aspects else None


def stratified_split(
    reviews: Sequence[Review], share: float, task: Task, *, seed: int = 0, source: str = "reviews", what: str = "test"
) -> tuple[list[Review], list[Review]]:
    """Split off ``ceil(share * n)`` reviews, seeded and stratified by label, both parts
    in their original order: ``(kept, held_out)``.

    Strata are the rating, or for aspects the review's rarest aspect with its main
    polarity (so each category with two or more reviews reaches both parts); strata too
    small to split fall back to coarser ones (the main polarity), then to a plain
    seeded shuffle.

    Raises
    ------
    InvalidParameterError
        ``share`` is not strictly between 0 and 1.
    InputDataError
        One of the two parts would be empty.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < share < 1:
        raise InvalidParameterError(f"the {what} share must be between 0 and 1 (exclusive), got {share!r}")
    held = math.ceil(share * len(reviews))  # scikit-learn's rounding of a fractional test_size
    if held >= len(reviews):
        raise InputDataError(
            f"{source}: a {what} share of {share:g} of {len(reviews)} reviews leaves none for training; "
            f"label more reviews, lower the share or give a {what} file"
        )
    indices = list(range(len(reviews)))
    for strata in (*_strata_levels(reviews, task), None):
        try:
            kept, out = train_test_split(indices, test_size=held, random_state=seed, stratify=strata)
        except ValueError:  # a stratum too small for this split: try a coarser one
            continue
        return [reviews[i] for i in sorted(kept)], [reviews[i] for i in sorted(out)]
    raise AssertionError("an unstratified split of a valid size cannot fail")


def _strata_levels(reviews: Sequence[Review], task: Task) -> list[list[str]]:
    """Stratum keys from finest to coarsest; keys seen once are pooled as ``rest``."""
    if task is Task.RATING:
        levels = [[str(r.rating) for r in reviews]]
    else:
        frequency = Counter(a.name for r in reviews for a in r.aspects)
        main = [Counter(a.polarity for a in r.aspects).most_common(1)[0][0] if r.aspects else "none" for r in reviews]
        rarest = [min((a.name for a in r.aspects), key=lambda n: (frequency[n], n), default="none") for r in reviews]
        levels = [[f"{name}|{polarity}" for name, polarity in zip(rarest, main, strict=True)], main]
    pooled = []
    for keys in levels:
        counts = Counter(keys)
        pooled.append([key if counts[key] > 1 else "rest" for key in keys])
    return pooled


def file_splits(
    train: str | Path,
    *,
    test: str | Path | None = None,
    validation: str | Path | None = None,
    test_size: float = TEST_SHARE,
    validation_size: float = VALIDATION_SHARE,
    columns: ColumnMap | None = None,
    task: Task | str | None = None,
    categories: tuple[str, ...] | None = None,
    seed: int = 0,
) -> Splits:
    """Train/validation/test splits of a user's labelled files, for the evaluation harness.

    Parameters
    ----------
    train : path of the labelled training file (CSV, TSV, JSONL or Parquet; ``.gz`` text ok).
    test, validation : paths of labelled files with the same columns, optional. Without
        ``test``, a seeded stratified ``test_size`` share of ``train`` is the test split;
        without ``validation``, a ``validation_size`` share of what remains for training.
    columns : which columns hold text, id, rating and aspects (the same in every file).
    task : ``acsa``, ``atsa`` or ``rating``; default: what the columns and labels show.
    categories : the ACSA taxonomy (e.g. a taxonomy file's topics); default: the
        categories of the training file.
    seed : seed of the splits.

    Returns
    -------
    Splits
        Named after the training file's stem, every split with the training file's label space.

    Raises
    ------
    InputDataError
        A file problem (named with its row), a label in the test or validation file
        outside the training file's label space (a category it lacks, another rating
        scale), or a split left empty.
    InvalidParameterError
        A share outside (0, 1) or an unknown task.
    """
    source = str(train)
    columns = columns or ColumnMap()
    train_set = read_reviews(source, columns, categories=categories)
    chosen = _task(task, train_set, columns, source)
    space = train_set.label_space
    name = train_set.name
    check_labels(train_set, space, chosen, source=source)  # a given taxonomy was checked row by row while reading
    held: dict[str, list[Review]] = {}
    for part, path in (("test", test), ("validation", validation)):
        if path is not None:
            # read with its own label space, then checked against the training file's: the
            # message names the review and the training file, the two files that disagree
            reviews = read_reviews(str(path), columns)
            check_labels(reviews, space, chosen, source=str(path), reference=f"the training file {source}")
            held[part] = list(reviews)
    remaining = list(train_set)
    if "test" not in held:
        remaining, held["test"] = stratified_split(remaining, test_size, chosen, seed=seed, source=source, what="test")
    if "validation" not in held:
        remaining, held["validation"] = stratified_split(
            remaining, validation_size, chosen, seed=seed + 1, source=source, what="validation"
        )

    def review_set(reviews: list[Review], part: str) -> ReviewSet:
        return ReviewSet(tuple(reviews), label_space=space, task=chosen, name=f"{name}/{part}", language=train_set.language)

    return Splits(review_set(remaining, "train"), review_set(held["validation"], "val"), review_set(held["test"], "test"))


def _task(task: Task | str | None, reviews: ReviewSet, columns: ColumnMap, source: str) -> Task:
    if task is not None:
        try:
            return Task(task)
        except ValueError:
            raise InvalidParameterError(f"unknown task {task!r}; tasks are {', '.join(t.value for t in Task)}") from None
    found = infer_task(reviews, columns)
    if found is None:
        raise InputDataError(
            f"{source}: no labels to evaluate on; name the rating or aspects column (--rating-col, --aspects-col)"
        )
    return found
