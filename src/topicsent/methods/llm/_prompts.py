"""Prompt templates (Jinja2 files in ``prompts/``, English and Korean) turned into chat messages.

Templates are files so they can be read, diffed and versioned like code; the hash of
a language's templates is part of every cache key, so editing a prompt never serves
answers written for the old one. The instructions and the few-shot examples come
before the review, so a local model reuses that prefix from its KV cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import jinja2

from topicsent.data import Review
from topicsent.errors import InvalidParameterError
from topicsent.llm._answer import Question

LANGUAGES = ("en", "ko")
TEMPLATES = ("system", "user", "repair", "topic")

Message = dict[str, str]


@dataclass(frozen=True)
class Example:
    """A labelled review shown to the model, with the answer it should have given."""

    review: Review
    answer: dict

    def messages(self, prompts: PromptSet, question: Question) -> list[Message]:
        given = tuple(self.review.aspects) if question.given is not None else None
        return [
            {"role": "user", "content": prompts.user([(self.review, given)], batch=False)},
            {"role": "assistant", "content": json.dumps(self.answer, ensure_ascii=False)},
        ]


@dataclass(frozen=True)
class PromptSet:
    """The templates of one language."""

    language: str
    max_review_chars: int = 2000
    descriptions: dict[str, str] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """sha256 (first 16 hex digits) of this language's template files."""
        return _templates_hash(self.language)

    def system(self, question: Question, *, batch: bool) -> str:
        low, high = question.space.rating_scale or (1, 5)
        return _template(self.language, "system").render(
            task=question.task.value, categories=question.space.categories or (), descriptions=self.descriptions,
            polarities=question.space.polarities, low=low, high=high, given=question.given is not None, batch=batch,
            evidence=question.evidence,
        ).strip()  # fmt: skip

    def user(self, reviews: Sequence[tuple[Review, Sequence | None]], *, batch: bool) -> str:
        """The review(s) to answer; long texts are cut to ``max_review_chars`` (the
        context window is small), which the answer checks never see as missing."""
        items = [
            {"text": review.text[: self.max_review_chars], "given": [a.name for a in given] if given else None}
            for review, given in reviews
        ]
        return _template(self.language, "user").render(reviews=items, batch=batch).strip()

    def topic(self, keywords: Sequence[str], examples: Sequence[str], taken: Sequence[str]) -> str:
        """Ask for the name and description of one discovered topic."""
        shown = [example[: self.max_review_chars // 4] for example in examples]
        return _template(self.language, "topic").render(keywords=keywords, examples=shown, taken=taken).strip()

    def repair(self, problem: str) -> str:
        return _template(self.language, "repair").render(problem=problem).strip()

    def messages(
        self, question: Question, reviews: Sequence[tuple[Review, Sequence | None]], examples: Sequence[Example]
    ) -> list[Message]:
        """System instructions, the examples as earlier turns, then the review(s)."""
        batch = len(reviews) > 1
        messages = [{"role": "system", "content": self.system(question, batch=batch)}]
        if batch and examples:  # examples answered the way the batch must be: one numbered turn
            shown = [(e.review, e.review.aspects if question.given is not None else None) for e in examples]
            answers = {"reviews": [{"review": i} | e.answer for i, e in enumerate(examples, start=1)]}
            messages += [
                {"role": "user", "content": self.user(shown, batch=True)},
                {"role": "assistant", "content": json.dumps(answers, ensure_ascii=False)},
            ]
        else:
            for example in examples:
                messages.extend(example.messages(self, question))
        messages.append({"role": "user", "content": self.user(reviews, batch=batch)})
        return messages


def prompt_language(language: str | None) -> str:
    """The template language for reviews in ``language`` (English for languages without templates)."""
    return language if language in LANGUAGES else "en"


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise InvalidParameterError(f"no prompt templates for language {language!r}; available: {', '.join(LANGUAGES)}")
    return language


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def _template_text(language: str, name: str) -> str:
    return resources.files("topicsent.llm").joinpath("prompts", f"{name}.{language}.j2").read_text(encoding="utf-8")


@cache
def _template(language: str, name: str) -> jinja2.Template:
    return _environment().from_string(_template_text(check_language(language), name))


@cache
def _templates_hash(language: str) -> str:
    digest = hashlib.sha256()
    for name in TEMPLATES:
        digest.update(_template_text(check_language(language), name).encode())
    return digest.hexdigest()[:16]
