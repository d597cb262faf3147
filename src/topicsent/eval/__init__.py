"""The evaluation harness and its metrics."""

from topicsent.eval._harness import MethodResult, evaluate_method, run_evaluation, score, write_run
from topicsent.eval._metrics import (
    detection_scores,
    expected_calibration_error,
    polarity_scores,
    primary_metric,
    rating_scores,
    triplet_scores,
)

__all__ = [
    "MethodResult", "detection_scores", "evaluate_method", "expected_calibration_error", "polarity_scores", "primary_metric",
    "rating_scores", "run_evaluation", "score", "triplet_scores", "write_run",
]  # fmt: skip
