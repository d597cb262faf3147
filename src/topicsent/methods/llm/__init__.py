"""The prompted LLM methods (``llm``, ``sft``) and what they ask and read: the prompt
templates, the answer schema and its strict parser, few-shot examples, SFT data and
LoRA tuning. They reach a model only through the backend layer, :mod:`topicsent.llm`.
"""

from topicsent.methods.llm._answer import (
    ParsedAnswer,
    Question,
    answer_schema,
    batch_schema,
    gold_answer,
    locate,
    parse_answer,
    split_batch,
)
from topicsent.methods.llm._prompts import TEMPLATES, Example, PromptSet
from topicsent.methods.llm._sft_data import FILE_FORMATS, FORMS, OPENAI_MIN_EXAMPLES, sft_examples, write_sft

__all__ = [
    "FILE_FORMATS",
    "FORMS",
    "OPENAI_MIN_EXAMPLES",
    "TEMPLATES",
    "Example",
    "LlmMethod",
    "ParsedAnswer",
    "PromptSet",
    "Question",
    "SftMethod",
    "answer_schema",
    "batch_schema",
    "gold_answer",
    "locate",
    "parse_answer",
    "sft_examples",
    "split_batch",
    "write_sft",
]  # fmt: skip


def __getattr__(name: str):
    """The method classes on first use (``sft`` pulls in its tuning code)."""
    if name == "LlmMethod":
        from topicsent.methods.llm._llm import LlmMethod

        return LlmMethod
    if name == "SftMethod":
        from topicsent.methods.llm._sft import SftMethod

        return SftMethod
    raise AttributeError(f"module 'topicsent.methods.llm' has no attribute {name!r}")
