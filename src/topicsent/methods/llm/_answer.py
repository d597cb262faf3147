"""What an LLM must answer about a review, and the strict check of what it did answer.

The model answers one JSON object per review: ``aspects`` (each with ``aspect``,
``polarity``, optional ``evidence`` quote and ``confidence``) for ACSA/ATSA, ``rating``
for the rating task. :func:`answer_schema` is the JSON Schema sent for constrained
decoding (enums carry the taxonomy, polarities and the rating scale, so a constrained
backend cannot leave them); :func:`parse_answer` validates the text with pydantic and
then checks what a schema cannot: categories in the taxonomy, given aspects answered
in order, terms and evidence quotes that occur in the review. Any failure is an
:class:`AnswerError` whose message goes back to the model in the repair turn; nothing
is ever filled in by guessing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from topicsent.data import AspectLabel, LabelSpace, Review
from topicsent.errors import AnswerError
from topicsent.llm import json_object
from topicsent.schema import AspectSentiment, Span, Task

MAX_TERMS = 6  # aspect terms one review is allowed to list


class AnswerAspect(BaseModel):
    model_config = ConfigDict(extra="ignore")

    aspect: str = Field(min_length=1)
    polarity: str
    evidence: str | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    aspects: list[AnswerAspect] = Field(default_factory=list)
    rating: int | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


@dataclass(frozen=True)
class Question:
    """What one review is asked: the task, its label space, the aspects to score when
    they are given (None: the model finds them), and whether to quote evidence."""

    task: Task
    space: LabelSpace
    given: tuple[AspectLabel, ...] | None = None
    evidence: bool = True


@dataclass(frozen=True)
class ParsedAnswer:
    aspects: list[AspectSentiment]
    rating: float | None
    confidence: float | None
    dropped_evidence: int = 0


# ----- schema sent to the model -------------------------------------------------------------


def _aspect_item(question: Question, name: str | None = None) -> dict[str, Any]:
    if name is not None:
        aspect: dict[str, Any] = {"type": "string", "enum": [name]}
    elif question.task is Task.ACSA and question.space.categories:
        aspect = {"type": "string", "enum": list(question.space.categories)}
    else:
        aspect = {"type": "string"}
    properties = {
        "aspect": aspect,
        "polarity": {"type": "string", "enum": list(question.space.polarities)},
        "evidence": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    }
    if not question.evidence:
        del properties["evidence"]
    return {"type": "object", "properties": properties, "required": ["aspect", "polarity", "confidence"]}


def answer_schema(question: Question) -> dict[str, Any]:
    """The JSON Schema of one review's answer to ``question``."""
    if question.task is Task.RATING:
        low, high = question.space.rating_scale or (1, 5)
        return {
            "type": "object",
            "properties": {
                "rating": {"type": "integer", "enum": list(range(low, high + 1))},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["rating", "confidence"],
        }
    if question.given is not None:
        names = [aspect.name for aspect in question.given]
        aspects = {
            "type": "array",
            "prefixItems": [_aspect_item(question, name) for name in names],
            "items": False,
            "minItems": len(names),
            "maxItems": len(names),
        }
    else:  # bounded: a small model in a repetition loop must still close its JSON
        most = len(question.space.categories) if question.task is Task.ACSA and question.space.categories else MAX_TERMS
        aspects = {"type": "array", "items": _aspect_item(question), "maxItems": most}
    return {"type": "object", "properties": {"aspects": aspects}, "required": ["aspects"]}


def batch_schema(item_schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """Several reviews in one prompt: a ``reviews`` array, one answer per position."""
    items = [
        schema | {"properties": {"review": {"type": "integer", "enum": [number]}} | schema["properties"],
                  "required": ["review", *schema["required"]]}
        for number, schema in enumerate(item_schemas, start=1)
    ]  # fmt: skip
    return {
        "type": "object",
        "properties": {"reviews": {"type": "array", "prefixItems": items, "items": False,
                                   "minItems": len(items), "maxItems": len(items)}},
        "required": ["reviews"],
    }  # fmt: skip


# ----- parsing and checking -------------------------------------------------------------------


def locate(quote: str, text: str) -> Span | None:
    """Where ``quote`` occurs in ``text``: exactly, else ignoring case and runs of whitespace."""
    quote = quote.strip()
    if not quote:
        return None
    position = text.find(quote)
    if position >= 0:
        return Span(start=position, end=position + len(quote))
    pattern = r"\s+".join(re.escape(word) for word in quote.split())
    match = re.search(pattern, text, flags=re.IGNORECASE)
    return Span(start=match.start(), end=match.end()) if match else None


def split_batch(text: str, count: int) -> list[dict[str, Any] | AnswerError]:
    """The per-review objects of a batched answer (position i is review i + 1); a
    missing or malformed one is an :class:`AnswerError` for that review only."""
    try:
        items = json_object(text).get("reviews")
    except AnswerError as error:
        return [error] * count
    found: dict[int, dict[str, Any]] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("review"), int):
            found.setdefault(item["review"], item)
    return [found.get(number) or AnswerError(f"no answer for review {number}") for number in range(1, count + 1)]


def parse_answer(answer: str | dict[str, Any], review: Review, question: Question) -> ParsedAnswer:
    """Validate an answer (text or an already-split object) against ``question``.

    Raises :class:`AnswerError` listing every problem. An evidence quote that does not
    occur in the review is not a reason to reject the labels (small models paraphrase);
    it is dropped and counted, never kept as if it were a quote.
    """
    data = json_object(answer) if isinstance(answer, str) else answer
    try:
        parsed = Answer.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise AnswerError(f"the answer does not follow the schema: {problems}") from None
    if question.task is Task.RATING:
        return ParsedAnswer([], _checked_rating(parsed.rating, question.space), parsed.confidence)
    problems: list[str] = []
    aspects, dropped = _checked_aspects(parsed.aspects, review, question, problems)
    if problems:
        raise AnswerError("; ".join(problems))
    return ParsedAnswer(aspects, None, None, dropped)


def _checked_rating(rating: int | None, space: LabelSpace) -> float:
    low, high = space.rating_scale or (1, 5)
    if rating is None or not low <= rating <= high:
        raise AnswerError(f"'rating' must be an integer from {low} to {high}, got {rating!r}")
    return float(rating)


def _checked_aspects(
    answered: list[AnswerAspect], review: Review, question: Question, problems: list[str]
) -> tuple[list[AspectSentiment], int]:
    kind = "term" if question.task is Task.ATSA else "category"
    if question.given is not None:
        expected = [a.name for a in question.given]
        if [a.aspect for a in answered] != expected:
            problems.append(f"answer exactly these aspects, in this order: {json.dumps(expected, ensure_ascii=False)}")
            return [], 0
    results, dropped, seen = [], 0, set()
    for position, item in enumerate(answered):
        if item.polarity not in question.space.polarities:
            problems.append(f"polarity {item.polarity!r} of {item.aspect!r} is not one of {', '.join(question.space.polarities)}")
            continue
        if kind == "category" and question.space.categories and item.aspect not in question.space.categories:
            problems.append(f"{item.aspect!r} is not a category; use only: {', '.join(question.space.categories)}")
            continue
        span = _aspect_span(item, review, question, position, problems)
        evidence_span = locate(item.evidence, review.text) if item.evidence else None
        dropped += bool(item.evidence and evidence_span is None)
        key = (item.aspect.lower(), span.start if span else None)
        if key in seen and question.given is None:
            continue  # the same aspect twice: keep its first answer
        seen.add(key)
        quote_span = span or evidence_span
        results.append(
            AspectSentiment(
                aspect=item.aspect, kind=kind, polarity=item.polarity,
                confidence=item.confidence,
                evidence=review.text[quote_span.start : quote_span.end] if quote_span else None, span=quote_span,
            )
        )  # fmt: skip
    return results, dropped


def _aspect_span(item: AnswerAspect, review: Review, question: Question, position: int, problems: list[str]) -> Span | None:
    """A term's place in the review: the given span, else where the term occurs."""
    if question.task is not Task.ATSA:
        return None
    if question.given is not None:
        given = question.given[position]
        return Span(start=given.start, end=given.end) if given.start is not None and given.end is not None else None
    span = locate(item.aspect, review.text)
    if span is None:
        problems.append(f"term {item.aspect!r} does not occur in the review; terms must be words copied from it")
    return span


def gold_answer(review: Review, question: Question) -> dict[str, Any]:
    """The answer a perfect model would give for a labelled review: few-shot examples
    and instruction-tuning targets use it, so they teach exactly the format the schema
    asks for (a gold label is certain: confidence 1)."""
    if question.task is Task.RATING:
        return {"rating": int(review.rating), "confidence": 1.0}
    aspects = []
    for aspect in review.aspects:
        item: dict[str, Any] = {"aspect": aspect.name, "polarity": aspect.polarity}
        if question.evidence and aspect.kind == "term" and aspect.start is not None:
            item["evidence"] = review.text[aspect.start : aspect.end]
        aspects.append(item | {"confidence": 1.0})
    return {"aspects": aspects}
