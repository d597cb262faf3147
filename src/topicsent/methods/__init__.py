"""Methods: estimators that share one contract and one output schema."""

from topicsent.methods._base import BaseMethod
from topicsent.methods._calibration import review_confidence
from topicsent.methods._majority import MajorityMethod
from topicsent.methods._pipeline import AspectPipelineMethod
from topicsent.methods._registry import (
    make_method,
    method_class,
    method_class_names,
    method_names,
    parse_method_spec,
    split_method_specs,
)
from topicsent.methods._tfidf_lr import TfidfLRMethod

__all__ = [
    "AspectPipelineMethod", "BaseMethod", "MajorityMethod", "TfidfLRMethod",
    "make_method", "method_class", "method_class_names", "method_names", "parse_method_spec", "review_confidence",
    "split_method_specs",
]  # fmt: skip
