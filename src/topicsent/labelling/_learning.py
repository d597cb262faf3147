"""Learning from a project's labels: retraining, the learning curve measured on the
held-out slice, the queue planned by the active-learning strategy, and the pieces the
active-learning benchmark shares with the page (the training set a few labels make,
the held-out accuracy; the strategy itself is in :mod:`topicsent.labelling._strategy`)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from typing import Any

from topicsent.data import ReviewSet
from topicsent.errors import InputDataError
from topicsent.eval import polarity_scores, rating_scores
from topicsent.labelling._project import MODEL_DIR, LabelProject
from topicsent.labelling._strategy import QueryStrategy, pool_vectors
from topicsent.methods import BaseMethod, make_method
from topicsent.schema import Task

#: The learning curve has a point at 10, 20, 40, ... training labels and one at all of them.
CURVE_START = 10
#: Reviews the strategy plans ahead when the model changes (a batch between two retrains);
#: after them the queue goes on most uncertain first.
QUEUE_BATCH = 50
STRATEGY = QueryStrategy()


def trainable(reviews: ReviewSet, method: BaseMethod) -> ReviewSet:
    """``reviews`` as a training set for ``method``: for an ACSA method that learns each
    category, the taxonomy is cut to the categories some label mentions, since a model
    cannot learn a category it never saw (the page still offers all of them)."""
    if reviews.task is not Task.ACSA or not method.learns_each_category or reviews.label_space.categories is None:
        return reviews
    seen = {a.name for r in reviews for a in r.aspects}
    kept = tuple(c for c in reviews.label_space.categories if c in seen)
    return replace(reviews, label_space=replace(reviews.label_space, categories=kept))


def held_out_accuracy(model: BaseMethod, held_out: ReviewSet) -> float | None:
    """Accuracy of a fitted model on labelled reviews it did not train on: of each
    aspect's polarity, the aspects given (an aspect whose category the model never
    learned counts as wrong), or of the rating. None when there is nothing to score."""
    if model.task_ is Task.RATING:
        if not len(held_out):
            return None
        return rating_scores(held_out, model.predict(held_out.text_only()), held_out.label_space)["accuracy"]
    total = sum(len(r.aspects) for r in held_out)
    if not total:
        return None
    known = set(model.label_space_.categories or ())
    scored = held_out.with_reviews([replace(r, aspects=tuple(a for a in r.aspects if a.name in known)) for r in held_out])
    scored = scored.with_reviews([r for r in scored if r.aspects])
    if not scored:
        return 0.0
    metrics = polarity_scores(scored, model.predict_labelled(scored), held_out.label_space.polarities)
    return metrics["polarity_accuracy"] * metrics["n_aspects"] / total


def curve_sizes(n: int) -> list[int]:
    """Training-set sizes of the learning curve for ``n`` labels: 10, 20, 40, ... below ``n``, then ``n``."""
    sizes, size = [], CURVE_START
    while size < n:
        sizes.append(size)
        size *= 2
    return [*sizes, n] if n else []


def fit_labels(method: BaseMethod, reviews: ReviewSet) -> BaseMethod:
    """A clone of ``method`` fitted on ``reviews`` (see :func:`trainable`)."""
    return method.clone().fit(trainable(reviews, method))


def retrain(project: LabelProject, method: str | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the project's method on its labels outside the held-out slice, measure the
    learning curve on the slice (a fresh model on the first 10, 20, 40, ... labels, then
    all), save the model in the project's folder, and let its answers pre-fill the page
    and order the queue.

    Returns
    -------
    dict
        The model's record: method, labels, held_out, accuracy, curve (list of
        ``{"labels", "accuracy"}``) and a note (categories not learned yet).

    Raises
    ------
    InputDataError
        No labels to train on yet, or labels no model can learn from (one polarity or
        rating only), naming the project.
    """
    name = method or project.method
    learner = make_method(name, **(params or {}))
    train, held_out = project.labelled(held_out=False), project.labelled(held_out=True)
    if not len(train):
        raise InputDataError(f"project {project.name!r}: no labels outside the held-out slice yet; label a few reviews first")
    try:
        model = fit_labels(learner, train)
    except InputDataError as error:
        raise InputDataError(f"project {project.name!r}: cannot train yet: {str(error).split(': ', 1)[-1]}") from None
    curve = []
    for size in curve_sizes(len(train))[:-1]:
        try:
            smaller = fit_labels(learner, train[:size])
        except InputDataError:  # too few kinds of labels in the first ones: no point there
            continue
        curve.append({"labels": size, "accuracy": held_out_accuracy(smaller, held_out)})
    accuracy = held_out_accuracy(model, held_out)
    curve.append({"labels": len(train), "accuracy": accuracy})
    _replace_model(model, project)
    refresh_queue(project, model, trained_on=len(train))
    missing = [c for c in project.space.categories or () if c not in (model.label_space_.categories or ())]
    note = f"not learned yet (no label mentions them): {', '.join(missing)}" if missing and project.task is Task.ACSA else None
    project.record_model(method=name, labels=len(train), held_out=len(held_out), accuracy=accuracy, curve=curve, note=note)
    return {"method": name, "labels": len(train), "held_out": len(held_out), "accuracy": accuracy, "curve": curve, "note": note}


