"""Instruction-tuning examples in chat format, built with the `llm` method's own prompts.

Each example is the exact conversation the `llm` method sends (system instructions
from the same versioned templates, the review) followed by the answer it should get
(:func:`~topicsent.methods.llm._answer.gold_answer`, the format the parser accepts), so a model
tuned on them answers the way the parser expects. ACSA/ATSA reviews give two forms:
``detect`` (the model finds the aspects) and ``given`` (it rates the aspects it is told).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from topicsent.data import ReviewSet
from topicsent.errors import InvalidParameterError
from topicsent.methods.llm._answer import Question, gold_answer
from topicsent.methods.llm._prompts import PromptSet, prompt_language
from topicsent.schema import Task

FORMS = ("detect", "given")
#: ``topicsent``: each chat with its review id, form and prompt hash (what the ``sft``
#: method's ``sft_file`` reads); ``openai``: the chat alone, the JSONL that OpenAI's
#: fine-tuning API takes (one ``{"messages": [...]}`` object per line).
FILE_FORMATS = ("topicsent", "openai")
#: OpenAI refuses a fine-tuning file with fewer examples than this.
OPENAI_MIN_EXAMPLES = 10


def sft_examples(
    reviews: ReviewSet, task: Task, *, forms: Sequence[str] = FORMS, evidence: bool = False, prompts: PromptSet | None = None
) -> Iterator[dict]:
    """One chat example per review and form: ``{"messages": [...], "review_id", "form", "prompt_hash"}``;
    ``prompts``: the `llm` method's settings (default: its defaults for the reviews' language)."""
    unknown = set(forms) - set(FORMS)
    if unknown:
        raise InvalidParameterError(f"unknown SFT form(s) {', '.join(sorted(unknown))}; forms are {', '.join(FORMS)}")
    prompts = prompts or PromptSet(prompt_language(reviews.language))
    for review in reviews:
        if (task is Task.RATING and review.rating is None) or (task is not Task.RATING and not review.aspects):
            continue
        for form in forms if task is not Task.RATING else ("detect",):
            given = tuple(review.aspects) if form == "given" else None
            question = Question(task, reviews.label_space, given, evidence)
            messages = prompts.messages(question, [(review, given)], [])
            answer = json.dumps(gold_answer(review, question), ensure_ascii=False)
            yield {
                "messages": [*messages, {"role": "assistant", "content": answer}],
                "review_id": review.id, "form": form, "prompt_hash": prompts.hash,
            }  # fmt: skip


def write_sft(examples: Iterator[dict], path: Path, *, file_format: str = "topicsent") -> int:
    """Write examples as JSONL (UTF-8, Korean readable) in ``file_format`` (one of
    :data:`FILE_FORMATS`); returns the count.

    Raises
    ------
    InvalidParameterError
        An unknown ``file_format``.
    """
    if file_format not in FILE_FORMATS:
        raise InvalidParameterError(f"unknown SFT file format {file_format!r}; formats are {', '.join(FILE_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            line = {"messages": example["messages"]} if file_format == "openai" else example
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
    return count
