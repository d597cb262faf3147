"""Fitted linear models as plain arrays: fast to save and load, and safe to load.

scikit-learn fits the models; what prediction needs (coefficients, intercepts,
classes) is kept here as numpy arrays, saved with ``np.savez`` and read back with
``allow_pickle=False``, so loading a model directory can never execute code, and a
large vocabulary saves in a second instead of the minute a generic serializer took.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit, softmax

from topicsent.errors import ModelFileError
from topicsent.methods._files import check_array, load_arrays

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


def fit_classifier(features, labels, *, C: float, seed: int) -> LinearModel:
    """Logistic regression (saga: ~10x faster than lbfgs on large sparse TF-IDF here, and seeded)."""
    from sklearn.linear_model import LogisticRegression

    return LinearModel.from_sklearn(
        LogisticRegression(C=C, solver="saga", max_iter=1000, random_state=seed).fit(features, labels)
    )


def fit_binary(features, targets: np.ndarray, *, C: float, seed: int) -> LinearModel:
    """A yes/no model; a target that never varies in training stays a constant."""
    if 0 < targets.sum() < len(targets):
        return fit_classifier(features, targets, C=C, seed=seed)
    return LinearModel.constant(features.shape[1], positive=bool(targets[0]))


def fit_rater(features, ratings: np.ndarray, *, mode: str, C: float, seed: int) -> LinearModel:
    """Ratings as classes (``classify``) or as numbers (``regress``: ridge with alpha 1/C)."""
    if mode == "regress":
        from sklearn.linear_model import Ridge

        return LinearModel.from_sklearn(Ridge(alpha=1.0 / C, random_state=seed).fit(features, ratings))
    return fit_classifier(features, ratings, C=C, seed=seed)


def rating_proba(model: LinearModel, features, scale: np.ndarray) -> np.ndarray:
    """Class probabilities over the whole rating scale (ratings unseen in training get 0)."""
    proba = np.zeros((features.shape[0], len(scale)))
    proba[:, np.searchsorted(scale, model.classes)] = model.predict_proba(features)
    return proba


def predict_ratings(model: LinearModel, features, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Ratings on the scale and their confidence (None for a regression)."""
    if model.classes is None:
        return np.clip(np.rint(model.predict_value(features)), scale.min(), scale.max()), None
    proba = rating_proba(model, features, scale)
    return scale[proba.argmax(axis=1)], proba.max(axis=1)


def save_models(path: Path, models: dict[str, LinearModel], **arrays: np.ndarray) -> None:
    """Linear models (and extra arrays) in one ``.npz``."""
    packed = dict(arrays)
    for name, model in models.items():
        packed |= model.to_arrays(name)
    np.savez(path, **packed)


def load_models(path: Path) -> tuple[dict[str, LinearModel], dict[str, np.ndarray]]:
    """What :func:`save_models` wrote: models by name, and the extra arrays, each model
    checked whole (finite float coefficients, one intercept and one class per output).

    Raises
    ------
    ModelFileError
        ``path`` is missing or damaged, naming it and the array.
    """
    arrays = load_arrays(path)
    names = {key.rsplit(".", 1)[0] for key in arrays if key.endswith(".coef")}
    models = {name: _checked_model(path, arrays, name) for name in sorted(names)}
    extras = {key: value for key, value in arrays.items() if "." not in key}
    return models, extras


def _checked_model(path: Path, arrays: dict[str, np.ndarray], name: str) -> LinearModel:
    coef = check_array(path, f"{name}.coef", arrays[f"{name}.coef"], ndim=2)
    intercept = check_array(path, f"{name}.intercept", arrays.get(f"{name}.intercept", []), ndim=1, length=len(coef))
    classes = arrays.get(f"{name}.classes")
    if classes is not None:  # a binary model scores its second class with one row
        check_array(path, f"{name}.classes", classes, ndim=1, length=2 if len(coef) == 1 else len(coef), kind="iuU")
    return LinearModel(coef.astype(np.float64), intercept.astype(np.float64), classes)


def _detectors_in_order(models: dict[str, LinearModel]) -> list[LinearModel]:
    """The per-category models saved as ``detector0``, ``detector1``, ... in category order."""
    numbered = sorted(
        (int(name.removeprefix("detector")), model) for name, model in models.items() if name.startswith("detector")
    )
    return [model for _, model in numbered]


#: Linear parts of an aspect pipeline, stored as ``<part>_model_`` attributes.
_PIPELINE_PARTS = ("polarity", "rating")


def pipeline_models(method, detectors: str = "detectors_") -> dict[str, LinearModel]:
    """A pipeline method's fitted linear models by name, ready for :func:`save_models`
    (``detectors`` names the attribute holding the per-category models)."""
    models = {name: getattr(method, f"{name}_model_") for name in _PIPELINE_PARTS if hasattr(method, f"{name}_model_")}
    return models | {f"detector{i}": model for i, model in enumerate(getattr(method, detectors, []))}


def restore_pipeline_models(
    method, path: Path, widths: dict[str, int | None] | None = None, detectors: str = "detectors_"
) -> dict[str, np.ndarray]:
    """Load what :func:`pipeline_models` saved into ``path`` and set the attributes it read;
    returns the extra arrays. ``widths`` (part -> feature count, None: any) names the
    parts the fitted task must have ("polarity", "detector", "rating") and checks each
    model's width, its outputs against ``polarity_classes_`` / ``classes_`` and one
    detector per category.

    Raises
    ------
    ModelFileError
        A part missing, of another width or of other classes, naming ``path``.
    """
    models, extras = load_models(path)
    for name in _PIPELINE_PARTS:
        if name in models:
            setattr(method, f"{name}_model_", models[name])
    if found := _detectors_in_order(models):
        setattr(method, detectors, found)
    if widths is not None:
        _check_parts(method, path, widths, models)
    return extras


def _check_parts(method, path: Path, widths: dict[str, int | None], models: dict[str, LinearModel]) -> None:
    expected = {name: widths[name] for name in _PIPELINE_PARTS if name in widths}
    if "detector" in widths:
        expected |= {f"detector{i}": widths["detector"] for i in range(len(method.categories))}
    for name, width in expected.items():
        model = models.get(name)
        if model is None:
            raise ModelFileError(f"{path}: damaged model file (no {name!r} model; the {method.task_.value} model needs it)")
        if width is not None and model.coef.shape[1] != width:
            raise ModelFileError(f"{path}: damaged model file ({name!r} has {model.coef.shape[1]} features, expected {width})")
    if len(_detectors_in_order(models)) != len([n for n in expected if n.startswith("detector")]):
        raise ModelFileError(f"{path}: damaged model file (not one detector per category of the taxonomy)")
    polarity = models.get("polarity")
    saved = None if polarity is None or polarity.classes is None else [str(c) for c in polarity.classes]
    if saved is not None and saved != list(method.polarity_classes_):
        raise ModelFileError(f"{path}: damaged model file (polarity classes differ from the saved state's)")
    rating = models.get("rating")
    if rating is not None and rating.classes is not None and not set(rating.classes.tolist()) <= set(method.classes_.tolist()):
        raise ModelFileError(f"{path}: damaged model file (rating classes outside the saved scale)")
