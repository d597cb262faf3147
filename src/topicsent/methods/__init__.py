"""Methods: estimators that share one contract and one output schema.

Every registered method class is importable from here (``from topicsent.methods
import LlmMethod``); a class is loaded on first use, so methods with heavy
dependencies cost nothing until asked for.
"""

from typing import Any

from topicsent.methods._adapt import AdaptConfig, AdaptReport, adapt_encoder, read_corpus
from topicsent.methods._base import BaseMethod
from topicsent.methods._calibration import answer_correctness, review_confidence
from topicsent.methods._cascade import (
    StageOutcomes,
    answers_per_review,
    confidence_levels,
    route,
    routed_accuracy,
    split_holdout,
)
from topicsent.methods._majority import MajorityMethod
from topicsent.methods._pipeline import AspectPipelineMethod
from topicsent.methods._registry import (
    changed_params,
    make_method,
    method_class,
    method_class_names,
    method_names,
    method_spec,
    parse_method_spec,
    parse_methods,
    spec_params,
    split_method_specs,
)
from topicsent.methods._tfidf_lr import TfidfLRMethod

#: Eager names and the built-in method classes; a plug-in's classes load through
#: ``__getattr__`` the same way.
__all__ = [
    "AdaptConfig", "AdaptReport", "AspectPipelineMethod", "BaseMethod", "CascadeMethod", "EmbedHeadMethod",
    "ExtractMethod", "FinetuneMethod", "LdaMethod", "LlmMethod", "MajorityMethod", "SetFitMethod", "SftMethod",
    "StackMethod", "StageOutcomes", "TfidfLRMethod", "adapt_encoder", "answer_correctness", "answers_per_review",
    "changed_params", "confidence_levels", "make_method", "method_class", "method_class_names", "method_names",
    "method_spec", "parse_method_spec", "parse_methods", "read_corpus", "review_confidence", "route",
    "routed_accuracy", "spec_params", "split_holdout", "split_method_specs",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in (classes := method_class_names()):
        value = method_class(classes[name])
        globals()[name] = value
        return value
    raise AttributeError(f"module 'topicsent.methods' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *method_class_names()})
