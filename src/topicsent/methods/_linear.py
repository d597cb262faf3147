"""Fitted linear models as plain arrays: fast to save and load, and safe to load.

scikit-learn fits the models; what prediction needs (coefficients, intercepts,
classes) is kept here as numpy arrays, saved with ``np.savez`` and read back with
``allow_pickle=False``, so loading a model directory can never execute code, and a
large vocabulary saves in a second instead of the minute a generic serializer took.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax

#: Intercept magnitude that stands in for "always" / "never" (sigmoid(30) = 1 - 1e-13).
CERTAIN_LOGIT = 30.0


@dataclass(frozen=True)
class LinearModel:
    """``coef`` has shape ``(n_outputs, n_features)``; ``classes`` labels the outputs
    of a classifier (for a binary classifier one row scores ``classes[1]``)."""

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray | None = None

    @classmethod
    def from_sklearn(cls, model) -> LinearModel:
        coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
        classes = getattr(model, "classes_", None)
        return cls(coef, np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64)), classes)

    @classmethod
    def constant(cls, n_features: int, positive: bool) -> LinearModel:
        """A binary model that always answers the same (a label no training row varied in)."""
        intercept = np.array([CERTAIN_LOGIT if positive else -CERTAIN_LOGIT])
        return cls(np.zeros((1, n_features)), intercept, np.array([0, 1]))

    def scores(self, features) -> np.ndarray:
        return np.asarray(features @ self.coef.T) + self.intercept

    def predict_proba(self, features) -> np.ndarray:
        """Class probabilities, columns in ``classes`` order (logistic or softmax)."""
        scores = self.scores(features)
        if scores.shape[1] == 1:
            positive = expit(scores[:, 0])
            return np.column_stack([1.0 - positive, positive])
        return softmax(scores, axis=1)

    def predict_value(self, features) -> np.ndarray:
        """The regression output (single-output models)."""
        return self.scores(features)[:, 0]

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        arrays = {f"{prefix}.coef": self.coef, f"{prefix}.intercept": self.intercept}
        if self.classes is not None:
            arrays[f"{prefix}.classes"] = np.asarray(self.classes)
        return arrays

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> LinearModel:
        return cls(arrays[f"{prefix}.coef"], arrays[f"{prefix}.intercept"], arrays.get(f"{prefix}.classes"))
