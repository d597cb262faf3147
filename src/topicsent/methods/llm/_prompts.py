"""Prompt templates (Jinja2 files in ``prompts/``, English and Korean) turned into chat messages.

Templates are files so they can be read, diffed and versioned like code; the hash of
the files a review prompt is rendered from is part of every cache key, so editing one
never serves answers written for the old one (and editing another prompt, such as
topic naming's, invalidates nothing here). The instructions and the few-shot examples come
before the review, so a local model reuses that prefix from its KV cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from topicsent.data import Review
from topicsent.llm import REPAIR_TEMPLATE, prompt_language, repair_message, template, templates_hash
from topicsent.methods.llm._answer import Question

PACKAGE = "topicsent.methods.llm"
#: The files a review prompt is rendered from, so its hash (a cache-key part) covers only them.
TEMPLATES = ((PACKAGE, "system"), (PACKAGE, "user"), REPAIR_TEMPLATE)
__all__ = ["TEMPLATES", "Example", "PromptSet", "prompt_language"]

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
        """sha256 (first 16 hex digits) of the template files review prompts are rendered
        from (not the topic-naming prompt: editing it keeps these answers cached)."""
        return templates_hash(self.language, *TEMPLATES)

    def system(self, question: Question, *, batch: bool) -> str:
        low, high = question.space.rating_scale or (1, 5)
        return template(PACKAGE, "system", self.language).render(
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
        return template(PACKAGE, "user", self.language).render(reviews=items, batch=batch).strip()

    def repair(self, problem: str) -> str:
        return repair_message(problem, self.language)

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
