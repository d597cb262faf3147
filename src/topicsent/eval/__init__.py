"""The evaluation harness, its metrics, and the topic-model comparison."""

from topicsent._provenance import git_commit
from topicsent.eval._harness import MethodChoice, MethodResult, evaluate_method, run_evaluation, score, write_run
from topicsent.eval._topics import CLUSTERING, OUTLIER_RULES, evaluate_topic_models
from topicsent.metrics import (
    detection_scores,
    expected_calibration_error,
    polarity_scores,
    primary_metric,
    rating_scores,
    triplet_scores,
)

__all__ = [
    "CLUSTERING",
    "OUTLIER_RULES",
    "MethodChoice",
    "MethodResult",
    "detection_scores",
    "evaluate_method",
    "evaluate_topic_models",
    "expected_calibration_error",
    "git_commit",
    "polarity_scores",
    "primary_metric",
    "rating_scores",
    "run_evaluation",
    "score",
    "triplet_scores",
    "write_run",
]  # fmt: skip
