"""Labels for unlabelled reviews from one or more trained teachers, kept only when sure.

A teacher is any saved topicsent model, typically an ``llm`` model (its cache, cost
budget and ``unparsed`` handling come with it), but a fine-tuned encoder works the same.
A review keeps its teacher labels only when every teacher answered (status ``ok``),
every answer is at least ``min_confidence`` sure, and all teachers agree exactly (same
aspects with the same polarities, or the same rating). With ``agree_on="aspect"`` a
review keeps the aspects every teacher found with the same polarity, each sure enough:
teachers that detect aspects differently still agree on most polarities, but such a
review's aspect list is then incomplete, so it suits "rate these aspects" data (the
``given`` SFT form) and polarity students, not detection. What is kept feeds
:func:`~topicsent.methods.llm._sft_data.sft_examples` (instruction data for a small model) or the
training of a student method (distillation).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from topicsent.data import AspectLabel, Review, ReviewSet
from topicsent.errors import InvalidParameterError
from topicsent.methods import BaseMethod, review_confidence
from topicsent.schema import ReviewAnalysis, Task


@dataclass
class TeacherLabels:
    """The reviews that kept teacher labels, and why the others were dropped."""

    reviews: ReviewSet
    asked: int
    dropped: Counter[str] = field(default_factory=Counter)


AGREEMENT = ("review", "aspect")


def teacher_labels(
    teachers: Sequence[BaseMethod], reviews: ReviewSet, *, min_confidence: float = 0.0, agree_on: str = "review"
) -> TeacherLabels:
    """Ask every teacher about every review (text only); keep the sure, agreed answers as labels."""
    if not teachers:
        raise InvalidParameterError("give at least one teacher model")
    if agree_on not in AGREEMENT:
        raise InvalidParameterError(f"agree_on must be one of {', '.join(AGREEMENT)}; got {agree_on!r}")
    first = teachers[0]
    for teacher in teachers[1:]:
        if teacher.task_ is not first.task_ or teacher.label_space_ != first.label_space_:
            raise InvalidParameterError(f"teachers disagree on the task or labels: {first.name} vs {teacher.name}")
    texts = reviews.text_only()
    answers = [teacher.predict(texts) for teacher in teachers]
    kept, dropped = [], Counter()
    per_aspect = agree_on == "aspect" and first.task_ is not Task.RATING
    for review, together in zip(texts, zip(*answers, strict=True), strict=True):
        if per_aspect:
            together = _agreed_aspects(together, min_confidence)
        reason = _drop_reason(together, first.task_, min_confidence)
        if reason:
            dropped[reason] += 1
        else:
            kept.append(_labelled(review, together[0], first.task_))
    labelled = replace(reviews, reviews=tuple(kept), task=first.task_, label_space=first.label_space_)
    return TeacherLabels(labelled, len(reviews), dropped)


def _drop_reason(answers: Sequence[ReviewAnalysis], task: Task, min_confidence: float) -> str | None:
    if any(a.status != "ok" for a in answers):
        return "a teacher gave no answer (unparsed, error, abstained)"
    if task is not Task.RATING and not answers[0].aspects:
        return "no aspect found or agreed on"
    confidences = [review_confidence(a) for a in answers]
    if min_confidence > 0 and any(c is None or c < min_confidence for c in confidences):
        return f"confidence below {min_confidence:g}"
    if len({_label_key(a, task) for a in answers}) > 1:
        return "teachers disagree"
    return None


def _agreed_aspects(answers: Sequence[ReviewAnalysis], min_confidence: float) -> list[ReviewAnalysis]:
    """Each answer cut down to the aspects every teacher gave with the same polarity and
    at least ``min_confidence``; unchanged when a teacher did not answer."""
    if any(a.status != "ok" for a in answers):
        return list(answers)
    sure = [{_aspect_key(s) for s in a.aspects if s.confidence is None or s.confidence >= min_confidence} for a in answers]
    agreed = set.intersection(*sure)
    return [a.model_copy(update={"aspects": [s for s in a.aspects if _aspect_key(s) in agreed]}) for a in answers]


def _aspect_key(aspect) -> tuple:
    return (aspect.aspect, aspect.polarity, aspect.span.start if aspect.span else None)


def _label_key(analysis: ReviewAnalysis, task: Task) -> tuple:
    if task is Task.RATING:
        return (round(analysis.overall.rating),)
    return tuple(sorted(_aspect_key(a) for a in analysis.aspects))


def _labelled(review: Review, answer: ReviewAnalysis, task: Task) -> Review:
    if task is Task.RATING:
        return replace(review, rating=round(answer.overall.rating))
    kind = "term" if task is Task.ATSA else "category"
    aspects = tuple(
        AspectLabel(a.aspect, kind, a.polarity, a.span.start if a.span else None, a.span.end if a.span else None)
        for a in answer.aspects
    )
    return replace(review, aspects=aspects)