def prefill(project: LabelProject, model: BaseMethod) -> bool:
    """Let a fitted model that fits the project (same task; for ACSA, at least one of its
    categories in the taxonomy; for ratings, the same scale) pre-fill the page and order
    the queue before the project has a model of its own. Returns whether it did."""
    fits = model.task_ is project.task and (
        bool(set(model.label_space_.categories or ()) & set(project.space.categories or ()))
        if project.task is Task.ACSA
        else model.label_space_.rating_scale == project.space.rating_scale
    )
    if fits:
        refresh_queue(project, model, trained_on=None)
    return fits


def refresh_queue(
    project: LabelProject, model: BaseMethod, *, trained_on: int | None, strategy: QueryStrategy = STRATEGY
) -> list[str]:
    """Let ``model``'s answers pre-fill the page and plan the queue over the unlabelled
    reviews outside the held-out slice, as ``strategy`` picks them: random ones until
    its ``random_start`` labels are reached (``trained_on``: the labels ``model`` was
    trained on; None for a model trained elsewhere, which is not cold), then a batch
    of :data:`QUEUE_BATCH`; after the plan, most uncertain first. Returns the planned
    review ids, in order."""
    reviews = project.reviews()
    analyses = model.predict(reviews)
    categories = project.space.categories if project.task is Task.ACSA else None
    unsure = strategy.uncertainty(model, reviews, analyses, categories=categories)
    pool = project.queue_pool()
    row_of = {review.id: row for row, review in enumerate(reviews)}
    rows = [row_of[rid] for rid in pool]
    language = max(("en", "ko"), key=[r.language for r in reviews].count)
    batch = QUEUE_BATCH + strategy.random_picks(len(rows), trained_on)  # a cold model plans the rest of the random start too
    picks = strategy.select(
        batch, uncertainty=unsure[rows], vectors=pool_vectors([reviews[row].text for row in rows], language),
        random_order=range(len(rows)), trained_on=trained_on,
    )  # fmt: skip
    planned = [pool[p] for p in picks]
    project.set_predictions(analyses, model.name, uncertainty=unsure, priority={rid: n for n, rid in enumerate(planned)})
    return planned


def _replace_model(model: BaseMethod, project: LabelProject) -> None:
    """Save beside the old model, then swap, so a crash mid-save leaves a whole model."""
    target = project.folder / MODEL_DIR
    fresh, old = target.with_name(MODEL_DIR + ".new"), target.with_name(MODEL_DIR + ".old")
    shutil.rmtree(fresh, ignore_errors=True)
    model.save(fresh)
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)
